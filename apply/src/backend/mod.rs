//! The backend seam: everything a package manager knows lives behind
//! [`Kind`] (what it accepts, its database, fingerprint, preflight, repair)
//! and [`Backend`] (one transaction with progress). The core names no
//! package manager; [`KINDS`] is the one place that lists them.

pub mod apt;
pub mod command;
pub mod dpkg;
pub mod pacman;
pub mod pacmankeys;
pub mod process;
pub mod rpm;
pub mod rpmkeys;
mod said;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use crate::payload::{Action, Planned};
pub use system_update_events::{Event, PackageChange};

use crate::paths::Root;
use crate::payload::PayloadFile;
use crate::privdir::PrivateDir;
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
    /// The architecture it was built for, in its package manager's words.
    pub arch: Option<String>,
}

/// What `prepare --upgrade` or `--install` asks of the distribution's
/// resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// What the tool would upgrade; `safe` never removes nor installs new
    /// packages (apt's `upgrade` rather than `full-upgrade`).
    Upgrade { safe: bool },
    /// These packages and what they need.
    Install(Vec<String>),
}

/// A plan resolved from the repositories, its packages downloaded.
pub struct Resolved {
    pub plan: Vec<Planned>,
    pub files: Vec<PathBuf>,
    /// What checked the repositories, for the manifest.
    pub checked_by: String,
}

/// What an update brings, as a backend reads it from the manifest.
#[derive(Clone, Copy)]
pub struct Payload<'a> {
    pub id: &'a str,
    pub files: &'a [PayloadFile],
    pub plan: &'a [Planned],
    /// The program a command update runs.
    pub command: Option<&'a [String]>,
}

impl Payload<'_> {
    /// The packages the update installs, upgrades or removes, by name.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| f.package.clone())
            .collect();
        for p in self.plan {
            if !names.contains(&p.name) {
                names.push(p.name.clone());
            }
        }
        names
    }
}

/// What the core hands a backend for one transaction.
pub struct Transaction<'a> {
    pub root: &'a Root,
    /// The update directory, as a path on the host.
    pub update_dir: &'a Path,
    pub payload: Payload<'a>,
    /// This attempt's number, 1-based.
    pub attempt: u32,
    pub limits: Limits,
    /// Arguments for the backend's program (the demo's, for an unprivileged
    /// scratch root); each backend decides what they mean.
    pub extra_args: &'a [String],
    /// The update's packages' versions before its first transaction, when
    /// one ran ([`before`] prefers them to what a cut attempt left).
    pub first: Option<&'a BTreeMap<String, String>>,
}

/// The versions the record starts from: `now` (read as the transaction
/// opens), the update's packages as they were before its first
/// transaction when one ran.
pub fn before(t: &Transaction<'_>, mut now: HashMap<String, String>) -> HashMap<String, String> {
    if let Some(first) = t.first {
        for n in t.payload.names() {
            match first.get(&n) {
                Some(v) => now.insert(n, v.clone()),
                None => now.remove(&n),
            };
        }
    }
    now
}

