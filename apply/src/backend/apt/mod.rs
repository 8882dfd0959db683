//! apt, as the dpkg backend uses it: the resolver and the repositories of
//! a Debian system. It plans (`apt-get -s`), downloads (`apt-get download`,
//! after `apt-get update` has checked the repositories' signatures),
//! simulates a set of hand-given .deb files against the root's database,
//! and replays a plan at boot from the downloaded files only
//! (`--no-download`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Action, BackendError, Planned, Request, Resolved};
use crate::paths::Root;
use crate::privdir::PrivateDir;

mod replay;
use replay::Scratch;
pub use replay::{parse_status, replay};

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// apt-get for a root, with the private configuration it reads (removed
/// when dropped).
pub struct Apt {
    pub cmd: Command,
    /// What the root's sources say, as read for this run.
    pub sources: Sources,
    _config: PrivateDir,
}

/// `apt-get` for `root`: its configuration, sources, keyrings, lists, cache
/// and database, never the host's, and dpkg run on it. `dpkg_args` are
/// dpkg options (the demo's, the tests').
///
/// apt reads its configuration files before its command line, so `-o
/// Dir=` alone still reads the host's apt.conf.d: `APT_CONFIG`, read
/// first, sets `Dir` to the root, and apt then reads the root's
/// apt.conf.d and apt.conf. It reads `signed-by=` paths as they are, on
/// the host: it gets a copy of the root's sources with those made paths
/// inside the root.
pub fn apt_get(root: &Root, dpkg_args: &[String]) -> Result<Apt, BackendError> {
    let config = super::private_dir("apt-config")?;
    let sources = root_sources(root, config.path())?;
    let conf = config.path().join("apt.conf");
    write_file(&conf, &dir_setting(root)?)?;
    let mut c = Command::new("apt-get");
    c.env("APT_CONFIG", &conf).arg("-q");
    let mut o = |key: &str, value: &Path| {
        let mut v = OsString::from(key);
        v.push(value);
        c.arg("-o").arg(v);
    };
    o("Dir::Etc::SourceList=", &config.path().join("sources.list"));
    o(
        "Dir::Etc::SourceParts=",
        &config.path().join("sources.list.d"),
    );
    if !root.is_live() {
        let mut d = OsString::from("Dir=");
        d.push(root.dir());
        c.arg("-o").arg(d);
        let mut r = OsString::from("Dpkg::Options::=--root=");
        r.push(root.dir());
        c.arg("-o").arg(r);
        let mut l = OsString::from("Dpkg::Options::=--log=");
        l.push(super::dpkg::log_in(root));
        c.arg("-o").arg(l);
        // apt's own logs (the planner's eipp) through the root's links
        // resolved inside it; else in the private directory, not kept.
        let logs = crate::rooted::resolved(root, Path::new("/var/log/apt")).unwrap_or_else(|e| {
            tracing::warn!("/var/log/apt: {e}; apt's own logs are not kept");
            config.path().to_path_buf()
        });
        let mut d = OsString::from("Dir::Log=");
        d.push(logs);
        c.arg("-o").arg(d);
    }
    for a in dpkg_args {
        c.arg("-o").arg(format!("Dpkg::Options::={a}"));
    }
    // Nobody can answer a question at boot. apt's methods keep their
    // sandbox user (_apt): where it cannot reach a directory (a private
    // download directory), apt itself runs that download as root and says
    // so in a notice.
    c.args([
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        "-o",
        "APT::Install-Recommends=false",
    ])
    .env("PATH", PATH)
    .env("DEBIAN_FRONTEND", "noninteractive")
    .env("LC_ALL", "C");
    Ok(Apt {
        cmd: c,
        sources,
        _config: config,
    })
}

