//! The machine's id, as systemd keeps it in /etc/machine-id (machine-id(5)):
//! what a slot and a halt name.

use std::path::Path;

use super::FleetError;

const MACHINE_ID: &str = "/etc/machine-id";

/// 32 lowercase hex digits, as machine-id(5) writes it.
pub fn is_machine_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The id of the machine under `root`.
pub fn machine_id(root: &crate::paths::Root) -> Result<String, FleetError> {
    let path = Path::new(MACHINE_ID);
    let text = crate::untrusted::read_text_in(root, path, 4096, true)
        .map_err(|e| FleetError::MachineId(format!("{e}; a fleet member needs its machine id")))?;
    let id = text.trim_end_matches('\n');
    if is_machine_id(id) {
        Ok(id.to_string())
    } else {
        Err(FleetError::MachineId(format!(
            "{}: not a machine id (32 lowercase hex digits); systemd-machine-id-setup writes one",
            root.host(path).display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_32_lowercase_hex_digits() {
        assert!(is_machine_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "uninitialized",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "../../etc/passwd",
        ] {
            assert!(!is_machine_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_root_without_or_with_a_bad_id_is_said_plainly() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::paths::Root::new(dir.path());
        let e = machine_id(&root).unwrap_err().to_string();
        assert!(e.contains("etc/machine-id"), "{e}");
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/machine-id"), "uninitialized\n").unwrap();
        let e = machine_id(&root).unwrap_err().to_string();
        assert!(e.contains("not a machine id"), "{e}");
        let id = "0123456789abcdef0123456789abcdef";
        std::fs::write(dir.path().join("etc/machine-id"), format!("{id}\n")).unwrap();
        // Owned by whoever runs the test: secure only as root.
        if nix::unistd::geteuid().is_root() {
            assert_eq!(machine_id(&root).unwrap(), id);
        }
    }
}
