//! Package backends: they install the payload and translate their
//! program's machine-readable output into progress events.

pub mod command;
pub mod dpkg;
pub mod process;

use std::path::PathBuf;

use system_update_tui::Event;

use crate::result::PackageChange;

/// Where a backend's events and output lines go (UI, journal, log file).
pub trait Sink {
    fn event(&mut self, event: Event);
    /// One line of the program's output, kept in full in the log.
    fn output(&mut self, line: &str);
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The program ran and reported failure; the text is its own message.
    #[error("{0}")]
    Failed(String),
    /// The program wrote nothing for the stall timeout and was killed.
    #[error("{program} wrote nothing for {}, the stall timeout, and was killed with its processes (raise stall-timeout in /etc/system-update.toml if the update legitimately works that long in silence)", process::human(*.limit))]
    Stalled {
        program: String,
        limit: std::time::Duration,
    },
}

/// Installed package versions on `root` as the backend of `kind` knows
/// them, for `status` to show what a prepared update changes; empty for a
/// backend that does not manage packages.
pub fn installed_versions(
    root: &crate::paths::Root,
    kind: crate::manifest::BackendKind,
) -> Result<std::collections::HashMap<String, String>, BackendError> {
    match kind {
        crate::manifest::BackendKind::Dpkg => dpkg::installed_versions(root),
        crate::manifest::BackendKind::Command => Ok(Default::default()),
    }
}

pub trait Backend {
    /// A fingerprint of the package database, to tell whether it changed
    /// since the update was prepared; `None` when the backend has none.
    fn fingerprint(&self) -> Result<Option<String>, BackendError>;
    /// Brings an interrupted transaction to a consistent state.
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError>;
    /// Installs the payload.
    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError>;
    /// Packages touched, with versions before and after.
    fn changes(&self) -> Vec<PackageChange>;
    /// Takes the payload from these paths (name in the manifest, path)
    /// instead of the update directory: the files verified and held open,
    /// so what was checked is what runs.
    fn use_verified(&mut self, _files: &[(String, PathBuf)]) {}
    /// Disk space the install needs, in bytes; 0 when the backend cannot
    /// tell (the command backend).
    fn required_bytes(&self) -> Result<u64, BackendError> {
        Ok(0)
    }
}
