//! The snapshot point before the transaction and the rollback after a
//! failure: step 6 of systemd.offline-updates(7), "create a file system
//! snapshot, then install all packages … on failure revert to the old file
//! system snapshot".
//!
//! Providers: `btrfs`, through the kernel's ioctls (no btrfs program needed
//! at boot); `snapper`, a pre/post pair in snapper's history when snapper is
//! configured for `/`, rolled back by the same mechanism; and `none`, which
//! records why no snapshot was possible. The mechanism and its reasons are
//! in system-update(8), SNAPSHOTS AND ROLLBACK.

pub mod btrfs;
pub mod layout;
pub mod rollback;
pub mod snapper;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::Root;

/// Where the top-level subvolume is mounted for a moment: a tmpfs even in the
/// bare update environment.
pub const RUN_DIR: &str = "/run/system-update";

/// A btrfs, snapper or rollback error as the update reports it.
fn failed(e: impl Into<anyhow::Error>) -> anyhow::Error {
    e.into().context("snapshot")
}

/// Nothing to roll back to, and why.
fn no_snapshot(why: &str) -> anyhow::Error {
    anyhow::anyhow!("no snapshot: {why}")
}

/// Which provider to use (`snapshot =` in system-update.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotChoice {
    /// When the root is a btrfs subvolume that can be rolled back: snapper
    /// if it is configured for `/`, else btrfs. Otherwise none.
    #[default]
    Auto,
    Btrfs,
    Snapper,
    None,
}

/// What the result record says about snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// snake_case like every key of the JSON we write; records written with
// kebab-case keys before the JSON format was settled still read.
#[serde(rename_all = "snake_case")]
pub struct SnapshotRecord {
    /// `btrfs`, `snapper` or `none`.
    pub provider: String,
    /// The pre-update snapshot, relative to the filesystem's top level.
    pub name: Option<String>,
    /// snapper's numbers for the pre and post snapshots.
    #[serde(alias = "snapper-pre")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapper_pre: Option<u64>,
    #[serde(alias = "snapper-post")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapper_post: Option<u64>,
    #[serde(alias = "rolled-back")]
    pub rolled_back: bool,
    /// Where the failed state is kept, relative to the top level.
    #[serde(alias = "failed-state")]
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
            snapper_pre: None,
            snapper_post: None,
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
    Snapper(layout::Layout, snapper::Snapper),
}

/// Chooses the provider for `root`. Fails only when `btrfs` or `snapper`
/// was asked for explicitly and is not possible.
pub fn select(root: &Root, choice: SnapshotChoice) -> anyhow::Result<Provider> {
    let unsupported = |choice: &str, why: String| {
        anyhow::anyhow!("snapshot = {choice} in the configuration, but {why}; nothing was changed. Set snapshot = \"auto\" or \"none\" to update without it")
    };
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
    let l = match (
        layout::inspect(root.dir(), &cmdline).map_err(failed)?,
        choice,
    ) {
        (Ok(l), _) => l,
        (Err(layout::Unsupported(why)), SnapshotChoice::Btrfs) => {
            return Err(unsupported("btrfs", why))
        }
        (Err(layout::Unsupported(why)), SnapshotChoice::Snapper) => {
            return Err(unsupported("snapper", why))
        }
        (Err(layout::Unsupported(why)), _) => return Ok(Provider::None { why }),
    };
    if choice == SnapshotChoice::Btrfs {
        return Ok(Provider::Btrfs(l));
    }
    match (snapper::Snapper::find(root.dir(), root.is_live()), choice) {
        (Ok(Some(s)), _) => Ok(Provider::Snapper(l, s)),
        (Ok(None), SnapshotChoice::Snapper) => Err(unsupported(
            "snapper",
            "snapper has no configuration for / (snapper -c root create-config /)".into(),
        )),
        (Err(e), SnapshotChoice::Snapper) => Err(unsupported("snapper", e.to_string())),
        (Ok(None), _) => Ok(Provider::Btrfs(l)),
        (Err(e), _) if e.is::<snapper::NotInstalled>() => Ok(Provider::Btrfs(l)),
        (Err(e), _) => {
            // A native snapshot is as safe; only snapper's history misses it.
            tracing::warn!("snapper unusable, taking a btrfs snapshot instead: {e}");
            Ok(Provider::Btrfs(l))
        }
    }
}

/// Where snapper's snapshot `number` is, relative to the top level (its
/// `.snapshots` may be nested in the root or mounted from elsewhere).
fn snapper_subvolume(
    l: &layout::Layout,
    s: &snapper::Snapper,
    number: u64,
) -> anyhow::Result<PathBuf> {
    let id = btrfs::subvolume_id(&s.snapshot_dir(number)).map_err(failed)?;
    btrfs::subvolume_path(&l.root, id).map_err(failed)
}

/// A root put back to its pre-update state; the caller records the outcome
/// in `root` before `finish`.
pub struct Restored {
    inner: rollback::Restored,
    source: PathBuf,
}

impl Restored {
    /// The snapshot the root was restored from, relative to the top level.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The restored root, where the next boot will be.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn failed_state(&self) -> &Path {
        &self.inner.failed
    }

    /// The failed state as mounted now: the running root's files, whatever
    /// path the running root has.
    pub fn failed_root(&self) -> PathBuf {
        self.inner.failed_root()
    }

    /// Deletes the kept failed state (its blocks come free in the
    /// background).
    pub fn drop_failed(&self) -> anyhow::Result<()> {
        self.inner.drop_failed().map_err(failed)
    }

    /// Flushes everything written into the restored root and unmounts.
    pub fn finish(self) -> anyhow::Result<()> {
        self.inner.finish().map_err(failed)
    }
}

