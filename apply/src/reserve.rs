//! Room for the record of an update that fills the disk (issue 25): a file
//! of RESERVE bytes allocated in the results directory just before the
//! transaction and deleted when the record does not fit without it, or
//! once it is written (before a rollback's copies), so the record, its
//! history entry and the log's copy into a restored root find space even
//! when a package script or a download took all there was.
//!
//! Made after the snapshot, so no snapshot shares its blocks: deleting it
//! gives them back on btrfs too.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::paths::{self, Root};

/// What is kept back: the record and its history copy are a few KiB, the
/// rest is for the log's copy and the file system's own metadata. A
/// rollback on a full btrfs took all of 4 MiB (mixed block groups: the
/// snapshot, then a RENAME_EXCHANGE whose metadata reservation needed
/// three more parts), so that had no margin for a writer beside it.
pub const RESERVE: u64 = 8 << 20;

/// In this many files, given back one at a time: a writer still filling
/// the disk takes one part, fails and stops, and the next part is ours.
/// (Files, not one file truncated: btrfs frees an extent only whole.)
const PARTS: usize = 8;

/// The reserve's names in the results directory: NAME.0 to NAME.7.
pub const NAME: &str = "space-reserve";

fn path(root: &Root, part: usize) -> io::Result<PathBuf> {
    root.confined(&Path::new(paths::RESULTS_DIR).join(format!("{NAME}.{part}")))
}

/// Allocates the reserve (a leftover of a cut run is reused). A reserve
/// that cannot be made is only a warning: the space check passed, so the
/// update may still fit.
pub fn make(root: &Root) {
    for part in 0..PARTS {
        if let Err(e) = path(root, part).and_then(|p| allocate(&p)) {
            tracing::warn!("no space reserved for the result record: {e}");
            return;
        }
    }
}

fn allocate(p: &Path) -> io::Result<()> {
    if let Some(dir) = p.parent() {
        atomic::create_dir_all(dir, 0o755)?;
    }
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(p)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file; left alone",
            p.display()
        )));
    }
    // Real blocks, not a hole: fallocate where the file system can, else
    // zeros written out.
    let len = (RESERVE / PARTS as u64) as libc::off_t;
    // SAFETY: a valid descriptor; no memory is passed.
    if unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, len) } != 0 {
        use std::io::Write;
        let mut w = &f;
        w.write_all(&vec![0u8; len as usize])?;
    }
    f.sync_all()
}

/// How long a writer still filling the disk is given to meet its own
/// ENOSPC and stop before a part is given back.
const PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Gives back one part of the reserve, the last one left, after a pause,
/// and commits it (btrfs counts freed blocks only once its transaction is
/// on disk). False when there was none left to give.
pub fn shrink(root: &Root) -> bool {
    let left = |part| path(root, part).is_ok_and(|p| p.symlink_metadata().is_ok());
    if !(0..PARTS).any(left) {
        return false;
    }
    std::thread::sleep(PAUSE);
    (0..PARTS).rev().any(|part| remove(root, part))
}

/// The last part left, for a record to be written into
/// (history::keep_reserved); None when none is.
pub fn take(root: &Root) -> Option<PathBuf> {
    (0..PARTS).rev().find_map(|part| {
        let p = path(root, part).ok()?;
        std::fs::symlink_metadata(&p)
            .is_ok_and(|m| m.is_file())
            .then_some(p)
    })
}

/// Gives back all of it, at once.
pub fn release(root: &Root) {
    for part in 0..PARTS {
        remove(root, part);
    }
}

fn remove(root: &Root, part: usize) -> bool {
    let Ok(p) = path(root, part) else {
        return false;
    };
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
        Err(e) => {
            tracing::warn!("{}: {e}", p.display());
            return false;
        }
    }
    if let Some(dir) = p.parent() {
        if let Err(e) = crate::space::sync_fs(dir) {
            tracing::warn!("{}: {e}", dir.display());
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(root: &Root) -> Vec<u64> {
        (0..PARTS)
            .filter_map(|part| {
                let p = path(root, part).ok()?;
                Some(std::fs::symlink_metadata(p).ok()?.len())
            })
            .collect()
    }

    #[test]
    fn made_then_given_back_a_part_at_a_time() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        make(&root);
        assert_eq!(parts(&root), vec![RESERVE / PARTS as u64; PARTS]);
        // A second attempt reuses it.
        make(&root);
        assert_eq!(parts(&root).len(), PARTS);
        assert!(shrink(&root));
        assert_eq!(parts(&root).len(), PARTS - 1);
        release(&root);
        assert!(parts(&root).is_empty());
        assert!(!shrink(&root), "nothing left to give");
    }

    #[test]
    fn a_link_in_its_place_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path().join("root"));
        let results = root.host(Path::new(paths::RESULTS_DIR));
        std::fs::create_dir_all(&results).unwrap();
        let target = d.path().join("elsewhere");
        std::fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, results.join(format!("{NAME}.0"))).unwrap();
        make(&root);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        release(&root);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
