//! Private temporary directories (mkdtemp: mode 0700, a fresh name, never
//! a directory someone prepared for us), removed with what is in them when
//! dropped. For downloads at prepare, a configuration or an empty set of
//! sources given to a package manager, and links to verified descriptors.

use std::io;
use std::path::{Path, PathBuf};

pub struct PrivateDir(PathBuf);

impl PrivateDir {
    /// `base/system-update-NAME.XXXXXX`.
    pub fn new_in(base: &Path, name: &str) -> io::Result<PrivateDir> {
        let template = base.join(format!("system-update-{name}.XXXXXX"));
        nix::unistd::mkdtemp(&template)
            .map(PrivateDir)
            .map_err(|e| {
                io::Error::new(
                    io::Error::from(e).kind(),
                    format!("{}: {e}", template.display()),
                )
            })
    }

    /// In the temporary directory (TMPDIR, else /tmp).
    pub fn new(name: &str) -> io::Result<PrivateDir> {
        PrivateDir::new_in(&std::env::temp_dir(), name)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // remove_dir_all does not follow links: links inside go, their
        // targets stay.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_gone_when_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let d = PrivateDir::new("test").unwrap();
        let p = d.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::write(p.join("f"), b"x").unwrap();
        drop(d);
        assert!(!p.exists());
    }
}
