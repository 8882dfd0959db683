//! Writing under a root through descriptors: the directory is resolved
//! inside the root (openat2's RESOLVE_IN_ROOT), then each file is made,
//! replaced or removed relative to that directory's descriptor. A link
//! swapped in after the lookup cannot carry a write out of the root, and an
//! image's own links (`/var/log -> /persist/log`) are followed inside it,
//! as they are when it boots. What `crate::atomic` does by path, done by fd.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;

use crate::paths::Root;

/// A directory inside a root, held open; `shown` is its host path, for
/// messages only.
#[derive(Debug)]
pub struct Dir {
    fd: File,
    shown: PathBuf,
}

fn mode(bits: u32) -> Mode {
    Mode::from_bits_truncate(bits as libc::mode_t)
}

/// A name within one directory: no slash, not `.` or `..`, not empty.
fn plain(name: &OsStr) -> io::Result<&OsStr> {
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(name);
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::other(format!(
            "{}: not a plain file name",
            name.to_string_lossy()
        )));
    }
    Ok(name)
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC);

fn open_dir_fd(root: &Root, inside: &Path) -> io::Result<File> {
    match root.openat2_in(inside, DIR_FLAGS)? {
        Ok(fd) => Ok(File::from(fd)),
        // Before Linux 5.6, or a seccomp filter that refuses openat2 (some
        // container runtimes answer EPERM).
        Err(Errno::ENOSYS | Errno::EPERM) => open_dir_by_walk(root, inside),
        Err(e) => Err(e.into()),
    }
}

/// Without openat2: Root::confined's lstat walk, and on an image no link
/// followed in the last component either; on / as it is.
fn open_dir_by_walk(root: &Root, inside: &Path) -> io::Result<File> {
    let host = root.confined(inside)?;
    let flags = if root.is_live() {
        DIR_FLAGS
    } else {
        DIR_FLAGS | OFlag::O_NOFOLLOW
    };
    Ok(File::from(nix::fcntl::open(&host, flags, Mode::empty())?))
}

/// The existing directory `inside` the root, every link on the way (its
/// own name included) resolved inside the root.
pub fn open_dir(root: &Root, inside: &Path) -> io::Result<Dir> {
    Ok(Dir {
        fd: open_dir_fd(root, inside)?,
        shown: root.host(inside),
    })
}

/// `inside` and its missing parents, each made with mkdirat in the one
/// above it with exactly `bits` (whatever the umask); existing ones, links
/// among them, are resolved inside the root and left as they are.
pub fn create_dir_all(root: &Root, inside: &Path, bits: u32) -> io::Result<Dir> {
    match open_dir(root, inside) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other,
    }
    let (Some(parent), Some(name)) = (inside.parent(), inside.file_name()) else {
        return open_dir(root, inside);
    };
    let up = create_dir_all(root, parent, bits)?;
    match nix::sys::stat::mkdirat(&up.fd, name, mode(bits)) {
        Ok(()) => {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
            let fd = up.open(name, flags, 0)?;
            nix::sys::stat::fchmod(&fd, mode(bits))?;
            up.sync()?;
            Ok(Dir {
                fd,
                shown: root.host(inside),
            })
        }
        // Made meanwhile, or a link: looked up again inside the root.
        Err(Errno::EEXIST) => open_dir(root, inside),
        Err(e) => Err(e.into()),
    }
}

/// `inside`'s directory and last name.
pub fn split(inside: &Path) -> io::Result<(&Path, &OsStr)> {
    match (inside.parent(), inside.file_name()) {
        (Some(dir), Some(name)) => Ok((dir, plain(name)?)),
        _ => Err(io::Error::other(format!(
            "{}: not a file's path",
            inside.display()
        ))),
    }
}

/// Replaces the file `inside` (its directory must exist) as `Dir::write`.
pub fn write(root: &Root, inside: &Path, data: &[u8], bits: u32) -> io::Result<()> {
    let (dir, name) = split(inside)?;
    open_dir(root, dir)?.write(name, data, bits, None)
}

