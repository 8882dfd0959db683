//! The snapshot point before the transaction and the rollback after a
//! failure: step 6 of systemd.offline-updates(7), "create a file system
//! snapshot, then install all packages … on failure revert to the old file
//! system snapshot".
//!
//! Providers: `btrfs`, through the kernel's ioctls (no btrfs program needed
//! at boot), and `none`, which records why no snapshot was possible. The
//! mechanism and its reasons are in system-update(8), SNAPSHOTS.

pub mod btrfs;
pub mod layout;
pub mod rollback;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Root;

/// Where the top-level subvolume is mounted for a moment: a tmpfs even in the
/// bare update environment.
pub const RUN_DIR: &str = "/run/system-update";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// `snapshot = btrfs` was asked for and cannot be honoured.
    #[error("snapshot = btrfs in the configuration, but {0}; nothing was changed. Set snapshot = \"auto\" or \"none\" to update without a snapshot")]
    Unsupported(String),
    #[error("snapshot: {0}")]
    Btrfs(#[from] btrfs::Error),
}

/// Which provider to use (`snapshot =` in system-update.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotChoice {
    /// btrfs when the root is a btrfs subvolume that can be rolled back,
    /// else none.
    #[default]
    Auto,
    Btrfs,
    None,
}

/// What the result record says about snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapshotRecord {
    /// `btrfs` or `none`.
    pub provider: String,
    /// The pre-update snapshot, relative to the filesystem's top level.
    pub name: Option<String>,
    pub rolled_back: bool,
    /// Where the failed state is kept, relative to the top level.
    pub failed_state: Option<String>,
    /// Why there is no snapshot, or why the rollback did not happen.
    pub note: Option<String>,
}

impl SnapshotRecord {
    /// A record of `provider` with nothing taken or rolled back yet.
    pub fn new(provider: &str) -> SnapshotRecord {
        SnapshotRecord {
            provider: provider.into(),
            name: None,
            rolled_back: false,
            failed_state: None,
            note: None,
        }
    }
}

/// The provider chosen for this root.
#[derive(Debug)]
pub enum Provider {
    None { why: String },
    Btrfs(layout::Layout),
}

/// Chooses the provider for `root`. Fails only when `btrfs` was asked for
/// explicitly and is not possible.
pub fn select(root: &Root, choice: SnapshotChoice) -> Result<Provider, SnapshotError> {
    if choice == SnapshotChoice::None {
        return Ok(Provider::None {
            why: "snapshot = \"none\" in the configuration".into(),
        });
    }
    let cmdline = if root.is_live() {
        std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
    } else {
        String::new()
    };
    match layout::inspect(root.dir(), &cmdline)? {
        Ok(l) => Ok(Provider::Btrfs(l)),
        Err(layout::Unsupported(why)) if choice == SnapshotChoice::Btrfs => {
            Err(SnapshotError::Unsupported(why))
        }
        Err(layout::Unsupported(why)) => Ok(Provider::None { why }),
    }
}

/// A root put back to its pre-update state; the caller records the outcome
/// in `root` before `finish`.
pub struct Restored {
    inner: rollback::Restored,
}

impl Restored {
    /// The restored root, where the next boot will be.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn failed_state(&self) -> &Path {
        &self.inner.failed
    }

    /// Flushes everything written into the restored root and unmounts.
    pub fn finish(self) -> Result<(), SnapshotError> {
        Ok(self.inner.finish()?)
    }
}

impl Provider {
    /// Takes the pre-update snapshot of update `id`.
    pub fn take(&self, id: &str) -> Result<SnapshotRecord, SnapshotError> {
        match self {
            Provider::None { why } => Ok(SnapshotRecord {
                note: Some(format!("no snapshot: {why}")),
                ..SnapshotRecord::new("none")
            }),
            Provider::Btrfs(l) => {
                let name = rollback::take(l, id, Path::new(RUN_DIR))?;
                Ok(SnapshotRecord {
                    name: Some(name.display().to_string()),
                    ..SnapshotRecord::new("btrfs")
                })
            }
        }
    }

    /// Whether a snapshot of update `id` exists to roll back to.
    pub fn can_roll_back(&self, id: &str) -> bool {
        match self {
            Provider::None { .. } => false,
            Provider::Btrfs(l) => {
                let top = match rollback::TopLevel::mount(&l.device, Path::new(RUN_DIR)) {
                    Ok(t) => t,
                    Err(_) => return false,
                };
                let snap = top
                    .path()
                    .join(l.parent())
                    .join(rollback::before_name(l, id));
                btrfs::is_subvolume(&snap).unwrap_or(false)
            }
        }
    }

    /// Puts the pre-update state of update `id` back for the next boot.
    pub fn roll_back(&self, id: &str) -> Result<Restored, SnapshotError> {
        match self {
            Provider::None { why } => Err(SnapshotError::Unsupported(why.clone())),
            Provider::Btrfs(l) => Ok(Restored {
                inner: rollback::roll_back(l, id, Path::new(RUN_DIR))?,
            }),
        }
    }

    /// Deletes all but the newest `keep_before` pre-update snapshots and
    /// `keep_failed` failed states.
    pub fn prune(
        &self,
        keep_before: usize,
        keep_failed: usize,
    ) -> Result<Vec<PathBuf>, SnapshotError> {
        match self {
            Provider::None { .. } => Ok(Vec::new()),
            Provider::Btrfs(l) => {
                Ok(
                    rollback::prune(l, Path::new(RUN_DIR), keep_before, keep_failed)?
                        .into_iter()
                        .map(|n| l.parent().join(n))
                        .collect(),
                )
            }
        }
    }
}
