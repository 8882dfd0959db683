//! The backend seam: everything a package manager knows lives behind
//! [`Kind`] (what it accepts, its database, fingerprint, preflight, repair)
//! and [`Backend`] (one transaction with progress). The core names no
//! package manager; [`KINDS`] is the one place that lists them.

pub mod command;
pub mod dpkg;
pub mod pacman;
pub mod process;
pub mod rpm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use system_update_events::{Event, PackageChange};

use crate::manifest::Manifest;
use crate::paths::Root;
use process::Limits;

/// The factory: every backend this program knows, by its manifest name.
/// Adding a backend adds its module above and one line here.
pub static KINDS: &[&dyn Kind] = &[&dpkg::KIND, &command::KIND, &rpm::KIND, &pacman::KIND];

/// Where a backend's events and output lines go (UI, journal, log file,
/// result record).
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
    /// The preflight found that the transaction cannot install on this
    /// root; the text names the package and what is missing.
    #[error("{0}; nothing was changed")]
    WouldFail(String),
    /// The program wrote nothing for the stall timeout and was killed.
    #[error("{program} wrote nothing for {}, the stall timeout, and was killed with its processes (raise stall-timeout in /etc/system-update.toml if the update legitimately works that long in silence)", process::human(*.limit))]
    Stalled {
        program: String,
        limit: std::time::Duration,
    },
}

/// What a payload file says of itself, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    pub package: String,
    pub version: String,
    /// Installed size in KiB, when the package declares it.
    pub installed_size: Option<u64>,
}

/// What the core hands a backend for one transaction.
pub struct Transaction<'a> {
    pub root: &'a Root,
    /// The update directory, as a path on the host.
    pub update_dir: &'a Path,
    pub manifest: &'a Manifest,
    /// This attempt's number, 1-based.
    pub attempt: u32,
    pub limits: Limits,
    /// Arguments for the backend's program (the demo's, for an unprivileged
    /// scratch root); each backend decides what they mean.
    pub extra_args: &'a [String],
}

/// What the core tells the admin about the repair at the attempt limit.
pub struct Repair {
    /// Said when the repair worked: what it did.
    pub done: &'static str,
    /// Said when it could not run or failed: what to check and run.
    pub by_hand: &'static str,
}

/// A package manager as the core knows it, before any transaction.
pub trait Kind: Sync {
    /// The name in the manifest and on the command line.
    fn name(&self) -> &'static str;
    /// The payload it takes, for messages: "a .deb package".
    fn payload(&self) -> &'static str;
    /// Whether `file` is one of its packages, from its name (`prepare`
    /// guesses the backend with this; `--backend` overrides).
    fn accepts(&self, file: &Path) -> bool;
    /// Whether the update is a program to run (`--command`) rather than
    /// payload files.
    fn takes_command(&self) -> bool {
        false
    }
    /// Name, version and installed size of a payload file.
    fn inspect(&self, file: &Path) -> Result<PackageInfo, BackendError>;
    /// Its state directories inside the root (its database and what must
    /// stay in step with it): never an update directory, and on the root's
    /// subvolume so that a rollback takes them along.
    fn state_dirs(&self) -> &'static [&'static str] {
        &[]
    }
    /// A fingerprint of the package database on `root`; `None` for a
    /// backend without one (then nothing is ever stale).
    fn fingerprint(&self, root: &Root) -> Result<Option<String>, BackendError>;
    /// Why a plan is stale, naming what changed.
    fn stale_message(&self, root: &Root) -> String {
        format!(
            "the {} package database on {} changed since the update was prepared (packages were installed or removed meanwhile)",
            self.name(),
            root.dir().display()
        )
    }
    /// Installed package versions on `root` (for `status`); empty for a
    /// backend that does not manage packages.
    fn installed(&self, root: &Root) -> Result<HashMap<String, String>, BackendError>;
    /// Whether these payload files can install on `root`, checked with the
    /// package manager's own dry run; nothing is changed.
    fn preflight(&self, _root: &Root, _files: &[PathBuf]) -> Result<(), BackendError> {
        Ok(())
    }
    /// What the repair at the attempt limit does and what to do by hand.
    fn repair(&self) -> Repair;
    /// Opens one transaction.
    fn open(&self, t: Transaction<'_>) -> Result<Box<dyn Backend>, BackendError>;
}

/// One transaction of a package manager.
pub trait Backend {
    /// Brings an interrupted transaction to a consistent state.
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError>;
    /// Installs the payload.
    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError>;
    /// Packages touched, with versions before and after, read once the
    /// program ended (the core sends them on as events).
    fn changes(&self) -> Vec<PackageChange>;
    /// Takes the payload from these paths (name in the manifest, path)
    /// instead of the update directory: the files verified and held open,
    /// so what was checked is what runs.
    fn use_verified(&mut self, files: &[(String, PathBuf)]);
    /// Disk space the install needs, in bytes; 0 when the backend cannot
    /// tell.
    fn required_bytes(&self) -> u64 {
        0
    }
}

/// Bytes the payload needs installed, from the packages' installed sizes
/// (KiB): package managers unpack the new files beside the old ones before
/// they remove them, so the whole new size, not the difference.
pub fn installed_bytes(files: &[crate::manifest::PayloadFile]) -> u64 {
    files
        .iter()
        .filter_map(|f| f.installed_size)
        .fold(0u64, |sum, kib| {
            sum.saturating_add(kib.saturating_mul(1024))
        })
}

