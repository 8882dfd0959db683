//! Crash-safe file updates: temp file in the same directory, write, fsync,
//! rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Opens a new temporary file beside `path`: O_EXCL and O_NOFOLLOW, so a
/// name planted in advance (a symlink to a root-owned file elsewhere) makes
/// us pick another name instead of writing through it. The mode is set with
/// fchmod: whatever the umask, the file has exactly `mode`.
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pid = std::process::id();
    let mut last = None;
    for n in 0..1000u32 {
        let tmp = parent(path).join(format!(".{name}.tmp-{pid}-{n}"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => {
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The group that may read logs and records: `adm` where the root's
/// /etc/group has it (Debian's readers of /var/log), else none (0600).
/// Read inside the root, within a size cap: an image's /etc that links
/// elsewhere never reads this machine's.
pub fn log_group(root: &crate::paths::Root) -> Option<u32> {
    let inside = Path::new("/etc/group");
    let text = crate::untrusted::read_text_in(root, inside, 1 << 20, false).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == "adm").then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Mode for files that quote maintainer scripts' output: 0640 with the
/// log group, else 0600.
pub fn private_mode(group: Option<u32>) -> u32 {
    if group.is_some() {
        0o640
    } else {
        0o600
    }
}

/// Replaces `path` with `data`, atomically and durably, with exactly `mode`.
pub fn write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_owned(path, data, mode, None)
}

/// As `write`, the file's group set to `group` when given.
pub fn write_owned(path: &Path, data: &[u8], mode: u32, group: Option<u32>) -> io::Result<()> {
    let (tmp, mut f) = create_temp(path, mode)?;
    let result = (|| {
        if let Some(g) = group {
            std::os::unix::fs::fchown(&f, None, Some(g))?;
        }
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fsync_dir(parent(path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write(&p, b"one", 0o644).unwrap();
        write(&p, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_planted_temporary_link_is_never_written_through() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let p = d.path().join("attempts.json");
        let pid = std::process::id();
        for n in 0..5 {
            std::os::unix::fs::symlink(
                &victim,
                d.path().join(format!(".attempts.json.tmp-{pid}-{n}")),
            )
            .unwrap();
        }
        write(&p, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert_eq!(fs::read(&p).unwrap(), b"new");
    }

    #[test]
    fn modes_do_not_depend_on_the_umask() {
        // Modes the usual umask (022) would cut: they must come out whole
        // (changing the umask here would race the other tests' threads).
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("f"), b"x", 0o666).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&d.path().join("f")), 0o666);
    }
}
