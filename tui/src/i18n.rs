//! Translations of what a person reads on a console or in plymouth, from a
//! gettext catalogue (`system-update.mo`) in the system's language.
//!
//! The events stay English (the journal and the log are for admins); the
//! renderers translate when they draw, each for its console: one whose
//! font or charset cannot show the language (a VT without a Unicode font,
//! a vt220 serial line) keeps English, in ASCII. Messages from the apply
//! service are matched whole or against [`RUNTIME`]'s templates, whose
//! `{}` stand for what varies (a package name, a count).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The catalogue's name: `LOCALEDIR/LANG/LC_MESSAGES/system-update.mo`.
pub const DOMAIN: &str = "system-update";

static CATALOG: OnceLock<crate::mo::Catalog> = OnceLock::new();

/// Marks a string for `make update-po` (xgettext -kn_) where it is not
/// translated at once (a table, a choice made before the language is).
pub const fn n_(s: &str) -> &str {
    s
}

/// What the apply service and its backends put into events, translated
/// when shown: exact texts, and templates whose `{}` match anything.
pub const RUNTIME: &[&str] = &[
    n_("Verifying the update"),
    n_("Taking a snapshot"),
    n_("Rolling back to the snapshot taken before the update"),
    n_("Repairing the package database after the interrupted update"),
    n_("Recovering the interrupted update (dpkg --configure -a)"),
    n_("Verifying the packages"),
    n_("Preparing the transaction"),
    n_("Removing the old versions"),
    n_("Checking the keyring"),
    n_("Checking the packages' integrity"),
    n_("Loading the packages"),
    n_("Checking for file conflicts"),
    n_("Checking the disk space"),
    n_("Installing {} package(s) with {}"),
    n_("Installing {} and removing {} package(s) with apt"),
    n_("Unpacking {}"),
    n_("Configuring {}"),
    n_("Removing {}"),
    n_("Processing triggers for {}"),
    n_("Processing {}"),
    n_("Installing {}"),
    n_("Upgrading {}"),
    n_("Reinstalling {}"),
    n_("Downgrading {}"),
];

/// Locale names to try for `locale` ("de_DE.UTF-8@euro" -> the whole,
/// "de_DE.UTF-8", "de_DE", "de"); none for C and POSIX.
pub fn candidates(locale: &str) -> Vec<String> {
    let l = locale.trim();
    if l.is_empty() || l == "C" || l == "POSIX" || l.starts_with("C.") {
        return Vec::new();
    }
    let mut out = vec![l.to_string()];
    let no_mod = l.split('@').next().unwrap_or(l);
    let no_codeset = no_mod.split('.').next().unwrap_or(no_mod);
    let lang = no_codeset.split('_').next().unwrap_or(no_codeset);
    for c in [no_mod, no_codeset, lang] {
        if !c.is_empty() && !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    // Only names that are names: never a path.
    out.retain(|c| {
        c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
    });
    out
}

/// Loads the catalogue for `locale` from the first of `dirs` that has one;
/// returns its path. Once per process: later calls keep the first.
pub fn load(locale: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    for c in candidates(locale) {
        for d in dirs {
            let p = d.join(&c).join("LC_MESSAGES").join(format!("{DOMAIN}.mo"));
            let Ok(f) = std::fs::File::open(&p) else {
                continue;
            };
            let mut bytes = Vec::new();
            if let Err(e) =
                std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut bytes)
            {
                tracing::warn!("{}: {e}", p.display());
                continue;
            }
            match crate::mo::parse(&bytes) {
                Ok(cat) => {
                    let _ = CATALOG.set(cat);
                    return Some(p);
                }
                Err(e) => tracing::warn!("{}: not a usable catalogue: {e}", p.display()),
            }
        }
    }
    None
}

/// The language a console shows: the system's, or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(bool);

impl Tr {
    /// English, whatever was loaded.
    pub fn english() -> Tr {
        Tr(false)
    }

