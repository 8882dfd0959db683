//! Package signatures of the rpm backend: each package's own OpenPGP
//! signature checked with `rpmkeys --checksig` against the gpg-pubkey
//! entries of the root's rpm database (what `rpm --root R --import KEY`
//! put there), at `prepare` and again at boot.
//!
//! Nothing else checks them on every system: dnf5's `--downloadonly` does
//! not (dnf5 issue 1985), and `rpm -U` checks what `%_pkgverify_level`
//! says, digests only by default.

use std::path::{Path, PathBuf};

use super::rpm::{root_macro, rpm_tool};
use super::BackendError;
use crate::paths::Root;

/// What rpmkeys found of one package's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Signed, and every signature verifies with a key of the root.
    Signed,
    /// No signature; its digests verify.
    Unsigned,
    /// A signature rpmkeys could not verify (`NOKEY`: no such key in the
    /// root's database, `NOTTRUSTED`, `NOTFOUND`); rpmkeys's line.
    Untrusted(String),
    /// A signature or digest that does not match: the file was altered or
    /// damaged; rpmkeys's line.
    Bad(String),
}

/// What rpm prints after `: ` for each signature and digest it checks.
const RESULTS: [&str; 5] = ["OK", "BAD", "NOKEY", "NOTTRUSTED", "NOTFOUND"];

/// The result word of one line of `rpmkeys --checksig -v` and what it is
/// about: `Header V4 RSA/SHA256 Signature, key ID 96d39e09: NOKEY`. The
/// first `: ` followed by a result word, since newer rpm writes a key
/// fingerprint after a colon too.
fn result_of(line: &str) -> Option<(&str, &'static str)> {
    let mut from = 0;
    while let Some(at) = line[from..].find(": ").map(|i| i + from) {
        let rest = &line[at + 2..];
        let word = rest.split([' ', '(']).next().unwrap_or("");
        if let Some(r) = RESULTS.iter().find(|r| **r == word) {
            return Some((&line[..at], r));
        }
        from = at + 2;
    }
    None
}

/// `rpmkeys --checksig -v` output for one package to what it says: a bad
/// line first, then a signature that did not verify, then a signature.
pub fn parse_checksig(text: &str) -> Checked {
    let mut signed = false;
    let mut untrusted = None;
    for l in text.lines().map(str::trim) {
        let Some((what, result)) = result_of(l) else {
            continue;
        };
        if result == "BAD" {
            return Checked::Bad(l.to_string());
        }
        if what.to_ascii_lowercase().contains("signature") {
            match result {
                "OK" => signed = true,
                _ => {
                    untrusted.get_or_insert_with(|| l.to_string());
                }
            }
        }
    }
    match (untrusted, signed) {
        (Some(l), _) => Checked::Untrusted(l),
        (None, true) => Checked::Signed,
        (None, false) => Checked::Unsigned,
    }
}

/// Runs rpmkeys on one file against the root's keys.
fn checksig(root: &Root, file: &Path) -> Result<Checked, BackendError> {
    let mut c = rpm_tool("rpmkeys", root)?;
    c.args(["--checksig", "-v", "--"])
        .arg(file)
        .env("LC_ALL", "C");
    let out = c.output().map_err(|source| BackendError::Spawn {
        program: "rpmkeys".into(),
        source,
    })?;
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    match parse_checksig(&text) {
        // It failed and said nothing we know: not a package it can read.
        Checked::Signed | Checked::Unsigned if !out.status.success() => Ok(Checked::Bad(
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("rpmkeys --checksig failed")
                .to_string(),
        )),
        checked => Ok(checked),
    }
}

/// Whether the root's rpm requires a signature of every package it
/// installs: `%_pkgverify_level` `signature` or `all` in its macros.
fn pkgverify_requires(root: &Root) -> bool {
    matches!(
        root_macro(root, "%_pkgverify_level").as_deref(),
        Some("signature" | "all")
    )
}

/// The directories dnf reads repositories from, inside the root.
const REPOS_DIRS: [&str; 3] = [
    "/etc/yum.repos.d",
    "/etc/yum/repos.d",
    "/etc/distro.repos.d",
];

