//! Where things live, always relative to the root being updated (`--root`).

use std::path::{Component, Path, PathBuf};

/// Trigger links, in the order systemd's generator checks them.
pub const TRIGGER_LINKS: [&str; 2] = ["/system-update", "/etc/system-update"];
pub const CONFIG_FILE: &str = "/etc/system-update.toml";
pub const DEFAULT_UPDATE_DIR: &str = "/var/lib/system-update";
pub const RESULTS_DIR: &str = "/var/lib/system-update-results";
pub const LOG_DIR: &str = "/var/log/system-update";

pub const MANIFEST_NAME: &str = "manifest.toml";
pub const STATE_NAME: &str = "attempts.json";
/// The detached minisign signature of the manifest.
pub const SIGNATURE_NAME: &str = "manifest.toml.minisig";
/// What is local to this machine: written by prepare and trigger, never signed.
pub const LOCAL_NAME: &str = "local.json";
pub const RESULT_NAME: &str = "last.json";
pub const LOCK_NAME: &str = "lock";
/// Present when snapshots may need pruning after the next normal boot.
pub const CLEANUP_PENDING: &str = "cleanup-pending";

/// The tree being acted on. Paths "inside" it are absolute paths as the
/// updated system sees them; `host()` maps them to where we can open them.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when acting on the running system rather than an image.
    pub fn is_live(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// The host path of `inside` (an absolute path within the root).
    pub fn host(&self, inside: &Path) -> PathBuf {
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        self.dir.join(rel)
    }

    /// Opens `inside` with every link on the way resolved inside the root
    /// (openat2's RESOLVE_IN_ROOT: an image's absolute link or `..` stays in
    /// the image, never reaching the host's files) and the last component
    /// never followed. `flags` adds to O_NOFOLLOW and O_CLOEXEC. On a
    /// kernel without openat2 (before 5.6), the lstat walk of `confined`.
    pub fn open_in(
        &self,
        inside: &Path,
        flags: nix::fcntl::OFlag,
    ) -> std::io::Result<std::fs::File> {
        self.open_resolved(inside, flags | nix::fcntl::OFlag::O_NOFOLLOW)
    }

    /// Opens `inside` for reading, a link in its last component followed
    /// too, inside the root (/etc/localtime is one). Without openat2, only
    /// on the running system, where every link stays within /.
    pub fn open_following_in(&self, inside: &Path) -> std::io::Result<std::fs::File> {
        use nix::fcntl::OFlag;
        self.open_resolved(inside, OFlag::O_RDONLY | OFlag::O_NONBLOCK)
    }

    fn open_resolved(
        &self,
        inside: &Path,
        flags: nix::fcntl::OFlag,
    ) -> std::io::Result<std::fs::File> {
        use nix::fcntl::OFlag;
        let flags = flags | OFlag::O_CLOEXEC;
        match self.openat2_in(inside, flags)? {
            Ok(fd) => Ok(std::fs::File::from(fd)),
            Err(nix::errno::Errno::ENOSYS | nix::errno::Errno::EPERM) => {
                if !flags.contains(OFlag::O_NOFOLLOW) && !self.is_live() {
                    return Err(std::io::Error::other(format!(
                        "{}: a link is not followed inside --root without openat2 (Linux 5.6)",
                        self.host(inside).display()
                    )));
                }
                let host = self.confined(inside)?;
                let fd = nix::fcntl::open(&host, flags, nix::sys::stat::Mode::empty())?;
                Ok(std::fs::File::from(fd))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// openat2 of `inside` from the root's directory, with every link
    /// resolved inside the root and no magic link (/proc/self/fd/N)
    /// followed. The outer error is the root's own directory failing to
    /// open; the inner one is openat2's, ENOSYS for the caller's fallback.
    pub(crate) fn openat2_in(
        &self,
        inside: &Path,
        flags: nix::fcntl::OFlag,
    ) -> std::io::Result<nix::Result<std::os::fd::OwnedFd>> {
        use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
        let dir = nix::fcntl::open(
            &self.dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        let rel = inside.strip_prefix("/").unwrap_or(inside);
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        Ok(nix::fcntl::openat2(&dir, rel, how))
    }

    /// The host path of `inside`, for what cannot go through a descriptor
    /// (a path given to a child, the backends' reads) and for the fallback
    /// without openat2 (writes go through descriptors), once it is sure
    /// the path stays in the root: on a tree other than /
    /// (an image), a symbolic link on the way (an absolute one, or `..`)
    /// would lead the kernel out of it, into the host's own files, so any
    /// link among the existing directories on the way is refused. On the
    /// running system every link stays within /, and systems do link parts
    /// of /var, so / is taken as it is. The last component is the caller's
    /// to open without following (O_NOFOLLOW, O_EXCL).
    pub fn confined(&self, inside: &Path) -> std::io::Result<PathBuf> {
        let host = self.host(inside);
        if self.is_live() {
            return Ok(host);
        }
        let mut at = self.dir.clone();
        let parents: Vec<_> = inside
            .parent()
            .map_or(Vec::new(), |p| p.components().collect());
        for c in parents {
            let Component::Normal(n) = c else { continue };
            at.push(n);
            match std::fs::symlink_metadata(&at) {
                Ok(md) if md.file_type().is_symlink() => {
                    return Err(std::io::Error::other(format!(
                        "{} is a symbolic link: it could lead out of --root {}; not followed",
                        at.display(),
                        self.dir.display()
                    )))
                }
                Ok(_) => {}
                // Nothing further exists: we create it, without links.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(e),
            }
        }
        Ok(host)
    }
}

/// Lexically normalises an absolute path (`.`, `..`, duplicate slashes),
/// without touching the file system: link targets belong to the root, not to
/// the host, so they must never be resolved through the host's `/`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// True when `name` is a plain file name: no directory part, not `.`/`..`.
pub fn is_plain_name(name: &str) -> bool {
    let mut comps = Path::new(name).components();
    matches!(
        (comps.next(), comps.next()),
        (Some(Component::Normal(_)), None)
    ) && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c//d")), Path::new("/a/c/d"));
        assert_eq!(normalize(Path::new("/../x")), Path::new("/x"));
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("a.deb"));
        assert!(!is_plain_name("../a.deb"));
        assert!(!is_plain_name("/etc/passwd"));
        assert!(!is_plain_name("sub/a.deb"));
        assert!(!is_plain_name(".."));
        assert!(!is_plain_name(""));
    }

    #[test]
    fn host_paths_stay_in_root() {
        let r = Root::new("/tmp/r");
        assert_eq!(
            r.host(Path::new("/system-update")),
            Path::new("/tmp/r/system-update")
        );
    }
}
