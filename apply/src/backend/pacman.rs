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

/// Install scripts expect the sbin directories whoever runs us.
// What pacman's repair says, translated by its id.
const STALE_LOCK: Msg = m_("Removed the stale lock of the interrupted update (db.lck)");
const UNFINISHED: Msg = m_("Removed the unfinished database entry {}");
const AGAIN: Msg = m_("Installing again what the interrupted update left unrecorded");

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

/// "hello-2.0-1" (a directory in local/) -> ("hello", "2.0-1").
fn split_entry(entry: &str) -> Option<(&str, &str)> {
    let mut it = entry.rsplitn(3, '-');
    let rel = it.next()?;
    let ver = it.next()?;
    let name = it.next()?;
    if name.is_empty() || ver.is_empty() || rel.is_empty() {
        return None;
    }
    Some((name, &entry[name.len() + 1..]))
}

/// The database directory inside the root: the root's pacman.conf DBPath,
/// else pacman's default.
fn dbpath(root: &Root) -> Result<PathBuf, BackendError> {
    Ok(conf_values(&config_text(root)?, "DBPath")
        .pop()
        .map_or_else(|| PathBuf::from(DBPATH), PathBuf::from))
}

/// The keyring directory inside the root: the root's pacman.conf GPGDir,
/// else pacman's default.
fn gpgdir(root: &Root) -> Result<PathBuf, BackendError> {
    Ok(conf_values(&config_text(root)?, "GPGDir")
        .pop()
        .map_or_else(|| PathBuf::from(GPGDIR), PathBuf::from))
}

/// The local database's entries, sorted.
fn local_entries(root: &Root) -> Result<Vec<String>, BackendError> {
    let dir = root.host(&dbpath(root)?.join("local"));
    let rd = std::fs::read_dir(&dir).map_err(|source| BackendError::Read {
        path: dir.clone(),
        source,
    })?;
    let mut names: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_unstable();
    Ok(names)
}

pub fn installed_versions(root: &Root) -> Result<HashMap<String, String>, BackendError> {
    Ok(local_entries(root)?
        .iter()
        .filter_map(|e| split_entry(e))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// A package's .PKGINFO (`key = value` lines) to fields; size in bytes.
pub fn parse_pkginfo(text: &str) -> Result<PackageInfo, String> {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let (Some(package), Some(version)) = (
        field("pkgname").filter(|s| !s.is_empty()),
        field("pkgver").filter(|s| !s.is_empty()),
    ) else {
        return Err("no pkgname or pkgver in .PKGINFO".into());
    };
    let installed_size = match field("size") {
        None => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| format!("size {s:?} is not a number"))?
                .div_ceil(1024),
        ),
    };
    Ok(PackageInfo {
        package,
        version,
        installed_size,
        arch: field("arch").filter(|s| !s.is_empty()),
    })
}

/// The values of `key` in the `[options]` section of a pacman.conf, each
/// line's words (`Architecture = x86_64 x86_64_v3`) in order.
pub fn conf_values(text: &str, key: &str) -> Vec<String> {
    let mut section = "";
    let mut out = Vec::new();
    for l in text.lines().map(str::trim) {
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s;
            continue;
        }
        match l.split_once('=') {
            Some((k, v)) if section == "options" && k.trim() == key => {
                out.extend(v.split_whitespace().map(str::to_string));
            }
            _ => {}
        }
    }
    out
}

