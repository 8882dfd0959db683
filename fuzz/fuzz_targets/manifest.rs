//! The manifest parser on any text: never panics, and what it accepts
//! names only plain files and a valid id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use system_update::manifest::{valid_id, Manifest};
use system_update::paths::is_plain_name;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = Manifest::parse(text, Path::new("manifest.toml")) {
            assert!(valid_id(&m.id));
            assert!(m.files.iter().all(|f| is_plain_name(&f.name)));
            // What parses writes back to something that parses the same.
            assert_eq!(Manifest::parse(&m.to_toml(), Path::new("m")).ok(), Some(m));
        }
    }
});
