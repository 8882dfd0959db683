//! The backends by name: the handle the manifest and the command line hold.

use super::*;

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

    /// The backend whose database is on `root`, for `prepare --upgrade`.
    pub fn managing(root: &Root) -> Option<BackendKind> {
        KINDS
            .iter()
            .find(|k| k.manages(root))
            .map(|k| BackendKind(*k))
    }

    pub fn kind(self) -> &'static dyn Kind {
        self.0
    }

    /// Opens one transaction (this, not `Kind::open`, is what the core
    /// calls through `BackendKind`): whatever it says, in events, output
    /// lines and errors, names the payload files as the admin gave them,
    /// not the `/proc/self/fd/N` it runs them from.
    pub fn open(self, t: Transaction<'_>) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Named {
            inner: self.0.open(t)?,
            names: Vec::new(),
        }))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The backend whose packages `files` are; refuses a mix and a file no
    /// backend takes.
    pub fn guess(files: &[PathBuf]) -> anyhow::Result<BackendKind> {
        let mut found: Option<(BackendKind, &PathBuf)> = None;
        for f in files {
            let Some(k) = KINDS.iter().find(|k| k.accepts(f)) else {
                anyhow::bail!(
                    "{}: cannot deduce the backend from this file's name; give --backend ({})",
                    f.display(),
                    names().join(", ")
                );
            };
            match found {
                None => found = Some((BackendKind(*k), f)),
                Some((b, first)) if b.name() != k.name() => {
                    anyhow::bail!(
                        "{} is for {} and {} for {}: one update uses one package manager; prepare them separately",
                        first.display(),
                        b.name(),
                        f.display(),
                        k.name()
                    )
                }
                Some(_) => {}
            }
        }
        found.map(|(b, _)| b).ok_or_else(|| {
            anyhow::anyhow!("nothing to prepare: give package files, or --command PROGRAM")
        })
    }
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