/// The update's packages installed on `root` and their versions, as
/// [`Transaction::first`] keeps them.
pub fn versions_of(
    kind: BackendKind,
    payload: Payload<'_>,
    root: &Root,
) -> Result<BTreeMap<String, String>, BackendError> {
    let now = kind.installed(root)?;
    Ok(payload
        .names()
        .into_iter()
        .filter_map(|n| Some((n.clone(), now.get(&n)?.clone())))
        .collect())
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
    /// The architectures whose packages install on `root`, the package
    /// manager's word for "any" included; `None` when it does not tell.
    fn architectures(&self, _root: &Root) -> Result<Option<Vec<String>>, BackendError> {
        Ok(None)
    }
    /// Whether the root has this backend's package database where its
    /// package manager would look; the error names where that was.
    fn check_database(&self, _root: &Root) -> Result<(), BackendError> {
        Ok(())
    }
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
    /// Whether these payload files can install on `root`, with `removals`
    /// removed, checked with the package manager's own dry run; nothing is
    /// changed.
    fn preflight(
        &self,
        _root: &Root,
        _files: &[PathBuf],
        _removals: &[String],
    ) -> Result<(), BackendError> {
        Ok(())
    }
    /// Checks each payload file's own package signature against the keys
    /// `root` trusts, before anything is copied: `from_repositories` says
    /// the files were resolved and downloaded by [`Kind::resolve`]. Refuses
    /// a bad signature, and a missing or untrusted one where the root's
    /// policy requires one; says per file whether the boot must check it
    /// again ([`Kind::verify_signatures`]). A backend whose packages carry
    /// no signatures requires none.
    fn check_signatures(
        &self,
        _root: &Root,
        files: &[PathBuf],
        _from_repositories: bool,
    ) -> Result<Vec<bool>, BackendError> {
        Ok(vec![false; files.len()])
    }
    /// Files that travel with a payload file when they are beside it (a
    /// detached signature): copied into the update and checksummed as
    /// payload files of their own, no package of their own.
    fn companions(&self, _file: &Path) -> Vec<PathBuf> {
        Vec::new()
    }
    /// At boot, on the verified files (name in the manifest, descriptor
    /// path): each of `required` must carry a signature made by a key
    /// `root` trusts; `verified` is every payload file, companions
    /// included. Only files `check_signatures` required come here, so a
    /// backend that cannot check refuses them (fail closed).
    fn verify_signatures(
        &self,
        _root: &Root,
        required: &[(String, PathBuf)],
        _verified: &[(String, PathBuf)],
    ) -> Result<(), BackendError> {
        match required.first() {
            None => Ok(()),
            Some((name, _)) => Err(BackendError::Failed(format!(
                "{name}: the manifest requires its package signature, which the {} backend cannot check; nothing was installed: prepare the update again",
                self.name()
            ))),
        }
    }
    /// Whether `root` is managed by this package manager (its database is
    /// there): `prepare --upgrade` resolves with the first that is.
    fn manages(&self, _root: &Root) -> bool {
        false
    }
    /// Plans `request` with the distribution's resolver on `root`, the
    /// repositories' signatures checked by its tool, and downloads what
    /// is to be installed into `dest`.
    fn resolve(
        &self,
        _root: &Root,
        _request: &Request,
        _dest: &Path,
    ) -> Result<Resolved, BackendError> {
        Err(BackendError::Failed(format!(
            "the {} backend cannot prepare an update from repositories yet; give the package files",
            self.name()
        )))
    }
    /// Whether the transaction that made `changes` on `root` touched what
    /// a soft-reboot would not reload: the first package and file that did
    /// (kernel, modules, initrd, boot loader, firmware), or `None`. A
    /// backend that cannot list its packages' files says so, which counts
    /// as touched: the way out is then a full reboot.
    fn boot_files(&self, _root: &Root, _changes: &[PackageChange]) -> Option<String> {
        Some(format!(
            "the {} backend cannot tell which files it changed",
            self.name()
        ))
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

/// Each payload package's name and its index in the manifest's files
/// (detached signatures and programs have no package).
pub fn package_indexes(files: &[PayloadFile]) -> Vec<(String, usize)> {
    files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((f.package.clone()?, i)))
        .collect()
}

/// Bytes the payload needs installed, from the packages' installed sizes
/// (KiB): package managers unpack the new files beside the old ones before
/// they remove them, so the whole new size, not the difference.
pub fn installed_bytes(files: &[PayloadFile]) -> u64 {
    files
        .iter()
        .filter_map(|f| f.installed_size)
        .fold(0u64, |sum, kib| {
            sum.saturating_add(kib.saturating_mul(1024))
        })
}

/// Each named package's version before and after, and whether it is
/// installed now (for a database that records no other state).
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
            state: Some(presence(before.contains_key(n), after.contains_key(n)).into()),
        })
        .collect()
}

/// `installed`, `removed` or `not-installed`.
pub fn presence(before: bool, after: bool) -> &'static str {
    match (before, after) {
        (_, true) => "installed",
        (true, false) => "removed",
        (false, false) => "not-installed",
    }
}

/// A transaction whose messages name the payload files: the package
/// manager runs on verified descriptors (`/proc/self/fd/N`, or
/// `/proc/PID/fd/N` through [`Links`]) and says so in its output.
struct Named {
    inner: Box<dyn Backend>,
    /// (descriptor path, payload file name)
    names: Vec<(String, String)>,
}

