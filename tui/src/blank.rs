//! Keeping the Linux VT's screen on during the update.
//!
//! The kernel blanks a VT after `consoleblank` seconds without output (0 on
//! recent kernels, but distributions and `consoleblank=` change it). An
//! update screen that goes dark for minutes looks like a hang, so we write
//! `setterm -blank 0`'s escape (`ESC [ 9 ; 0 ]`) and unblank now
//! (`ESC [ 13 ]`); at the end we put back the kernel's value. The escapes
//! are Linux-console private sequences: only sent where TERM=linux.

use std::path::Path;

const CONSOLEBLANK: &str = "/sys/module/kernel/parameters/consoleblank";

/// The kernel's blanking interval in seconds, 0 if unknown or off.
pub fn kernel_blank_seconds() -> u64 {
    read_seconds(Path::new(CONSOLEBLANK)).unwrap_or(0)
}

fn read_seconds(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Unblank and disable blanking.
pub fn disable_sequence() -> Vec<u8> {
    b"\x1b[13]\x1b[9;0]".to_vec()
}

/// Back to the kernel's interval. The escape takes minutes; round up so a
/// short interval is not turned into "never".
pub fn restore_sequence() -> Vec<u8> {
    restore_sequence_for(kernel_blank_seconds())
}

pub fn restore_sequence_for(seconds: u64) -> Vec<u8> {
    let minutes = seconds.div_ceil(60).min(60);
    format!("\x1b[9;{minutes}]").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences() {
        assert_eq!(restore_sequence_for(0), b"\x1b[9;0]");
        assert_eq!(restore_sequence_for(600), b"\x1b[9;10]");
        assert_eq!(restore_sequence_for(30), b"\x1b[9;1]");
        assert_eq!(disable_sequence(), b"\x1b[13]\x1b[9;0]");
    }
}
