//! The rpm backend: `rpm -U` into the root with `--percent` progress, or
//! the root's own dnf when it has one (as the distribution would install).
//!
//! rpm has no way to finish a transaction cut short (nothing like dpkg's
//! `--configure -a`): a package is recorded once its files are in place and
//! a scriptlet cut by a power cut never runs again. So the retry reinstalls
//! the whole set (`--replacepkgs`), and the snapshot is the real remedy.
//! A failing `%post` is only a warning to rpm (exit status 0); here it fails
//! the update, as dpkg's failing postinst does, so it is seen and, with a
//! snapshot, rolled back.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
pub(crate) use query::{root_macro, rpm_tool};

// What rpm's messages say, translated by their id.
const REBUILDING: Msg =
    m_("Checking the package database after the interrupted update (rpm --rebuilddb)");
const ERASING_STALE: Msg = m_("Erasing what the interrupted upgrade left behind: {}");
const MERGING: Msg = m_("Merging package records a cut reinstall left twice");
const REMOVING_OLD: Msg = m_("Removing the old versions");
const PREPARING: Msg = m_("Preparing the transaction");

/// Scriptlets expect the sbin directories whoever runs us.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the database is inside a root: newer distributions moved it to
/// /usr/lib/sysimage/rpm (with /var/lib/rpm a link to it).
const DBPATHS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

pub struct RpmKind;
pub static KIND: RpmKind = RpmKind;

impl RpmKind {
    /// What installing `files` on `root` does to each package.
    fn plan_of(&self, root: &Root, files: &[PathBuf]) -> Result<Vec<Planned>, BackendError> {
        let installed = installed_versions(root)?;
        let mut plan = Vec::new();
        for f in files {
            let info = self.inspect(f)?;
            let from = installed.get(&info.package).cloned();
            plan.push(Planned {
                action: if from.is_some() {
                    Action::Upgrade
                } else {
                    Action::Install
                },
                name: info.package,
                from,
                to: Some(info.version),
            });
        }
        Ok(plan)
    }
}