    /// The system's language where `unicode` (the console can show it),
    /// else English.
    pub fn for_console(unicode: bool) -> Tr {
        Tr(unicode && CATALOG.get().is_some())
    }

    /// The translation of `msgid`, or `msgid`. A translation with a
    /// control character (an escape sequence from a broken or hostile
    /// catalogue) is never drawn: the console gets the English.
    pub fn s<'a>(&self, msgid: &'a str) -> &'a str {
        match (self.0, CATALOG.get()) {
            (true, Some(c)) => match c.get(msgid) {
                Some(t) if !t.chars().any(char::is_control) => t,
                _ => msgid,
            },
            _ => msgid,
        }
    }

    /// `msgid` translated, its `{}` filled with `args` in order.
    pub fn f(&self, msgid: &str, args: &[&dyn std::fmt::Display]) -> String {
        fill(self.s(msgid), args.iter().map(|a| a.to_string()))
    }

    /// A message from an event: translated whole, or by the template of
    /// [`RUNTIME`] it matches; else as it came.
    pub fn message<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.0 {
            return Cow::Borrowed(text);
        }
        let whole = self.s(text);
        if !std::ptr::eq(whole, text) {
            return Cow::Owned(whole.to_string());
        }
        for t in RUNTIME.iter().filter(|t| t.contains("{}")) {
            if let Some(args) = matches(t, text) {
                return Cow::Owned(fill(self.s(t), args.into_iter().map(str::to_string)));
            }
        }
        Cow::Borrowed(text)
    }
}

/// `template`'s `{}` replaced, in order, by `args`.
fn fill(template: &str, mut args: impl Iterator<Item = String>) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(i) = rest.find("{}") {
        out.push_str(&rest[..i]);
        out.push_str(&args.next().unwrap_or_default());
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

/// What `text` has where `template` has `{}`, if it matches.
fn matches<'a>(template: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = template.split("{}").collect();
    let mut rest = text.strip_prefix(parts[0])?;
    let mut args = Vec::new();
    for (i, lit) in parts.iter().enumerate().skip(1) {
        let last = i == parts.len() - 1;
        let at = if last {
            if !rest.ends_with(lit) {
                return None;
            }
            rest.len() - lit.len()
        } else if lit.is_empty() {
            return None;
        } else {
            rest.find(lit)?
        };
        let arg = &rest[..at];
        if arg.is_empty() {
            return None;
        }
        args.push(arg);
        rest = &rest[at + lit.len()..];
    }
    Some(args)
}

/// Where catalogues are looked for: `SYSTEM_UPDATE_LOCALEDIR` first (tests,
/// a build tree), then the system's.
pub fn default_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = std::env::var_os("SYSTEM_UPDATE_LOCALEDIR") {
        v.push(PathBuf::from(d));
    }
    v.push(Path::new("/usr/share/locale").to_path_buf());
    v.push(Path::new("/usr/local/share/locale").to_path_buf());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_names() {
        assert_eq!(candidates("de_DE.UTF-8"), ["de_DE.UTF-8", "de_DE", "de"]);
        assert_eq!(candidates("C.UTF-8"), Vec::<String>::new());
        assert_eq!(candidates("../../etc"), Vec::<String>::new());
        assert_eq!(candidates("fr"), ["fr"]);
    }

    #[test]
    fn templates_match_and_fill() {
        assert_eq!(
            matches("Unpacking {}", "Unpacking openssl"),
            Some(vec!["openssl"])
        );
        assert_eq!(
            matches(
                "Installing {} package(s) with {}",
                "Installing 3 package(s) with dpkg"
            ),
            Some(vec!["3", "dpkg"])
        );
        assert_eq!(matches("Unpacking {}", "Unpacking "), None);
        assert_eq!(matches("Unpacking {}", "Configuring x"), None);
        assert_eq!(
            fill("{} von {}", ["1".to_string(), "2".to_string()].into_iter()),
            "1 von 2"
        );
        assert_eq!(Tr::english().message("Unpacking x"), "Unpacking x");
    }
}
