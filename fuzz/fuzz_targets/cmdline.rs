//! The generator's kernel command line splitting on any text: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use system_update_generator::cmdline;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = cmdline::words(&line);
    for o in cmdline::overrides(&line) {
        if let cmdline::Override::Unit(u) = o {
            assert!(!u.is_empty());
        }
    }
});
