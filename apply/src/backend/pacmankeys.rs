//! Package signatures of the pacman backend: a package's detached
//! `FILE.sig` travels in the update beside it (a payload file of its own,
//! under the manifest's checksums) and is checked with `pacman-key
//! --verify` against the root's keyring, which wants the key fully trusted
//! as pacman's default `TrustedOnly` does, at `prepare` and again at boot.
//!
//! pacman checks them itself too (`-Sw` as `SigLevel` says, `-U` as
//! `LocalFileSigLevel` says), but `-U` looks for `FILE.sig` beside the
//! file it is given: without the signature in the update, a root that
//! requires signatures could not install the verified descriptors at all.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::BackendError;

/// When pacman checks a package's signature, as a `SigLevel` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Not even when present.
    Never,
    /// When present (pacman's built-in default).
    Optional,
    /// Always: an unsigned package is refused.
    Required,
}

/// The package level after these `SigLevel` words, left to right as
/// pacman reads them, from `start`; `Database*` words do not concern
/// packages.
pub fn package_level<'a>(start: Level, words: impl IntoIterator<Item = &'a str>) -> Level {
    words.into_iter().fold(start, |level, w| {
        match w.strip_prefix("Package").unwrap_or(w) {
            "Never" => Level::Never,
            "Optional" => Level::Optional,
            "Required" => Level::Required,
            _ => level,
        }
    })
}

/// The `key = value` words of every section of a pacman.conf: (section,
/// key, words).
fn settings(text: &str) -> Vec<(String, String, Vec<String>)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for l in text.lines().map(str::trim) {
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
        } else if let Some((k, v)) = l.split_once('=') {
            let words = v.split_whitespace().map(str::to_string).collect();
            out.push((section.clone(), k.trim().to_string(), words));
        }
    }
    out
}

/// The level a pacman.conf sets for local files (`LocalFileSigLevel`,
/// starting from `SigLevel`) or, `from_repositories`, for the packages of
/// its repositories: the strictest of them, since which one a download
/// came from is not recorded.
pub fn level(conf: &str, from_repositories: bool) -> Level {
    let all = settings(conf);
    let words = |section: &str, key: &str| -> Vec<String> {
        all.iter()
            .filter(|(s, k, _)| s == section && k == key)
            .flat_map(|(_, _, w)| w.clone())
            .collect()
    };
    let options = package_level(
        Level::Optional,
        words("options", "SigLevel").iter().map(String::as_str),
    );
    if !from_repositories {
        return package_level(
            options,
            words("options", "LocalFileSigLevel")
                .iter()
                .map(String::as_str),
        );
    }
    let mut repos: Vec<&String> = all
        .iter()
        .map(|(s, _, _)| s)
        .filter(|s| !s.is_empty() && *s != "options")
        .collect();
    repos.dedup();
    repos
        .iter()
        .map(|r| package_level(options, words(r, "SigLevel").iter().map(String::as_str)))
        .fold(options, Level::max)
}

/// The detached signature pacman looks for beside `file`.
pub fn sig_of(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(".sig");
    PathBuf::from(s)
}

/// What gpg said when a signature did not verify, in a few words.
fn why(out: &str) -> &'static str {
    if out.contains("BAD signature") {
        "BAD signature"
    } else if out.contains("No public key") {
        "NOKEY: the signer's key is not in the root's keyring"
    } else if out.contains("Good signature") {
        "the signer's key is in the root's keyring but not trusted (pacman-key --lsign-key)"
    } else {
        "pacman-key could not verify it"
    }
}

/// `pacman-key --verify SIG FILE` with the root's keyring.
fn verify_one(
    gpgdir: &Path,
    sig: &Path,
    file: &Path,
) -> Result<Option<&'static str>, BackendError> {
    let out = Command::new("pacman-key")
        .arg("--gpgdir")
        .arg(gpgdir)
        .arg("--verify")
        .arg(sig)
        .arg(file)
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| BackendError::Spawn {
            program: "pacman-key".into(),
            source,
        })?;
    if out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    Ok(Some(why(&text)))
}

/// `prepare`: the root's level decides; a signature that is present must
/// verify unless the level is `Never`. True for each file the boot must
/// check again.
pub fn check(gpgdir: &Path, level: Level, files: &[PathBuf]) -> Result<Vec<bool>, BackendError> {
    for f in files {
        let sig = sig_of(f);
        let refuse = |what: String, todo: &str| {
            Err(BackendError::Failed(format!(
                "{}: {what}; nothing was prepared: {todo}",
                f.display()
            )))
        };
        match (level, sig.is_file()) {
            (Level::Never, _) | (Level::Optional, false) => {}
            (Level::Required, false) => refuse(
                format!(
                    "not signed ({} is missing), and the root's pacman.conf requires package signatures",
                    sig.display()
                ),
                "put the package's .sig beside it",
            )?,
            (_, true) => {
                if let Some(why) = verify_one(gpgdir, &sig, f)? {
                    refuse(
                        format!("its signature does not verify with the root's keyring ({why})"),
                        &format!(
                            "if the signer is to be trusted, add and sign its key in the root's keyring (pacman-key --gpgdir {} --add KEY, --lsign-key ID)",
                            gpgdir.display()
                        ),
                    )?
                }
            }
        }
    }
    Ok(vec![level == Level::Required; files.len()])
}

/// At boot: each required package with its signature among the verified
/// files, checked against the root's keyring as it is then.
pub fn verify(
    gpgdir: &Path,
    required: &[(String, PathBuf)],
    verified: &[(String, PathBuf)],
) -> Result<(), BackendError> {
    for (name, path) in required {
        let sig_name = format!("{name}.sig");
        let said = match verified.iter().find(|(n, _)| *n == sig_name) {
            None => Some("its .sig is not in the update"),
            Some((_, sig)) => verify_one(gpgdir, sig, path)?,
        };
        if let Some(why) = said {
            return Err(BackendError::Failed(format!(
                "{name}: the manifest requires its package signature, which does not verify with the root's keyring ({why}); nothing was installed: add and sign the signer's key in the root's keyring or prepare the update again"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sig_levels_as_pacman_reads_them() {
        use Level::*;
        assert_eq!(level("", false), Optional, "pacman's default");
        let arch = "[options]\nSigLevel = Required DatabaseOptional\nLocalFileSigLevel = Optional\n[core]\nInclude = x\n";
        assert_eq!(level(arch, false), Optional);
        assert_eq!(level(arch, true), Required);
        let local =
            "[options]\nSigLevel = Optional\nLocalFileSigLevel = PackageRequired DatabaseNever\n";
        assert_eq!(level(local, false), Required);
        assert_eq!(level(local, true), Optional);
        let repo = "[options]\nSigLevel = Optional TrustAll\n[a]\nSigLevel = Never\n[b]\nSigLevel = PackageRequired\n";
        assert_eq!(level(repo, true), Required, "the strictest repository");
        assert_eq!(
            level("[options]\nSigLevel = DatabaseRequired\n", true),
            Optional
        );
        assert_eq!(level("[options]\nSigLevel = Never\n", false), Never);
    }

    #[test]
    fn gpgs_words() {
        assert_eq!(why("gpg: BAD signature from \"x\""), "BAD signature");
        assert!(why("gpg: Can't check signature: No public key").starts_with("NOKEY"));
        assert!(why("gpg: Good signature from \"x\" [unknown]").contains("not trusted"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn levels_never_panic(text in any::<String>(), repos in any::<bool>()) {
            let _ = level(&text, repos);
        }
    }
}
