//! The pacman backend: `pacman -U` into the root, every directory given
//! explicitly so that nothing of the host's pacman is used for a root that
//! is not the running system.
//!
//! pacman records a package before its install script runs and exits 0 when
//! that script fails ("command failed to execute correctly"): here that
//! fails the update, as dpkg's failing postinst does. A pacman killed
//! mid-transaction leaves its lock, `db.lck`; nothing else runs in the
//! update environment, so the retry and the repair at the limit remove it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{self, Limits, Line};
use super::said;
use super::{
    Action, Backend, BackendError, Event, Kind, PackageChange, PackageInfo, Planned, Repair,
    Request, Resolved, Sink, Transaction,
};
use crate::paths::Root;
use system_update_events::{m_, Msg};

mod progress;
mod query;
#[cfg(test)]
mod tests;

use progress::Progress;
use query::*;

// What pacman's repair says, translated by its id.
const STALE_LOCK: Msg = m_("Removed the stale lock of the interrupted update (db.lck)");
const UNFINISHED: Msg = m_("Removed the unfinished database entry {}");
const AGAIN: Msg = m_("Installing again what the interrupted update left unrecorded");

/// Install scripts expect the sbin directories whoever runs us.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const DBPATH: &str = "/var/lib/pacman";
const CONFIG: &str = "/etc/pacman.conf";
const GPGDIR: &str = "/etc/pacman.d/gnupg";

/// For a root without a pacman.conf of its own: the defaults, which accept
/// unsigned local files (the update's own signature and checksums were
/// checked before pacman runs).
const MINIMAL_CONFIG: &str = "[options]\nArchitecture = auto\n";

pub struct PacmanKind;
pub static KIND: PacmanKind = PacmanKind;