impl Kind for RpmKind {
    fn name(&self) -> &'static str {
        "rpm"
    }

    fn payload(&self) -> &'static str {
        "an .rpm package"
    }

    fn accepts(&self, file: &Path) -> bool {
        let name = file.to_string_lossy();
        name.ends_with(".rpm") && !name.ends_with(".src.rpm")
    }

    fn inspect(&self, file: &Path) -> Result<PackageInfo, BackendError> {
        let mut c = Command::new("rpm");
        c.args(["-qp", "--nosignature", "--qf"])
            .arg(format!(
                "%{{NAME}}\\n{VERSION_FORMAT}\\n%{{SIZE}}\\n%{{ARCH}}\\n"
            ))
            .arg("--")
            .arg(file);
        super::read_package(c, file, ".rpm", parse_query)
    }

    fn architectures(&self, root: &Root) -> Result<Option<Vec<String>>, BackendError> {
        Ok(Some(compatible_arches(&machine(root)?)))
    }

    fn check_database(&self, root: &Root) -> Result<(), BackendError> {
        dbpath(root).map(|_| ())
    }

    fn state_dirs(&self) -> &'static [&'static str] {
        &DBPATHS
    }

    /// The installed set with each package's transaction id, sorted: it
    /// changes with every install and removal, and not when rpm merely
    /// reads its database (which touches the sqlite files). The trusted
    /// keys (gpg-pubkey entries) are not packages of the plan: the boot
    /// checks the signatures against them as they are then.
    fn fingerprint(&self, root: &Root) -> Result<Option<String>, BackendError> {
        let mut c = rpm(root)?;
        c.args(["-qa", "--qf", "%{NEVRA} %{INSTALLTID}\\n"]);
        let text = run_query(c, "-qa")?;
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with("gpg-pubkey-"))
            .collect();
        lines.sort_unstable();
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for l in lines {
            h.update(l.as_bytes());
            h.update(b"\n");
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(format!("rpm-sha256:{hex}")))
    }

    fn stale_message(&self, root: &Root) -> String {
        format!(
            "the rpm database in {} changed since the update was prepared (packages were installed or removed meanwhile)",
            root.host(Path::new(&dbpath(root).unwrap_or_else(|_| DBPATHS[1].into())))
                .display()
        )
    }

    fn boot_files(&self, root: &Root, changes: &[PackageChange]) -> Option<String> {
        super::first_boot_file(changes, |c| {
            c.after.as_ref()?;
            // An unreadable list counts as touching boot: say so.
            let listed = rpm(root).and_then(|mut q| {
                q.args(["-ql", "--"]).arg(&c.name);
                run_query(q, "-ql")
            });
            Some(match listed {
                Ok(text) => text.lines().map(str::to_string).collect(),
                Err(_) => vec!["/boot/ (rpm -ql failed)".to_string()],
            })
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
        let mut c = rpm(root)?;
        c.args(["-U", "--test", "--replacepkgs"]);
        if force_debian() {
            c.arg("--force-debian");
        }
        c.arg("--").args(files);
        let out = c.output().map_err(|source| BackendError::Spawn {
            program: "rpm".into(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let problems: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "error: Failed dependencies:")
            .collect();
        Err(BackendError::cannot_install(
            "rpm --test",
            root,
            &problems.join("; "),
        ))
    }

    fn check_signatures(
        &self,
        root: &Root,
        files: &[PathBuf],
        from_repositories: bool,
    ) -> Result<Vec<bool>, BackendError> {
        super::rpmkeys::check(root, files, from_repositories)
    }

    fn verify_signatures(
        &self,
        root: &Root,
        required: &[(String, PathBuf)],
        _verified: &[(String, PathBuf)],
    ) -> Result<(), BackendError> {
        let files: Vec<PathBuf> = required.iter().map(|(_, p)| p.clone()).collect();
        super::rpmkeys::verify(root, &files)
    }

    fn manages(&self, root: &Root) -> bool {
        dbpath(root).is_ok()
    }

    /// dnf resolves (makecache checks the repositories' metadata as their
    /// .repo files say) and downloads into `dest` (dnf5 checks no package
    /// signature there: `check_signatures` does, with rpmkeys);
    /// the plan is what it downloaded, against what is installed. rpm -U
    /// (or the root's dnf) at boot installs exactly those files, obsoleted
    /// packages going as rpm's Obsoletes say.
    fn resolve(
        &self,
        root: &Root,
        request: &Request,
        dest: &Path,
    ) -> Result<Resolved, BackendError> {
        super::only_full_upgrade(
            request,
            "dnf",
            "dnf upgrade does both when dependencies and obsoletes say so",
        )?;
        run_dnf(dnf(root, &["makecache"]), "makecache")?;
        let dest_arg = format!("--destdir={}", dest.display());
        let mut c = dnf(root, &["--downloadonly", &dest_arg]);
        match request {
            // `safe` was refused above.
            Request::Upgrade { .. } => {
                c.arg("upgrade");
            }
            Request::Install(pkgs) => {
                c.arg("install").args(pkgs);
            }
        }
        run_dnf(c, "--downloadonly")?;
        let files = super::downloaded(dest, self)?;
        Ok(Resolved {
            plan: self.plan_of(root, &files)?,
            files,
            checked_by:
                "dnf (the repositories' metadata, as their .repo files require), rpmkeys (the packages' signatures, against the root's keys)".into(),
        })
    }

    fn repair(&self) -> Repair {
        Repair {
            done: "rpm cannot finish an interrupted transaction (it has nothing like dpkg --configure -a): its database was checked (rpm --rebuilddb); scriptlets that were cut short did not run again, so reinstall the update's packages (rpm -U --replacepkgs)",
            by_hand: "check the system (rpm -Va) and reinstall the update's packages (rpm -U --replacepkgs)",
        }
    }

    fn open(&self, t: Transaction<'_>) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(Rpm::new(t)?))
    }
}

/// dnf on `root`: its own repositories and release, quiet, no plugins.
fn dnf(root: &Root, args: &[&str]) -> Command {
    let mut c = Command::new("dnf");
    c.args(["-y", "-q", "--noplugins"]);
    if !root.is_live() {
        let mut r = OsString::from("--installroot=");
        r.push(root.dir());
        c.arg(r);
        let mut d = OsString::from("--setopt=reposdir=");
        d.push(root.host(Path::new("/etc/yum.repos.d")));
        c.arg(d);
        if let Some(v) = os_version(root) {
            c.arg(format!("--releasever={v}"));
        }
    }
    c.args(args).env("PATH", PATH).env("LC_ALL", "C");
    c
}

/// Runs dnf to its end; its complaints, joined on one line, on failure.
fn run_dnf(mut c: Command, what: &str) -> Result<(), BackendError> {
    let out = c.output().map_err(|source| BackendError::Spawn {
        program: "dnf".into(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(BackendError::Failed(format!(
        "dnf {what}: {}; nothing was prepared",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .chain(String::from_utf8_lossy(&out.stdout).lines())
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

pub struct Rpm {
    root: Root,
    files: Vec<PathBuf>,
    /// The payload's names in the manifest, in `files` order.
    file_names: Vec<String>,
    names: Vec<String>,
    /// Each payload package with the version it brings.
    targets: Vec<(String, String)>,
    /// The payload file of each of `targets`.
    target_files: Vec<PathBuf>,
    extra_args: Vec<String>,
    limits: Limits,
    before: HashMap<String, String>,
    required: u64,
}

impl Rpm {
    fn new(t: Transaction<'_>) -> Result<Rpm, BackendError> {
        let files = t.payload.files;
        Ok(Rpm {
            root: t.root.clone(),
            files: files.iter().map(|f| t.update_dir.join(&f.name)).collect(),
            file_names: files.iter().map(|f| f.name.clone()).collect(),
            names: files.iter().filter_map(|f| f.package.clone()).collect(),
            targets: files
                .iter()
                .filter_map(|f| Some((f.package.clone()?, f.version.clone()?)))
                .collect(),
            target_files: files
                .iter()
                .filter(|f| f.package.is_some() && f.version.is_some())
                .map(|f| t.update_dir.join(&f.name))
                .collect(),
            extra_args: t.extra_args.to_vec(),
            limits: t.limits,
            before: super::before(&t, installed_versions(t.root)?),
            required: super::installed_bytes(files),
        })
    }

    fn names_and_files(&self) -> Vec<(String, PathBuf)> {
        self.file_names
            .iter()
            .cloned()
            .zip(self.files.iter().cloned())
            .collect()
    }

    /// The root's own dnf, when it has one: it keeps its history and
    /// plugins in step.
    fn dnf(&self) -> bool {
        self.root.host(Path::new("/usr/bin/dnf")).exists()
    }

    fn run(
        &self,
        cmd: Command,
        program: &str,
        parse: &mut Progress,
        sink: &mut dyn Sink,
    ) -> Result<(), BackendError> {
        let ended = process::run(cmd, self.limits, &mut |line| {
            let l = match line {
                Line::Output(l) | Line::Progress(l) => l,
            };
            for e in parse.feed(&l) {
                sink.event(e);
            }
            sink.output(&l);
        })
        .map_err(|source| BackendError::Spawn {
            program: program.into(),
            source,
        })?;
        super::ended(program, ended, &parse.errors)
    }
}

impl Backend for Rpm {
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        sink.event(Event::message(REBUILDING.text()));
        let mut c = rpm(&self.root)?;
        c.arg("--rebuilddb");
        self.run(c, "rpm", &mut Progress::new(0), sink)?;
        // A cut between installing a new package and erasing the old one
        // leaves both in the database: erase the old one as the upgrade
        // would have (its erase scriptlets run), so each package is at one
        // version, whether this ends at the limit or a retry follows.
        let mut q = rpm(&self.root)?;
        q.args([
            "-qa",
            "--qf",
            &format!("%{{NAME}} {VERSION_FORMAT} %{{NEVRA}}\\n"),
        ]);
        let text = run_query(q, "-qa")?;
        let stale = leftover_instances(&text, &self.targets);
        if !stale.is_empty() {
            sink.event(Event::message(ERASING_STALE.with(&[&stale.join(", ")])));
            let mut c = rpm(&self.root)?;
            c.args(["-e", "--nodeps"]).args(&stale);
            self.run(c, "rpm", &mut Progress::new(0), sink)?;
        }
        // A cut retry (rpm -U --replacepkgs) leaves two records of one
        // NEVRA, which `rpm -e` cannot tell apart. Upgrading the record
        // only, from the payload's header, replaces both with one: no file
        // and no scriptlet is touched, and a cut here leaves two again,
        // never none.
        let doubled: Vec<&PathBuf> = doubled_targets(&text, &self.targets)
            .into_iter()
            .filter_map(|i| self.target_files.get(i))
            .collect();
        if doubled.is_empty() {
            return Ok(());
        }
        sink.event(Event::message(MERGING.text()));
        let mut c = rpm(&self.root)?;
        c.args(["-U", "--justdb", "--noscripts", "--nodeps", "--replacepkgs"]);
        if force_debian() {
            c.arg("--force-debian");
        }
        c.args(doubled);
        self.run(c, "rpm", &mut Progress::new(0), sink)
    }

    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let total = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        // dnf takes only arguments ending in .rpm as files: links named so,
        // in a directory of our own, to the verified descriptors (inherited
        // by dnf, so /proc/self/fd/N resolves in it to what was checked).
        let mut links: Option<super::Links> = None;
        let (c, program) = if self.dnf() {
            let l = super::Links::new("dnf", &self.names_and_files())?;
            let files = l.files.clone();
            links = Some(l);
            let mut c = Command::new("dnf");
            c.args([
                "-y",
                "--noplugins",
                "--disablerepo=*",
                "--setopt=reposdir=/nonexistent",
            ]);
            if !self.root.is_live() {
                let mut r = OsString::from("--installroot=");
                r.push(self.root.dir());
                c.arg(r);
            }
            // dnf reinstalls what a cut attempt left recorded.
            c.args(&self.extra_args).arg("install").args(&files);
            c.env("PATH", PATH);
            (c, "dnf")
        } else {
            let mut c = rpm(&self.root)?;
            c.args(["-U", "-v", "-h", "--percent", "--replacepkgs"]);
            if force_debian() {
                c.arg("--force-debian");
            }
            c.args(&self.extra_args).arg("--").args(&self.files);
            (c, "rpm")
        };
        sink.event(Event::message(said::INSTALLING.with(&[&total, &program])));
        let result = self.run(c, program, &mut Progress::new(total), sink);
        drop(links);
        result
    }

    fn changes(&self) -> Vec<PackageChange> {
        let after = installed_versions(&self.root).unwrap_or_default();
        super::changes_of(&self.names, &self.before, &after)
    }

    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        super::take_verified(&mut self.files, files);
    }

    fn required_bytes(&self) -> u64 {
        self.required
    }
}
