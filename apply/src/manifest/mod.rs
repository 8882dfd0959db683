//! The manifest: what is prepared in the update directory, and its
//! verification before anything is changed.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths;

/// 2: what is local to one machine (after-action, package database
/// fingerprint) moved out to `local.json`, so that a signed manifest is
/// never rewritten. 3: the plan of an update resolved from the
/// repositories (`plan`, `resolved-by`); schema 2 is still read. 4: a
/// payload file's `signature = "required"`, which an older version must
/// refuse rather than ignore. `prepare` writes the lowest schema that says
/// what the manifest holds ([`schema_for`]), so an update without required
/// signatures (one that may bring a newer system-update) is still read by
/// the versions that read schema 3.
pub const SCHEMA: u32 = 4;
/// The oldest schema this version reads.
pub const SCHEMA_MIN: u32 = 2;

mod load;

pub use crate::backend::BackendKind;
pub use crate::digest::{hex_digest, sha256_file, sha256_reader, Hashing};
pub use crate::payload::{PackageSignature, PayloadFile};
pub use load::{load, Loaded};

/// The lowest schema that holds `files`: 4 only when one requires a
/// package signature (see [`SCHEMA`]).
pub fn schema_for(files: &[PayloadFile]) -> u32 {
    if files.iter().any(|f| f.signature.is_some()) {
        4
    } else {
        3
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    pub schema: u32,
    pub id: String,
    pub title: String,
    pub backend: BackendKind,
    pub created: String,
    /// For the command backend: argv; a first element without a slash names
    /// a payload file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub files: Vec<PayloadFile>,
    /// For an update resolved from the repositories: every install, upgrade
    /// and removal, replayed exactly at boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<crate::backend::Planned>,
    /// What resolved the plan and checked the repositories' signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{0}: no update is prepared; prepare one first (system-update prepare)")]
    Missing(PathBuf),
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// Not a regular file, too large, or not owned and moded as it must be.
    #[error("{0}")]
    Untrusted(crate::untrusted::UntrustedError),
    #[error("{path}: invalid manifest: {message}; prepare the update again")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: manifest schema {found} is not supported (this version reads schemas {SCHEMA_MIN} to {SCHEMA}); prepare the update again with this version")]
    UnknownSchema { path: PathBuf, found: String },
    #[error(
        "{path}: payload name {name:?} is outside the update directory; prepare the update again"
    )]
    OutsideDir { path: PathBuf, name: String },
    #[error(transparent)]
    Signature(#[from] crate::signature::SignatureError),
    #[error("{path}: cannot read payload file: {source}; prepare the update again")]
    PayloadRead { path: PathBuf, source: io::Error },
    #[error("{path}: checksum mismatch (expected sha256 {expected}, found {found}); the payload is corrupted, prepare the update again")]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// Longest update id: it becomes part of file and subvolume names.
pub const ID_MAX: usize = 64;

/// An id that is safe as a file name everywhere it is used: 1 to ID_MAX
/// bytes of [A-Za-z0-9._-], not starting with `.` or `-` (no `..`, no
/// hidden file, no option).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_MAX
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Manifest {
    /// What the update brings, as its backend reads it.
    pub fn payload(&self) -> crate::backend::Payload<'_> {
        crate::backend::Payload {
            id: &self.id,
            files: &self.files,
            plan: &self.plan,
            command: self.command.as_deref(),
        }
    }

    pub fn path(update_dir_host: &Path) -> PathBuf {
        update_dir_host.join(paths::MANIFEST_NAME)
    }

    /// Reads and checks the manifest's structure (not the payload nor the
    /// signature: [`load`] does that).
    pub fn load(update_dir_host: &Path) -> Result<Manifest, ManifestError> {
        let (text, path) = Self::read_text(update_dir_host)?;
        Self::parse(&text, &path)
    }

    /// The manifest's text and path, read once: what is verified is what
    /// is parsed.
    pub fn read_text(update_dir_host: &Path) -> Result<(String, PathBuf), ManifestError> {
        let path = Self::path(update_dir_host);
        match crate::untrusted::read_text(&path, crate::untrusted::MANIFEST_MAX, true) {
            Ok(t) => Ok((t, path)),
            Err(e) if e.is_not_found() => Err(ManifestError::Missing(path)),
            Err(e) => Err(ManifestError::Untrusted(e)),
        }
    }

    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let invalid = |message: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // The schema decides how to read the rest, so look at it first.
        let table: toml::Table =
            toml::from_str(text).map_err(|e| invalid(e.message().trim().into()))?;
        match table.get("schema") {
            Some(toml::Value::Integer(n))
                if (i64::from(SCHEMA_MIN)..=i64::from(SCHEMA)).contains(n) => {}
            Some(v) => {
                return Err(ManifestError::UnknownSchema {
                    path: path.to_path_buf(),
                    found: v.to_string(),
                })
            }
            None => return Err(invalid("no schema key".into())),
        }
        let m: Manifest = toml::from_str(text).map_err(|e| invalid(e.message().trim().into()))?;
        // The id names the log file, snapshots and snapper's userdata.
        if !valid_id(&m.id) {
            return Err(invalid(format!(
                "id {:?} is not 1 to {ID_MAX} of A-Z a-z 0-9 . _ - (not starting with . or -)",
                m.id
            )));
        }
        for f in &m.files {
            if !paths::is_plain_name(&f.name) {
                return Err(ManifestError::OutsideDir {
                    path: path.to_path_buf(),
                    name: f.name.clone(),
                });
            }
        }
        match (m.backend.takes_command(), &m.command) {
            (true, None) => {
                return Err(invalid(format!(
                    "backend {:?} needs a command",
                    m.backend.name()
                )))
            }
            (true, Some(argv)) if argv.is_empty() => {
                return Err(invalid("command is empty".into()))
            }
            (false, Some(_)) => {
                return Err(invalid(format!(
                    "backend {:?} takes payload files, not a command",
                    m.backend.name()
                )))
            }
            (false, None) if m.files.is_empty() && m.plan.is_empty() => {
                return Err(invalid(format!(
                    "backend {:?} needs payload files",
                    m.backend.name()
                )))
            }
            _ => {}
        }
        if let Some(argv) = &m.command {
            let prog = &argv[0];
            if !prog.starts_with('/') && !m.files.iter().any(|f| &f.name == prog) {
                return Err(ManifestError::OutsideDir {
                    path: path.to_path_buf(),
                    name: prog.clone(),
                });
            }
        }
        Ok(m)
    }

    pub fn to_toml(&self) -> String {
        // Serializing plain strings, integers and arrays cannot fail.
        toml::to_string(self).unwrap_or_default()
    }

    /// The payload files whose package signature this manifest requires,
    /// each with its path from `all` (name, path: every payload file).
    pub fn required_signatures(&self, all: &[(String, PathBuf)]) -> Vec<(String, PathBuf)> {
        self.files
            .iter()
            .filter(|f| f.signature == Some(PackageSignature::Required))
            .filter_map(|f| all.iter().find(|(n, _)| *n == f.name).cloned())
            .collect()
    }

    /// Checks the package signatures this manifest requires on the files
    /// in `dir`, against the keys `root` has now.
    pub fn check_package_signatures(
        &self,
        root: &paths::Root,
        dir: &Path,
    ) -> Result<(), crate::backend::BackendError> {
        let all: Vec<(String, PathBuf)> = self
            .files
            .iter()
            .map(|f| (f.name.clone(), dir.join(&f.name)))
            .collect();
        self.backend
            .verify_signatures(root, &self.required_signatures(&all), &all)
    }

    /// Checks every payload file against its recorded checksum.
    pub fn verify_payload(&self, update_dir_host: &Path) -> Result<(), ManifestError> {
        self.open_verified(update_dir_host).map(drop)
    }

    /// Opens every payload file once, checks it (regular, owner and mode)
    /// and its checksum through that descriptor, and keeps it open: the
    /// backend is handed these very files (VerifiedFile::path), so a file
    /// renamed or replaced after the check is not what runs.
    pub fn open_verified(
        &self,
        update_dir_host: &Path,
    ) -> Result<Vec<VerifiedFile>, ManifestError> {
        let mut out = Vec::with_capacity(self.files.len());
        for f in &self.files {
            let path = update_dir_host.join(&f.name);
            let read_err = |source| ManifestError::PayloadRead {
                path: path.clone(),
                source,
            };
            let (mut file, _) =
                crate::untrusted::open_regular(&path, true).map_err(|e| match e {
                    crate::untrusted::UntrustedError::Io { source, .. } => read_err(source),
                    other => ManifestError::Untrusted(other),
                })?;
            let found = sha256_reader(&mut file).map_err(read_err)?;
            if !found.eq_ignore_ascii_case(&f.sha256) {
                return Err(ManifestError::Checksum {
                    path,
                    expected: f.sha256.clone(),
                    found,
                });
            }
            out.push(VerifiedFile::keep(f.name.clone(), file).map_err(read_err)?);
        }
        Ok(out)
    }
}