impl Backend for Named {
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let result = self.inner.recover(&mut NamingSink {
            sink,
            names: &self.names,
        });
        result.map_err(|e| unname_error(e, &self.names))
    }

    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let result = self.inner.install(&mut NamingSink {
            sink,
            names: &self.names,
        });
        result.map_err(|e| unname_error(e, &self.names))
    }

    fn changes(&self) -> Vec<PackageChange> {
        self.inner.changes()
    }

    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        let pid = format!("/proc/{}/", std::process::id());
        for (name, path) in files {
            let path = path.to_string_lossy().into_owned();
            if let Some(rest) = path.strip_prefix("/proc/self/") {
                self.names.push((format!("{pid}{rest}"), name.clone()));
            }
            self.names.push((path, name.clone()));
        }
        self.inner.use_verified(files);
    }

    fn required_bytes(&self) -> u64 {
        self.inner.required_bytes()
    }
}

struct NamingSink<'a> {
    sink: &'a mut dyn Sink,
    names: &'a [(String, String)],
}

impl Sink for NamingSink<'_> {
    fn event(&mut self, event: Event) {
        let event = match event {
            Event::Message { .. } => Event::message(words(&event).map(|s| unname(s, self.names))),
            Event::Step { index, total, .. } => {
                Event::step(index, total, words(&event).map(|s| unname(s, self.names)))
            }
            Event::Log { line } => Event::Log {
                line: unname(&line, self.names),
            },
            e => e,
        };
        self.sink.event(event);
    }

    fn output(&mut self, line: &str) {
        self.sink.output(&unname(line, self.names));
    }
}

fn words(e: &Event) -> system_update_events::Text {
    e.words().unwrap_or_default()
}

fn unname_error(e: BackendError, names: &[(String, String)]) -> BackendError {
    match e {
        BackendError::Failed(t) => BackendError::Failed(unname(&t, names)),
        BackendError::WouldFail(t) => BackendError::WouldFail(unname(&t, names)),
        e => e,
    }
}

