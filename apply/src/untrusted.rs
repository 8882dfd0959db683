//! Reading files whose content we act on as root: the configuration, the
//! manifest, the payload. Regular files only (a FIFO would hang us, a device
//! would feed us forever), never through a symbolic link in the last
//! component, within a size cap, and owned by someone we trust.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest configuration file read.
pub const CONFIG_MAX: u64 = 64 << 10;
/// The largest manifest read.
pub const MANIFEST_MAX: u64 = 1 << 20;
/// The largest state file of ours read (a result record, the attempt
/// counter, `local.json`, the probation's state): each is a few KiB.
pub const STATE_MAX: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: not a regular file ({kind}); it must be a plain file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: larger than {max} bytes; this is not a file of ours")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path}: owned by uid {uid} with mode {mode:04o}: it must be owned by root and not writable by group or others (chown root:root, chmod go-w)")]
    Insecure { path: PathBuf, uid: u32, mode: u32 },
}

impl UntrustedError {
    /// What is wrong, for a caller whose own message names the path.
    pub fn without_path(&self) -> String {
        let text = self.to_string();
        let path = match self {
            UntrustedError::Io { path, .. }
            | UntrustedError::NotRegular { path, .. }
            | UntrustedError::TooLarge { path, .. }
            | UntrustedError::Insecure { path, .. } => path,
        };
        let prefix = format!("{}: ", path.display());
        text.strip_prefix(&prefix).unwrap_or(&text).to_string()
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, UntrustedError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

fn kind(md: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = md.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// Who may own what we trust: root, and the user we run as (only ever not
/// root on a scratch --root such as the demo's, where that user's files
/// are as trusted as the process itself).
pub fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

/// Owned by a trusted owner and not writable by group or others; a
/// root-owned directory with the sticky bit (like /tmp) is accepted, since
/// nobody else can rename or remove what is in it.
pub fn check_secure(md: &std::fs::Metadata, path: &Path) -> Result<(), UntrustedError> {
    let mode = md.mode();
    let sticky_root_dir = md.is_dir() && md.uid() == 0 && mode & 0o1000 != 0;
    if !trusted_owner(md.uid()) || (mode & 0o022 != 0 && !sticky_root_dir) {
        return Err(UntrustedError::Insecure {
            path: path.to_path_buf(),
            uid: md.uid(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Opens `path` for reading without following a symbolic link in its last
/// component and without blocking on a FIFO; a regular file, owned and
/// moded as check_secure wants when `secure`.
pub fn open_regular(
    path: &Path,
    secure: bool,
) -> Result<(File, std::fs::Metadata), UntrustedError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(e, path))?;
    regular(f, path, secure)
}

/// open_regular for `inside` a root, every link on the way resolved inside
/// it (Root::open_in): an image's links never lead to the host's files.
pub fn open_regular_in(
    root: &crate::paths::Root,
    inside: &Path,
    secure: bool,
) -> Result<(File, std::fs::Metadata), UntrustedError> {
    use nix::fcntl::OFlag;
    let shown = root.host(inside);
    let f = root
        .open_in(inside, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
        .map_err(|e| open_error(e, &shown))?;
    regular(f, &shown, secure)
}

fn open_error(e: io::Error, path: &Path) -> UntrustedError {
    // O_NOFOLLOW on a link: ELOOP. Say what it is.
    if e.raw_os_error() == Some(libc::ELOOP) {
        return UntrustedError::NotRegular {
            path: path.to_path_buf(),
            kind: "a symbolic link",
        };
    }
    UntrustedError::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// The opened file, when it is a regular one (and secure, when asked).
fn regular(
    f: File,
    path: &Path,
    secure: bool,
) -> Result<(File, std::fs::Metadata), UntrustedError> {
    let md = f.metadata().map_err(|source| UntrustedError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if !md.is_file() {
        return Err(UntrustedError::NotRegular {
            path: path.to_path_buf(),
            kind: kind(&md),
        });
    }
    if secure {
        check_secure(&md, path)?;
    }
    Ok((f, md))
}

/// Reads a small text file as open_regular opens it, at most `max` bytes.
pub fn read_text(path: &Path, max: u64, secure: bool) -> Result<String, UntrustedError> {
    let (f, md) = open_regular(path, secure)?;
    read_bounded(f, &md, path, max)
}

/// read_text for `inside` a root, as open_regular_in opens it.
pub fn read_text_in(
    root: &crate::paths::Root,
    inside: &Path,
    max: u64,
    secure: bool,
) -> Result<String, UntrustedError> {
    let (f, md) = open_regular_in(root, inside, secure)?;
    read_bounded(f, &md, &root.host(inside), max)
}

fn read_bounded(
    f: File,
    md: &std::fs::Metadata,
    path: &Path,
    max: u64,
) -> Result<String, UntrustedError> {
    let too_large = || UntrustedError::TooLarge {
        path: path.to_path_buf(),
        max,
    };
    if md.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| UntrustedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every directory from `root` (included) down to `dir`, each owned by a
/// trusted owner and not writable by group or others: whoever can write one
/// of them can replace what lies below. Components are looked at without
/// following links; a link on the way is refused, so the check and the
/// later use see the same tree. Where the path stops existing there is
/// nothing more to check (reading what is missing says so itself).
pub fn check_path_secure(root: &Path, inside: &Path) -> Result<(), UntrustedError> {
    let mut host = root.to_path_buf();
    let check = |p: &Path| -> Result<bool, UntrustedError> {
        let md = match std::fs::symlink_metadata(p) {
            Ok(md) => md,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => {
                return Err(UntrustedError::Io {
                    path: p.to_path_buf(),
                    source,
                })
            }
        };
        if md.file_type().is_symlink() {
            return Err(UntrustedError::NotRegular {
                path: p.to_path_buf(),
                kind: "a symbolic link on the way to the update directory",
            });
        }
        check_secure(&md, p).map(|()| true)
    };
    if !check(&host)? {
        return Ok(());
    }
    for c in inside.components() {
        if let std::path::Component::Normal(n) = c {
            host.push(n);
            if !check(&host)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_and_links_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_text(&fifo, 10, false).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
        let e = read_text(Path::new("/dev/zero"), 10, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a device"), "{e}");
        let real = d.path().join("real");
        std::fs::write(&real, "x").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = read_text(&link, 10, false).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::write(&real, "0123456789abc").unwrap();
        let e = read_text(&real, 10, false).unwrap_err().to_string();
        assert!(e.contains("larger than 10 bytes"), "{e}");
        assert!(read_text(&d.path().join("none"), 10, false)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn group_or_world_writable_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_text(&f, 10, true).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = read_text(&f, 10, true).unwrap_err().to_string();
        assert!(e.contains("mode 0666"), "{e}");
        let sub = d.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::set_permissions(d.path().join("a"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        let e = check_path_secure(d.path(), Path::new("/a/b"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/a: owned by") && e.contains("0777"), "{e}");
        std::fs::set_permissions(d.path().join("a"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        // Sticky and root's (we are root in the suite): like /tmp.
        if nix::unistd::geteuid().is_root() {
            assert!(check_path_secure(d.path(), Path::new("/a/b")).is_ok());
        }
    }
}
