//! The root's rpm: its database path, macros, machine and queries.

use super::*;

/// The files one of rpm's database backends keeps (sqlite, ndb, bdb): a
/// directory without any is no database, and rpm would create an empty one.
pub(super) const DBFILES: [&str; 3] = ["rpmdb.sqlite", "Packages.db", "Packages"];

/// The root's macro files that can set `%_dbpath`, in the order rpm reads
/// them (a later definition wins): its own, not the host's, which
/// `rpm --root R --eval` would read.
pub(super) fn macro_files(root: &Root) -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("/usr/lib/rpm/macros")];
    for dir in ["/usr/lib/rpm/macros.d", "/etc/rpm"] {
        let Ok(names) = crate::rooted::open_dir(root, Path::new(dir)).and_then(|d| d.names())
        else {
            continue;
        };
        let mut found: Vec<PathBuf> = names
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with("macros"))
            .map(|n| Path::new(dir).join(n))
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

/// A text file of the root's rpm configuration, opened inside the root;
/// None when it is missing, unreadable or over 1 MiB.
fn read_in(root: &Root, inside: &Path) -> Option<String> {
    crate::untrusted::read_text_in(root, inside, 1 << 20, false).ok()
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
pub(super) fn last_definition<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .rev()
        .filter_map(|l| l.trim_start().strip_prefix(name))
        .find(|rest| rest.starts_with([' ', '\t']))
        .map(str::trim)
}

/// The value of macro `name` as the root's own macro files define it
/// (the last file that does wins), read from the root: rpm given --root
/// would read the host's.
pub(crate) fn root_macro(root: &Root, name: &str) -> Option<String> {
    macro_files(root)
        .iter()
        .rev()
        .filter_map(|f| read_in(root, f))
        .find_map(|t| last_definition(&t, name).map(str::to_string))
}

/// Where the root's database is, as its own rpm finds it: `%_dbpath` of
/// the root's macros, else the known places. Given explicitly to every
/// rpm call: rpm's compiled-in default differs between distributions
/// (Debian's rpm even uses ~/.rpmdb) and it creates an empty database
/// where it finds none.
pub(super) fn dbpath(root: &Root) -> Result<String, BackendError> {
    // The last file that defines it wins.
    let from_macros = macro_files(root)
        .iter()
        .rev()
        .filter_map(|f| read_in(root, f))
        .find_map(|t| parse_dbpath(&t));
    let candidates: Vec<String> = from_macros
        .into_iter()
        .chain(DBPATHS.iter().map(|d| d.to_string()))
        .collect();
    let has_db = |d: &String| {
        crate::rooted::open_dir(root, Path::new(d)).is_ok_and(|dir| {
            DBFILES.iter().any(|f| {
                dir.lstat(f.as_ref())
                    .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
            })
        })
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
pub(super) fn force_debian() -> bool {
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
pub(super) fn os_version(root: &Root) -> Option<String> {
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
pub(super) fn rpm(root: &Root) -> Result<Command, BackendError> {
    rpm_tool("rpm", root)
}

/// One of rpm's programs (`rpm`, `rpmkeys`) with the root and its
/// database, whose gpg-pubkey entries are the keys the root trusts.
pub(crate) fn rpm_tool(program: &str, root: &Root) -> Result<Command, BackendError> {
    let mut c = Command::new(program);
    if !root.is_live() {
        c.arg("--root").arg(root.dir());
    }
    c.arg("--dbpath").arg(dbpath(root)?).env("PATH", PATH);
    Ok(c)
}

pub(super) fn run_query(mut c: Command, what: &str) -> Result<String, BackendError> {
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

pub(super) const VERSION_FORMAT: &str = "%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}";

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
pub(super) fn machine(root: &Root) -> Result<String, BackendError> {
    let platform = read_in(root, Path::new("/etc/rpm/platform"));
    match platform
        .as_deref()
        .and_then(|t| t.split('-').next())
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(m) => Ok(m.to_string()),
        None => crate::backend::machine(),
    }
}