impl Apt {
    /// The command, and the configuration it reads, to keep until it ended.
    pub fn into_parts(self) -> (Command, PrivateDir) {
        (self.cmd, self._config)
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), BackendError> {
    std::fs::write(path, text).map_err(|source| BackendError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `Dir "ROOT/";` for APT_CONFIG; a root path apt's syntax cannot quote is
/// refused.
fn dir_setting(root: &Root) -> Result<String, BackendError> {
    let dir = root
        .dir()
        .to_str()
        .filter(|d| !d.contains(['"', '\n', '{', '}', ';']));
    match dir {
        Some(d) => Ok(format!("Dir \"{}/\";\n", d.trim_end_matches('/'))),
        None => Err(BackendError::Failed(format!(
            "{}: apt cannot be given this root's path (quotes, braces, semicolons or a line break in it); use a root path without them",
            root.dir().display()
        ))),
    }
}

/// What the root's sources say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sources {
    /// `deb` entries that are enabled.
    pub entries: usize,
    /// The files with an entry apt takes without a signature (trusted=yes).
    pub unsigned: Vec<String>,
}

/// More than this is not a sources file.
const SOURCES_MAX: u64 = 1 << 20;

/// Copies the root's sources.list and sources.list.d/*.{list,sources} into
/// `dest`, `signed-by` paths made the root's; what they say.
fn root_sources(root: &Root, dest: &Path) -> Result<Sources, BackendError> {
    let parts = dest.join("sources.list.d");
    std::fs::create_dir(&parts).map_err(|source| BackendError::Read {
        path: parts.clone(),
        source,
    })?;
    let mut files = vec![(
        PathBuf::from("/etc/apt/sources.list"),
        dest.join("sources.list"),
    )];
    let dir = Path::new("/etc/apt/sources.list.d");
    if let Ok(names) = crate::rooted::open_dir(root, dir).and_then(|d| d.names()) {
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".list") || n.ends_with(".sources"))
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|n| (dir.join(&n), parts.join(&n))));
    }
    let mut all = Sources::default();
    for (inside, copy) in files {
        let host = root.host(&inside);
        let text = match crate::untrusted::read_text_in(root, &inside, SOURCES_MAX, false) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => continue,
            Err(e) => {
                let source = std::io::Error::other(e.without_path());
                return Err(BackendError::Read { path: host, source });
            }
        };
        let deb822 = inside.extension().is_some_and(|e| e == "sources");
        let (text, found) = rewrite_sources(&text, deb822, &|p| {
            crate::rooted::in_existing_dir(root, Path::new(p))
                .map_err(|e| format!("{}: signed-by {p}: {e}", host.display()))
        })
        .map_err(BackendError::Failed)?;
        all.entries += found.entries;
        if !found.unsigned.is_empty() {
            all.unsigned.push(inside.display().to_string());
        }
        write_file(&copy, &text)?;
    }
    Ok(all)
}

