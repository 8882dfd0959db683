//! Which glyphs the full screen draws: box-drawing lines and block gauges
//! where the terminal's font has them, ASCII for exactly the ones it lacks.
//!
//! A pure decision over the set of code points a font carries (on a Linux
//! VT, its Unicode map: see `unimap`), so a reduced font is a unit test.

use std::collections::BTreeSet;

use ratatui::symbols::border;

/// The glyphs of one screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyphs {
    /// Panel borders.
    pub border: border::Set<'static>,
    /// The gauge's filled and empty cells.
    pub full: &'static str,
    pub empty: &'static str,
}

/// Each glyph with its ASCII stand-in, in `Glyphs`' field order.
const CHOICES: [(char, &str); 8] = [
    ('┌', "+"),
    ('┐', "+"),
    ('└', "+"),
    ('┘', "+"),
    ('│', "|"),
    ('─', "-"),
    ('█', "#"),
    ('░', "-"),
];

impl Glyphs {
    /// A terminal emulator in a UTF-8 locale: every glyph.
    pub const UNICODE: Glyphs = Glyphs {
        border: border::PLAIN,
        full: "█",
        empty: "░",
    };

    /// A terminal of unknown make (serial, vt220): ASCII only.
    pub const ASCII: Glyphs = Glyphs {
        border: border::Set {
            top_left: "+",
            top_right: "+",
            bottom_left: "+",
            bottom_right: "+",
            vertical_left: "|",
            vertical_right: "|",
            horizontal_top: "-",
            horizontal_bottom: "-",
        },
        full: "#",
        empty: "-",
    };

    /// The glyphs a font carrying `font` (Unicode code points) can show:
    /// each one where the font has it, its ASCII stand-in where not.
    pub fn for_font(font: &BTreeSet<u32>) -> Glyphs {
        let pick = |i: usize| -> &'static str {
            let (glyph, ascii) = CHOICES[i];
            if font.contains(&u32::from(glyph)) {
                UNICODE_STRS[i]
            } else {
                ascii
            }
        };
        Glyphs {
            border: border::Set {
                top_left: pick(0),
                top_right: pick(1),
                bottom_left: pick(2),
                bottom_right: pick(3),
                vertical_left: pick(4),
                vertical_right: pick(4),
                horizontal_top: pick(5),
                horizontal_bottom: pick(5),
            },
            full: pick(6),
            empty: pick(7),
        }
    }

    /// Whether every glyph is ASCII (nothing the font could lack).
    pub fn is_ascii(&self) -> bool {
        let b = &self.border;
        [
            b.top_left,
            b.top_right,
            b.bottom_left,
            b.bottom_right,
            b.vertical_left,
            b.vertical_right,
            b.horizontal_top,
            b.horizontal_bottom,
            self.full,
            self.empty,
        ]
        .iter()
        .all(|s| s.is_ascii())
    }
}

/// `CHOICES`' glyphs as the `&'static str`s ratatui draws.
const UNICODE_STRS: [&str; 8] = ["┌", "┐", "└", "┘", "│", "─", "█", "░"];

#[cfg(test)]
mod tests {
    use super::*;

    fn font(glyphs: &str) -> BTreeSet<u32> {
        glyphs.chars().map(u32::from).chain(0x20..0x7f).collect()
    }

    #[test]
    fn the_table_and_its_strings_agree() {
        for (i, (c, _)) in CHOICES.iter().enumerate() {
            assert_eq!(UNICODE_STRS[i], c.to_string());
        }
    }

    #[test]
    fn a_full_font_gets_every_glyph() {
        assert_eq!(Glyphs::for_font(&font("┌┐└┘│─█░")), Glyphs::UNICODE);
    }

    #[test]
    fn an_ascii_font_gets_ascii() {
        let g = Glyphs::for_font(&font(""));
        assert_eq!(g, Glyphs::ASCII);
        assert!(g.is_ascii());
    }

    #[test]
    fn a_font_without_blocks_keeps_its_box_lines() {
        let g = Glyphs::for_font(&font("┌┐└┘│─"));
        assert_eq!(g.border, border::PLAIN);
        assert_eq!((g.full, g.empty), ("#", "-"));
    }

    #[test]
    fn each_missing_glyph_alone_falls_back() {
        let all = font("┌┐└┘│─█░");
        for (c, ascii) in CHOICES {
            let mut reduced = all.clone();
            reduced.remove(&u32::from(c));
            let g = Glyphs::for_font(&reduced);
            let b = g.border;
            let drawn = [
                b.top_left,
                b.top_right,
                b.bottom_left,
                b.bottom_right,
                b.vertical_left,
                b.horizontal_top,
                g.full,
                g.empty,
            ];
            let s = c.to_string();
            assert!(!drawn.contains(&s.as_str()), "{c} drawn though missing");
            assert!(drawn.contains(&ascii), "{c}'s stand-in {ascii} not drawn");
            // The others stay.
            let others = drawn.iter().filter(|d| !d.is_ascii()).count();
            assert_eq!(others, 7, "only {c} falls back: {drawn:?}");
        }
    }
}
