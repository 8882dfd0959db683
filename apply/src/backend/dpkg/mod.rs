//! The dpkg backend: `dpkg --install` with `--status-fd` progress.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::process::{self, Ended, Limits, Line, PROGRESS_FD};
use super::{
    apt, Action, Backend, BackendError, Event, Kind, PackageChange, PackageInfo, Planned, Repair,
    Request, Resolved, Sink, Transaction,
};
use crate::paths::Root;
use system_update_events::{m_, Msg, Text};

mod progress;
#[cfg(test)]
mod tests;

use progress::Progress;

/// dpkg's database of installed packages.
pub const STATUS: &str = "/var/lib/dpkg/status";

pub struct DpkgKind;
pub static KIND: DpkgKind = DpkgKind;

impl Kind for DpkgKind {
    fn name(&self) -> &'static str {
        "dpkg"
    }

    fn payload(&self) -> &'static str {
        "a .deb package"
    }

    fn accepts(&self, file: &Path) -> bool {
        file.extension().is_some_and(|e| e == "deb")
    }

    fn inspect(&self, file: &Path) -> Result<PackageInfo, BackendError> {
        deb_fields(file)
    }

    fn architectures(&self, root: &Root) -> Result<Option<Vec<String>>, BackendError> {
        architectures(root).map(Some)
    }

    fn state_dirs(&self) -> &'static [&'static str] {
        &["/var/lib/dpkg", "/var/lib/apt"]
    }

    fn fingerprint(&self, root: &Root) -> Result<Option<String>, BackendError> {
        fingerprint(root).map(Some)
    }

    fn stale_message(&self, root: &Root) -> String {
        format!(
            "{} changed since the update was prepared (packages were installed or removed meanwhile)",
            root.host(Path::new(STATUS)).display()
        )
    }

    fn boot_files(&self, root: &Root, changes: &[PackageChange]) -> Option<String> {
        super::first_boot_file(changes, |c| {
            c.after.as_ref()?;
            // NAME.list, or NAME:ARCH.list for a Multi-Arch: same package.
            let info = Path::new("/var/lib/dpkg/info");
            let plain = info.join(format!("{}.list", c.name));
            if let Some(l) = super::read_file_list(root, &plain) {
                return Some(l);
            }
            let prefix = format!("{}:", c.name);
            let names = crate::rooted::open_dir(root, info).ok()?.names().ok()?;
            let found = names.into_iter().find(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&prefix) && n.ends_with(".list")
            })?;
            super::read_file_list(root, &info.join(found))
        })
    }

    fn installed(&self, root: &Root) -> Result<HashMap<String, String>, BackendError> {
        installed_versions(root)
    }

    /// apt's resolver against the root's database alone: dpkg itself
    /// checks dependencies only once it has changed things.
    fn preflight(
        &self,
        root: &Root,
        files: &[PathBuf],
        removals: &[String],
    ) -> Result<(), BackendError> {
        if !apt::available() {
            tracing::warn!(
                "apt-get is not installed: the update's dependencies are not checked before the boot"
            );
            return Ok(());
        }
        apt::simulate(root, files, removals, false).map(|_| ())
    }

    fn manages(&self, root: &Root) -> bool {
        root.host(Path::new(STATUS)).is_file()
    }

    fn check_database(&self, root: &Root) -> Result<(), BackendError> {
        let status = root.host(Path::new(STATUS));
        if status.is_file() {
            return Ok(());
        }
        Err(BackendError::Failed(format!(
            "{}: no dpkg database here; nothing was prepared: give the root whose database it is",
            status.display()
        )))
    }

    fn resolve(
        &self,
        root: &Root,
        request: &Request,
        dest: &Path,
    ) -> Result<Resolved, BackendError> {
        apt::resolve(root, request, dest)
    }

    fn repair(&self) -> Repair {
        Repair {
            done: "the interrupted transaction was brought to a consistent state (a package left half unpacked unpacked again from the update, then dpkg --configure -a); what it had not reached was not installed (the record lists each package's version)",
            by_hand: "check the system (dpkg --audit) and run dpkg --configure -a",
        }
    }

    fn open(&self, t: Transaction<'_>) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Dpkg::new(t)?))
    }
}

// What dpkg's steps and messages say, translated by their id.
const UNPACKING: Msg = m_("Unpacking {}");
const CONFIGURING: Msg = m_("Configuring {}");
const TRIGGERS: Msg = m_("Processing triggers for {}");
const PROCESSING: Msg = m_("Processing {}");
const RECOVERING: Msg = m_("Recovering the interrupted update (dpkg --configure -a)");
const APT_INSTALLING: Msg = m_("Installing {} and removing {} package(s) with apt");
const REINSTALLING: Msg = m_("Reinstalling what the interrupted update left half unpacked: {}");

