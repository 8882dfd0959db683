//! The serial console as a person would have seen it: the raw bytes fed
//! through a terminal emulator (vt100), not grepped as escape-laden text.

use std::num::NonZeroU16;

/// Every distinct screen the console went through, as an 80x24 terminal
/// showed it: the size the UI assumes when the console reports 0x0 and does
/// not answer the cursor-position query (qemu's serial never does).
pub fn screens(serial: &[u8]) -> Vec<String> {
    let (Some(rows), Some(cols)) = (NonZeroU16::new(24), NonZeroU16::new(80)) else {
        unreachable!("24 and 80 are not zero")
    };
    let mut parser = vt100::Parser::new(rows, cols, 0);
    let mut out: Vec<String> = Vec::new();
    // Small chunks: a frame the UI replaced within a chunk would be missed.
    for chunk in serial.chunks(64) {
        parser.process(chunk);
        let s = parser.screen().contents();
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// A digit followed by `%` (or ` %`) somewhere on the screen.
pub fn has_percent(screen: &str) -> bool {
    let b = screen.as_bytes();
    b.iter().enumerate().any(|(i, &c)| {
        c == b'%'
            && ((i > 0 && b[i - 1].is_ascii_digit())
                || (i > 1 && b[i - 1] == b' ' && b[i - 2].is_ascii_digit()))
    })
}
