//! The root's pacman: its configuration, database and keyring, and the program run with them.

use super::*;

/// "hello-2.0-1" (a directory in local/) -> ("hello", "2.0-1").
pub(super) fn split_entry(entry: &str) -> Option<(&str, &str)> {
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
pub(super) fn dbpath(root: &Root) -> Result<PathBuf, BackendError> {
    Ok(conf_values(&config_text(root)?, "DBPath")
        .pop()
        .map_or_else(|| PathBuf::from(DBPATH), PathBuf::from))
}

/// The keyring directory inside the root: the root's pacman.conf GPGDir,
/// else pacman's default.
pub(super) fn gpgdir(root: &Root) -> Result<PathBuf, BackendError> {
    Ok(conf_values(&config_text(root)?, "GPGDir")
        .pop()
        .map_or_else(|| PathBuf::from(GPGDIR), PathBuf::from))
}

/// The local database's entries, sorted.
pub(super) fn local_entries(root: &Root) -> Result<Vec<String>, BackendError> {
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

/// More than this is not a pacman.conf.
const CONFIG_MAX: u64 = 1 << 20;

/// The root's own pacman.conf, never through a link that could lead out
/// of an image's root; `None` when it has none.
pub(super) fn own_config(root: &Root) -> Option<PathBuf> {
    crate::rooted::existing_file(root, Path::new(CONFIG))
}

/// The root's pacman.conf as text; empty when it has none (the defaults).
pub(super) fn config_text(root: &Root) -> Result<String, BackendError> {
    match crate::untrusted::read_text_in(root, Path::new(CONFIG), CONFIG_MAX, false) {
        Ok(text) => Ok(text),
        Err(e) if e.is_not_found() => Ok(String::new()),
        Err(e) => Err(BackendError::Read {
            path: root.host(Path::new(CONFIG)),
            source: std::io::Error::other(e.without_path()),
        }),
    }
}

/// What the root's pacman installs: its pacman.conf's Architecture (`auto`
/// or none: the machine's, as pacman says) and `any`.
pub(super) fn architectures(root: &Root) -> Result<Vec<String>, BackendError> {
    let mut arches = vec!["any".to_string()];
    for a in conf_values(&config_text(root)?, "Architecture") {
        arches.push(if a == "auto" {
            crate::backend::machine()?
        } else {
            a
        });
    }
    if arches.len() == 1 {
        arches.push(crate::backend::machine()?);
    }
    Ok(arches)
}

/// pacman with every path inside the root; dropping it removes the
/// private directory of the minimal configuration, if one was written.
pub(super) struct Pacman {
    pub(super) cmd: Command,
    pub(super) _config: Option<crate::privdir::PrivateDir>,
}

/// `cache`: where -Sw downloads to; else the root's own cache.
pub(super) fn pacman_with(root: &Root, cache: Option<&Path>) -> Result<Pacman, BackendError> {
    let mut cmd = Command::new("pacman");
    let in_root = |p: &str| root.host(Path::new(p));
    let own = own_config(root);
    let mut temp = None;
    let config = match own {
        Some(own) => own,
        None => {
            let dir = crate::backend::private_dir("pacman")?;
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

pub(super) fn pacman(root: &Root) -> Result<Pacman, BackendError> {
    pacman_with(root, None)
}

/// Runs a prepared pacman; its output, or its error lines on failure.
pub(super) fn output(mut p: Pacman, what: &str) -> Result<String, BackendError> {
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