/// Maintainer scripts expect the sbin directories whoever runs us.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Dpkg {
    root: Root,
    debs: Vec<PathBuf>,
    /// Package names from the manifest, in payload order.
    names: Vec<String>,
    extra_args: Vec<String>,
    limits: Limits,
    before: HashMap<String, String>,
    seen: Vec<String>,
    /// An update resolved from the repositories: replayed by apt, exactly.
    plan: Vec<Planned>,
    /// The payload's names in the manifest, in `debs` order (apt finds its
    /// archives by these names).
    file_names: Vec<String>,
    /// Bytes the packages need installed, from the manifest's Installed-Size:
    /// dpkg unpacks the new files beside the old ones before it removes them,
    /// so the whole new size, not the difference.
    required: u64,
    /// Each payload package's name and its index in `debs`.
    packages: Vec<(String, usize)>,
    /// `debs` are the verified descriptors (use_verified), not the update
    /// directory's names.
    verified: bool,
}

/// Installed package versions, from the status file.
pub fn installed_versions(root: &Root) -> Result<HashMap<String, String>, BackendError> {
    let path = root.host(Path::new(STATUS));
    let text = std::fs::read_to_string(&path).map_err(|source| BackendError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(parse_status(&text))
}

/// Package -> dpkg's state word (`installed`, `half-configured`, ...) for
/// every package it has not removed.
pub fn installed_states(root: &Root) -> Result<HashMap<String, String>, BackendError> {
    let path = root.host(Path::new(STATUS));
    let text = std::fs::read_to_string(&path).map_err(|source| BackendError::Read {
        path: path.clone(),
        source,
    })?;
    Ok(parse_states(&text))
}

/// Packages dpkg says must be reinstalled, from `dpkg-query -W
/// -f='${Package} ${Status}\n'` lines: the `reinstreq` flag or the
/// `half-installed` state.
pub fn needs_reinstall(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && (w[2] == "reinstreq" || w[3] == "half-installed"))
                .then(|| w[0].to_string())
        })
        .collect()
}

pub fn parse_states(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut status) = (None, None);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                status = Some(v.trim());
            }
        }
        if let (Some(n), Some(s)) = (name, status) {
            let state = s.rsplit(' ').next().unwrap_or("");
            if state != "not-installed" && state != "config-files" {
                out.insert(n.to_string(), state.to_string());
            }
        }
    }
    out
}

/// Package -> version for every stanza whose state is not "not-installed"
/// or "config-files".
pub fn parse_status(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut status) = (None, None, None);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                status = Some(v.trim());
            }
        }
        if let (Some(n), Some(v), Some(s)) = (name, version, status) {
            let state = s.rsplit(' ').next().unwrap_or("");
            if state != "not-installed" && state != "config-files" {
                out.insert(n.to_string(), v.to_string());
            }
        }
    }
    out
}

pub fn fingerprint(root: &Root) -> Result<String, BackendError> {
    let path = root.host(Path::new(STATUS));
    crate::digest::sha256_file(&path)
        .map(|h| format!("sha256:{h}"))
        .map_err(|source| BackendError::Read { path, source })
}

/// Package, version and installed size of a .deb, for the manifest.
pub fn deb_fields(deb: &Path) -> Result<PackageInfo, BackendError> {
    let mut c = Command::new("dpkg-deb");
    c.arg("--field")
        // A file named "-x" is a file, not an option.
        .arg("--")
        .arg(deb)
        .args(["Package", "Version", "Installed-Size", "Architecture"]);
    super::read_package(c, deb, ".deb", parse_deb_fields)
}

/// `dpkg-deb --field DEB Package Version Installed-Size Architecture`
/// output to fields;
/// the error says what is missing or wrong.
pub fn parse_deb_fields(text: &str) -> Result<PackageInfo, String> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    let package = field("Package:").filter(|p| !p.is_empty());
    let version = field("Version:").filter(|v| !v.is_empty());
    let (Some(package), Some(version)) = (package, version) else {
        return Err("no Package or Version field".into());
    };
    let installed_size = match field("Installed-Size:") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| format!("Installed-Size {v:?} is not a number"))?,
        ),
    };
    Ok(PackageInfo {
        package,
        version,
        installed_size,
        arch: field("Architecture:").filter(|a| !a.is_empty()),
    })
}

