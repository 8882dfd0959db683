//! `cleanup`: prunes pre-update snapshots and failed states.
//!
//! After a normal boot (system-update-cleanup-snapshots.service, `--boot`)
//! it keeps the newest `keep-snapshots` snapshots and `keep-failed` failed
//! states; run by hand it removes every failed state, the admin having
//! looked at them.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::paths::{self, Root};
use crate::rooted;
use crate::snapshot::{self, Provider, SnapshotChoice};

/// Tells the cleanup after the next normal boot that there are snapshots
/// to prune (system-update-cleanup-snapshots.service checks for the file).
pub fn mark_pending(root: &Root) {
    let inside = Path::new(paths::RESULTS_DIR).join(paths::CLEANUP_PENDING);
    if let Err(e) = rooted::write(root, &inside, b"", 0o644) {
        let path = root.host(&inside);
        tracing::warn!("{}: {e}", path.display());
    }
}

pub enum Cleaned {
    /// Snapshots are not possible on this root: why.
    Nothing(String),
    Removed(Vec<PathBuf>),
}

/// Nobody branches on why the cleanup failed: the message is the answer.
pub fn cleanup(root: &Root, config: &Config, boot: bool) -> anyhow::Result<Cleaned> {
    // Not while an update is prepared, triggered or applied.
    let _lock = crate::prepare::lock_root(root)?;
    if let Err(e) = crate::history::prune(root, config.keep_results) {
        tracing::warn!("history: {}", crate::oneline::of(e.as_ref()));
    }
    // Snapshots left from an earlier configuration are still ours to prune.
    let provider = snapshot::select(root, SnapshotChoice::Auto)?;
    let done = match &provider {
        Provider::None { why } => Cleaned::Nothing(why.clone()),
        Provider::Btrfs(_) | Provider::Snapper(..) => {
            let keep_failed = if boot { config.keep_failed } else { 0 };
            Cleaned::Removed(provider.prune(config.keep_snapshots, keep_failed)?)
        }
    };
    let inside = Path::new(paths::RESULTS_DIR).join(paths::CLEANUP_PENDING);
    if let Err(e) = rooted::remove(root, &inside) {
        let pending = root.host(&inside);
        tracing::warn!("{}: {e}", pending.display());
    }
    Ok(done)
}
