//! Words a person reads, carried with a stable id: the renderers translate
//! the id and fill in the arguments, never match English text. A message's
//! id is its English template (the catalogues' msgid), `{}` for each
//! argument, declared once with [`m_`] where it is said; `make update-po`
//! collects the declarations.

use std::fmt::Display;

/// A declared message: its English template, which is also its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg(&'static str);

/// Declares a message (`xgettext -km_` finds it).
pub const fn m_(template: &'static str) -> Msg {
    Msg(template)
}

impl Msg {
    pub fn id(self) -> &'static str {
        self.0
    }

    /// The message with no arguments.
    pub fn text(self) -> Text {
        self.with(&[])
    }

    /// The message with its `{}` standing for `args`, in order.
    pub fn with(self, args: &[&dyn Display]) -> Text {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Text {
            english: fill(self.0, &args),
            id: Some(self.0.to_string()),
            args,
        }
    }
}

/// Words in an event: the English (for the journal and any reader), and
/// the id and arguments a renderer translates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    pub english: String,
    /// `None` for words from outside (a command backend's program): shown
    /// as they came, never translated.
    pub id: Option<String>,
    pub args: Vec<String>,
}

impl Text {
    /// Words that are not ours to translate.
    pub fn foreign(s: impl Into<String>) -> Text {
        Text {
            english: s.into(),
            id: None,
            args: Vec::new(),
        }
    }

    /// The same words with `f` applied to the English and each argument
    /// (a cleaner, a path turned back into a name).
    pub fn map(&self, f: impl Fn(&str) -> String) -> Text {
        Text {
            english: f(&self.english),
            id: self.id.clone(),
            args: self.args.iter().map(|a| f(a)).collect(),
        }
    }

    /// `template` (a translation of the id) filled with the arguments;
    /// `None` when it does not have one `{}` per argument, as a broken
    /// catalogue or a hostile event might not.
    pub fn fill_in(&self, template: &str) -> Option<String> {
        (template.matches("{}").count() == self.args.len()).then(|| fill(template, &self.args))
    }
}

impl Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.english)
    }
}

/// `template`'s `{}` replaced, in order, by `args`.
pub fn fill(template: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    let mut args = args.iter();
    while let Some(i) = rest.find("{}") {
        out.push_str(&rest[..i]);
        out.push_str(args.next().map(String::as_str).unwrap_or(""));
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNPACKING: Msg = m_("Unpacking {}");

    #[test]
    fn a_message_carries_its_id_and_arguments() {
        let t = UNPACKING.with(&[&"openssl"]);
        assert_eq!(t.english, "Unpacking openssl");
        assert_eq!(t.id.as_deref(), Some("Unpacking {}"));
        assert_eq!(t.args, ["openssl"]);
        assert_eq!(
            t.fill_in("Entpacke {}").as_deref(),
            Some("Entpacke openssl")
        );
        assert_eq!(t.fill_in("Entpacke {} {}"), None);
        assert_eq!(t.fill_in("Entpacke"), None);
    }

    #[test]
    fn foreign_words_have_no_id() {
        let t = Text::foreign("Copying files");
        assert_eq!(t.id, None);
        assert_eq!(t.to_string(), "Copying files");
        assert_eq!(t.map(|s| s.to_uppercase()).english, "COPYING FILES");
    }
}