/// The root's architectures as its dpkg knows them (native, then those
/// added with --add-architecture), and `all`.
fn architectures(root: &Root) -> Result<Vec<String>, BackendError> {
    let mut arches = vec!["all".to_string()];
    for what in ["--print-architecture", "--print-foreign-architectures"] {
        let mut c = Command::new("dpkg");
        if !root.is_live() {
            let mut r = OsString::from("--root=");
            r.push(root.dir());
            c.arg(r);
        }
        c.arg(what);
        let out = c.output().map_err(|source| BackendError::Spawn {
            program: "dpkg".into(),
            source,
        })?;
        if !out.status.success() {
            return Err(BackendError::Failed(format!(
                "dpkg {what}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        arches.extend(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_string),
        );
    }
    Ok(arches)
}

/// "foo:amd64" -> "foo".
fn bare(pkg: &str) -> &str {
    pkg.split(':').next().unwrap_or(pkg).trim()
}

/// Where dpkg is to log for `root`: it logs to the host's
/// /var/log/dpkg.log even with --root, so the root's own, its /var/log
/// resolved inside the root (rooted::resolved); else nowhere. dpkg follows
/// a link at the file itself, so a link there is not used either.
pub(crate) fn log_in(root: &Root) -> PathBuf {
    let inside = Path::new("/var/log");
    let link = crate::rooted::open_dir(root, inside)
        .and_then(|d| d.lstat("dpkg.log".as_ref()))
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
    match crate::rooted::resolved(root, inside) {
        Ok(_) if link && !root.is_live() => {
            tracing::warn!("/var/log/dpkg.log is a symbolic link; dpkg's own log is not kept");
            PathBuf::from("/dev/null")
        }
        Ok(dir) => dir.join("dpkg.log"),
        Err(e) => {
            tracing::warn!("/var/log: {e}; dpkg's own log is not kept");
            PathBuf::from("/dev/null")
        }
    }
}

impl Dpkg {
    pub fn new(t: Transaction<'_>) -> Result<Dpkg, BackendError> {
        let root = t.root.clone();
        let files = t.payload.files;
        let before = super::before(&t, installed_versions(&root)?);
        Ok(Dpkg {
            debs: files.iter().map(|f| t.update_dir.join(&f.name)).collect(),
            names: if t.payload.plan.is_empty() {
                files.iter().filter_map(|f| f.package.clone()).collect()
            } else {
                t.payload.plan.iter().map(|p| p.name.clone()).collect()
            },
            plan: t.payload.plan.to_vec(),
            file_names: files.iter().map(|f| f.name.clone()).collect(),
            root,
            extra_args: t.extra_args.to_vec(),
            limits: t.limits,
            before,
            seen: Vec::new(),
            required: super::installed_bytes(files),
            packages: super::package_indexes(files),
            verified: false,
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new("dpkg");
        if !self.root.is_live() {
            let mut r = OsString::from("--root=");
            r.push(self.root.dir());
            c.arg(r);
            let mut l = OsString::from("--log=");
            l.push(log_in(&self.root));
            c.arg(l);
        }
        c.arg(format!("--status-fd={PROGRESS_FD}"))
            // Nobody can answer a conffile prompt at boot: keep the admin's
            // changes, take new defaults where there are none.
            .args(["--force-confdef", "--force-confold"])
            .args(&self.extra_args)
            .env("PATH", PATH)
            .env("DEBIAN_FRONTEND", "noninteractive");
        c
    }

    /// The plan made at prepare, by the tool that made it, from the
    /// verified files only: apt with an archive directory of links to them
    /// and no downloads. A different resolution at boot would need a
    /// download and fails before anything changes.
    fn replay(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let named: Vec<(String, PathBuf)> = self
            .file_names
            .iter()
            .cloned()
            .zip(self.debs.iter().cloned())
            .collect();
        let links = super::Links::new("apt", &named)?;
        let partial = links.dir().join("partial");
        std::fs::create_dir(&partial).map_err(|source| BackendError::Read {
            path: partial,
            source,
        })?;
        let removals = self
            .plan
            .iter()
            .filter(|p| p.action == Action::Remove)
            .count();
        sink.event(Event::message(
            APT_INSTALLING.with(&[&(self.plan.len() - removals), &removals]),
        ));
        let (cmd, _config) =
            apt::replay(&self.root, &self.plan, links.dir(), &self.extra_args)?.into_parts();
        let mut errors = Vec::new();
        let mut last = -1.0f32;
        let ended = process::run(cmd, self.limits, &mut |line| match line {
            Line::Output(l) => {
                if let Some(e) = l.strip_prefix("E: ") {
                    errors.push(e.to_string());
                }
                sink.output(&l);
            }
            Line::Progress(l) => {
                if let Some(e) = l.strip_prefix("pmerror:") {
                    errors.push(e.splitn(3, ':').last().unwrap_or(e).to_string());
                } else if let Some((pct, text)) = apt::parse_status(&l) {
                    sink.event(Event::message(Text::foreign(text)));
                    if pct > last {
                        last = pct;
                        sink.event(Event::Progress { percent: pct });
                    }
                }
            }
        })
        .map_err(|source| BackendError::Spawn {
            program: "apt-get".into(),
            source,
        })?;
        drop(links);
        super::ended("apt-get", ended, &errors)
    }

    fn run(&mut self, cmd: Command, sink: &mut dyn Sink, total: u32) -> Result<(), BackendError> {
        let mut progress = Progress::new(total);
        let ended = process::run(cmd, self.limits, &mut |line| match line {
            Line::Output(l) => {
                progress.output(&l);
                sink.output(&l);
            }
            Line::Progress(l) => {
                for e in progress.feed(&l) {
                    sink.event(e);
                }
            }
        })
        .map_err(|source| BackendError::Spawn {
            program: "dpkg".into(),
            source,
        })?;
        for p in progress.packages.drain(..) {
            if !self.seen.contains(&p) {
                self.seen.push(p);
            }
        }
        let status = match ended {
            Ended::Exited(s) => s,
            Ended::Stalled(limit) => {
                return Err(BackendError::Stalled {
                    program: "dpkg".into(),
                    limit,
                })
            }
        };
        if status.success() {
            return Ok(());
        }
        let mut msg = progress.errors.join("; ");
        if msg.is_empty() {
            msg = match status.code() {
                Some(c) => format!("dpkg exited with status {c}"),
                None => "dpkg was killed by a signal".into(),
            };
        }
        Err(BackendError::Failed(msg))
    }
}

impl Backend for Dpkg {
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        // An unpack cut short leaves the package needing reinstallation
        // (reinstreq, half-installed), which --configure -a refuses: dpkg
        // asks for the package again, and only the update's own (checked)
        // file can be it. Without the checked files (a retry, which
        // installs everything next anyway) this is left to the install.
        if self.verified {
            // dpkg-query, not the status file: a cut dpkg leaves its last
            // changes in the journal (updates/), which only dpkg merges.
            let mut q = Command::new("dpkg-query");
            if !self.root.is_live() {
                let mut r = OsString::from("--root=");
                r.push(self.root.dir());
                q.arg(r);
            }
            q.args(["-W", "-f=${Package} ${Status}\n"]);
            let text = q
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .map_err(|source| BackendError::Spawn {
                    program: "dpkg-query".into(),
                    source,
                })?;
            let need = needs_reinstall(&text);
            let debs: Vec<PathBuf> = self
                .packages
                .iter()
                .filter(|(n, _)| need.contains(n))
                .filter_map(|(_, i)| self.debs.get(*i).cloned())
                .collect();
            if !debs.is_empty() {
                sink.event(Event::message(REINSTALLING.with(&[&need.join(", ")])));
                let mut c = self.command();
                c.args(["--unpack"]).args(&debs);
                self.run(c, sink, 0)?;
            }
        }
        sink.event(Event::message(RECOVERING.text()));
        let mut c = self.command();
        c.args(["--configure", "-a"]);
        self.run(c, sink, 0)
    }

    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        if !self.plan.is_empty() {
            return self.replay(sink);
        }
        let mut c = self.command();
        c.arg("--install").args(&self.debs);
        let total = u32::try_from(self.debs.len()).unwrap_or(u32::MAX);
        sink.event(Event::message(
            super::said::INSTALLING.with(&[&total, &"dpkg"]),
        ));
        self.run(c, sink, total)
    }

    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        super::take_verified(&mut self.debs, files);
        self.verified = true;
    }

    fn required_bytes(&self) -> u64 {
        self.required
    }

    fn changes(&self) -> Vec<PackageChange> {
        let after = installed_versions(&self.root).unwrap_or_default();
        let mut names: Vec<&String> = self.names.iter().collect();
        for s in &self.seen {
            if !names.contains(&s) {
                names.push(s);
            }
        }
        let states = installed_states(&self.root).unwrap_or_default();
        names
            .into_iter()
            .map(|n| PackageChange {
                name: n.clone(),
                before: self.before.get(n).cloned(),
                after: after.get(n).cloned(),
                // dpkg's own word: half-configured, unpacked, ... after a
                // failure, so the record never claims what is not true.
                state: Some(
                    states.get(n).cloned().unwrap_or_else(|| {
                        super::presence(self.before.contains_key(n), false).into()
                    }),
                ),
            })
            .collect()
    }
}
