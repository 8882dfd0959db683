//! Room for the record of an update that fills the disk (issue 25): a file
//! of RESERVE bytes allocated in the results directory just before the
//! transaction and deleted when the record does not fit without it, or
//! once it is written (before a rollback's copies), so the record, its
//! history entry and the log's copy into a restored root find space even
//! when a package script or a download took all there was.
//!
//! Made after the snapshot, so no snapshot shares its blocks: deleting it
//! gives them back on btrfs too.

use std::io;
use std::path::Path;

use nix::fcntl::OFlag;

use crate::paths::{self, Root};
use crate::rooted::{self, Dir};

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

fn name(part: usize) -> String {
    format!("{NAME}.{part}")
}

/// The results directory, through a descriptor resolved inside the root.
fn results(root: &Root) -> io::Result<Dir> {
    rooted::open_dir(root, Path::new(paths::RESULTS_DIR))
}

/// Allocates the reserve (a leftover of a cut run is reused). A reserve
/// that cannot be made is only a warning: the space check passed, so the
/// update may still fit.
pub fn make(root: &Root) {
    let dir = match rooted::create_dir_all(root, Path::new(paths::RESULTS_DIR), 0o755) {
        Ok(d) => d,
        Err(e) => {
            let shown = root.host(Path::new(paths::RESULTS_DIR));
            tracing::warn!(
                "no space reserved for the result record: {}: {e}",
                shown.display()
            );
            return;
        }
    };
    for part in 0..PARTS {
        if let Err(e) = allocate(&dir, &name(part)) {
            tracing::warn!("no space reserved for the result record: {e}");
            return;
        }
    }
}

fn allocate(dir: &Dir, name: &str) -> io::Result<()> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NONBLOCK;
    let shown = dir.shown(name);
    let f = dir
        .open(name.as_ref(), flags, 0o600)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shown.display())))?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(io::Error::other(format!(
            "{}: not a regular file; left alone",
            shown.display()
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

fn is_file(dir: &Dir, part: usize) -> bool {
    dir.lstat(name(part).as_ref())
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Gives back one part of the reserve, the last one left, after a pause,
/// and commits it (btrfs counts freed blocks only once its transaction is
/// on disk). False when there was none left to give.
pub fn shrink(root: &Root) -> bool {
    let Ok(dir) = results(root) else {
        return false;
    };
    let left = |part| dir.lstat(name(part).as_ref()).is_ok();
    if !(0..PARTS).any(left) {
        return false;
    }
    std::thread::sleep(PAUSE);
    (0..PARTS).rev().any(|part| remove(&dir, part))
}

/// The name of the last part left in the results directory, for a record
/// to be written into (history::keep_reserved); None when none is.
pub fn take(root: &Root) -> Option<String> {
    let dir = results(root).ok()?;
    (0..PARTS).rev().find(|&part| is_file(&dir, part)).map(name)
}

/// Gives back all of it, at once.
pub fn release(root: &Root) {
    let Ok(dir) = results(root) else {
        return;
    };
    for part in 0..PARTS {
        remove(&dir, part);
    }
}

fn remove(dir: &Dir, part: usize) -> bool {
    let n = name(part);
    if dir.lstat(n.as_ref()).is_err() {
        return false;
    }
    if let Err(e) = dir.remove(n.as_ref()) {
        tracing::warn!("{}: {e}", dir.shown(&n).display());
        return false;
    }
    if let Err(e) = dir.sync_fs() {
        tracing::warn!("{}: {e}", dir.shown("").display());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(root: &Root) -> Vec<u64> {
        (0..PARTS)
            .filter_map(|part| {
                let p = root.host(Path::new(paths::RESULTS_DIR)).join(name(part));
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