/// One sources file with each `signed-by` path `in_root` maps it (the
/// root's keyring by its host path); the entries it has. One-line format,
/// or deb822 (`.sources`) with `deb822`.
pub fn rewrite_sources(
    text: &str,
    deb822: bool,
    in_root: &dyn Fn(&str) -> Result<PathBuf, String>,
) -> Result<(String, Sources), String> {
    let mut found = Sources::default();
    let map_paths = |value: &str| -> Result<String, String> {
        value
            .split(',')
            .map(|v| match v.trim() {
                p if p.starts_with('/') => in_root(p).map(|h| h.display().to_string()),
                other => Ok(other.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(","))
    };
    let mut out = String::new();
    if deb822 {
        for stanza in text.split("\n\n") {
            let field = |k: &str| {
                stanza.lines().find_map(|l| {
                    let (key, v) = l.split_once(':')?;
                    key.trim()
                        .eq_ignore_ascii_case(k)
                        .then(|| v.trim().to_string())
                })
            };
            let enabled = field("Enabled").is_none_or(|v| v != "no");
            if enabled && field("Types").is_some_and(|t| t.split_whitespace().any(|w| w == "deb")) {
                found.entries += 1;
                if field("Trusted").is_some_and(|v| v == "yes") {
                    found.unsigned.push(String::new());
                }
            }
            for l in stanza.lines() {
                match l.split_once(':') {
                    Some((k, v))
                        if k.trim().eq_ignore_ascii_case("Signed-By")
                            && v.trim().starts_with('/') =>
                    {
                        out += &format!("{k}: {}\n", map_paths(v.trim())?);
                    }
                    _ => out += &format!("{l}\n"),
                }
            }
            out += "\n";
        }
        return Ok((out, found));
    }
    for l in text.lines() {
        let line = l.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb")
            .filter(|r| r.starts_with([' ', '\t']))
        else {
            out += &format!("{l}\n");
            continue;
        };
        found.entries += 1;
        let rest = rest.trim_start();
        let Some((opts, tail)) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
            out += &format!("{line}\n");
            continue;
        };
        let mut mapped = Vec::new();
        for o in opts.split_whitespace() {
            match o.split_once('=') {
                Some(("signed-by", v)) => mapped.push(format!("signed-by={}", map_paths(v)?)),
                Some(("trusted", "yes")) => {
                    found.unsigned.push(String::new());
                    mapped.push(o.to_string());
                }
                _ => mapped.push(o.to_string()),
            }
        }
        out += &format!("deb [{}] {}\n", mapped.join(" "), tail.trim());
    }
    Ok((out, found))
}

pub fn available() -> bool {
    Command::new("apt-get")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs apt-get to its end (its configuration removed after).
fn run(mut apt: Apt) -> Result<(String, String, bool), BackendError> {
    let out = apt.cmd.output().map_err(|source| BackendError::Spawn {
        program: "apt-get".into(),
        source,
    })?;
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
    let mut apt = apt_get(root, &[])?;
    if !use_repositories {
        scratch.no_repositories(&mut apt.cmd);
    }
    let c = &mut apt.cmd;
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
    let (out, err, ok) = run(apt)?;
    let would_fail =
        |what: Vec<String>| BackendError::cannot_install("apt-get -s", root, &what.join("; "));
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

/// What `apt-get update` may say and still be trusted: each of these
/// warnings is about the configuration or a keyring's format, not about
/// what was fetched or whether it verified. Every other `W:` or `E:` line
/// refuses the plan.
pub const HARMLESS_WARNINGS: [&str; 3] = [
    // The same index listed in two sources files.
    "is configured multiple times in",
    // Signature verified, with a key in the deprecated keyring.
    "Key is stored in legacy trusted.gpg keyring",
    // A foreign architecture the repository does not carry.
    "doesn't support architecture",
];

/// The `W:` and `E:` lines of `apt-get update` that refuse the plan.
pub fn refusing_lines<'a>(out: &'a str, err: &'a str) -> Vec<&'a str> {
    err.lines()
        .chain(out.lines())
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .filter(|l| !(l.starts_with("W: ") && HARMLESS_WARNINGS.iter().any(|h| l.contains(h))))
        .collect()
}

/// `apt-get update` for `root`, refused on any warning or error that is
/// not harmless (it exits 0 on some signature problems).
fn update(root: &Root) -> Result<Sources, BackendError> {
    let mut apt = apt_get(root, &[])?;
    let sources = apt.sources.clone();
    if sources.entries == 0 {
        return Err(BackendError::Failed(format!(
            "no repository configured in {}{{,.d}}; nothing was prepared: add one there (a deb line, or a .sources file), or give the package files",
            root.host(Path::new("/etc/apt/sources.list")).display()
        )));
    }
    apt.cmd.arg("update");
    let (out, err, ok) = run(apt)?;
    let bad = refusing_lines(&out, &err);
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
    Ok(sources)
}

/// What checked the repositories, as it was: no signature checks an
/// entry marked trusted=yes.
fn checked_by(sources: &Sources) -> String {
    if sources.unsigned.is_empty() {
        return "apt-get (the repositories' signed Release files and the packages' checksums)"
            .into();
    }
    format!(
        "apt-get (the packages' checksums from the repositories' Release files; not signatures: {} marks a repository trusted=yes, which apt takes unsigned)",
        sources.unsigned.join(", ")
    )
}

/// `prepare --upgrade` / `--install`: refreshes the lists (apt checks the
/// repositories' signatures), plans with apt's resolver, downloads every
/// package to install into `dest`.
pub fn resolve(root: &Root, request: &Request, dest: &Path) -> Result<Resolved, BackendError> {
    let sources = update(root)?;
    let mut apt = apt_get(root, &[])?;
    let c = &mut apt.cmd;
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
    let (out, err, ok) = run(apt)?;
    if !ok {
        let p = problems(&out, &err);
        let why = if p.is_empty() {
            err.trim().to_string()
        } else {
            p.join("; ")
        };
        return Err(BackendError::cannot_install("apt-get", root, &why));
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
    let checked_by = checked_by(&sources);
    if wanted.is_empty() {
        return Ok(Resolved {
            plan,
            files: Vec::new(),
            checked_by,
        });
    }
    let mut apt = apt_get(root, &[])?;
    apt.cmd.current_dir(dest).arg("download").args(&wanted);
    let (_, err, ok) = run(apt)?;
    if !ok {
        return Err(BackendError::Failed(format!(
            "apt-get download: {}; nothing was prepared",
            err.trim()
        )));
    }
    let files = super::downloaded(dest, &super::dpkg::KIND)?;
    Ok(Resolved {
        plan,
        files,
        checked_by,
    })
}

#[cfg(test)]
mod tests;
