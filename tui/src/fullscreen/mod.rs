//! The full-screen view (ratatui) and its renderer on a terminal device.
//!
//! `draw` paints a [`Model`] into any ratatui frame (TestBackend in tests);
//! [`FullscreenRenderer`] puts it on a terminal through crossterm, writing
//! to the device it was given, never to the process's stdout unless asked.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

use crate::caps::Caps;
use crate::glyphs::Glyphs;
use crate::model::Model;
use crate::term::TermGuard;

mod digits;
mod repaint;
mod view;

pub use view::{draw, Branding, Theme, View};

/// Buffers one frame and writes it in one go, counting bytes: crossterm
/// would otherwise issue a write(2) per escape sequence.
pub struct FrameWriter {
    buf: Vec<u8>,
    out: File,
    written: Arc<AtomicU64>,
    /// Frames are computed but not sent (see `repaint_whole`).
    discard: Arc<AtomicBool>,
}

impl Write for FrameWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.discard.load(Ordering::Relaxed) {
            self.buf.clear();
            return Ok(());
        }
        if !self.buf.is_empty() {
            let r = self.out.write_all(&self.buf);
            self.written
                .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            self.buf.clear();
            r?;
        }
        Ok(())
    }
}

/// The full-screen renderer on one terminal.
pub struct FullscreenRenderer {
    term: Terminal<CrosstermBackend<FrameWriter>>,
    guard: TermGuard,
    written: Arc<AtomicU64>,
    /// A duplicate of the terminal's fd, to read its size.
    fd: OwnedFd,
    theme: Theme,
    host: String,
    branding: Branding,
    /// A person may press a key here (a VT or a terminal emulator).
    keyboard: bool,
    /// The language this terminal can show.
    tr: crate::i18n::Tr,
    budget: f64,
    /// The final screen has been painted whole once.
    final_painted: bool,
    /// Painted whole every so often (a console others may write on; not
    /// the alternate screen of a terminal emulator, which is ours alone).
    periodic: bool,
    last_whole: Option<Instant>,
    whole_every: Duration,
    discard: Arc<AtomicBool>,
    /// Drawn on the alternate screen, which leaving takes away.
    alternate_screen: bool,
    /// The outcome as lines, printed after an alternate screen is left:
    /// the person at the terminal must still see how the update ended.
    outcome: Vec<String>,
}

impl FullscreenRenderer {
    /// Takes over the terminal `out` (size `size`): saves its state, hides
    /// the cursor, clears it.
    pub fn new(
        out: File,
        caps: &Caps,
        size: (u16, u16),
        alternate_screen: bool,
        host: String,
    ) -> anyhow::Result<FullscreenRenderer> {
        let guard = TermGuard::take(out.as_fd(), caps, alternate_screen, size.1)?;
        let fd = out.as_fd().try_clone_to_owned().context("terminal")?;
        let written = Arc::new(AtomicU64::new(0));
        let discard = Arc::new(AtomicBool::new(false));
        let writer = FrameWriter {
            buf: Vec::with_capacity(8192),
            out,
            written: Arc::clone(&written),
            discard: Arc::clone(&discard),
        };
        let term = Terminal::with_options(
            CrosstermBackend::new(writer),
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, size.0, size.1)),
            },
        )
        .context("terminal")?;
        Ok(FullscreenRenderer {
            term,
            guard,
            written,
            fd,
            theme: Theme::for_caps(caps),
            host,
            branding: Branding::default(),
            keyboard: false,
            tr: crate::i18n::Tr::for_console(caps.shows_language()),
            budget: crate::runtime::CONSOLE_BUDGET,
            final_painted: false,
            periodic: !alternate_screen,
            last_whole: None,
            whole_every: repaint::MIN_INTERVAL,
            discard,
            alternate_screen,
            outcome: Vec::new(),
        })
    }

    /// The terminal's descriptor (for ioctls on it).
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Whether key presses on this terminal count (see `key_pressed`).
    pub fn set_keyboard(&mut self, keyboard: bool) {
        self.keyboard = keyboard;
    }

    /// The glyphs the terminal's font has (a VT's Unicode map).
    pub fn set_glyphs(&mut self, glyphs: Glyphs) {
        self.theme.glyphs = glyphs;
    }

    /// What the screen says of the machine (see [`Branding`]).
    pub fn set_branding(&mut self, branding: Branding) {
        self.branding = branding;
    }

    /// Bytes per second this terminal may average (see the runtime).
    pub fn set_budget(&mut self, bytes_per_second: f64) {
        self.budget = bytes_per_second;
    }

    /// Makes the next draw send every cell, after clearing the screen.
    /// ratatui's own `clear()` asks the terminal where its cursor is, which
    /// a serial console never answers; instead a frame that differs in
    /// every cell is drawn and thrown away, so ratatui believes the screen
    /// holds it.
    fn repaint_whole(&mut self) -> anyhow::Result<()> {
        self.discard.store(true, Ordering::Relaxed);
        let drawn = self.term.draw(|f| {
            let area = f.area();
            let buf = f.buffer_mut();
            for y in area.top()..area.bottom() {
                for x in area.left()..area.right() {
                    if let Some(cell) = buf.cell_mut((x, y)) {
                        cell.set_symbol("\u{fffd}");
                    }
                }
            }
        });
        self.discard.store(false, Ordering::Relaxed);
        drawn.context("terminal")?;
        self.term
            .backend_mut()
            .write_all(b"\x1b[H\x1b[2J")
            .context("terminal")
    }

    /// Follows a terminal whose size the kernel knows and that changed
    /// (a resized terminal emulator); 0x0 consoles keep the probed size.
    fn follow_size(&mut self) -> anyhow::Result<()> {
        if let Some((w, h)) = crate::caps::kernel_size(self.fd.as_fd()) {
            let area = Rect::new(0, 0, w, h);
            if area != self.term.get_frame().area() {
                self.term.resize(area).context("terminal")?;
            }
        }
        Ok(())
    }
}