/// Each named package's version before and after.
pub fn changes_of(
    names: &[String],
    before: &HashMap<String, String>,
    after: &HashMap<String, String>,
) -> Vec<PackageChange> {
    names
        .iter()
        .map(|n| PackageChange {
            name: n.clone(),
            before: before.get(n).cloned(),
            after: after.get(n).cloned(),
        })
        .collect()
}

/// Points each payload path at the verified file of the same name.
pub fn take_verified(paths: &mut [PathBuf], verified: &[(String, PathBuf)]) {
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some((_, v)) = verified.iter().find(|(n, _)| Some(n) == name.as_ref()) {
            *p = v.clone();
        }
    }
}

/// How the program ended, as the transaction's result: the errors it
/// reported (a failed package script even when it exited 0), else its
/// exit status.
pub fn ended(program: &str, ended: process::Ended, errors: &[String]) -> Result<(), BackendError> {
    let status = match ended {
        process::Ended::Exited(s) => s,
        process::Ended::Stalled(limit) => {
            return Err(BackendError::Stalled {
                program: program.into(),
                limit,
            })
        }
    };
    if status.success() && errors.is_empty() {
        return Ok(());
    }
    if !errors.is_empty() {
        return Err(BackendError::Failed(errors.join("; ")));
    }
    Err(BackendError::Failed(match status.code() {
        Some(c) => format!("{program} exited with status {c}"),
        None => format!("{program} was killed by a signal"),
    }))
}

/// A backend chosen by name: only names in [`KINDS`] exist.
#[derive(Clone, Copy)]
pub struct BackendKind(&'static dyn Kind);

impl BackendKind {
    pub fn from_name(name: &str) -> Option<BackendKind> {
        KINDS
            .iter()
            .find(|k| k.name() == name)
            .map(|k| BackendKind(*k))
    }

    /// The backend that runs a program of the update's own.
    pub fn command() -> BackendKind {
        BackendKind(&command::KIND)
    }

    pub fn kind(self) -> &'static dyn Kind {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The backend whose packages `files` are; refuses a mix and a file no
    /// backend takes.
    pub fn guess(files: &[PathBuf]) -> Result<BackendKind, GuessError> {
        let mut found: Option<(BackendKind, &PathBuf)> = None;
        for f in files {
            let Some(k) = KINDS.iter().find(|k| k.accepts(f)) else {
                return Err(GuessError::Unknown(f.clone()));
            };
            match found {
                None => found = Some((BackendKind(*k), f)),
                Some((b, first)) if b.name() != k.name() => {
                    return Err(GuessError::Mixed {
                        first: first.clone(),
                        first_backend: b.name(),
                        other: f.clone(),
                        other_backend: k.name(),
                    })
                }
                Some(_) => {}
            }
        }
        found.map(|(b, _)| b).ok_or(GuessError::Nothing)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuessError {
    #[error("nothing to prepare: give package files, or --command PROGRAM")]
    Nothing,
    #[error("{0}: cannot deduce the backend from this file's name; give --backend ({names})", names = names().join(", "))]
    Unknown(PathBuf),
    #[error("{first} is for {first_backend} and {other} for {other_backend}: one update uses one package manager; prepare them separately")]
    Mixed {
        first: PathBuf,
        first_backend: &'static str,
        other: PathBuf,
        other_backend: &'static str,
    },
}

/// The names of all backends, for help, completions and errors.
pub fn names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.name()).collect()
}

/// Every backend's state directories: no update directory may overlap one,
/// and each must roll back with the root.
pub fn state_dirs() -> impl Iterator<Item = &'static str> {
    KINDS.iter().flat_map(|k| k.state_dirs().iter().copied())
}

/// `--backend`'s parser: the names in [`KINDS`], listed in `--help` and
/// the completions.
pub fn value_parser() -> impl clap::builder::TypedValueParser<Value = BackendKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names())
        .try_map(|s| BackendKind::from_name(&s).ok_or("unknown backend"))
}

impl std::ops::Deref for BackendKind {
    type Target = dyn Kind;
    fn deref(&self) -> &(dyn Kind + 'static) {
        self.0
    }
}

impl PartialEq for BackendKind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}
impl Eq for BackendKind {}

impl std::fmt::Debug for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendKind({})", self.name())
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for BackendKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for BackendKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BackendKind::from_name(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown backend {s:?} (this version knows {})",
                names().join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let n = names();
        for (i, a) in n.iter().enumerate() {
            assert!(!n[i + 1..].contains(a), "{a} twice in KINDS");
            assert_eq!(BackendKind::from_name(a).map(|k| k.name()), Some(*a));
        }
        assert!(BackendKind::from_name("apt-get").is_none());
    }

    #[test]
    fn the_backend_is_guessed_from_the_files_and_a_mix_refused() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            BackendKind::guess(&[p("a.deb"), p("b.deb")])
                .unwrap()
                .name(),
            "dpkg"
        );
        assert!(matches!(
            BackendKind::guess(&[p("a.tar")]),
            Err(GuessError::Unknown(_))
        ));
        assert!(matches!(BackendKind::guess(&[]), Err(GuessError::Nothing)));
    }
}
