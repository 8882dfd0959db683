//! One actor at a time: an exclusive flock on a file that outlives the
//! update directory, released by the kernel when the process dies.

use std::fs::File;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{path}: cannot open lock file: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{0}: another system-update is running; wait for it to finish")]
    Busy(PathBuf),
    #[error("{path}: cannot lock: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

/// Held while alive.
#[derive(Debug)]
pub struct Lock {
    _lock: nix::fcntl::Flock<File>,
}

/// Locks `name` in `dir` (made when missing), `shown` naming it in errors.
pub fn try_lock(dir: &crate::rooted::Dir, name: &str) -> Result<Lock, LockError> {
    use nix::fcntl::OFlag;
    let path = dir.shown(name);
    let open_err = |source| LockError::Open {
        path: path.clone(),
        source,
    };
    // 0600 and never through a link: whoever can open the lock file can
    // hold the lock, and with it every update, hostage.
    let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NONBLOCK;
    let file = dir.open(name.as_ref(), flags, 0o600).map_err(open_err)?;
    if !file.metadata().map_err(open_err)?.is_file() {
        return Err(open_err(io::Error::other("not a regular file")));
    }
    // A lock file made by an older version may be 0644.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(open_err)?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Lock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(LockError::Busy(path)),
        Err((_, errno)) => Err(LockError::Lock {
            path,
            source: io::Error::from(errno),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn second_lock_is_busy_until_first_dropped() {
        let d = tempfile::tempdir().unwrap();
        let root = crate::paths::Root::new(d.path());
        let dir = crate::rooted::open_dir(&root, std::path::Path::new("/")).unwrap();
        let a = super::try_lock(&dir, "lock").unwrap();
        assert!(matches!(
            super::try_lock(&dir, "lock"),
            Err(super::LockError::Busy(_))
        ));
        drop(a);
        assert!(super::try_lock(&dir, "lock").is_ok());
    }
}