impl crate::runtime::Renderer for FullscreenRenderer {
    fn key_pressed(&mut self) -> bool {
        if !self.keyboard {
            return false;
        }
        let mut fds = [nix::poll::PollFd::new(
            self.fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if !matches!(
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO),
            Ok(n) if n > 0
        ) {
            return false;
        }
        // Consumed, so it is not read again (or by a shell later).
        let mut buf = [0u8; 64];
        matches!(nix::unistd::read(&self.fd, &mut buf), Ok(n) if n > 0)
    }

    fn render(&mut self, model: &Model, now: Instant) -> anyhow::Result<u64> {
        self.follow_size()?;
        let before = self.written.load(Ordering::Relaxed);
        // Others may have written on a console (the kernel, systemd) and
        // scrolled it under us: the last screen, and one every few seconds
        // before it, is painted whole, not as differences from what we
        // believe is there.
        let periodic = self.periodic
            && self
                .last_whole
                .is_some_and(|l| now.saturating_duration_since(l) >= self.whole_every);
        let whole = periodic || (model.is_finished() && !self.final_painted);
        if whole || self.last_whole.is_none() {
            self.last_whole = Some(now);
        }
        if whole {
            self.repaint_whole()?;
        }
        self.final_painted |= model.is_finished();
        let view = View {
            model,
            now,
            host: &self.host,
            theme: self.theme,
            branding: &self.branding,
            width: self.term.size().map(|s| s.width).unwrap_or(80),
            tr: self.tr,
        };
        self.term.draw(|f| draw(f, &view)).context("terminal")?;
        if model.is_finished() {
            self.outcome = crate::plain::outcome_lines(model, now, self.tr);
        }
        let bytes = self.written.load(Ordering::Relaxed) - before;
        if whole {
            self.whole_every = repaint::interval(bytes, self.budget);
        }
        Ok(bytes)
    }

    fn tick(&self, model: &Model) -> Option<Duration> {
        // Elapsed time, ETA and countdown move by themselves.
        if !model.is_finished() || model.countdown(Instant::now()).is_some() {
            Some(Duration::from_secs(1))
        } else {
            None
        }
    }

    fn restore(&mut self) {
        self.guard.restore();
        if self.alternate_screen && !self.outcome.is_empty() {
            // CR too: the terminal's saved modes may not translate NL.
            let text: String = self.outcome.iter().map(|l| format!("{l}\r\n")).collect();
            if let Err(e) = crate::caps::write_all_fd(self.fd.as_fd(), text.as_bytes()) {
                tracing::debug!("the outcome after the full screen: {e}");
            }
        }
    }

    fn budget(&self) -> f64 {
        self.budget
    }
}
