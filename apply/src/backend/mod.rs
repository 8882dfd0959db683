//! The backend seam: everything a package manager knows lives behind
//! [`Kind`] (what it accepts, its database, fingerprint, preflight, repair)
//! and [`Backend`] (one transaction with progress). The core names no
//! package manager; [`KINDS`] is the one place that lists them.

pub mod apt;
mod bootfiles;
pub mod command;
pub mod dpkg;
mod naming;
pub mod pacman;
pub mod pacmankeys;
pub mod process;
mod registry;
pub mod rpm;
pub mod rpmkeys;
mod said;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use crate::payload::{Action, Planned};
pub use bootfiles::*;
pub use naming::*;
pub use registry::*;
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

impl BackendError {
    /// A preflight's refusal: `check` (the package manager's dry run) says
    /// the update cannot install on `root`, because of `problems`.
    pub fn cannot_install(check: &str, root: &Root, problems: &str) -> BackendError {
        BackendError::WouldFail(format!(
            "{check}: this update cannot install on {}: {problems}",
            root.dir().display()
        ))
    }
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
    kib_total(files.iter().filter_map(|f| f.installed_size))
}

/// Bytes in all of `sizes`, each in KiB as the package formats give them;
/// an absurd size saturates instead of wrapping.
pub fn kib_total(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0u64, |sum, kib| {
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

#[cfg(test)]
mod tests;
