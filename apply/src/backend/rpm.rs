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

/// Scriptlets expect the sbin directories whoever runs us.
// What rpm's messages say, translated by their id.
const REBUILDING: Msg =
    m_("Checking the package database after the interrupted update (rpm --rebuilddb)");
const ERASING_STALE: Msg = m_("Erasing what the interrupted upgrade left behind: {}");
const MERGING: Msg = m_("Merging package records a cut reinstall left twice");
const REMOVING_OLD: Msg = m_("Removing the old versions");
const PREPARING: Msg = m_("Preparing the transaction");

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the database is inside a root: newer distributions moved it to
/// /usr/lib/sysimage/rpm (with /var/lib/rpm a link to it).
const DBPATHS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

pub struct RpmKind;
pub static KIND: RpmKind = RpmKind;

/// The files one of rpm's database backends keeps (sqlite, ndb, bdb): a
/// directory without any is no database, and rpm would create an empty one.
const DBFILES: [&str; 3] = ["rpmdb.sqlite", "Packages.db", "Packages"];

/// The root's macro files that can set `%_dbpath`, in the order rpm reads
/// them (a later definition wins): its own, not the host's, which
/// `rpm --root R --eval` would read.
fn macro_files(root: &Root) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/usr/lib/rpm/macros")];
    for dir in ["/usr/lib/rpm/macros.d", "/etc/rpm"] {
        let Ok(host) = root.confined(Path::new(dir)) else {
            continue;
        };
        let mut found: Vec<PathBuf> = std::fs::read_dir(host)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("macros"))
            .map(|e| Path::new(dir).join(e.file_name()))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// The last `%_dbpath` a macro file defines, with the directory macros it
/// is usually written with expanded; `None` for what only rpm can
/// evaluate (a shell expansion, another macro).
pub fn parse_dbpath(text: &str) -> Option<String> {
    let mut v = last_definition(text, "%_dbpath")?.to_string();
    for (m, dir) in [
        ("%{_var}", "/var"),
        ("%{_localstatedir}", "/var"),
        ("%{_usr}", "/usr"),
        ("%{_prefix}", "/usr"),
    ] {
        v = v.replace(m, dir);
    }
    (v.starts_with('/') && !v.contains('%')).then_some(v)
}

/// The value of the last definition of macro `name` (`%_dbpath`) in a
/// macro file's text.
fn last_definition<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .rev()
        .filter_map(|l| l.trim_start().strip_prefix(name))
        .find(|rest| rest.starts_with([' ', '\t']))
        .map(str::trim)
}

/// The value of macro `name` as the root's own macro files define it
/// (the last file that does wins), read from the root: rpm given --root
/// would read the host's.
pub(super) fn root_macro(root: &Root, name: &str) -> Option<String> {
    macro_files(root)
        .iter()
        .rev()
        .filter_map(|f| root.confined(f).ok())
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|t| last_definition(&t, name).map(str::to_string))
}

/// Where the root's database is, as its own rpm finds it: `%_dbpath` of
/// the root's macros, else the known places. Given explicitly to every
/// rpm call: rpm's compiled-in default differs between distributions
/// (Debian's rpm even uses ~/.rpmdb) and it creates an empty database
/// where it finds none.
fn dbpath(root: &Root) -> Result<String, BackendError> {
    // The last file that defines it wins.
    let from_macros = macro_files(root)
        .iter()
        .rev()
        .filter_map(|f| root.confined(f).ok())
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|t| parse_dbpath(&t));
    let candidates: Vec<String> = from_macros
        .into_iter()
        .chain(DBPATHS.iter().map(|d| d.to_string()))
        .collect();
    let has_db = |d: &String| {
        root.confined(Path::new(d))
            .is_ok_and(|dir| DBFILES.iter().any(|f| dir.join(f).is_file()))
    };
    match candidates.iter().find(|d| has_db(d)) {
        Some(d) => Ok(d.clone()),
        None => Err(BackendError::Failed(format!(
            "{}: no rpm database (looked in {}, the first from the root's %_dbpath if it sets one); nothing was prepared: give the root whose database it is",
            root.dir().display(),
            candidates.join(", ")
        ))),
    }
}