/// A payload file checked and held open for the backend.
#[derive(Debug)]
pub struct VerifiedFile {
    pub name: String,
    fd: std::os::fd::OwnedFd,
}

impl VerifiedFile {
    /// Moves the descriptor to 10 or above (clear of the descriptors a
    /// backend's child is given: 0-2 and the progress pipe on 3) and lets
    /// children inherit it, so /proc/self/fd/N names it in them too.
    fn keep(name: String, file: File) -> io::Result<VerifiedFile> {
        use std::os::fd::FromRawFd;
        let raw =
            nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD(10)).map_err(io::Error::from)?;
        // SAFETY: F_DUPFD returned a new descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        drop(file);
        Ok(VerifiedFile { name, fd })
    }

    /// The path the backend opens: this process's (and, inherited, its
    /// children's) descriptor of the verified file.
    pub fn path(&self) -> PathBuf {
        use std::os::fd::AsRawFd;
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            schema: SCHEMA,
            id: "x".into(),
            title: "t".into(),
            backend: BackendKind::from_name("dpkg").unwrap(),
            created: "2025-01-01T00:00:00Z".into(),
            command: None,
            files: vec![PayloadFile {
                name: "a.deb".into(),
                sha256: "00".into(),
                package: Some("a".into()),
                version: Some("1".into()),
                installed_size: Some(12),
                signature: None,
            }],
            plan: Vec::new(),
            resolved_by: None,
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_toml(), Path::new("m")).unwrap(), m);
    }

    #[test]
    fn unknown_schema() {
        let t = sample().to_toml().replace(
            &format!("schema = {SCHEMA}"),
            &format!("schema = {}", SCHEMA + 1),
        );
        assert!(matches!(
            Manifest::parse(&t, Path::new("m")),
            Err(ManifestError::UnknownSchema { .. })
        ));
    }

    #[test]
    fn schema_1_asks_to_prepare_again() {
        // Schema 1 carried after-action and db-fingerprint in the manifest.
        let t = sample().to_toml().replace(
            &format!("schema = {SCHEMA}\n"),
            "schema = 1\nafter-action = \"reboot\"\ndb-fingerprint = \"sha256:00\"\n",
        );
        let e = Manifest::parse(&t, Path::new("m")).unwrap_err();
        assert!(matches!(e, ManifestError::UnknownSchema { .. }), "{e}");
        assert!(e.to_string().contains("prepare the update again"), "{e}");
    }

    #[test]
    fn a_required_signature_needs_schema_4_and_old_manifests_still_read() {
        let mut m = sample();
        m.schema = schema_for(&m.files);
        assert_eq!(m.schema, 3, "nothing required: readable by older versions");
        let old = m.to_toml();
        assert!(!old.contains("signature"), "{old}");
        assert_eq!(Manifest::parse(&old, Path::new("m")).unwrap(), m);
        m.files[0].signature = Some(PackageSignature::Required);
        m.schema = schema_for(&m.files);
        assert_eq!(m.schema, 4);
        let new = m.to_toml();
        assert!(new.contains("signature = \"required\""), "{new}");
        assert_eq!(Manifest::parse(&new, Path::new("m")).unwrap(), m);
        let unknown = new.replace("\"required\"", "\"optional\"");
        assert!(Manifest::parse(&unknown, Path::new("m")).is_err());
    }

    #[test]
    fn name_outside_dir() {
        let t = sample()
            .to_toml()
            .replace("\"a.deb\"", "\"../../etc/passwd\"");
        assert!(matches!(
            Manifest::parse(&t, Path::new("m")),
            Err(ManifestError::OutsideDir { .. })
        ));
    }

    #[test]
    fn sha256_known() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn id_must_be_a_plain_name() {
        for bad in [
            "../../../../../tmp/escaped",
            "a/b",
            "",
            ".hidden",
            "-rf",
            "with space",
            "tab\tid",
            "ünïcode",
            &"x".repeat(ID_MAX + 1),
        ] {
            let t = sample()
                .to_toml()
                .replace("id = \"x\"", &format!("id = {bad:?}"));
            let e = Manifest::parse(&t, Path::new("m")).unwrap_err().to_string();
            assert!(e.contains("is not 1 to 64"), "{bad:?}: {e}");
        }
        for good in [
            "20261123T233136Z-1795",
            "a",
            "v1.2_3-x",
            &"x".repeat(ID_MAX),
        ] {
            let t = sample()
                .to_toml()
                .replace("id = \"x\"", &format!("id = {good:?}"));
            assert!(Manifest::parse(&t, Path::new("m")).is_ok(), "{good:?}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn payload() -> impl Strategy<Value = PayloadFile> {
        (
            "[a-zA-Z0-9][a-zA-Z0-9._+-]{0,20}",
            "[0-9a-f]{64}",
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
            proptest::option::of(0u64..(1 << 40)),
            any::<bool>(),
        )
            .prop_map(
                |(name, sha256, package, version, installed_size, required)| PayloadFile {
                    name,
                    sha256,
                    package,
                    version,
                    installed_size,
                    signature: required.then_some(PackageSignature::Required),
                },
            )
    }

    fn manifest() -> impl Strategy<Value = Manifest> {
        (
            "[A-Za-z0-9_][A-Za-z0-9._-]{0,63}",
            any::<String>(),
            proptest::collection::vec(payload(), 1..5),
            proptest::option::of(proptest::collection::vec(any::<String>(), 0..3)),
            any::<bool>(),
        )
            .prop_map(|(id, title, mut files, args, command)| {
                files.dedup_by(|a, b| a.name == b.name);
                let (backend, command) = if command {
                    let mut argv = vec![files[0].name.clone()];
                    argv.extend(args.unwrap_or_default());
                    (
                        crate::backend::BackendKind::from_name("command").unwrap(),
                        Some(argv),
                    )
                } else {
                    (
                        crate::backend::BackendKind::from_name("dpkg").unwrap(),
                        None,
                    )
                };
                Manifest {
                    schema: SCHEMA,
                    id,
                    title,
                    backend,
                    created: "2026-11-23T00:00:00Z".into(),
                    command,
                    files,
                    plan: Vec::new(),
                    resolved_by: None,
                }
            })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in any::<String>()) {
            let _ = Manifest::parse(&text, Path::new("m"));
        }

        #[test]
        fn what_prepare_writes_reads_back(m in manifest()) {
            prop_assert_eq!(Manifest::parse(&m.to_toml(), Path::new("m")).unwrap(), m);
        }

        #[test]
        fn a_parsed_manifest_names_only_plain_files(m in manifest(), name in any::<String>()) {
            let mut m = m;
            m.files[0].name = name.clone();
            if m.backend.takes_command() {
                m.command = Some(vec!["/bin/true".into()]);
            }
            if let Ok(back) = Manifest::parse(&m.to_toml(), Path::new("m")) {
                for f in &back.files {
                    prop_assert!(paths::is_plain_name(&f.name), "{:?}", f.name);
                }
                prop_assert!(valid_id(&back.id));
            }
        }
    }
}
