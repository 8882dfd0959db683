//! apt, as the dpkg backend uses it: the resolver and the repositories of
//! a Debian system. It plans (`apt-get -s`), downloads (`apt-get download`,
//! after `apt-get update` has checked the repositories' signatures),
//! simulates a set of hand-given .deb files against the root's database,
//! and replays a plan at boot from the downloaded files only
//! (`--no-download`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Action, BackendError, Planned, Request};
use crate::paths::Root;
use crate::privdir::PrivateDir;

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `apt-get` for `root`: its configuration, lists, cache and database, and
/// dpkg run on it. `extra` are dpkg options (the demo's, the tests').
pub fn apt_get(root: &Root, dpkg_args: &[String]) -> Command {
    let mut c = Command::new("apt-get");
    c.arg("-q");
    if !root.is_live() {
        let mut d = OsString::from("Dir=");
        d.push(root.dir());
        c.arg("-o").arg(d);
        let mut r = OsString::from("Dpkg::Options::=--root=");
        r.push(root.dir());
        c.arg("-o").arg(r);
        let mut l = OsString::from("Dpkg::Options::=--log=");
        l.push(root.host(Path::new("/var/log/dpkg.log")));
        c.arg("-o").arg(l);
    }
    for a in dpkg_args {
        c.arg("-o").arg(format!("Dpkg::Options::={a}"));
    }
    // Nobody can answer a question at boot, and nothing may be fetched
    // there; the sandbox user could not read a root-only update directory.
    c.args([
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "APT::Sandbox::User=root",
        "-o",
        "APT::Install-Recommends=false",
    ])
    .env("PATH", PATH)
    .env("DEBIAN_FRONTEND", "noninteractive")
    .env("LC_ALL", "C");
    c
}

pub fn available() -> bool {
    Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(mut c: Command, what: &str) -> Result<(String, String, bool), BackendError> {
    let out = c.output().map_err(|source| BackendError::Spawn {
        program: "apt-get".into(),
        source,
    })?;
    let _ = what;
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    ))
}

/// apt's `E:` and `W:` lines, and the unmet dependencies it lists.
fn problems(stdout: &str, stderr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_unmet = false;
    for l in stdout.lines().chain(stderr.lines()) {
        if l.starts_with("The following packages have unmet dependencies:") {
            in_unmet = true;
            continue;
        }
        if in_unmet && l.starts_with(' ') && l.contains(':') {
            out.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
            continue;
        }
        in_unmet = false;
        if let Some(e) = l.strip_prefix("E: ") {
            if !e.starts_with("Unable to correct problems") {
                out.push(e.to_string());
            }
        }
    }
    out
}

/// `apt-get -s` output ("Inst NAME [OLD] (NEW ...)", "Remv NAME [OLD]") to
/// the plan; also whether apt warned that essential packages go.
pub fn parse_simulation(text: &str) -> (Vec<Planned>, bool) {
    let mut plan = Vec::new();
    let mut essential = false;
    for l in text.lines() {
        if l.starts_with("WARNING: The following essential packages will be removed") {
            essential = true;
        }
        let (kind, rest) = match l.split_once(' ') {
            Some(("Inst", r)) => (Action::Install, r),
            Some(("Remv", r)) => (Action::Remove, r),
            _ => continue,
        };
        let mut words = rest.split_whitespace();
        let Some(name) = words.next() else { continue };
        let rest: Vec<&str> = words.collect();
        let old = rest
            .first()
            .and_then(|w| w.strip_prefix('['))
            .and_then(|w| w.strip_suffix(']'))
            .map(str::to_string);
        let new = rest
            .iter()
            .find_map(|w| w.strip_prefix('('))
            .map(str::to_string);
        let action = match (kind, &old) {
            (Action::Remove, _) => Action::Remove,
            (_, Some(_)) => Action::Upgrade,
            (_, None) => Action::Install,
        };
        plan.push(Planned {
            name: name.to_string(),
            action,
            from: old,
            to: if action == Action::Remove { None } else { new },
        });
    }
    (plan, essential)
}

