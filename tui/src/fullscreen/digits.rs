//! The percentage in large digits, for a screen read from across a room:
//! a font of five rows, each of its pixels two cells wide (a cell is about
//! twice as tall as wide), drawn with the gauge's full glyph.

/// Rows of every character.
pub const ROWS: usize = 5;

/// Each character as five rows of three pixels.
fn pattern(c: char) -> Option<[&'static str; ROWS]> {
    Some(match c {
        '0' => ["###", "# #", "# #", "# #", "###"],
        '1' => [" # ", "## ", " # ", " # ", "###"],
        '2' => ["###", "  #", "###", "#  ", "###"],
        '3' => ["###", "  #", " ##", "  #", "###"],
        '4' => ["# #", "# #", "###", "  #", "  #"],
        '5' => ["###", "#  ", "###", "  #", "###"],
        '6' => ["###", "#  ", "###", "# #", "###"],
        '7' => ["###", "  #", "  #", "  #", "  #"],
        '8' => ["###", "# #", "###", "# #", "###"],
        '9' => ["###", "# #", "###", "  #", "###"],
        '%' => ["# #", "  #", " # ", "#  ", "# #"],
        ' ' => ["   ", "   ", "   ", "   ", "   "],
        _ => return None,
    })
}

/// `text` in large characters drawn with `full` (one glyph), one blank
/// pixel between characters; characters the font lacks are left out.
pub fn big(text: &str, full: &str) -> [String; ROWS] {
    let mut rows: [String; ROWS] = Default::default();
    let patterns: Vec<_> = text.chars().filter_map(pattern).collect();
    for (i, p) in patterns.iter().enumerate() {
        for (row, line) in rows.iter_mut().zip(p) {
            if i > 0 {
                row.push_str("  ");
            }
            for px in line.chars() {
                let cell = if px == '#' { full } else { " " };
                row.push_str(cell);
                row.push_str(cell);
            }
        }
    }
    rows
}

/// Columns `big(text, _)` takes.
#[cfg(test)]
pub fn width(text: &str) -> usize {
    let n = text.chars().filter(|&c| pattern(c).is_some()).count();
    (n * 8).saturating_sub(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_percent_in_hashes() {
        let rows = big("50%", "#");
        assert_eq!(
            rows,
            [
                "######  ######  ##  ##",
                "##      ##  ##      ##",
                "######  ##  ##    ##  ",
                "    ##  ##  ##  ##    ",
                "######  ######  ##  ##",
            ]
            .map(String::from)
        );
        assert!(rows.iter().all(|r| r.chars().count() == width("50%")));
    }

    #[test]
    fn every_digit_has_five_rows_of_the_same_width_in_blocks() {
        let text = "0123456789 %";
        let rows = big(text, "█");
        for r in &rows {
            assert_eq!(r.chars().count(), width(text), "{rows:?}");
            assert!(r.chars().all(|c| c == '█' || c == ' '), "{r}");
        }
        // Each digit differs from every other.
        let digits: Vec<_> = ('0'..='9').map(|d| big(&d.to_string(), "#")).collect();
        for (i, a) in digits.iter().enumerate() {
            assert!(digits[i + 1..].iter().all(|b| b != a), "digit {i} repeats");
        }
        assert!(big("x?", "#").iter().all(String::is_empty));
    }
}