/// The root's own pacman.conf, never through a link that could lead out
/// of an image's root; `None` when it has none.
fn own_config(root: &Root) -> Option<PathBuf> {
    root.confined(Path::new(CONFIG))
        .ok()
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

/// The root's pacman.conf as text; empty when it has none (the defaults).
fn config_text(root: &Root) -> Result<String, BackendError> {
    match own_config(root) {
        Some(p) => {
            std::fs::read_to_string(&p).map_err(|source| BackendError::Read { path: p, source })
        }
        None => Ok(String::new()),
    }
}

/// What the root's pacman installs: its pacman.conf's Architecture (`auto`
/// or none: the machine's, as pacman says) and `any`.
fn architectures(root: &Root) -> Result<Vec<String>, BackendError> {
    let mut arches = vec!["any".to_string()];
    for a in conf_values(&config_text(root)?, "Architecture") {
        arches.push(if a == "auto" { super::machine()? } else { a });
    }
    if arches.len() == 1 {
        arches.push(super::machine()?);
    }
    Ok(arches)
}

/// pacman with every path inside the root; dropping it removes the
/// private directory of the minimal configuration, if one was written.
struct Pacman {
    cmd: Command,
    _config: Option<crate::privdir::PrivateDir>,
}

/// `cache`: where -Sw downloads to; else the root's own cache.
fn pacman_with(root: &Root, cache: Option<&Path>) -> Result<Pacman, BackendError> {
    let mut cmd = Command::new("pacman");
    let in_root = |p: &str| root.host(Path::new(p));
    let own = own_config(root);
    let mut temp = None;
    let config = match own {
        Some(own) => own,
        None => {
            let dir = super::private_dir("pacman")?;
            let p = dir.path().join("pacman.conf");
            std::fs::write(&p, MINIMAL_CONFIG).map_err(|source| BackendError::Read {
                path: p.clone(),
                source,
            })?;
            temp = Some(dir);
            p
        }
    };
    cmd.arg("--config").arg(config);
    if !root.is_live() {
        cmd.arg("--root")
            .arg(root.dir())
            .arg("--dbpath")
            .arg(root.host(&dbpath(root)?))
            .arg("--cachedir")
            .arg(cache.map_or_else(|| in_root("/var/cache/pacman/pkg"), Path::to_path_buf))
            .arg("--logfile")
            .arg(in_root("/var/log/pacman.log"))
            .arg("--gpgdir")
            .arg(root.host(&gpgdir(root)?))
            .arg("--hookdir")
            .arg(in_root("/etc/pacman.d/hooks"));
    }
    cmd.env("PATH", PATH).env("LC_ALL", "C");
    Ok(Pacman { cmd, _config: temp })
}

fn pacman(root: &Root) -> Result<Pacman, BackendError> {
    pacman_with(root, None)
}

/// Runs a prepared pacman; its output, or its error lines on failure.
fn output(mut p: Pacman, what: &str) -> Result<String, BackendError> {
    let out = p.cmd.output().map_err(|source| BackendError::Spawn {
        program: "pacman".into(),
        source,
    })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(text);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text
        .lines()
        .chain(err.lines())
        .map(|l| l.trim().trim_start_matches(":: "))
        .filter(|l| {
            l.starts_with("error: ") || l.starts_with("unable to") || l.contains("conflict")
        })
        .collect();
    Err(BackendError::Failed(format!(
        "pacman {what}: {}; nothing was prepared",
        if lines.is_empty() {
            err.trim().to_string()
        } else {
            lines.join("; ")
        }
    )))
}

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
            let files = root
                .confined(&dbpath(root).ok()?.join("local").join(entry).join("files"))
                .ok()?;
            // %FILES% lists paths relative to the root; %BACKUP% follows.
            let lines = super::read_file_list(&files)?;
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
        Err(BackendError::WouldFail(format!(
            "pacman --print: this update cannot install on {}: {}",
            root.dir().display(),
            problems.join("; ")
        )))
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
        // Never through a link in an image that could lead to the host's.
        let lock = self
            .root
            .confined(&dbpath(&self.root)?.join("db.lck"))
            .map_err(|source| BackendError::Read {
                path: self.root.host(Path::new(DBPATH)),
                source,
            })?;
        match std::fs::remove_file(&lock) {
            Ok(()) => {
                sink.event(Event::message(STALE_LOCK.text()));
                tracing::info!("{}: stale lock removed", lock.display());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(BackendError::Read { path: lock, source }),
        }
        // A cut while pacman wrote or removed an entry of the local
        // database leaves its directory without `desc` or `files`: pacman
        // cannot use it (pacman -Dk: "description file is missing", "file
        // list is missing") and never removes it, not even when the retry
        // installs the package again. Such entries of the update's
        // packages go, so the database lists only what pacman can act on
        // (found by the crash campaign, issue 24).
        let mut removed = Vec::new();
        for entry in local_entries(&self.root)? {
            let ours = split_entry(&entry).is_some_and(|(n, _)| self.names.iter().any(|x| x == n));
            if !ours {
                continue;
            }
            let rel = dbpath(&self.root)?.join("local").join(&entry);
            let dir = self
                .root
                .confined(&rel)
                .map_err(|source| BackendError::Read {
                    path: self.root.host(&rel),
                    source,
                })?;
            let missing = |f: &str| {
                std::fs::symlink_metadata(dir.join(f))
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
            };
            if missing("desc") || missing("files") {
                std::fs::remove_dir_all(&dir)
                    .map_err(|source| BackendError::Read { path: dir, source })?;
                sink.event(Event::message(UNFINISHED.with(&[&entry])));
                if let Some((n, _)) = split_entry(&entry) {
                    removed.push(n.to_string());
                }
            }
        }
        // A package left with no entry at all (the old one removed, the new
        // one cut while written) is installed again from the update's
        // checked file, as dpkg's repair unpacks a package again. Without
        // the checked files (a retry, which installs everything next) this
        // is left to the install.
        // Also a package whose old entry went completely before the cut:
        // pacman removes it, extracts the new files, then writes the new
        // entry. Any of the update's packages with no entry after a cut is
        // one of these or one new to the system, and for both the files
        // the update brings may be overwritten (pacman checked conflicts
        // before it extracted anything).
        let now = installed_versions(&self.root)?;
        tracing::debug!("unfinished entries removed: {removed:?}");
        self.unrecorded = self
            .names
            .iter()
            .filter(|n| !now.contains_key(*n))
            .cloned()
            .collect();
        if !self.verified {
            return Ok(());
        }
        // At the limit only what evidently was installed before the cut
        // (its unfinished entry was there, files it brings are on disk, or
        // it was installed before the first transaction: a cut between
        // removing its old files and extracting the new leaves no other
        // trace) is installed again: a package new to the system that the
        // cut attempt never reached stays as it was.
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

/// Turns pacman's `--noprogressbar` output into progress events: the
/// checks take the first 10 %, each package an equal share of the rest.
struct Progress {
    total: u32,
    step: u32,
    current: Option<String>,
    errors: Vec<String>,
    last: f32,
}

impl Progress {
    fn new(total: u32) -> Progress {
        Progress {
            total,
            step: 0,
            current: None,
            errors: Vec::new(),
            last: -1.0,
        }
    }

    fn percent(&mut self, p: f32) -> Option<Event> {
        let p = p.clamp(0.0, 100.0);
        (p > self.last).then(|| {
            self.last = p;
            Event::Progress { percent: p }
        })
    }

    fn feed(&mut self, line: &str) -> Vec<Event> {
        let mut ev = Vec::new();
        let l = line.trim();
        if let Some(e) = l.strip_prefix("error: ") {
            self.errors.push(match (&self.current, e) {
                (Some(pkg), "command failed to execute correctly") => {
                    format!("{pkg}: its install script failed")
                }
                _ => e.to_string(),
            });
            return ev;
        }
        if let Some(rest) = l.strip_prefix("Packages (") {
            // "Packages (2) hello-2.0-1  needs-1.0-1": pacman's own count
            // (dependencies included).
            if let Some(n) = rest.split(')').next().and_then(|n| n.parse::<u32>().ok()) {
                self.total = self.total.max(n);
            }
            return ev;
        }
        let check = match l {
            "checking keyring..." => Some((2.0, m_("Checking the keyring"))),
            "checking package integrity..." => Some((4.0, m_("Checking the packages' integrity"))),
            "loading package files..." => Some((6.0, m_("Loading the packages"))),
            "checking for file conflicts..." => Some((8.0, m_("Checking for file conflicts"))),
            "checking available disk space..." => Some((9.0, m_("Checking the disk space"))),
            _ => None,
        };
        if let Some((pct, text)) = check {
            ev.push(Event::message(text.text()));
            ev.extend(self.percent(pct));
            return ev;
        }
        for verb in [
            "installing",
            "upgrading",
            "reinstalling",
            "downgrading",
            "removing",
        ] {
            let Some(pkg) = l
                .strip_prefix(verb)
                .and_then(|r| r.strip_prefix(' '))
                .and_then(|r| r.strip_suffix("..."))
            else {
                continue;
            };
            if pkg.is_empty() || pkg.contains(' ') {
                continue;
            }
            self.current = Some(pkg.to_string());
            if verb == "removing" || self.total == 0 {
                ev.push(Event::message(said::REMOVING.with(&[&pkg])));
                return ev;
            }
            // The previous package is done once the next one starts.
            ev.extend(self.percent(10.0 + 90.0 * self.step as f32 / self.total as f32));
            self.step = (self.step + 1).min(self.total);
            ev.push(Event::step(
                self.step,
                self.total,
                said::doing(verb).with(&[&pkg]),
            ));
            return ev;
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_overwrite_glob_matches_only_its_path() {
        assert_eq!(
            super::glob_escape("usr/share/a/version"),
            "usr/share/a/version"
        );
        assert_eq!(
            super::glob_escape("usr/a[1]*?\\b"),
            "usr/a\\[1\\]\\*\\?\\\\b"
        );
    }

    use super::*;

    #[test]
    fn progress_from_pacman_output() {
        let mut p = Progress::new(1);
        let mut all = Vec::new();
        for l in [
            "loading packages...",
            "Packages (2) hello-2.0-1  needs-1.0-1",
            "checking package integrity...",
            ":: Processing package changes...",
            "upgrading hello...",
            "installing needs...",
            "needs: post_install failing",
            "error: command failed to execute correctly",
        ] {
            all.extend(p.feed(l));
        }
        assert!(all.contains(&Event::step(
            2,
            2,
            said::doing("installing").with(&[&"needs"])
        )));
        assert!(all.contains(&Event::Progress { percent: 55.0 }));
        assert_eq!(p.errors, ["needs: its install script failed"]);
    }

    #[test]
    fn entries_and_pkginfo() {
        assert_eq!(split_entry("hello-2.0-1"), Some(("hello", "2.0-1")));
        assert_eq!(
            split_entry("lib32-foo-bar-1:2.0-3"),
            Some(("lib32-foo-bar", "1:2.0-3"))
        );
        assert_eq!(split_entry("broken"), None);
        let f = parse_pkginfo("# x\npkgname = hello\npkgver = 2.0-1\nsize = 3000\n").unwrap();
        assert_eq!((f.package.as_str(), f.version.as_str()), ("hello", "2.0-1"));
        assert_eq!(f.installed_size, Some(3));
        assert!(parse_pkginfo("pkgname = x\n").is_err());
        let conf = "[options]\nArchitecture = x86_64 x86_64_v3\n#Architecture = arm\n[core]\nArchitecture = no\n";
        assert_eq!(conf_values(conf, "Architecture"), ["x86_64", "x86_64_v3"]);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn progress_stays_in_range_and_only_grows(
            total in 0u32..10,
            lines in proptest::collection::vec(
                prop_oneof![
                    any::<String>(),
                    "(installing|upgrading|removing|reinstalling) [a-z]{1,6}\\.\\.\\.",
                    "Packages \\([0-9]{1,3}\\) [a-z -]{0,20}",
                    Just("checking package integrity...".to_string()),
                    Just("error: command failed to execute correctly".to_string()),
                ],
                0..40,
            ),
        ) {
            let mut p = Progress::new(total);
            let mut last = -1.0f32;
            for l in &lines {
                let r = crate::backend::check_progress(&p.feed(l), &mut last);
                prop_assert!(r.is_ok(), "{:?} after {:?}", r, l);
            }
        }

        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = parse_pkginfo(&text);
            let _ = split_entry(&text);
        }
    }
}