/// Simulates the transaction: `files` (.deb paths) installed and `removals`
/// removed on `root`, against its database only (no repository: an update
/// brings all it needs). Returns the plan apt would carry out.
pub fn simulate(
    root: &Root,
    files: &[PathBuf],
    removals: &[String],
    use_repositories: bool,
) -> Result<Vec<Planned>, BackendError> {
    let scratch = Scratch::new()?;
    let mut c = apt_get(root, &[]);
    if !use_repositories {
        scratch.no_repositories(&mut c);
    }
    c.args(["-s", "install"]);
    for f in files {
        // apt takes a path argument as a file only when it has a slash.
        let p = if f.is_absolute() {
            f.clone()
        } else {
            Path::new(".").join(f)
        };
        c.arg(p);
    }
    c.args(removals.iter().map(|r| format!("{r}-")));
    let (out, err, ok) = run(c, "-s install")?;
    let would_fail = |what: Vec<String>| {
        BackendError::WouldFail(format!(
            "apt-get -s: this update cannot install on {}: {}",
            root.dir().display(),
            what.join("; ")
        ))
    };
    if !ok {
        let p = problems(&out, &err);
        return Err(would_fail(if p.is_empty() {
            vec![err.trim().to_string()]
        } else {
            p
        }));
    }
    let (plan, essential) = parse_simulation(&out);
    if essential {
        return Err(would_fail(
            vec!["it would remove essential packages".into()],
        ));
    }
    let unasked: Vec<String> = plan
        .iter()
        .filter(|p| p.action == Action::Remove && !removals.contains(&p.name))
        .map(|p| format!("it would remove {}", p.name))
        .collect();
    if !unasked.is_empty() {
        return Err(would_fail(unasked));
    }
    Ok(plan)
}

/// `prepare --upgrade` / `--install`: refreshes the lists (apt checks the
/// repositories' signatures), plans with apt's resolver, downloads every
/// package to install into `dest`. Returns the plan and the files.
pub fn resolve(
    root: &Root,
    request: &Request,
    dest: &Path,
) -> Result<(Vec<Planned>, Vec<PathBuf>), BackendError> {
    let mut c = apt_get(root, &[]);
    c.arg("update");
    let (out, err, ok) = run(c, "update")?;
    // apt-get update exits 0 with only a warning for some signature
    // problems: any W: or E: about a repository refuses the plan.
    let bad: Vec<&str> = err
        .lines()
        .chain(out.lines())
        .filter(|l| {
            (l.starts_with("E: ") || l.starts_with("W: "))
                && (l.contains("signature")
                    || l.contains("not signed")
                    || l.contains("NO_PUBKEY")
                    || l.contains("GPG error")
                    || l.starts_with("E: "))
        })
        .collect();
    if !ok || !bad.is_empty() {
        return Err(BackendError::Failed(format!(
            "apt-get update: {}; nothing was prepared",
            if bad.is_empty() {
                err.trim().to_string()
            } else {
                bad.join("; ")
            }
        )));
    }

    let mut c = apt_get(root, &[]);
    c.arg("-s");
    match request {
        Request::Upgrade { safe: true } => {
            c.arg("upgrade");
        }
        Request::Upgrade { safe: false } => {
            c.arg("full-upgrade");
        }
        Request::Install(pkgs) => {
            c.arg("install").args(pkgs);
        }
    }
    let (out, err, ok) = run(c, "-s")?;
    if !ok {
        let p = problems(&out, &err);
        return Err(BackendError::WouldFail(format!(
            "apt-get: this update cannot install on {}: {}",
            root.dir().display(),
            if p.is_empty() {
                err.trim().to_string()
            } else {
                p.join("; ")
            }
        )));
    }
    let (plan, essential) = parse_simulation(&out);
    if essential {
        return Err(BackendError::WouldFail(
            "apt-get: the plan would remove essential packages".into(),
        ));
    }

    let wanted: Vec<String> = plan
        .iter()
        .filter(|p| p.action != Action::Remove)
        .filter_map(|p| p.to.as_ref().map(|v| format!("{}={v}", p.name)))
        .collect();
    if wanted.is_empty() {
        return Ok((plan, Vec::new()));
    }
    let mut c = apt_get(root, &[]);
    c.current_dir(dest).arg("download").args(&wanted);
    let (_, err, ok) = run(c, "download")?;
    if !ok {
        return Err(BackendError::Failed(format!(
            "apt-get download: {}; nothing was prepared",
            err.trim()
        )));
    }
    let files = super::downloaded(dest, &super::dpkg::KIND)?;
    Ok((plan, files))
}

