//! How each console's renderer is made: the device opened without becoming
//! our controlling terminal, plain lines or the full screen by what the
//! terminal is, its byte budget from its line speed, and a VT's glyphs from
//! its font.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

use super::{budget_for_speed, Renderer};
use crate::caps::{self, Caps};
use crate::consoles;
use crate::fullscreen::FullscreenRenderer;
use crate::plain::PlainRenderer;
use crate::UiMode;

pub(super) fn host_of(s: &str) -> String {
    s.trim().to_string()
}

pub(super) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most len bytes into our buffer.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let h = host_of(&String::from_utf8_lossy(&buf[..end]));
        if !h.is_empty() {
            return h;
        }
    }
    "localhost".to_string()
}

fn open_tty(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        // Never become this terminal's controlling process: a hangup
        // there must not kill the update.
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

pub(super) fn device_renderer(
    path: &Path,
    term: &str,
    mode: UiMode,
    host: String,
    branding: crate::fullscreen::Branding,
) -> anyhow::Result<Box<dyn Renderer>> {
    let file = open_tty(path)?;
    let caps = Caps::from_term(term);
    if !caps::is_tty(&file) || mode == UiMode::Plain || (caps.dumb && mode != UiMode::Fullscreen) {
        tracing::debug!("plain lines on {}", path.display());
        let tr = crate::i18n::Tr::for_console(caps.shows_language());
        return Ok(Box::new(PlainRenderer::new(Box::new(file)).with_tr(tr)));
    }
    let size = caps::terminal_size(file.as_fd(), true);
    tracing::debug!(
        "full screen on {} ({term}, {}x{})",
        path.display(),
        size.0,
        size.1
    );
    let speed = caps::line_speed(file.as_fd());
    let mut r = FullscreenRenderer::new(file, &caps, size, false, host)?;
    let budget = budget_for_speed(speed);
    match speed {
        Some(bps) => tracing::info!(
            "{}: {bps} bit/s, at most {budget:.0} B/s for the screen",
            path.display()
        ),
        None => tracing::info!(
            "{}: line speed unknown, at most {budget:.0} B/s for the screen",
            path.display()
        ),
    }
    r.set_budget(budget);
    r.set_branding(branding);
    r.set_keyboard(consoles::has_keyboard(path));
    if caps.linux_vt {
        vt_glyphs(&mut r, path);
    }
    Ok(Box::new(r))
}

/// Box and block glyphs where the VT's font has them (its Unicode map);
/// a VT whose map cannot be read keeps ASCII.
fn vt_glyphs(r: &mut FullscreenRenderer, path: &Path) {
    match crate::unimap::read(r.fd()) {
        Some(font) => {
            let glyphs = crate::glyphs::Glyphs::for_font(&font);
            tracing::info!(
                "{}: console font maps {} code points; {}",
                path.display(),
                font.len(),
                if glyphs == crate::glyphs::Glyphs::UNICODE {
                    "box and block glyphs"
                } else if glyphs.is_ascii() {
                    "ASCII borders and gauge"
                } else {
                    "ASCII for the glyphs it lacks"
                }
            );
            r.set_glyphs(glyphs);
        }
        None => tracing::info!(
            "{}: console font map unreadable; ASCII borders and gauge",
            path.display()
        ),
    }
}

pub(super) fn stdout_renderer(
    mode: UiMode,
    host: String,
    branding: crate::fullscreen::Branding,
) -> anyhow::Result<Box<dyn Renderer>> {
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("terminal")?;
    let term = std::env::var("TERM").unwrap_or_default();
    own_terminal_renderer(File::from(fd), &term, mode, host, branding)
}

/// The renderer on the terminal of the person who ran us (`file`, whose
/// type is `term`): the full screen on the alternate screen, paced by the
/// terminal's own line speed as a console's is (a pty reports what it was
/// set to, 38400 by default), or plain lines.
pub(super) fn own_terminal_renderer(
    file: File,
    term: &str,
    mode: UiMode,
    host: String,
    branding: crate::fullscreen::Branding,
) -> anyhow::Result<Box<dyn Renderer>> {
    let caps = Caps::from_term(term);
    if !caps::is_tty(&file) || mode == UiMode::Plain || (caps.dumb && mode != UiMode::Fullscreen) {
        let tr = crate::i18n::Tr::for_console(caps.shows_language());
        return Ok(Box::new(PlainRenderer::new(Box::new(file)).with_tr(tr)));
    }
    let size = caps::terminal_size(file.as_fd(), true);
    let budget = budget_for_speed(caps::line_speed(file.as_fd()));
    let mut r = FullscreenRenderer::new(file, &caps, size, true, host)?;
    r.set_budget(budget);
    r.set_branding(branding);
    r.set_keyboard(true);
    Ok(Box::new(r))
}