impl Provider {
    /// The provider's name in the result record.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::None { .. } => "none",
            Provider::Btrfs(_) => "btrfs",
            Provider::Snapper(..) => "snapper",
        }
    }

    /// Takes the pre-update snapshot of update `id`. A second attempt at the
    /// same update keeps the first attempt's: by then the root may be
    /// half-updated.
    pub fn take(&self, id: &str) -> anyhow::Result<SnapshotRecord> {
        match self {
            Provider::None { why } => Ok(SnapshotRecord {
                note: Some(format!("no snapshot: {why}")),
                ..SnapshotRecord::new("none")
            }),
            Provider::Btrfs(l) => {
                let name = rollback::take(l, id, Path::new(RUN_DIR)).map_err(failed)?;
                Ok(SnapshotRecord {
                    name: Some(name.display().to_string()),
                    ..SnapshotRecord::new("btrfs")
                })
            }
            Provider::Snapper(l, s) => {
                let pre = match s.pair_of(id).map_err(failed)?.0 {
                    Some(n) => {
                        tracing::info!("keeping snapper's snapshot {n} of an earlier attempt");
                        n
                    }
                    None => s.create_pre(id).map_err(failed)?,
                };
                let name = snapper_subvolume(l, s, pre)?;
                Ok(SnapshotRecord {
                    name: Some(name.display().to_string()),
                    snapper_pre: Some(pre),
                    ..SnapshotRecord::new("snapper")
                })
            }
        }
    }

    /// Closes snapper's pre/post pair for update `id` once the transaction
    /// is over, whatever its outcome: `snapper status PRE..POST` then shows
    /// what the update changed, a failed one included. Returns the post
    /// snapshot's number; nothing for the other providers.
    pub fn close(&self, id: &str, outcome: &str) -> anyhow::Result<Option<u64>> {
        let Provider::Snapper(_, s) = self else {
            return Ok(None);
        };
        match s.pair_of(id).map_err(failed)? {
            (None, _) => Ok(None),
            (Some(_), Some(post)) => Ok(Some(post)),
            (Some(pre), None) => Ok(Some(s.create_post(pre, id, outcome).map_err(failed)?)),
        }
    }

    /// The snapshot of update `id` to roll back to, relative to the top
    /// level, if there is one.
    fn source(&self, id: &str) -> anyhow::Result<PathBuf> {
        match self {
            Provider::None { why } => Err(no_snapshot(why)),
            Provider::Btrfs(l) => Ok(l.parent().join(rollback::before_name(l, id))),
            Provider::Snapper(l, s) => {
                let pre = s.pair_of(id).map_err(failed)?.0.ok_or_else(|| {
                    no_snapshot(&format!("snapper has no pre snapshot of update {id}"))
                })?;
                snapper_subvolume(l, s, pre)
            }
        }
    }

    fn layout(&self) -> Option<&layout::Layout> {
        match self {
            Provider::None { .. } => None,
            Provider::Btrfs(l) | Provider::Snapper(l, _) => Some(l),
        }
    }

    /// Whether a snapshot of update `id` exists to roll back to.
    pub fn can_roll_back(&self, id: &str) -> bool {
        let (Some(l), Ok(source)) = (self.layout(), self.source(id)) else {
            return false;
        };
        match rollback::TopLevel::mount(&l.device, Path::new(RUN_DIR)) {
            Ok(top) => btrfs::is_subvolume(&top.path().join(source)).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Puts the pre-update state of update `id` back for the next boot.
    /// On a full disk `room` gives back reserved space, a part per call,
    /// and says whether it could.
    pub fn roll_back(&self, id: &str, room: &mut dyn FnMut() -> bool) -> anyhow::Result<Restored> {
        let source = self.source(id)?;
        let Some(l) = self.layout() else {
            return Err(no_snapshot("no provider"));
        };
        Ok(Restored {
            inner: rollback::roll_back(l, id, &source, Path::new(RUN_DIR), room).map_err(failed)?,
            source,
        })
    }

    /// Deletes all but the newest `keep_before` pre-update snapshots (for
    /// snapper: pre/post pairs of ours) and `keep_failed` failed states.
    pub fn prune(&self, keep_before: usize, keep_failed: usize) -> anyhow::Result<Vec<PathBuf>> {
        let Some(l) = self.layout() else {
            return Ok(Vec::new());
        };
        // Native snapshots left from an earlier configuration count too.
        let mut deleted: Vec<PathBuf> =
            rollback::prune(l, Path::new(RUN_DIR), keep_before, keep_failed)
                .map_err(failed)?
                .into_iter()
                .map(|n| l.parent().join(n))
                .collect();
        if let Provider::Snapper(_, s) = self {
            let gone = snapper::excess(&s.ours().map_err(failed)?, keep_before);
            s.delete(&gone).map_err(failed)?;
            deleted.extend(
                gone.iter()
                    .map(|n| PathBuf::from(format!("snapper {} #{n}", s.config))),
            );
        }
        Ok(deleted)
    }
}