/// An INI file's `[section]`s and their `key=value` lines.
fn ini_sections(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for l in text.lines().map(str::trim) {
        if l.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            out.push((name.trim().to_string(), Vec::new()));
        } else if let (Some((k, v)), Some(last)) = (l.split_once('='), out.last_mut()) {
            last.1
                .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// dnf's booleans; `None` for what it would not take.
fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// The last value of one of `keys` in a section, as a boolean.
fn flag(lines: &[(String, String)], keys: &[&str]) -> Option<bool> {
    lines
        .iter()
        .rev()
        .find(|(k, _)| keys.contains(&k.as_str()))
        .map(|(_, v)| boolean(v).unwrap_or(true))
}

/// Whether dnf checks the signatures of the packages of these repositories
/// (`dnf_conf`: the root's dnf.conf; `repos`: its .repo files): any enabled
/// repository with `gpgcheck` (dnf5: `pkg_gpgcheck`) on. Unset, the
/// `[main]` value decides, else on, as the distributions ship it: the
/// default fails closed. So does a value dnf would not take, and finding
/// no repository at all.
pub fn repositories_require(dnf_conf: &str, repos: &[String]) -> bool {
    const KEYS: [&str; 2] = ["gpgcheck", "pkg_gpgcheck"];
    let main = ini_sections(dnf_conf)
        .iter()
        .filter(|(name, _)| name == "main")
        .find_map(|(_, lines)| flag(lines, &KEYS))
        .unwrap_or(true);
    let enabled: Vec<bool> = repos
        .iter()
        .flat_map(|t| ini_sections(t))
        .filter(|(_, lines)| flag(lines, &["enabled"]).unwrap_or(true))
        .map(|(_, lines)| flag(&lines, &KEYS).unwrap_or(main))
        .collect();
    enabled.is_empty() || enabled.contains(&true)
}

/// The root's dnf.conf and .repo files, as [`repositories_require`] takes
/// them; read from the root, never through a link out of it.
fn root_repositories(root: &Root) -> (String, Vec<String>) {
    let read = |p: &Path| crate::untrusted::read_text_in(root, p, 1 << 20, false).ok();
    let conf = read(Path::new("/etc/dnf/dnf.conf")).unwrap_or_default();
    let mut repos = Vec::new();
    for dir in REPOS_DIRS {
        let Ok(found) = crate::rooted::open_dir(root, Path::new(dir)).and_then(|d| d.names())
        else {
            continue;
        };
        let mut names: Vec<PathBuf> = found
            .into_iter()
            .map(|n| Path::new(dir).join(n))
            .filter(|p| p.extension().is_some_and(|e| e == "repo"))
            .collect();
        names.sort();
        repos.extend(names.iter().filter_map(|p| read(p)));
    }
    (conf, repos)
}

/// Why a signature is required on `root`, or `None` where only one that
/// is present must verify.
fn required_by(root: &Root, from_repositories: bool) -> Option<&'static str> {
    if pkgverify_requires(root) {
        return Some("the root's rpm macros set %_pkgverify_level to signature or all");
    }
    if from_repositories {
        let (conf, repos) = root_repositories(root);
        if repositories_require(&conf, &repos) {
            // dnf does not say which repository a downloaded file came
            // from: the strictest enabled one decides.
            return Some("a repository of the root has gpgcheck on");
        }
    }
    None
}

/// `prepare`: checks every file, refusing a bad signature always, and a
/// missing or unverified one where required; true for each file the boot
/// must check again.
pub fn check(
    root: &Root,
    files: &[PathBuf],
    from_repositories: bool,
) -> Result<Vec<bool>, BackendError> {
    let why = required_by(root, from_repositories);
    let import = format!(
        "import the signer's key into the root's rpm database if it is to be trusted (rpm --root {} --import KEY)",
        root.dir().display()
    );
    for f in files {
        let refuse = |what: String, todo: &str| {
            Err(BackendError::Failed(format!(
                "{}: {what}; nothing was prepared: {todo}",
                f.display()
            )))
        };
        match (checksig(root, f)?, why) {
            (Checked::Signed, _) | (Checked::Unsigned, None) => {}
            (Checked::Bad(l), _) => refuse(
                format!("the package does not verify (rpmkeys: {l})"),
                "it was altered or damaged, get it again from its source",
            )?,
            (Checked::Untrusted(l), _) => refuse(
                format!("its signature does not verify with the keys of the root (rpmkeys: {l})"),
                &import,
            )?,
            (Checked::Unsigned, Some(why)) => refuse(
                format!("the package is not signed, and {why}"),
                "give a signed package",
            )?,
        }
    }
    Ok(vec![why.is_some(); files.len()])
}

/// At boot, on the verified descriptors: each must be signed by a key the
/// root trusts now (one removed since prepare no longer counts).
pub fn verify(root: &Root, files: &[PathBuf]) -> Result<(), BackendError> {
    for f in files {
        let said = match checksig(root, f)? {
            Checked::Signed => continue,
            Checked::Unsigned => "not signed".to_string(),
            Checked::Untrusted(l) | Checked::Bad(l) => format!("rpmkeys: {l}"),
        };
        return Err(BackendError::Failed(format!(
            "{}: the manifest requires its package signature, which does not verify with the keys of the root ({said}); nothing was installed: import the signer's key into the root's rpm database or prepare the update again",
            f.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_rpmkeys_says() {
        let ok = "a.rpm:\n    Header V4 RSA/SHA512 Signature, key ID 96d39e09: OK\n    Header SHA256 digest: OK\n    Payload SHA256 digest: OK\n";
        assert_eq!(parse_checksig(ok), Checked::Signed);
        let nokey = ok.replace("96d39e09: OK", "96d39e09: NOKEY");
        assert_eq!(
            parse_checksig(&nokey),
            Checked::Untrusted("Header V4 RSA/SHA512 Signature, key ID 96d39e09: NOKEY".into())
        );
        let unsigned = "a.rpm:\n    Header SHA256 digest: OK\n    MD5 digest: OK\n";
        assert_eq!(parse_checksig(unsigned), Checked::Unsigned);
        let bad = format!("{ok}    Payload SHA256 digest: BAD (Expected 1 != 2)\n");
        assert_eq!(
            parse_checksig(&bad),
            Checked::Bad("Payload SHA256 digest: BAD (Expected 1 != 2)".into())
        );
        // rpm 4.19's wording: a fingerprint after a colon, lower case.
        let fpr =
            "    Header OpenPGP V4 RSA/SHA256 signature, key fingerprint: 0ae728f3: NOTTRUSTED\n";
        assert!(matches!(parse_checksig(fpr), Checked::Untrusted(_)));
        let odd = "    Payload SHA256 digest: BAD (package: tag 5092: invalid hex)\n";
        assert!(matches!(parse_checksig(odd), Checked::Bad(_)));
    }

    #[test]
    fn which_repositories_require_signatures() {
        let repo = |s: &str| vec![s.to_string()];
        assert!(!repositories_require(
            "",
            &repo("[a]\nbaseurl=x\ngpgcheck=0\n")
        ));
        assert!(
            repositories_require("", &repo("[a]\nbaseurl=x\n")),
            "unset: on"
        );
        assert!(!repositories_require(
            "[main]\ngpgcheck=False\n",
            &repo("[a]\nbaseurl=x\n")
        ));
        assert!(repositories_require(
            "",
            &repo("[a]\ngpgcheck=0\n[b]\ngpgcheck = 1\n")
        ));
        assert!(!repositories_require(
            "",
            &repo("[a]\ngpgcheck=0\n[b]\nenabled=0\ngpgcheck=1\n")
        ));
        assert!(repositories_require(
            "",
            &repo("[a]\n# gpgcheck=0\npkg_gpgcheck=true\n")
        ));
        assert!(repositories_require("", &[]), "none found: on");
        assert!(repositories_require("", &repo("[a]\ngpgcheck=maybe\n")));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = parse_checksig(&text);
            let _ = repositories_require(&text, std::slice::from_ref(&text));
        }
    }
}