/// `text` with each descriptor path of `names` replaced by its file name;
/// `/proc/self/fd/1` never matches the start of `/proc/self/fd/12`.
pub fn unname(text: &str, names: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (path, name) in names {
        let mut from = 0;
        while let Some(at) = out[from..].find(path.as_str()).map(|i| i + from) {
            let end = at + path.len();
            if out[end..].starts_with(|c: char| c.is_ascii_digit()) {
                from = end;
                continue;
            }
            out.replace_range(at..end, name);
            from = at + name.len();
        }
    }
    out
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

/// A private directory of links NAME -> a file to install, for tools that
/// take files by name (dnf wants `*.rpm`, apt its archive names); removed
/// when dropped. A `/proc/self/fd/N` target becomes `/proc/PID/fd/N`, so
/// it leads to our verified descriptor even in a program that closed it.
pub struct Links {
    dir: PrivateDir,
    pub files: Vec<PathBuf>,
}

impl Links {
    pub fn new(tool: &str, files: &[(String, PathBuf)]) -> Result<Links, BackendError> {
        let mut links = Links {
            dir: private_dir(tool)?,
            files: Vec::new(),
        };
        let pid = format!("/proc/{}/", std::process::id());
        for (name, target) in files {
            let link = links.dir.path().join(name);
            let target = match target.to_str().and_then(|t| t.strip_prefix("/proc/self/")) {
                Some(rest) => PathBuf::from(format!("{pid}{rest}")),
                None => target.clone(),
            };
            std::os::unix::fs::symlink(&target, &link).map_err(|source| BackendError::Read {
                path: link.clone(),
                source,
            })?;
            links.files.push(link);
        }
        Ok(links)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// This machine's hardware name (`uname -m`: x86_64, aarch64), what
/// package managers call their native architecture when told `auto`.
pub fn machine() -> Result<String, BackendError> {
    let out = std::process::Command::new("uname")
        .arg("-m")
        .output()
        .map_err(|source| BackendError::Spawn {
            program: "uname".into(),
            source,
        })?;
    let m = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || m.is_empty() {
        return Err(BackendError::Failed(
            "uname -m did not name this machine's architecture".into(),
        ));
    }
    Ok(m)
}

/// Refuses `--upgrade safe` for a tool whose only upgrade may install and
/// remove packages (`how` says when), rather than run a full upgrade the
/// admin did not ask for.
pub fn only_full_upgrade(request: &Request, tool: &str, how: &str) -> Result<(), BackendError> {
    match request {
        Request::Upgrade { safe: true } => Err(BackendError::Failed(format!(
            "--upgrade safe: {tool} has no mode that upgrades without installing or removing packages ({how}); nothing was prepared: use --upgrade"
        ))),
        _ => Ok(()),
    }
}

/// A private temporary directory for a backend's program.
pub fn private_dir(name: &str) -> Result<PrivateDir, BackendError> {
    PrivateDir::new(name).map_err(|source| BackendError::Read {
        path: std::env::temp_dir(),
        source,
    })
}

/// The packages a download left in `dest` that this backend takes, sorted.
pub fn downloaded(dest: &Path, kind: &dyn Kind) -> Result<Vec<PathBuf>, BackendError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dest)
        .map_err(|source| BackendError::Read {
            path: dest.to_path_buf(),
            source,
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| kind.accepts(p))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs the program that reads a package file's fields and parses what it
/// printed; either failing says the file is not a valid `kind` package.
pub fn read_package(
    mut cmd: std::process::Command,
    file: &Path,
    kind: &str,
    parse: impl FnOnce(&str) -> Result<PackageInfo, String>,
) -> Result<PackageInfo, BackendError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd
        .output()
        .map_err(|source| BackendError::Spawn { program, source })?;
    let invalid = |why: String| {
        BackendError::Failed(format!(
            "{}: not a valid {kind} package ({why})",
            file.display()
        ))
    };
    if !out.status.success() {
        return Err(invalid(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    parse(&String::from_utf8_lossy(&out.stdout)).map_err(invalid)
}

/// For the parsers' property tests: progress in range and only growing,
/// steps within their total.
#[cfg(test)]
pub(crate) fn check_progress(events: &[Event], last: &mut f32) -> Result<(), String> {
    for e in events {
        match e {
            Event::Progress { percent } => {
                if !(0.0..=100.0).contains(percent) || *percent <= *last {
                    return Err(format!("progress {percent} after {last}"));
                }
                *last = *percent;
            }
            Event::Step { index, total, .. } if *index < 1 || index > total => {
                return Err(format!("step {index}/{total}"));
            }
            _ => {}
        }
    }
    Ok(())
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

/// Where what only a full reboot loads lives: the kernel and its modules,
/// the initrd and what builds it, boot loaders, firmware and microcode.
pub const BOOT_PATHS: [&str; 19] = [
    "/boot/",
    "/efi/",
    "/lib/modules/",
    "/usr/lib/modules/",
    "/lib/firmware/",
    "/usr/lib/firmware/",
    "/usr/lib/kernel/",
    "/etc/kernel/",
    "/usr/lib/grub/",
    "/usr/lib/shim/",
    "/usr/lib/systemd/boot/",
    "/etc/initramfs-tools/",
    "/usr/share/initramfs-tools/",
    "/etc/dracut.conf.d/",
    "/usr/lib/dracut/",
    "/etc/mkinitcpio.d/",
    "/usr/lib/initcpio/",
    "/etc/default/grub.d/",
    "/etc/default/grub",
];

/// Whether a file a package installs is one a soft-reboot would not load.
pub fn is_boot_path(path: &str) -> bool {
    BOOT_PATHS.iter().any(|p| match p.strip_suffix('/') {
        // Below the directory, not the directory itself: packages list the
        // directories their files are in.
        Some(_) => path.len() > p.len() && path.starts_with(p),
        None => path == *p,
    })
}

/// Names of packages that are the kernel, boot loader, initrd generator or
/// firmware whatever their file lists say (a removed package has none).
pub fn is_boot_package(name: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "linux-image",
        "linux-firmware",
        "kernel",
        "grub",
        "shim",
        "systemd-boot",
        "initramfs-tools",
        "dracut",
        "mkinitcpio",
        "firmware-",
    ];
    name == "linux"
        || name.starts_with("linux-lts")
        || name.starts_with("linux-zen")
        || name.ends_with("-microcode")
        || name.ends_with("-ucode")
        || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The boot-relevant reason among `changes`, given each changed package's
/// file list (`None`: the package is gone, so its name decides).
pub fn first_boot_file<F, I>(changes: &[PackageChange], mut files_of: F) -> Option<String>
where
    F: FnMut(&PackageChange) -> Option<I>,
    I: IntoIterator<Item = String>,
{
    for c in changes.iter().filter(|c| c.before != c.after) {
        if is_boot_package(&c.name) {
            return Some(format!(
                "{} is a kernel, boot loader or firmware package",
                c.name
            ));
        }
        match files_of(c) {
            Some(files) => {
                if let Some(path) = files.into_iter().find(|p| is_boot_path(p)) {
                    return Some(format!("{} installs {path}", c.name));
                }
            }
            // Fail closed: what cannot be read may be a kernel.
            None if c.after.is_some() => {
                return Some(format!("the file list of {} could not be read", c.name))
            }
            // Removed: its list is gone with it; the boot trees' comparison
            // (boottree) sees what it took away.
            None => {}
        }
    }
    None
}

/// A file list of at most `FILE_LIST_MAX` bytes, one path per line, read
/// as every untrusted file is (a regular file, never through a link); a
/// longer or unreadable one gives `None`, which first_boot_file counts as
/// touching boot.
pub const FILE_LIST_MAX: u64 = 32 << 20;

pub fn read_file_list(path: &Path) -> Option<Vec<String>> {
    crate::untrusted::read_text(path, FILE_LIST_MAX, false)
        .ok()
        .map(|text| text.lines().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {

    #[test]
    fn what_touches_boot() {
        for p in [
            "/boot/vmlinuz-6.1.0-30-amd64",
            "/usr/lib/modules/6.12.0/kernel/fs/btrfs/btrfs.ko.xz",
            "/lib/firmware/intel-ucode/06-8e-09",
            "/usr/share/initramfs-tools/hooks/cryptroot",
            "/etc/default/grub",
            "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        ] {
            assert!(is_boot_path(p), "{p}");
        }
        for p in [
            "/boot",
            "/usr/lib/modules",
            "/usr/bin/bootctl",
            "/etc/default/grubby",
            "/usr/share/doc/linux",
        ] {
            assert!(!is_boot_path(p), "{p}");
        }
        for n in [
            "linux-image-amd64",
            "linux",
            "kernel-core",
            "grub-efi-amd64",
            "intel-microcode",
            "firmware-linux-free",
            "dracut-core",
            "amd-ucode",
        ] {
            assert!(is_boot_package(n), "{n}");
        }
        for n in ["vmtest-hello", "libc6", "systemd", "nginx", "linuxlogo"] {
            assert!(!is_boot_package(n), "{n}");
        }
        let change = |name: &str, after: Option<&str>| PackageChange {
            name: name.into(),
            before: Some("1".into()),
            after: after.map(Into::into),
            state: None,
        };
        let lists = |c: &PackageChange| match c.name.as_str() {
            "vmtest-kernel" => Some(vec![
                "/.".to_string(),
                "/boot".into(),
                "/boot/vmtest-kernel".into(),
            ]),
            _ => Some(vec!["/usr/bin/hello".to_string()]),
        };
        assert_eq!(first_boot_file(&[change("hello", Some("2"))], lists), None);
        assert_eq!(
            first_boot_file(
                &[
                    change("hello", Some("2")),
                    change("vmtest-kernel", Some("2"))
                ],
                lists
            ),
            Some("vmtest-kernel installs /boot/vmtest-kernel".into())
        );
        // Unchanged packages do not count; a removed kernel does.
        assert_eq!(
            first_boot_file(&[change("vmtest-kernel", Some("1"))], lists),
            None
        );
        assert!(
            first_boot_file(&[change("linux-image-6.1.0-9-amd64", None)], |_| None::<
                Vec<String>,
            >)
            .is_some_and(|w| w.contains("kernel"))
        );
    }

    use super::*;

    #[test]
    fn descriptors_are_named_as_their_files() {
        let names = [
            ("/proc/self/fd/1".to_string(), "a_1_all.deb".to_string()),
            ("/proc/self/fd/12".to_string(), "b_2_all.deb".to_string()),
        ];
        assert_eq!(
            unname(
                "Preparing to unpack /proc/self/fd/12 ... /proc/self/fd/1: x /proc/self/fd/13",
                &names
            ),
            "Preparing to unpack b_2_all.deb ... a_1_all.deb: x /proc/self/fd/13"
        );
    }

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
