//! What a terminal can show: colours, box-drawing glyphs, its size.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices};

/// Fallback size when the terminal tells nothing (a serial console that
/// reports 0x0 and does not answer the cursor-position report).
pub const DEFAULT_SIZE: (u16, u16) = (80, 24);
/// How long to wait for a cursor-position report. qemu's serial never
/// answers; a real VT100-alike answers within a few ms even at 9600 baud.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colors {
    /// Monochrome: bold and reverse video only (vt220, NO_COLOR).
    None,
    /// The 16 ANSI colours (the Linux VT, xterm-alikes).
    Ansi16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caps {
    pub term: String,
    pub colors: Colors,
    /// Box-drawing and block glyphs; false means ASCII borders and bars.
    pub unicode: bool,
    /// Dumb terminal: plain lines only.
    pub dumb: bool,
    /// The Linux virtual terminal (console blanking applies).
    pub linux_vt: bool,
}

impl Caps {
    /// Whether the terminal can show a language beyond ASCII (umlauts,
    /// accents): a UTF-8 terminal emulator, or a VT, whose fonts (the
    /// kernel's CP437 one included) carry Latin-1's letters; not a serial
    /// terminal of unknown make, nor a dumb one.
    pub fn shows_language(&self) -> bool {
        self.unicode || self.linux_vt
    }

    /// Capabilities from a TERM value and the environment (`NO_COLOR`, the
    /// locale for Unicode).
    pub fn from_term(term: &str) -> Caps {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Caps::from_term_with(term, no_color, locale_is_utf8())
    }

    /// As [`Caps::from_term`], without reading the environment.
    pub fn from_term_with(term: &str, no_color: bool, utf8_locale: bool) -> Caps {
        let term = term.trim();
        let base = term.split('-').next().unwrap_or("");
        let dumb = term.is_empty() || term == "dumb" || term == "unknown";
        let linux_vt = base == "linux";
        // The VT's font may lack box drawing (and its glyph table depends on
        // the font loaded); serial terminals are of unknown make and locale.
        // Only xterm-alikes in a UTF-8 locale get Unicode.
        let serial = matches!(base, "vt100" | "vt102" | "vt220" | "vt320" | "ansi");
        let unicode = !dumb && !linux_vt && !serial && utf8_locale;
        let colors = if dumb || no_color || matches!(base, "vt100" | "vt102" | "vt220" | "vt320") {
            Colors::None
        } else {
            Colors::Ansi16
        };
        Caps {
            term: term.to_string(),
            colors,
            unicode,
            dumb,
            linux_vt,
        }
    }
}

fn locale_is_utf8() -> bool {
    for var in ["LC_ALL", "LC_CTYPE", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                let v = v.to_ascii_lowercase();
                return v.contains("utf-8") || v.contains("utf8");
            }
        }
    }
    false
}

/// The size the kernel knows (TIOCGWINSZ), as (columns, rows); None when
/// it is 0x0 or the call fails.
pub fn kernel_size(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if r == 0 && ws.ws_col > 0 && ws.ws_row > 0 {
        Some((ws.ws_col, ws.ws_row))
    } else {
        None
    }
}

/// Asks the terminal for its size: move the cursor to (999,999), which
/// terminals clamp to the bottom-right corner, and ask where it is (CPR).
/// The cursor is saved and restored around it. None on no or bad answer.
pub fn probe_size(fd: BorrowedFd<'_>, timeout: Duration) -> Option<(u16, u16)> {
    let saved = termios::tcgetattr(fd).ok()?;
    let mut raw = saved.clone();
    // No echo of the reply, byte-wise reads; keep output processing.
    raw.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO);
    raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
    let _ = termios::tcflush(fd, termios::FlushArg::TCIFLUSH);
    let answer = query_cpr(fd, timeout);
    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &saved);
    answer
}

fn query_cpr(fd: BorrowedFd<'_>, timeout: Duration) -> Option<(u16, u16)> {
    write_all_fd(fd, b"\x1b7\x1b[999;999H\x1b[6n\x1b8").ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(32);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::debug!("no cursor-position report within {timeout:?}");
            return None;
        }
        let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return None,
        }
        let mut chunk = [0u8; 64];
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(_) => return None,
        }
        if let Some(size) = parse_cpr(&buf) {
            return Some(size);
        }
        if buf.len() > 256 {
            return None;
        }
    }
}