/// Removes the file `inside`; a missing one, or a missing directory, is
/// not an error.
pub fn remove(root: &Root, inside: &Path) -> io::Result<()> {
    let (dir, name) = split(inside)?;
    match open_dir(root, dir) {
        Ok(d) => d.remove(name),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates or replaces the link `inside` -> `target`, atomically.
pub fn symlink(root: &Root, target: &Path, inside: &Path) -> io::Result<()> {
    let (dir, name) = split(inside)?;
    open_dir(root, dir)?.symlink(target, name)
}

/// The host path of the regular file `inside`, its directory resolved
/// inside the root, for a child process given a path (pacman's --config);
/// None when there is no such file.
pub fn existing_file(root: &Root, inside: &Path) -> Option<PathBuf> {
    let (dir, name) = split(inside).ok()?;
    let d = open_dir(root, dir).ok()?;
    let st = d.lstat(name).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    Some(real_path(root, &d, dir).ok()?.join(name))
}

/// The host path the existing directory `inside` resolves to inside the
/// root (on / the path as it is).
pub fn real_dir(root: &Root, inside: &Path) -> io::Result<PathBuf> {
    real_path(root, &open_dir(root, inside)?, inside)
}

/// The host path of `inside`, its directory (which must exist) resolved
/// inside the root and its last component as it is: for a child process
/// that opens it itself (apt's signed-by keyrings).
pub fn in_existing_dir(root: &Root, inside: &Path) -> io::Result<PathBuf> {
    let (dir, name) = split(inside)?;
    let d = open_dir(root, dir)?;
    Ok(real_path(root, &d, dir)?.join(name))
}

/// The host path the directory `inside` (made when missing) resolves to
/// inside the root, for a child process that is given paths (dpkg's and
/// apt's logs): an image's links are followed within it, never out.
pub fn resolved(root: &Root, inside: &Path) -> io::Result<PathBuf> {
    if root.is_live() {
        return Ok(root.host(inside));
    }
    let dir = create_dir_all(root, inside, 0o755)?;
    real_path(root, &dir, inside)
}

/// Where the opened directory `dir` (`inside` the root) is on the host,
/// checked to be under the root.
fn real_path(root: &Root, dir: &Dir, inside: &Path) -> io::Result<PathBuf> {
    if root.is_live() {
        return Ok(root.host(inside));
    }
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir.fd);
    let real = std::fs::read_link(format!("/proc/self/fd/{fd}"))?;
    let top = std::fs::canonicalize(root.dir())?;
    if !real.starts_with(&top) {
        return Err(io::Error::other(format!(
            "{} resolves to {}, outside --root",
            root.host(inside).display(),
            real.display()
        )));
    }
    Ok(real)
}

impl Dir {
    /// The host path of `name` in it, for messages.
    pub fn shown(&self, name: impl AsRef<Path>) -> PathBuf {
        self.shown.join(name)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.fd.sync_all()
    }

    /// Commits the whole file system the directory is on (syncfs): btrfs
    /// counts freed blocks as free only once its transaction is on disk.
    pub fn sync_fs(&self) -> io::Result<()> {
        Ok(nix::unistd::syncfs(&self.fd)?)
    }

    /// Opens `name` in this directory, never through a link (O_NOFOLLOW).
    pub fn open(&self, name: &OsStr, flags: OFlag, bits: u32) -> io::Result<File> {
        let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, plain(name)?, flags, mode(bits))?;
        Ok(File::from(fd))
    }

    /// lstat of `name`: what is there, never followed.
    pub fn lstat(&self, name: &OsStr) -> io::Result<nix::sys::stat::FileStat> {
        let at = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        Ok(nix::sys::stat::fstatat(&self.fd, plain(name)?, at)?)
    }

    /// The names in the directory, `.` and `..` left out.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let fd = nix::fcntl::openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                out.push(std::os::unix::ffi::OsStringExt::from_vec(name));
            }
        }
        Ok(out)
    }

    /// Removes the empty directory `name` and syncs this one; true when it
    /// was there to remove.
    pub fn remove_dir(&self, name: &OsStr) -> io::Result<bool> {
        match nix::unistd::unlinkat(&self.fd, plain(name)?, UnlinkatFlags::RemoveDir) {
            Ok(()) => self.sync().map(|()| true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Where the link `name` points, as written in it.
    pub fn read_link(&self, name: &OsStr) -> io::Result<PathBuf> {
        let target = nix::fcntl::readlinkat(&self.fd, plain(name)?)?;
        Ok(PathBuf::from(target))
    }

    /// A new temporary file beside `name`: O_EXCL and O_NOFOLLOW, so a
    /// name planted in advance makes us pick another, never write through
    /// it; the mode set with fchmod, whatever the umask.
    fn create_temp(&self, name: &OsStr, bits: u32) -> io::Result<(OsString, File)> {
        let pid = std::process::id();
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        for n in 0..1000u32 {
            let tmp = OsString::from(format!(".{}.tmp-{pid}-{n}", name.to_string_lossy()));
            match self.open(&tmp, flags, bits) {
                Ok(f) => {
                    nix::sys::stat::fchmod(&f, mode(bits))?;
                    return Ok((tmp, f));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free temporary name"))
    }

    /// renameat within this directory, then the directory synced.
    fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        nix::fcntl::renameat(&self.fd, from, &self.fd, plain(to)?)?;
        self.sync()
    }

    fn discard(&self, tmp: &OsStr) {
        let _ = nix::unistd::unlinkat(&self.fd, tmp, UnlinkatFlags::NoRemoveDir);
    }

    /// Replaces `name` with `data`, atomically and durably, with exactly
    /// `bits` and the group `group` when given. Whatever is at `name` (a
    /// link, a FIFO) is replaced by the rename, never opened.
    pub fn write(
        &self,
        name: &OsStr,
        data: &[u8],
        bits: u32,
        group: Option<u32>,
    ) -> io::Result<()> {
        let (tmp, mut f) = self.create_temp(plain(name)?, bits)?;
        let result = (|| {
            if let Some(g) = group {
                nix::unistd::fchown(&f, None, Some(nix::unistd::Gid::from_raw(g)))?;
            }
            f.write_all(data)?;
            f.sync_all()?;
            self.rename(&tmp, name)
        })();
        if result.is_err() {
            self.discard(&tmp);
        }
        result
    }

    /// Writes all that `src` yields to `name` as `write` does.
    pub fn copy_reader(&self, src: &mut dyn Read, name: &OsStr, bits: u32) -> io::Result<()> {
        let (tmp, mut f) = self.create_temp(plain(name)?, bits)?;
        let result = (|| {
            io::copy(src, &mut f)?;
            f.sync_all()?;
            self.rename(&tmp, name)
        })();
        if result.is_err() {
            self.discard(&tmp);
        }
        result
    }

    /// As `write`, with `spare` (a file of ours in `from`, already
    /// allocated: the space reserve) as the temporary file, so it needs no
    /// new blocks on a full disk. `spare` is gone afterwards.
    pub fn write_over(
        &self,
        name: &OsStr,
        (from, spare): (&Dir, &OsStr),
        data: &[u8],
        bits: u32,
        group: Option<u32>,
    ) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let f = from.open(spare, OFlag::O_WRONLY | OFlag::O_NONBLOCK, 0)?;
        if !f.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "{}: not a regular file",
                from.shown(spare).display()
            )));
        }
        if let Some(g) = group {
            nix::unistd::fchown(&f, None, Some(nix::unistd::Gid::from_raw(g)))?;
        }
        nix::sys::stat::fchmod(&f, mode(bits))?;
        f.write_all_at(data, 0)?;
        f.set_len(data.len() as u64)?;
        f.sync_all()?;
        nix::fcntl::renameat(&from.fd, spare, &self.fd, plain(name)?)?;
        self.sync()
    }

    /// Removes `name` (a link itself, never what it points to) and syncs
    /// the directory; a missing one is not an error.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        match nix::unistd::unlinkat(&self.fd, plain(name)?, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => self.sync(),
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates or replaces the link `name` -> `target` atomically.
    pub fn symlink(&self, target: &Path, name: &OsStr) -> io::Result<()> {
        let pid = std::process::id();
        for n in 0..1000u32 {
            let tmp = OsString::from(format!(".{}.tmp-{pid}-{n}", name.to_string_lossy()));
            match nix::unistd::symlinkat(target, &self.fd, tmp.as_os_str()) {
                Ok(()) => {
                    let result = self.rename(&tmp, name);
                    if result.is_err() {
                        self.discard(&tmp);
                    }
                    return result;
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(io::Error::other("no free temporary name"))
    }
}

#[cfg(test)]
mod tests;
