//! The kernel command line, split the way systemd's proc_cmdline_parse()
//! does: words separated by white space, quotes group and are removed.

/// Splits a command line into words, removing double and single quotes.
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Why the kernel command line takes precedence over the offline update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// `systemd.unit=UNIT`.
    Unit(String),
    /// A SysV runlevel word such as `1`, `single` or `emergency`.
    Runlevel(String),
}

// systemd's runlevel_to_target() table outside the initrd.
const RUNLEVEL_WORDS: &[&str] = &[
    "emergency",
    "rescue",
    "single",
    "-s",
    "s",
    "S",
    "1",
    "2",
    "3",
    "4",
    "5",
    "-b",
];

/// Every item of the command line that overrides the default target, in
/// order. systemd warns for each; so do we.
pub fn overrides(line: &str) -> Vec<Override> {
    words(line)
        .into_iter()
        .filter_map(|w| match w.split_once('=') {
            // An empty value is "missing" to systemd, and ignored.
            Some(("systemd.unit", v)) if !v.is_empty() => Some(Override::Unit(v.to_owned())),
            Some(_) => None,
            None if RUNLEVEL_WORDS.contains(&w.as_str()) => Some(Override::Runlevel(w)),
            None => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_white_space_and_removes_quotes() {
        assert_eq!(
            words("  root=/dev/vda  quiet\tfoo=\"a b\" 'c d'e\n"),
            ["root=/dev/vda", "quiet", "foo=a b", "c de"]
        );
        assert_eq!(words(""), Vec::<String>::new());
        assert_eq!(words("x=\"\""), ["x="]);
    }

    #[test]
    fn finds_unit_and_runlevel_overrides() {
        assert_eq!(
            overrides("root=/dev/vda systemd.unit=rescue.target quiet"),
            [Override::Unit("rescue.target".into())]
        );
        assert_eq!(
            overrides("ro single"),
            [Override::Runlevel("single".into())]
        );
        for w in [
            "1",
            "s",
            "S",
            "single",
            "rescue",
            "emergency",
            "2",
            "3",
            "4",
            "5",
        ] {
            assert_eq!(overrides(w), [Override::Runlevel(w.into())], "{w}");
        }
    }

    #[test]
    fn ignores_lookalikes() {
        // rd.systemd.unit= is the initrd's, a missing value is no override,
        // and a runlevel word only counts without a value.
        assert!(overrides("rd.systemd.unit=x.target systemd.unit= 1=2 6 10 singles").is_empty());
        assert!(overrides("systemd.unit").is_empty());
    }

    #[test]
    fn quoted_unit_value() {
        assert_eq!(
            overrides("systemd.unit=\"multi-user.target\""),
            [Override::Unit("multi-user.target".into())]
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Command-line-like text: words, quotes, `=`, spaces, tabs, newlines.
    fn cmdline() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("systemd.unit=".to_string()),
                Just("\"".to_string()),
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("\n".to_string()),
                Just("single".to_string()),
                Just("rescue.target".to_string()),
                "[a-z0-9._=-]{0,12}",
            ],
            0..24,
        )
        .prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn words_never_panic_and_lose_only_quotes_and_blanks(line in any::<String>()) {
            let ws = words(&line);
            // Every character of a word comes from the line, in order; only
            // quotes and white space between words go.
            let kept: String = ws.concat();
            let mut rest = line.chars().filter(|c| !c.is_whitespace() || line.contains(['"', '\'']));
            for c in kept.chars() {
                prop_assert!(rest.any(|r| r == c), "{:?} from {:?}", c, line);
            }
        }

        #[test]
        fn without_quotes_words_are_the_blank_separated_fields(line in cmdline()) {
            let plain = line.replace(['"', '\''], "");
            let expect: Vec<String> = plain.split_whitespace().map(str::to_string).collect();
            prop_assert_eq!(words(&plain), expect);
        }

        #[test]
        fn a_quoted_word_keeps_its_blanks(a in "[a-z]{1,5}", b in "[a-z]{1,5}") {
            let line = format!("x=\"{a} {b}\" y");
            let expect = vec![format!("x={a} {b}"), "y".to_string()];
            prop_assert_eq!(words(&line), expect);
        }

        #[test]
        fn overrides_name_a_unit_or_a_runlevel_word(line in cmdline()) {
            for o in overrides(&line) {
                match o {
                    Override::Unit(u) => prop_assert!(!u.is_empty()),
                    Override::Runlevel(w) => prop_assert!(RUNLEVEL_WORDS.contains(&w.as_str())),
                }
            }
        }
    }
}
