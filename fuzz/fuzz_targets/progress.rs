//! The command backend's progress protocol on any line: never panics, and
//! progress stays a finite percentage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use system_update::backend::command::parse_line;
use system_update_tui::Event;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Some(Event::Progress { percent }) = parse_line(&line) {
        assert!((0.0..=100.0).contains(&percent));
    }
});