/// The boot-time replay: the planned packages at their planned versions and
/// the planned removals, from `archives` only.
pub fn replay(root: &Root, plan: &[Planned], archives: &Path, dpkg_args: &[String]) -> Command {
    let mut c = apt_get(root, dpkg_args);
    let mut a = OsString::from("Dir::Cache::archives=");
    a.push(archives);
    a.push("/");
    c.arg("-o")
        .arg(a)
        .args([
            "-o",
            &format!("APT::Status-Fd={}", super::process::PROGRESS_FD),
        ])
        .args(["--no-download", "-y", "install"]);
    for p in plan {
        match (&p.action, &p.to) {
            (Action::Remove, _) => {
                c.arg(format!("{}-", p.name));
            }
            (_, Some(v)) => {
                c.arg(format!("{}={v}", p.name));
            }
            (_, None) => {}
        }
    }
    c
}

/// An empty configuration of sources, for a simulation against the
/// database alone; removed when dropped.
struct Scratch(PrivateDir);

impl Scratch {
    fn new() -> Result<Scratch, BackendError> {
        let s = Scratch(super::private_dir("apt")?);
        let at = |sub: &str| s.0.path().join(sub);
        for d in ["lists/partial", "parts", "archives/partial"] {
            std::fs::create_dir_all(at(d)).map_err(|source| BackendError::Read {
                path: at(d),
                source,
            })?;
        }
        std::fs::write(at("sources.list"), b"").map_err(|source| BackendError::Read {
            path: at("sources.list"),
            source,
        })?;
        Ok(s)
    }

    fn no_repositories(&self, c: &mut Command) {
        let o = |k: &str, sub: &str| {
            let mut v = OsString::from(k);
            v.push(self.0.path().join(sub));
            v
        };
        c.arg("-o")
            .arg(o("Dir::Etc::SourceList=", "sources.list"))
            .arg("-o")
            .arg(o("Dir::Etc::SourceParts=", "parts"))
            .arg("-o")
            .arg(o("Dir::State::Lists=", "lists"))
            .arg("-o")
            .arg(o("Dir::Cache::archives=", "archives"))
            .args([
                "-o",
                "Dir::Cache::pkgcache=",
                "-o",
                "Dir::Cache::srcpkgcache=",
            ]);
    }
}

/// apt's `pmstatus:PKG:PERCENT:TEXT` lines (APT::Status-Fd) to progress.
pub fn parse_status(line: &str) -> Option<(f32, String)> {
    let rest = line.strip_prefix("pmstatus:")?;
    let mut it = rest.splitn(3, ':');
    let _pkg = it.next()?;
    let pct: f32 = it.next()?.parse().ok().filter(|p: &f32| p.is_finite())?;
    let text = it.next().unwrap_or("").trim().to_string();
    Some((pct.clamp(0.0, 100.0), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_to_plan() {
        let (plan, essential) = parse_simulation(
            "NOTE: This is only a simulation!\nInst libhello (2.0 localhost [all])\nInst hello [1.0] (2.0 localhost [all])\nRemv oldlib [1.0]\nConf libhello (2.0 localhost [all])\n",
        );
        assert!(!essential);
        assert_eq!(plan.len(), 3);
        assert_eq!(plan[0].action, Action::Install);
        assert_eq!(plan[0].to.as_deref(), Some("2.0"));
        assert_eq!(plan[1].action, Action::Upgrade);
        assert_eq!(plan[1].from.as_deref(), Some("1.0"));
        assert_eq!(plan[2].action, Action::Remove);
        assert_eq!(plan[2].to, None);
    }

    #[test]
    fn unmet_dependencies_are_named() {
        let p = problems(
            "The following packages have unmet dependencies:\n hello : Depends: libhello (>= 2.0) but it is not installable\n",
            "E: Unable to correct problems, you have held broken packages.\n",
        );
        assert_eq!(
            p,
            ["hello : Depends: libhello (>= 2.0) but it is not installable"]
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(
            parse_status("pmstatus:hello:33.3333:Unpacking hello (amd64)"),
            Some((33.3333, "Unpacking hello (amd64)".into()))
        );
        assert_eq!(parse_status("pmstatus:x:NaN:y"), None);
        assert_eq!(parse_status("dlstatus:x:1:y"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = parse_simulation(&text);
            let _ = problems(&text, &text);
            if let Some((p, _)) = parse_status(&text) {
                prop_assert!((0.0..=100.0).contains(&p));
            }
        }
    }
}