impl Kind for PacmanKind {
    fn name(&self) -> &'static str {
        "pacman"
    }

    fn payload(&self) -> &'static str {
        "a .pkg.tar.* package"
    }

    fn accepts(&self, file: &Path) -> bool {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        name.is_some_and(|n| n.contains(".pkg.tar") && !n.ends_with(".sig"))
    }

    fn inspect(&self, file: &Path) -> Result<PackageInfo, BackendError> {
        let mut c = Command::new("bsdtar");
        c.arg("-xOf").arg(file).arg(".PKGINFO");
        super::read_package(c, file, "pacman", parse_pkginfo)
    }

    fn architectures(&self, root: &Root) -> Result<Option<Vec<String>>, BackendError> {
        architectures(root).map(Some)
    }

    fn state_dirs(&self) -> &'static [&'static str] {
        &[DBPATH]
    }

    /// The local database's entries (NAME-VERSION-REL), which change with
    /// every install, upgrade and removal.
    fn fingerprint(&self, root: &Root) -> Result<Option<String>, BackendError> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for e in local_entries(root)? {
            h.update(e.as_bytes());
            h.update(b"\n");
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(format!("pacman-sha256:{hex}")))
    }

    fn stale_message(&self, root: &Root) -> String {
        format!(
            "the pacman database in {} changed since the update was prepared (packages were installed or removed meanwhile)",
            root.host(&dbpath(root).unwrap_or_else(|_| DBPATH.into()))
                .display()
        )
    }

    fn boot_files(&self, root: &Root, changes: &[PackageChange]) -> Option<String> {
        super::first_boot_file(changes, |c| {
            let entry = format!("{}-{}", c.name, c.after.as_ref()?);
            let files = dbpath(root).ok()?.join("local").join(entry).join("files");
            // %FILES% lists paths relative to the root; %BACKUP% follows.
            let lines = super::read_file_list(root, &files)?;
            Some(
                lines
                    .into_iter()
                    .skip_while(|l| l != "%FILES%")
                    .skip(1)
                    .take_while(|l| !l.is_empty())
                    .map(|l| format!("/{l}"))
                    .collect::<Vec<_>>(),
            )
        })
    }

    fn installed(&self, root: &Root) -> Result<HashMap<String, String>, BackendError> {
        installed_versions(root)
    }

    fn preflight(
        &self,
        root: &Root,
        files: &[PathBuf],
        _removals: &[String],
    ) -> Result<(), BackendError> {
        let mut p = pacman(root)?;
        p.cmd
            .args(["-U", "--print", "--print-format", "%n %v"])
            .args(files);
        let out = p.cmd.output().map_err(|source| BackendError::Spawn {
            program: "pacman".into(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        let problems: Vec<&str> = text
            .lines()
            .map(|l| l.trim().trim_start_matches(":: "))
            .filter(|l| !l.is_empty() && *l != "loading packages...")
            .collect();
        Err(BackendError::cannot_install(
            "pacman --print",
            root,
            &problems.join("; "),
        ))
    }

    fn companions(&self, file: &Path) -> Vec<PathBuf> {
        let sig = super::pacmankeys::sig_of(file);
        if sig.is_file() {
            vec![sig]
        } else {
            Vec::new()
        }
    }

    fn check_signatures(
        &self,
        root: &Root,
        files: &[PathBuf],
        from_repositories: bool,
    ) -> Result<Vec<bool>, BackendError> {
        let level = super::pacmankeys::level(&config_text(root)?, from_repositories);
        super::pacmankeys::check(&root.host(&gpgdir(root)?), level, files)
    }

    fn verify_signatures(
        &self,
        root: &Root,
        required: &[(String, PathBuf)],
        verified: &[(String, PathBuf)],
    ) -> Result<(), BackendError> {
        if required.is_empty() {
            return Ok(());
        }
        super::pacmankeys::verify(&root.host(&gpgdir(root)?), required, verified)
    }

    fn manages(&self, root: &Root) -> bool {
        self.check_database(root).is_ok()
    }

    fn check_database(&self, root: &Root) -> Result<(), BackendError> {
        let local = root.host(&dbpath(root)?.join("local"));
        if local.is_dir() {
            return Ok(());
        }
        Err(BackendError::Failed(format!(
            "{}: no pacman database here (the DBPath of the root's pacman.conf, else {DBPATH}); nothing was prepared: give the root whose database it is",
            local.display()
        )))
    }

    /// pacman -Sy (the repositories' databases, checked as the root's
    /// pacman.conf SigLevel says), the plan from -S --print, the packages
    /// downloaded with -Sw into `dest`. Replayed at boot as -U of exactly
    /// those files.
    fn resolve(
        &self,
        root: &Root,
        request: &Request,
        dest: &Path,
    ) -> Result<Resolved, BackendError> {
        super::only_full_upgrade(
            request,
            "pacman",
            "pacman -Su does both when dependencies and replaces say so",
        )?;
        let mut p = pacman(root)?;
        p.cmd.args(["--noconfirm", "--noprogressbar", "-Sy"]);
        output(p, "-Sy")?;
        let op = |p: &mut Pacman| match request {
            // `safe` was refused above.
            Request::Upgrade { .. } => {
                p.cmd.arg("-Su");
            }
            Request::Install(pkgs) => {
                p.cmd.arg("-S").args(pkgs);
            }
        };
        let mut p = pacman(root)?;
        p.cmd.args(["--print", "--print-format", "%n %v"]);
        op(&mut p);
        let text = output(p, "--print")?;
        let installed = installed_versions(root)?;
        let plan: Vec<Planned> = text
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(n, v)| !n.is_empty() && !v.contains(' '))
            .map(|(n, v)| Planned {
                name: n.to_string(),
                action: if installed.contains_key(n) {
                    Action::Upgrade
                } else {
                    Action::Install
                },
                from: installed.get(n).cloned(),
                to: Some(v.trim().to_string()),
            })
            .collect();
        if plan.is_empty() {
            return Ok(Resolved {
                plan,
                files: Vec::new(),
                checked_by: String::new(),
            });
        }
        let mut p = pacman_with(root, Some(dest))?;
        p.cmd.args(["--noconfirm", "--noprogressbar", "-w"]);
        op(&mut p);
        output(p, "-Sw")?;
        let files = super::downloaded(dest, self)?;
        Ok(Resolved {
            plan,
            files,
            checked_by: "pacman (the repositories' databases and packages, as the root's pacman.conf SigLevel requires)".into(),
        })
    }

    fn repair(&self) -> Repair {
        Repair {
            done: "pacman has no way to finish an interrupted transaction: its stale lock (db.lck) and unfinished database entries were removed and a package left unrecorded installed again; install scripts that were cut short did not run again, so reinstall the update's packages (pacman -U)",
            by_hand: "remove /var/lib/pacman/db.lck if no pacman runs, check the system (pacman -Qkk) and reinstall the update's packages (pacman -U)",
        }
    }

    fn open(&self, t: Transaction<'_>) -> Result<Box<dyn Backend>, BackendError> {
        let files = t.payload.files;
        Ok(Box::new(PacmanBackend {
            root: t.root.clone(),
            payload: files
                .iter()
                .map(|f| (f.name.clone(), t.update_dir.join(&f.name)))
                .collect(),
            names: files.iter().filter_map(|f| f.package.clone()).collect(),
            extra_args: t.extra_args.to_vec(),
            limits: t.limits,
            before: super::before(&t, installed_versions(t.root)?),
            required: super::installed_bytes(files),
            packages: super::package_indexes(files),
            verified: false,
            unrecorded: Vec::new(),
        }))
    }
}

pub struct PacmanBackend {
    root: Root,
    /// Every payload file, detached signatures included: (name in the
    /// manifest, path).
    payload: Vec<(String, PathBuf)>,
    names: Vec<String>,
    extra_args: Vec<String>,
    limits: Limits,
    before: HashMap<String, String>,
    required: u64,
    /// Each payload package's name and its index in `files`.
    packages: Vec<(String, usize)>,
    /// `files` are the verified descriptors (use_verified).
    verified: bool,
    /// The update's packages with no database entry after a cut (recover):
    /// their files may be on disk, owned by no entry.
    unrecorded: Vec<String>,
}

impl PacmanBackend {
    fn remove_stale_lock(&self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        // Resolved inside the root: never through a link to the host's.
        let inside = dbpath(&self.root)?.join("db.lck");
        let lock = self.root.host(&inside);
        let read_err = |source| BackendError::Read {
            path: lock.clone(),
            source,
        };
        let (dir, name) = crate::rooted::split(&inside).map_err(read_err)?;
        let dir = match crate::rooted::open_dir(&self.root, dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other.map_err(read_err)?,
        };
        match dir.lstat(name) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            other => other.map_err(read_err)?,
        };
        dir.remove(name).map_err(read_err)?;
        sink.event(Event::message(STALE_LOCK.text()));
        tracing::info!("{}: stale lock removed", lock.display());
        Ok(())
    }

    /// A cut while pacman wrote or removed an entry of the local database
    /// leaves its directory without `desc` or `files`: pacman cannot use it
    /// (pacman -Dk: "description file is missing", "file list is missing")
    /// and never removes it, not even when the retry installs the package
    /// again. Such entries of the update's packages go, so the database
    /// lists only what pacman can act on (found by the crash campaign,
    /// issue 24). Returns the packages whose entry went.
    fn remove_unfinished_entries(&self, sink: &mut dyn Sink) -> Result<Vec<String>, BackendError> {
        let mut removed = Vec::new();
        for entry in local_entries(&self.root)? {
            let Some((n, _)) = split_entry(&entry) else {
                continue;
            };
            if !self.names.iter().any(|x| x == n) {
                continue;
            }
            let local = dbpath(&self.root)?.join("local");
            let read_err = |source| BackendError::Read {
                path: self.root.host(&local.join(&entry)),
                source,
            };
            let dir = crate::rooted::open_dir(&self.root, &local.join(&entry)).map_err(read_err)?;
            let missing = |f: &str| {
                dir.lstat(f.as_ref())
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            };
            if missing("desc") || missing("files") {
                remove_entry(&self.root, &local, &entry).map_err(read_err)?;
                sink.event(Event::message(UNFINISHED.with(&[&entry])));
                removed.push(n.to_string());
            }
        }
        tracing::debug!("unfinished entries removed: {removed:?}");
        Ok(removed)
    }

    /// At the limit only what evidently was installed before the cut (its
    /// unfinished entry was there, files it brings are on disk, or it was
    /// installed before the first transaction: a cut between removing its
    /// old files and extracting the new leaves no other trace) is installed
    /// again: a package new to the system that the cut attempt never
    /// reached stays as it was. Returns indexes into the payload.
    fn to_install_again(&self, removed: &[String]) -> Result<Vec<usize>, BackendError> {
        let mut again = Vec::new();
        for (n, i) in &self.packages {
            let Some((_, file)) = self.payload.get(*i) else {
                continue;
            };
            if !self.unrecorded.contains(n) {
                continue;
            }
            let on_disk = || -> Result<bool, BackendError> {
                Ok(self.paths_in(file)?.iter().any(|p| {
                    std::fs::symlink_metadata(self.root.host(&Path::new("/").join(p))).is_ok()
                }))
            };
            if removed.contains(n) || self.before.contains_key(n) || on_disk()? {
                again.push(*i);
            }
        }
        Ok(again)
    }

    fn run(
        &self,
        cmd: Command,
        mut progress: Progress,
        names: &[(String, String)],
        sink: &mut dyn Sink,
    ) -> Result<(), BackendError> {
        let ended = process::run(cmd, self.limits, &mut |line| {
            let l = match line {
                Line::Output(l) | Line::Progress(l) => super::unname(&l, names),
            };
            for e in progress.feed(&l) {
                sink.event(e);
            }
            sink.output(&l);
        })
        .map_err(|source| BackendError::Spawn {
            program: "pacman".into(),
            source,
        })?;
        super::ended("pacman", ended, &progress.errors)
    }
}

