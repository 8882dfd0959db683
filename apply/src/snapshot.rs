//! The snapshot point before the transaction. No provider does anything yet;
//! a later change plugs in file-system snapshots (btrfs, LVM, ...).

use crate::paths::Root;

#[derive(Debug, thiserror::Error)]
// Only real providers (a later change) fail.
#[allow(dead_code)]
pub enum SnapshotError {
    #[error("snapshot failed: {0}")]
    Failed(String),
}

pub trait SnapshotProvider {
    /// Takes a snapshot of `root`; returns its name, if one was taken.
    fn snapshot(&self, root: &Root, id: &str) -> Result<Option<String>, SnapshotError>;
}

/// Takes no snapshot.
pub struct NoSnapshot;

impl SnapshotProvider for NoSnapshot {
    fn snapshot(&self, _root: &Root, _id: &str) -> Result<Option<String>, SnapshotError> {
        Ok(None)
    }
}
