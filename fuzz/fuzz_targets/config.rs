//! The configuration parser on any text: never panics; an accepted
//! update-dir is absolute and suitable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use system_update::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = Config::parse(text, Path::new("/etc/system-update.toml")) {
            assert!(c.update_dir.is_absolute());
            assert!(system_update::updatedir::unsuitable(&c.update_dir).is_none());
        }
    }
});