impl Backend for PacmanBackend {
    /// A pacman killed mid-transaction leaves its lock; at boot, with our
    /// own lock held, no other pacman runs, so the lock is stale.
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        self.remove_stale_lock(sink)?;
        let removed = self.remove_unfinished_entries(sink)?;
        // A package left with no entry at all (the old one removed, the new
        // one cut while written, or the old one gone completely before the
        // cut: pacman removes it, extracts the new files, then writes the
        // new entry) is installed again from the update's checked file, as
        // dpkg's repair unpacks a package again. Any of the update's
        // packages with no entry after a cut is one of these or one new to
        // the system, and for both the files the update brings may be
        // overwritten (pacman checked conflicts before it extracted
        // anything). Without the checked files (a retry, which installs
        // everything next) this is left to the install.
        let now = installed_versions(&self.root)?;
        self.unrecorded = self
            .names
            .iter()
            .filter(|n| !now.contains_key(*n))
            .cloned()
            .collect();
        if !self.verified {
            return Ok(());
        }
        let again = self.to_install_again(&removed)?;
        if again.is_empty() {
            return Ok(());
        }
        sink.event(Event::message(AGAIN.text()));
        self.upgrade(Some(&again), sink)
    }

    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        self.upgrade(None, sink)
    }

    fn changes(&self) -> Vec<PackageChange> {
        let after = installed_versions(&self.root).unwrap_or_default();
        super::changes_of(&self.names, &self.before, &after)
    }

    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        for (name, path) in &mut self.payload {
            if let Some((_, v)) = files.iter().find(|(n, _)| n == name) {
                *path = v.clone();
            }
        }
        self.verified = true;
    }

    fn required_bytes(&self) -> u64 {
        self.required
    }
}