/// Debian's rpm warns on every install that it is not the system's package
/// manager unless given --force-debian, an option no other rpm knows.
fn force_debian() -> bool {
    static ASKED: OnceLock<bool> = OnceLock::new();
    *ASKED.get_or_init(|| {
        Command::new("rpm")
            .args(["--force-debian", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// VERSION_ID of the root's os-release: dnf's $releasever for a root it
/// cannot tell it of otherwise.
fn os_version(root: &Root) -> Option<String> {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|p| {
            let text = std::fs::read_to_string(root.host(Path::new(p))).ok()?;
            text.lines()
                .find_map(|l| l.strip_prefix("VERSION_ID="))
                .map(|v| v.trim_matches('"').to_string())
                .filter(|v| {
                    !v.is_empty()
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                })
        })
}

/// `rpm` with the root and its database.
fn rpm(root: &Root) -> Result<Command, BackendError> {
    rpm_tool("rpm", root)
}

/// One of rpm's programs (`rpm`, `rpmkeys`) with the root and its
/// database, whose gpg-pubkey entries are the keys the root trusts.
pub(super) fn rpm_tool(program: &str, root: &Root) -> Result<Command, BackendError> {
    let mut c = Command::new(program);
    if !root.is_live() {
        c.arg("--root").arg(root.dir());
    }
    c.arg("--dbpath").arg(dbpath(root)?).env("PATH", PATH);
    Ok(c)
}

fn run_query(mut c: Command, what: &str) -> Result<String, BackendError> {
    let out = c.output().map_err(|source| BackendError::Spawn {
        program: "rpm".into(),
        source,
    })?;
    if !out.status.success() {
        return Err(BackendError::Failed(format!(
            "rpm {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

const VERSION_FORMAT: &str = "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}";

/// Name -> version (`[EPOCH:]VERSION-RELEASE`) of every installed package.
pub fn installed_versions(root: &Root) -> Result<HashMap<String, String>, BackendError> {
    let mut c = rpm(root)?;
    c.args(["-qa", "--qf", &format!("%{{NAME}} {VERSION_FORMAT}\\n")]);
    Ok(parse_installed(&run_query(c, "-qa")?))
}

pub fn parse_installed(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, v)| (n.to_string(), v.trim().to_string()))
        .collect()
}

/// Instances of the update's packages (`targets`: name, version it brings)
/// at another version while the update's version is installed too
/// (`NAME VERSION NEVRA` lines): what a cut upgrade did not erase. Two
/// instances of one NEVRA cannot be erased one at a time and are left.
pub fn leftover_instances(text: &str, targets: &[(String, String)]) -> Vec<String> {
    let rows: Vec<(&str, &str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next()?))
        })
        .collect();
    let mut out = Vec::new();
    for (name, version) in targets {
        let mine: Vec<&(&str, &str, &str)> = rows.iter().filter(|r| r.0 == name).collect();
        if !mine.iter().any(|r| r.1 == version) {
            continue;
        }
        for r in &mine {
            let same = mine.iter().filter(|o| o.2 == r.2).count();
            if r.1 != version && same == 1 {
                out.push(r.2.to_string());
            }
        }
    }
    out.sort();
    out
}

/// Indexes into `targets` of packages recorded twice (or more) at the
/// update's version (`NAME VERSION NEVRA` lines).
pub fn doubled_targets(text: &str, targets: &[(String, String)]) -> Vec<usize> {
    targets
        .iter()
        .enumerate()
        .filter(|(_, (name, version))| {
            text.lines()
                .filter(|l| {
                    let mut f = l.split_whitespace();
                    f.next() == Some(name.as_str()) && f.next() == Some(version.as_str())
                })
                .count()
                > 1
        })
        .map(|(i, _)| i)
        .collect()
}

/// `rpm -qp` output (name, version, size in bytes, architecture, one per
/// line) to fields.
pub fn parse_query(text: &str) -> Result<PackageInfo, String> {
    let mut it = text.lines();
    let (Some(package), Some(version), Some(size), Some(arch)) =
        (it.next(), it.next(), it.next(), it.next())
    else {
        return Err("rpm -qp printed too little".into());
    };
    if package.is_empty() || version.is_empty() {
        return Err("no name or version".into());
    }
    let bytes: u64 = size
        .trim()
        .parse()
        .map_err(|_| format!("size {size:?} is not a number"))?;
    Ok(PackageInfo {
        package: package.to_string(),
        version: version.to_string(),
        installed_size: Some(bytes.div_ceil(1024)),
        arch: Some(arch.trim().to_string()).filter(|a| !a.is_empty()),
    })
}

/// What rpm installs on a machine: its own architecture, `noarch`, and on
/// x86_64 the 32-bit x86 family, as rpm's own rpmrc says (`arch_compat:
/// x86_64: amd64 em64t athlon noarch`, `athlon: i686`, down to i386):
/// multilib distributions install i686 libraries there.
pub fn compatible_arches(machine: &str) -> Vec<String> {
    let family: &[&str] = match machine {
        "x86_64" | "amd64" => &[
            "x86_64", "amd64", "em64t", "athlon", "i686", "i586", "i486", "i386",
        ],
        other => &[other],
    };
    family
        .iter()
        .chain(&["noarch"])
        .map(|a| a.to_string())
        .collect()
}

/// The root's machine: the first word of its /etc/rpm/platform
/// (`x86_64-redhat-linux`) when it has one, else this machine's.
fn machine(root: &Root) -> Result<String, BackendError> {
    let platform = root
        .confined(Path::new("/etc/rpm/platform"))
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok());
    match platform
        .as_deref()
        .and_then(|t| t.split('-').next())
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(m) => Ok(m.to_string()),
        None => super::machine(),
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
        Err(BackendError::WouldFail(format!(
            "rpm --test: this update cannot install on {}: {}",
            root.dir().display(),
            problems.join("; ")
        )))
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
        let dnf = |args: &[&str]| {
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
        };
        let run = |mut c: Command, what: &str| -> Result<(), BackendError> {
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
        };
        run(dnf(&["makecache"]), "makecache")?;
        let dest_arg = format!("--destdir={}", dest.display());
        let mut c = dnf(&["--downloadonly", &dest_arg]);
        match request {
            // `safe` was refused above.
            Request::Upgrade { .. } => {
                c.arg("upgrade");
            }
            Request::Install(pkgs) => {
                c.arg("install").args(pkgs);
            }
        }
        run(c, "--downloadonly")?;
        let files = super::downloaded(dest, self)?;
        let installed = installed_versions(root)?;
        let mut plan = Vec::new();
        for f in &files {
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
        Ok(Resolved {
            plan,
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Before,
    Installing,
    CleaningUp,
}

/// Turns rpm's `-v -h --percent` output (and dnf's transaction lines) into
/// progress events. Installing takes the first 90 %, removing the old
/// versions the rest.
struct Progress {
    total: u32,
    step: u32,
    phase: Phase,
    errors: Vec<String>,
    last: f32,
}

impl Progress {
    fn new(total: u32) -> Progress {
        Progress {
            total,
            step: 0,
            phase: Phase::Before,
            errors: Vec::new(),
            last: -1.0,
        }
    }

    fn percent(&mut self, pct: f32) -> Option<Event> {
        if self.total == 0 || !pct.is_finite() {
            return None;
        }
        let pct = pct.clamp(0.0, 100.0);
        let overall = match self.phase {
            Phase::Before => return None,
            Phase::Installing => {
                (self.step.saturating_sub(1) as f32 + pct / 100.0) * 90.0 / self.total as f32
            }
            Phase::CleaningUp => 90.0 + pct / 10.0,
        }
        .clamp(0.0, 100.0);
        if overall > self.last {
            self.last = overall;
            Some(Event::Progress { percent: overall })
        } else {
            None
        }
    }

    fn start(&mut self, verb: &str, name: &str) -> Event {
        self.step = (self.step + 1).min(self.total.max(1));
        Event::step(
            self.step,
            self.total.max(1),
            said::doing(verb).with(&[&name]),
        )
    }

    fn feed(&mut self, line: &str) -> Vec<Event> {
        let mut ev = Vec::new();
        let l = line.trim();
        if l.contains("scriptlet failed") || l.starts_with("error:") {
            let e = l
                .trim_start_matches("warning: ")
                .trim_start_matches("error: ");
            if e != "Failed dependencies:" {
                self.errors.push(e.to_string());
            }
            return ev;
        }
        match l {
            "Updating / installing..." => {
                self.phase = Phase::Installing;
                return ev;
            }
            "Cleaning up / removing..." => {
                self.phase = Phase::CleaningUp;
                ev.push(Event::message(REMOVING_OLD.text()));
                return ev;
            }
            _ => {}
        }
        // dnf: "  Installing       : hello-2.0-1.noarch      1/2".
        if let Some((verb, rest)) = l.split_once(" : ") {
            let verb = verb.trim();
            let pkg = rest.split_whitespace().next().unwrap_or("");
            if matches!(
                verb,
                "Installing" | "Upgrading" | "Reinstalling" | "Downgrading"
            ) {
                self.phase = Phase::Installing;
                ev.push(self.start(verb, pkg));
                ev.extend(self.percent(100.0));
            } else if matches!(verb, "Cleanup" | "Erasing" | "Obsoleting") {
                self.phase = Phase::CleaningUp;
            }
            return ev;
        }
        let Some((head, pct)) = l.split_once("%%") else {
            return ev;
        };
        let head = head.trim();
        let pct: Option<f32> = pct.trim().parse().ok();
        match (head, self.phase) {
            ("", _) => {}
            ("Verifying...", _) => ev.push(Event::message(said::VERIFYING.text())),
            ("Preparing...", _) => ev.push(Event::message(PREPARING.text())),
            (name, Phase::Installing) if self.total > 0 => ev.push(self.start("Installing", name)),
            (name, _) => ev.push(Event::message(said::REMOVING.with(&[&name]))),
        }
        if let Some(p) = pct {
            ev.extend(self.percent(p));
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn older_instances_of_the_update_are_leftovers() {
        let t = |n: &str, v: &str| (n.to_string(), v.to_string());
        let targets = vec![t("a", "2.0-1"), t("b", "2.0-1"), t("d", "2.0-1")];
        // a: cut between install and erase; b: done; c: not in the update;
        // d: the new one never got in, so the old one is all there is.
        let text = "a 2.0-1 a-2.0-1.noarch\na 1.0-1 a-1.0-1.noarch\nb 2.0-1 b-2.0-1.noarch\nc 1-1 c-1-1.noarch\nc 2-1 c-2-1.noarch\nd 1.0-1 d-1.0-1.noarch\n";
        assert_eq!(
            super::leftover_instances(text, &targets),
            vec!["a-1.0-1.noarch".to_string()]
        );
        // Two of one NEVRA: `rpm -e` cannot pick one of them.
        let same = "a 2.0-1 a-2.0-1.noarch\na 1.0-1 a-1.0-1.noarch\na 1.0-1 a-1.0-1.noarch\n";
        assert!(super::leftover_instances(same, &targets).is_empty());
        let twice = "a 2.0-1 a-2.0-1.noarch\nb 2.0-1 b-2.0-1.noarch\nb 2.0-1 b-2.0-1.noarch\n";
        assert_eq!(super::doubled_targets(twice, &targets), vec![1]);
        assert!(super::doubled_targets(text, &targets).is_empty());
    }

    use super::*;

    #[test]
    fn progress_from_percent_output() {
        let mut p = Progress::new(2);
        let mut all = Vec::new();
        for l in [
            "Verifying...                          %% 0.000000",
            "########################################",
            "Preparing...                          %% 0.000000",
            "Updating / installing...",
            "hello-2.0-1                           %% 0.000000",
            "%% 53.030300",
            "%% 100.000000",
            "world-1.0-1                           %% 0.000000",
            "%% 100.000000",
            "Cleaning up / removing...",
            "hello-1.0-1                           %% 0.000000",
            "%% 100.000000",
            "warning: %post(world-1.0-1.noarch) scriptlet failed, exit status 1",
        ] {
            all.extend(p.feed(l));
        }
        assert!(all.contains(&Event::step(
            2,
            2,
            said::doing("Installing").with(&[&"world-1.0-1"])
        )));
        assert!(all.contains(&Event::Progress { percent: 45.0 }));
        assert!(all.contains(&Event::Progress { percent: 100.0 }));
        assert_eq!(
            p.errors,
            ["%post(world-1.0-1.noarch) scriptlet failed, exit status 1"]
        );
    }

    #[test]
    fn progress_from_dnf_output() {
        let mut p = Progress::new(1);
        let ev = p.feed("  Upgrading        : hello-2.0-1.noarch                  1/2 ");
        assert_eq!(
            ev[0],
            Event::step(
                1,
                1,
                said::doing("Upgrading").with(&[&"hello-2.0-1.noarch"])
            )
        );
    }

    #[test]
    fn queries() {
        let f = parse_query("hello\n1:2.0-1\n5000\nnoarch\n").unwrap();
        assert_eq!(f.arch.as_deref(), Some("noarch"));
        assert_eq!(
            (f.package.as_str(), f.version.as_str()),
            ("hello", "1:2.0-1")
        );
        assert_eq!(f.installed_size, Some(5));
        assert!(parse_query("hello\n").is_err());
        assert_eq!(
            parse_dbpath("%_dbpath_rebuild x\n%_dbpath\t\t%{_var}/lib/rpm\n").as_deref(),
            Some("/var/lib/rpm")
        );
        assert_eq!(
            parse_dbpath("%_dbpath /a\n%_dbpath %{_usr}/lib/sysimage/rpm\n").as_deref(),
            Some("/usr/lib/sysimage/rpm")
        );
        assert_eq!(parse_dbpath("%_dbpath %(bash -c 'echo ~/.rpmdb')\n"), None);
        let v = parse_installed("a 1.0-1\nb 2:3-4\n");
        assert_eq!(v.get("b").map(String::as_str), Some("2:3-4"));
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
                    "[a-z]{1,6}-[0-9]-1 +%% [0-9]{1,3}\\.[0-9]{1,6}",
                    "%% -?[0-9]{1,4}(\\.[0-9]{0,6})?|%% NaN|%% inf",
                    Just("Updating / installing...".to_string()),
                    Just("Cleaning up / removing...".to_string()),
                    "  (Installing|Upgrading|Cleanup) +: [a-z]{1,5}-1-1.noarch +[0-9]/[0-9]",
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
        fn queries_never_panic(text in any::<String>()) {
            let _ = parse_query(&text);
            let _ = parse_installed(&text);
        }
    }
}
