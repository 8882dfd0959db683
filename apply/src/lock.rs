//! One actor at a time: an exclusive flock on a file that outlives the
//! update directory, released by the kernel when the process dies.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

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

pub fn try_lock(path: &Path) -> Result<Lock, LockError> {
    let open_err = |source| LockError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::atomic::create_dir_all(dir, 0o755).map_err(open_err)?;
    }
    // 0600 and never through a link: whoever can open the lock file can
    // hold the lock, and with it every update, hostage.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(open_err)?;
    // A lock file made by an older version may be 0644.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(open_err)?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Lock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(LockError::Busy(path.to_path_buf())),
        Err((_, errno)) => Err(LockError::Lock {
            path: path.to_path_buf(),
            source: io::Error::from(errno),
        }),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn second_lock_is_busy_until_first_dropped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("lock");
        let a = super::try_lock(&p).unwrap();
        assert!(matches!(
            super::try_lock(&p),
            Err(super::LockError::Busy(_))
        ));
        drop(a);
        assert!(super::try_lock(&p).is_ok());
    }
}