/// Finds `ESC [ row ; col R` in `buf` (anything before it, such as a key
/// press, is skipped) and returns (columns, rows).
pub fn parse_cpr(buf: &[u8]) -> Option<(u16, u16)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == 0x1b && buf[i + 1] == b'[' {
            let rest = &buf[i + 2..];
            if let Some(end) = rest.iter().position(|&b| b == b'R') {
                let body = std::str::from_utf8(&rest[..end]).ok();
                if let Some((r, c)) = body.and_then(|b| b.split_once(';')) {
                    if let (Ok(r), Ok(c)) = (r.parse::<u16>(), c.parse::<u16>()) {
                        if r > 0 && c > 0 {
                            return Some((c, r));
                        }
                    }
                }
            }
        }
        i += 1;
    }
    None
}

/// The size of a terminal: the kernel's, else the probe's, else 80x24.
pub fn terminal_size(fd: BorrowedFd<'_>, probe: bool) -> (u16, u16) {
    if let Some(s) = kernel_size(fd) {
        return s;
    }
    if probe {
        if let Some(s) = probe_size(fd, PROBE_TIMEOUT) {
            tracing::debug!(
                "terminal size {}x{} from the cursor-position report",
                s.0,
                s.1
            );
            return s;
        }
    }
    DEFAULT_SIZE
}

pub(crate) fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(nix::errno::Errno::EIO),
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the descriptor is a terminal.
pub fn is_tty<F: AsFd>(f: &F) -> bool {
    nix::unistd::isatty(f.as_fd()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_kinds() {
        let linux = Caps::from_term_with("linux", false, true);
        assert!(linux.linux_vt && !linux.unicode && linux.colors == Colors::Ansi16);
        let vt = Caps::from_term_with("vt220", false, true);
        assert!(!vt.unicode && vt.colors == Colors::None && !vt.dumb);
        let x = Caps::from_term_with("xterm-256color", false, true);
        assert!(x.unicode && x.colors == Colors::Ansi16);
        let x = Caps::from_term_with("xterm-256color", true, false);
        assert!(!x.unicode && x.colors == Colors::None);
        assert!(Caps::from_term_with("dumb", false, true).dumb);
        assert!(Caps::from_term_with("", false, true).dumb);
    }

    #[test]
    fn cpr_parsing() {
        assert_eq!(parse_cpr(b"\x1b[50;132R"), Some((132, 50)));
        assert_eq!(parse_cpr(b"x\x1b[A\x1b[24;80R"), Some((80, 24)));
        assert_eq!(parse_cpr(b"\x1b[24;80"), None);
        assert_eq!(parse_cpr(b"\x1b[0;0R"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn cpr_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some((c, r)) = parse_cpr(&buf) {
                prop_assert!(c > 0 && r > 0);
            }
        }

        #[test]
        fn cpr_is_found_after_any_noise(
            noise in proptest::collection::vec(any::<u8>().prop_filter("no ESC", |b| *b != 0x1b), 0..16),
            rows in 1u16..=999,
            cols in 1u16..=999,
        ) {
            let mut buf = noise.clone();
            buf.extend_from_slice(format!("\u{1b}[{rows};{cols}R").as_bytes());
            prop_assert_eq!(parse_cpr(&buf), Some((cols, rows)));
        }
    }
}

/// The line's output speed in bits per second (termios), for a serial
/// console's byte budget; `None` when it cannot be read or names no rate.
pub fn line_speed(fd: BorrowedFd<'_>) -> Option<u32> {
    use termios::BaudRate as B;
    let t = termios::tcgetattr(fd).ok()?;
    Some(match termios::cfgetospeed(&t) {
        B::B300 => 300,
        B::B600 => 600,
        B::B1200 => 1200,
        B::B2400 => 2400,
        B::B4800 => 4800,
        B::B9600 => 9600,
        B::B19200 => 19200,
        B::B38400 => 38400,
        B::B57600 => 57600,
        B::B115200 => 115_200,
        B::B230400 => 230_400,
        B::B460800 => 460_800,
        B::B921600 => 921_600,
        _ => return None,
    })
}