impl PacmanBackend {
    fn unrecorded_files(&self) -> Vec<PathBuf> {
        self.packages
            .iter()
            .filter(|(n, _)| self.unrecorded.contains(n))
            .filter_map(|(_, i)| self.payload.get(*i).map(|(_, p)| p.clone()))
            .collect()
    }

    /// The files (not directories) a package file installs, as paths
    /// relative to the root: what `--overwrite` matches.
    fn paths_in(&self, file: &Path) -> Result<Vec<String>, BackendError> {
        let mut p = pacman(&self.root)?;
        p.cmd.arg("-Qlpq").arg(file);
        let text = output(p, "-Qlp")?;
        let prefix = self
            .root
            .dir()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        Ok(text
            .lines()
            .filter(|l| !l.ends_with('/'))
            .map(|l| l.strip_prefix(prefix.as_str()).unwrap_or(l))
            .map(|l| l.trim_start_matches('/').to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// `pacman -U` of the payload's packages (`only`: of these indexes of
    /// the payload), through links named as the files to the verified
    /// descriptors: pacman -U looks for FILE.sig beside FILE and checks it
    /// as the root's LocalFileSigLevel says. The files of packages whose
    /// entry a cut lost are on disk, owned by nobody, and would conflict:
    /// exactly those paths may be overwritten, nothing else.
    fn upgrade(&self, only: Option<&[usize]>, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let links = super::Links::new("pacman", &self.payload)?;
        let packages: Vec<&PathBuf> = links
            .files
            .iter()
            .enumerate()
            .filter(|(i, f)| KIND.accepts(f) && only.is_none_or(|o| o.contains(i)))
            .map(|(_, f)| f)
            .collect();
        let total = u32::try_from(packages.len()).unwrap_or(u32::MAX);
        sink.event(Event::message(said::INSTALLING.with(&[&total, &"pacman"])));
        let mut overwrite = Vec::new();
        for f in self.unrecorded_files() {
            overwrite.extend(self.paths_in(&f)?);
        }
        let mut p = pacman(&self.root)?;
        p.cmd
            .args(["--noconfirm", "--noprogressbar"])
            .args(&self.extra_args);
        for path in overwrite {
            p.cmd.arg("--overwrite").arg(glob_escape(&path));
        }
        p.cmd.arg("-U").args(&packages);
        // What pacman says names the files, not our links.
        let names: Vec<(String, String)> = links
            .files
            .iter()
            .zip(&self.payload)
            .map(|(l, (n, _))| (l.to_string_lossy().into_owned(), n.clone()))
            .collect();
        self.run(p.cmd, Progress::new(total), &names, sink)
    }
}

/// A path as a glob that matches only itself (pacman's --overwrite takes
/// fnmatch globs).
fn glob_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes the database entry `entry` (its files, then itself) from the
/// directory `local`, resolved inside the root.
fn remove_entry(root: &Root, local: &Path, entry: &str) -> std::io::Result<()> {
    let d = crate::rooted::open_dir(root, &local.join(entry))?;
    for name in d.names()? {
        d.remove(&name)?;
    }
    crate::rooted::open_dir(root, local)?.remove_dir(entry.as_ref())?;
    Ok(())
}
