//! What a soft-reboot would not reload, as files on disk: a fingerprint of
//! the trees under /boot, /efi, the module and firmware directories and the
//! initrd generators' configuration, taken before the transaction and
//! compared after it. Package file lists miss what maintainer scripts
//! write (a DKMS module, a rebuilt initrd, a boot loader entry); this does
//! not, so the way out is a full reboot whenever either says so.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::backend::BOOT_PATHS;
use crate::paths::Root;

/// More entries than this under the boot trees is not a system we can
/// compare in a moment: counted as changed.
const MAX_ENTRIES: usize = 400_000;

/// The fingerprint of the boot trees of `root`, or why there is none.
pub fn fingerprint(root: &Root) -> Result<String, String> {
    let mut walk = Walk {
        hasher: Sha256::new(),
        entries: 0,
    };
    for dir in BOOT_PATHS.iter().filter_map(|p| p.strip_suffix('/')) {
        let inside = Path::new(dir);
        // A link on the way (/lib -> usr/lib on a merged /usr) is the same
        // tree as another entry, or leads out of the root: not walked.
        let Ok(host) = crate::rooted::real_dir(root, inside) else {
            continue;
        };
        if !root.is_live() && Some(&host) != literal(root, inside).as_ref() {
            continue;
        }
        walk.hasher.update(dir.as_bytes());
        walk.tree(&host)?;
    }
    Ok(crate::manifest::hex_digest(walk.hasher))
}

/// Where `inside` is under the root's real path when no link is on the way.
fn literal(root: &Root, inside: &Path) -> Option<std::path::PathBuf> {
    let top = std::fs::canonicalize(root.dir()).ok()?;
    Some(top.join(inside.strip_prefix("/").unwrap_or(inside)))
}

/// Why the way out must be a full reboot, judged from the fingerprint
/// taken before the transaction (`None`: not taken) and the trees now.
pub fn changed(root: &Root, before: Option<&str>) -> Option<String> {
    let Some(before) = before else {
        return Some("the boot files were not recorded before the transaction".into());
    };
    match fingerprint(root) {
        Ok(now) if now == before => None,
        Ok(_) => Some("files under /boot, the module or firmware directories or the initrd configuration changed during the update".into()),
        Err(why) => Some(why),
    }
}

struct Walk {
    hasher: Sha256,
    entries: usize,
}

impl Walk {
    fn tree(&mut self, dir: &Path) -> Result<(), String> {
        let read = |e: std::io::Error| format!("{}: {e}", dir.display());
        let mut names: Vec<PathBuf> = match fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(read)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(read(e)),
        };
        names.sort();
        for p in names {
            self.entries += 1;
            if self.entries > MAX_ENTRIES {
                return Err(format!(
                    "more than {MAX_ENTRIES} files under the boot directories"
                ));
            }
            // Not followed: a link is recorded as a link.
            let md = fs::symlink_metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            self.entry(&p, &md);
            if md.is_dir() {
                self.tree(&p)?;
            }
        }
        Ok(())
    }

    fn entry(&mut self, p: &Path, md: &fs::Metadata) {
        use std::os::unix::ffi::OsStrExt;
        self.hasher.update(p.as_os_str().as_bytes());
        for n in [
            u64::from(md.mode()),
            md.size(),
            md.ino(),
            md.mtime() as u64,
            md.mtime_nsec() as u64,
            md.ctime() as u64,
            md.ctime_nsec() as u64,
        ] {
            self.hasher.update(n.to_le_bytes());
        }
        if md.file_type().is_symlink() {
            if let Ok(t) = fs::read_link(p) {
                self.hasher.update(t.as_os_str().as_bytes());
            }
        }
        self.hasher.update(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_under_boot_or_modules_is_seen() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        fs::create_dir_all(d.path().join("boot")).unwrap();
        fs::create_dir_all(d.path().join("usr/lib/modules/6.1.0/updates/dkms")).unwrap();
        fs::create_dir_all(d.path().join("usr/share/doc")).unwrap();
        let before = fingerprint(&root).unwrap();
        assert_eq!(changed(&root, Some(&before)), None);

        // Elsewhere: no matter.
        fs::write(d.path().join("usr/share/doc/x"), "x").unwrap();
        assert_eq!(changed(&root, Some(&before)), None);

        fs::write(
            d.path().join("usr/lib/modules/6.1.0/updates/dkms/m.ko"),
            "module",
        )
        .unwrap();
        assert!(changed(&root, Some(&before)).is_some());
        let before = fingerprint(&root).unwrap();
        fs::write(d.path().join("boot/initrd.img-6.1.0"), "initrd").unwrap();
        assert!(changed(&root, Some(&before)).is_some());
        // Not recorded: a full reboot, to be safe.
        assert!(changed(&root, None).is_some());
    }

    #[test]
    fn a_link_on_the_way_is_not_walked() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir_all(outside.path().join("modules")).unwrap();
        fs::create_dir_all(d.path().join("usr")).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("lib")).unwrap();
        let before = fingerprint(&root).unwrap();
        fs::write(outside.path().join("modules/x.ko"), "x").unwrap();
        assert_eq!(changed(&root, Some(&before)), None);
    }
}
