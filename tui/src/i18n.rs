//! Translations of what a person reads on a console or in plymouth, from a
//! gettext catalogue (`system-update.mo`) in the system's language.
//!
//! The events stay English (the journal and the log are for admins); the
//! renderers translate when they draw, each for its console: one whose
//! font or charset cannot show the language (a VT without a Unicode font,
//! a vt220 serial line) keeps English, in ASCII. Steps and messages from
//! the apply service carry their message id (the English template, `{}`
//! for what varies) and arguments: translated by id, never by matching
//! English text, so a backend declares its messages in its own module.

use std::borrow::Cow;

use crate::event::{words::fill, Text};
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
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        fill(self.s(msgid), &args)
    }

    /// A step's or a message's words: translated by their id, filled with
    /// their arguments; the English when there is no id, no translation,
    /// or one that does not take the arguments.
    pub fn text<'a>(&self, t: &'a Text) -> Cow<'a, str> {
        let Some(id) = t.id.as_deref().filter(|_| self.0) else {
            return Cow::Borrowed(&t.english);
        };
        let tr = self.s(id);
        if std::ptr::eq(tr, id) {
            return Cow::Borrowed(&t.english);
        }
        match t.fill_in(tr) {
            Some(s) => Cow::Owned(s),
            None => Cow::Borrowed(&t.english),
        }
    }
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
    fn english_words_stay_english() {
        let t = crate::event::m_("Unpacking {}").with(&[&"x"]);
        assert_eq!(Tr::english().text(&t), "Unpacking x");
        let template = "{} of {}";
        assert_eq!(Tr::english().f(template, &[&1, &2]), "1 of 2");
    }
}
