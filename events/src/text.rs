//! Text for terminals: the one cleaner every line from outside goes
//! through before a screen, a console or an admin's terminal shows it.

/// The bound of a line printed whole (`results`, errors), not squeezed
/// into a screen line.
pub const LINE_MAX: usize = 64 << 10;

/// Unicode's bidirectional formatting characters: embeddings and
/// overrides (U+202A-202E), isolates (U+2066-2069) and the marks (U+200E,
/// U+200F, U+061C). None is needed to show a package name or an error.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

/// The bound of a line on a screen.
pub const SCREEN_MAX: usize = 512;

/// clean_to with a screen line's bound.
pub fn clean(s: &str) -> String {
    clean_to(s, SCREEN_MAX)
}

/// Each line of `s` cleaned (clean_to with LINE_MAX), each ended by a
/// newline: for text printed as a whole.
pub fn clean_lines(s: &str) -> String {
    s.lines().map(|l| clean_to(l, LINE_MAX) + "\n").collect()
}

/// Makes text from outside (backends, manifests, records, maintainer
/// scripts) safe to put on a terminal, at most about `max` bytes: drops
/// escape sequences, control characters and bidirectional controls (which
/// make a line read other than it is: U+202E shows "exe.txt" as
/// "txt.exe"), turns tabs into spaces, keeps what follows a carriage
/// return. Every line we put on a terminal goes through it.
pub fn clean_to(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= max {
            break;
        }
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final(0x40..=0x7e); OSC: ESC ] ... BEL/ST;
                // anything else: ESC + one char.
                match chars.next() {
                    Some('[') => {
                        for c in chars.by_ref() {
                            if ('\u{40}'..='\u{7e}').contains(&c) {
                                break;
                            }
                        }
                    }
                    Some(']') => {
                        while let Some(c) = chars.next() {
                            if c == '\u{7}' {
                                break;
                            }
                            if c == '\u{1b}' {
                                chars.next();
                                break;
                            }
                        }
                    }
                    // Character set designators take one more character:
                    // `tput sgr0` writes ESC ( B, which left a stray "B".
                    Some('(') | Some(')') | Some('#') => {
                        chars.next();
                    }
                    _ => {}
                }
            }
            '\t' => out.push(' '),
            // A carriage return in the middle (progress bars of tools) means
            // "the line starts again": keep only what follows.
            '\r' => {
                if chars.peek().is_some() {
                    out.clear();
                }
            }
            c if c.is_control() || is_bidi_control(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// "1 file", "2 files".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_say_one_and_many() {
        assert_eq!(super::count(1, "file", "files"), "1 file");
        assert_eq!(super::count(0, "file", "files"), "0 files");
        assert_eq!(super::count(2, "package", "packages"), "2 packages");
    }

    use super::*;

    #[test]
    fn escapes_controls_and_bidi_controls_go() {
        assert_eq!(clean_to("\u{1b}[1;31mred\u{1b}[0m\tx\u{7}", 100), "red x");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{61c}',
        ] {
            assert_eq!(clean_to(&format!("a{c}b"), 100), "ab", "{:?}", c);
        }
        assert_eq!(clean_to("été ✓ \u{5d0}", 100), "été ✓ \u{5d0}");
        assert_eq!(clean_lines("a\u{202e}b\nc\u{1b}[2Jd"), "ab\ncd\n");
    }
}
