//! Renderer threads: one per console (and one for plymouth), each fed from
//! the shared model through a "something changed" flag, so `send` never
//! waits on a console and a slow console skips frames, never events.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::caps::{self, Caps};
use crate::consoles;
use crate::event::Event;
use crate::fullscreen::FullscreenRenderer;
use crate::model::Model;
use crate::plain::PlainRenderer;
use crate::plymouth::{Plymouth, PlymouthRenderer};
use crate::{Output, Tuning, UiMode, UiOptions};

/// At most 10 frames a second.
pub const MIN_FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// Bytes per second a console may average: a 115200-baud line carries
/// about 11 KiB/s, and the update's own console messages need room too.
/// Aimed below 2 KiB/s: the once-a-second clock redraws come on top.
pub const CONSOLE_BUDGET: f64 = 1792.0;
/// The least a slow line gets: a step change redraws a few hundred bytes,
/// and each must still reach the screen within about a second.
pub const BUDGET_FLOOR: f64 = 240.0;

/// The byte budget of a console whose line runs at `speed` bits per
/// second: about half the line (10 bits a byte on a serial line), the rest
/// left to the kernel's and systemd's own messages, never below
/// [`BUDGET_FLOOR`] nor above the line itself. Unknown: [`CONSOLE_BUDGET`].
/// A VT reports 38400 (1920 B/s), close to the old fixed budget.
pub fn budget_for_speed(speed: Option<u32>) -> f64 {
    match speed {
        Some(bps) if bps > 0 => {
            let line = f64::from(bps) / 10.0;
            (line / 2.0).max(BUDGET_FLOOR.min(line))
        }
        _ => CONSOLE_BUDGET,
    }
}

/// Something that shows the model somewhere.
pub trait Renderer: Send {
    /// Draws the model; returns the bytes written (for the byte budget).
    fn render(&mut self, model: &Model, now: Instant) -> anyhow::Result<u64>;
    /// Redraw after this long even without events (clocks, countdowns).
    fn tick(&self, model: &Model) -> Option<Duration>;
    /// Gives the terminal back. Called once, at the end or after an error.
    fn restore(&mut self);
    fn min_interval(&self) -> Duration {
        MIN_FRAME_INTERVAL
    }
    /// Average bytes per second allowed; frames wait accordingly.
    fn budget(&self) -> f64 {
        CONSOLE_BUDGET
    }
    /// Whether a key was pressed on this terminal since the last call
    /// (consumed); only terminals with a real keyboard say so.
    fn key_pressed(&mut self) -> bool {
        false
    }
}

#[derive(Default)]
struct WakeState {
    dirty: bool,
    urgent: bool,
    closing: bool,
}

#[derive(Default)]
struct Wake {
    st: Mutex<WakeState>,
    cv: Condvar,
}

impl Wake {
    fn poke(&self, urgent: bool, closing: bool) {
        let mut st = lock(&self.st);
        // A renderer that already knows about a change needs no wake-up:
        // at 100 events/s this saves ~100 pointless wake-ups a second.
        let news = !st.dirty || (urgent && !st.urgent) || (closing && !st.closing);
        st.dirty = true;
        st.urgent |= urgent;
        st.closing |= closing;
        if news {
            self.cv.notify_one();
        }
    }
}

struct Handle {
    name: String,
    wake: Arc<Wake>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) struct Shared {
    model: Mutex<Model>,
    handles: Mutex<Vec<Handle>>,
    opts: UiOptions,
    tuning: Tuning,
    host: String,
    closing: AtomicBool,
    /// Plymouth owns the consoles: no console renderer may start.
    plymouth_owns_consoles: AtomicBool,
    /// Kernel and systemd kept off the consoles while the full screen is up.
    quiet: Mutex<Option<crate::quiet::ConsoleQuiet>>,
    /// Someone pressed a key on a console with a keyboard.
    key: AtomicBool,
}

/// A mutex whose holder panicked still holds usable data here (a model or
/// a flag): recover it rather than spreading the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(opts: UiOptions, tuning: Tuning) -> Arc<Shared> {
        Arc::new(Shared {
            model: Mutex::new(Model::new()),
            handles: Mutex::new(Vec::new()),
            opts,
            tuning,
            host: hostname(),
            closing: AtomicBool::new(false),
            plymouth_owns_consoles: AtomicBool::new(false),
            quiet: Mutex::new(None),
            key: AtomicBool::new(false),
        })
    }

    pub(crate) fn key_pressed(&self) -> bool {
        self.key.load(Ordering::SeqCst)
    }

    pub(crate) fn model(&self) -> Model {
        lock(&self.model).clone()
    }

    pub(crate) fn send(&self, event: Event) {
        let urgent = matches!(event, Event::Finished { .. } | Event::Started { .. });
        lock(&self.model).apply(&event, Instant::now());
        for h in lock(&self.handles).iter() {
            h.wake.poke(urgent, false);
        }
    }

    /// Tells every renderer to draw the end and stop, and waits for them
    /// until `timeout`. A renderer stuck in a write (a serial line held by
    /// flow control) is left behind, detached.
    pub(crate) fn finish(&self) {
        let timeout = self.tuning.finish_timeout;
        self.closing.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = Vec::new();
            {
                let mut hs = lock(&self.handles);
                for h in hs.iter_mut() {
                    h.wake.poke(true, true);
                    match &h.thread {
                        Some(t) if t.is_finished() => {
                            if let Some(t) = h.thread.take() {
                                let _ = t.join();
                            }
                        }
                        Some(_) => pending.push(h.name.clone()),
                        None => {}
                    }
                }
            }
            if pending.is_empty() {
                lock(&self.quiet).take();
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "UI renderers still busy, left behind: {}",
                    pending.join(", ")
                );
                lock(&self.quiet).take();
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the renderers `opts` asks for.
    pub(crate) fn start(self: &Arc<Shared>) {
        let o = &self.opts;
        let plymouth = match (o.mode, &o.output) {
            (UiMode::None, _) => return,
            (UiMode::Plymouth, _) | (UiMode::Auto, Output::Consoles) => true,
            _ => false,
        };
        if plymouth {
            let on_fail = |s: &Arc<Shared>| {
                s.plymouth_owns_consoles.store(false, Ordering::SeqCst);
                tracing::info!("plymouth not (or no longer) available: console UI");
                s.start_consoles();
            };
            self.plymouth_owns_consoles.store(true, Ordering::SeqCst);
            let ply = Plymouth::new(&self.tuning.plymouth, self.tuning.plymouth_timeout);
            spawn(
                self,
                "plymouth".into(),
                Box::new(move || {
                    Ok(Box::new(PlymouthRenderer::connect_with(ply)?) as Box<dyn Renderer>)
                }),
                Some(Box::new(on_fail)),
            );
        } else {
            self.start_consoles();
        }
    }

    fn start_consoles(self: &Arc<Shared>) {
        if self.plymouth_owns_consoles.load(Ordering::SeqCst) {
            return;
        }
        let mode = self.opts.mode;
        match &self.opts.output {
            Output::Stdout => {
                let host = self.host.clone();
                let branding = self.tuning.branding.clone();
                spawn(
                    self,
                    "stdout".into(),
                    Box::new(move || stdout_renderer(mode, host, branding)),
                    None,
                );
            }
            Output::Devices(paths) => {
                let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
                let env_term = std::env::var("TERM").ok();
                for p in paths {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let term = consoles::term_for(&name, &cmdline, env_term.as_deref());
                    self.start_device(p.clone(), term);
                }
            }
            Output::Consoles => {
                if matches!(mode, UiMode::Auto | UiMode::Fullscreen) {
                    *lock(&self.quiet) = Some(crate::quiet::ConsoleQuiet::engage());
                }
                let list = consoles::active_consoles();
                if list.is_empty() {
                    tracing::warn!("no active console found: no UI on screen");
                }
                for c in list {
                    self.start_device(c.path, c.term);
                }
            }
        }
    }

    fn start_device(self: &Arc<Shared>, path: PathBuf, term: String) {
        let mode = self.opts.mode;
        let host = self.host.clone();
        let branding = self.tuning.branding.clone();
        let name = path.display().to_string();
        spawn(
            self,
            name,
            Box::new(move || device_renderer(&path, &term, mode, host, branding)),
            None,
        );
    }
}

type Factory = Box<dyn FnOnce() -> anyhow::Result<Box<dyn Renderer>> + Send>;
type OnFail = Box<dyn FnOnce(&Arc<Shared>) + Send>;

fn spawn(shared: &Arc<Shared>, name: String, factory: Factory, on_fail: Option<OnFail>) {
    let wake = Arc::new(Wake::default());
    if shared.closing.load(Ordering::SeqCst) {
        // Started during finish (a late fallback): draw the end once.
        wake.poke(true, true);
    } else {
        wake.poke(false, false);
    }
    let s = Arc::clone(shared);
    let w = Arc::clone(&wake);
    let n = name.clone();
    let thread = std::thread::Builder::new()
        .name(format!("ui {name}"))
        .spawn(move || {
            // Whatever happens in here stays in here: the update goes on.
            let r = catch_unwind(AssertUnwindSafe(|| {
                let mut r = factory()?;
                let res = run(&mut *r, &s, &w);
                r.restore();
                res
            }));
            let failed = match r {
                Ok(Ok(())) => false,
                Ok(Err(e)) => {
                    tracing::warn!("UI on {n} stopped: {e:#}");
                    true
                }
                Err(_) => {
                    tracing::error!("UI on {n} panicked; the update goes on without it");
                    true
                }
            };
            if failed {
                if let Some(f) = on_fail {
                    f(&s);
                }
            }
        });
    match thread {
        Ok(t) => lock(&shared.handles).push(Handle {
            name,
            wake,
            thread: Some(t),
        }),
        Err(e) => tracing::warn!("cannot start the UI thread for {name}: {e}"),
    }
}

/// The loop of one renderer: wait for a change (or a clock tick), respect
/// the frame interval and byte budget, draw the latest state.
fn run(r: &mut dyn Renderer, shared: &Shared, wake: &Wake) -> anyhow::Result<()> {
    let min = r.min_interval();
    let budget = r.budget().max(1.0);
    let mut next_allowed = Instant::now();
    let mut last_draw: Option<Instant> = None;
    let mut tick: Option<Duration> = None;
    loop {
        let closing = {
            let mut st = lock(&wake.st);
            loop {
                if st.closing {
                    break true;
                }
                let now = Instant::now();
                let tick_due = tick.map(|t| last_draw.map_or(now, |l| l + t));
                let due = st.dirty || tick_due.is_some_and(|t| t <= now);
                // A final screen skips the byte budget, not the frame rate.
                let gate = if st.urgent {
                    last_draw.map_or(now, |l| l + min)
                } else {
                    next_allowed
                };
                if due && now >= gate {
                    break false;
                }
                let until = if due {
                    gate
                } else {
                    tick_due.unwrap_or(now + Duration::from_secs(3600))
                };
                st = wake
                    .cv
                    .wait_timeout(st, until.saturating_duration_since(now))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        {
            let mut st = lock(&wake.st);
            st.dirty = false;
            st.urgent = false;
        }
        let model = shared.model();
        let now = Instant::now();
        let bytes = r.render(&model, now)?;
        // Only the final screen listens: a key skips its countdown. Keys
        // typed before are read and dropped, so they cannot skip it later.
        if r.key_pressed() && model.is_finished() {
            shared.key.store(true, Ordering::SeqCst);
        }
        last_draw = Some(now);
        let cost = Duration::from_secs_f64(bytes as f64 / budget);
        next_allowed = now + cost.max(min);
        tick = r.tick(&model);
        if closing {
            return Ok(());
        }
    }
}

fn host_of(s: &str) -> String {
    s.trim().to_string()
}

fn hostname() -> String {
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

fn device_renderer(
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

fn stdout_renderer(
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
fn own_terminal_renderer(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the step each frame showed; at most a frame per 300 ms, as
    /// plymouth's renderer at most one per 2 s.
    struct Recorder(Arc<Mutex<Vec<Option<String>>>>);

    impl Renderer for Recorder {
        fn render(&mut self, model: &Model, _now: Instant) -> anyhow::Result<u64> {
            lock(&self.0).push(model.step.as_ref().map(|s| s.name.english.clone()));
            Ok(0)
        }
        fn tick(&self, _model: &Model) -> Option<Duration> {
            None
        }
        fn restore(&mut self) {}
        fn min_interval(&self) -> Duration {
            Duration::from_millis(300)
        }
    }

    #[test]
    fn when_the_rate_limit_reopens_the_latest_step_is_shown_without_a_new_event() {
        let shared = Shared::new(
            UiOptions {
                mode: UiMode::None,
                output: Output::Stdout,
            },
            Tuning::default(),
        );
        let frames = Arc::new(Mutex::new(Vec::new()));
        let f = Arc::clone(&frames);
        spawn(
            &shared,
            "recorder".into(),
            Box::new(move || Ok(Box::new(Recorder(f)) as Box<dyn Renderer>)),
            None,
        );
        shared.send(Event::Started { title: "t".into() });
        std::thread::sleep(Duration::from_millis(50));
        // Three phases inside one rate-limit window, then silence.
        for (i, name) in ["Unpacking a", "Unpacking b", "Configuring b"]
            .iter()
            .enumerate()
        {
            shared.send(Event::step(
                i as u32 + 1,
                3,
                crate::event::Text::foreign(*name),
            ));
        }
        // No event follows: the renderer must come back by itself.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = lock(&frames).clone();
            if seen.last().cloned().flatten().as_deref() == Some("Configuring b") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the latest step never shown: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        shared.finish();
    }

    #[test]
    fn the_budget_follows_the_line_speed() {
        assert_eq!(budget_for_speed(Some(9600)), 480.0);
        assert_eq!(budget_for_speed(Some(115_200)), 5760.0);
        assert_eq!(budget_for_speed(Some(38400)), 1920.0);
        // A slow line gets the floor, a very slow one all of itself.
        assert_eq!(budget_for_speed(Some(4800)), 240.0);
        assert_eq!(budget_for_speed(Some(1200)), 120.0);
        assert_eq!(budget_for_speed(None), CONSOLE_BUDGET);
        assert_eq!(budget_for_speed(Some(0)), CONSOLE_BUDGET);
    }

    #[test]
    fn a_ptys_speed_is_read_from_termios() {
        use nix::sys::termios::{self, BaudRate, SetArg};
        let pty = nix::pty::openpty(None, None).expect("openpty");
        for (rate, bps) in [(BaudRate::B9600, 9600), (BaudRate::B115200, 115_200)] {
            let mut t = termios::tcgetattr(&pty.slave).expect("tcgetattr");
            termios::cfsetospeed(&mut t, rate).expect("cfsetospeed");
            termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
            assert_eq!(caps::line_speed(pty.slave.as_fd()), Some(bps));
        }
    }

    #[test]
    fn the_own_terminal_gets_its_line_speeds_budget() {
        use nix::sys::termios::{self, BaudRate, SetArg};
        // Sized, so no cursor-position probe waits for an answer.
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
        let mut t = termios::tcgetattr(&pty.slave).expect("tcgetattr");
        termios::cfsetospeed(&mut t, BaudRate::B9600).expect("cfsetospeed");
        termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
        let file = File::from(pty.slave);
        let r = own_terminal_renderer(
            file,
            "xterm",
            UiMode::Fullscreen,
            "host".into(),
            crate::fullscreen::Branding::default(),
        )
        .expect("a full screen on the pty");
        // 9600 bit/s carry 960 B/s, half of it for the screen.
        assert!(r.budget() <= 960.0, "budget {} B/s", r.budget());
        assert_eq!(r.budget(), budget_for_speed(Some(9600)));
    }

    struct Panicky;

    impl Renderer for Panicky {
        fn render(&mut self, model: &Model, _now: Instant) -> anyhow::Result<u64> {
            if model.version > 1 {
                panic!("renderer bug (expected by the test)");
            }
            Ok(0)
        }
        fn tick(&self, _model: &Model) -> Option<Duration> {
            None
        }
        fn restore(&mut self) {}
    }

    #[test]
    fn a_panicking_renderer_does_not_take_the_update_down() {
        let shared = Shared::new(
            UiOptions {
                mode: UiMode::None,
                output: Output::Stdout,
            },
            Tuning::default(),
        );
        let fell_back = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&fell_back);
        spawn(
            &shared,
            "panicky".into(),
            Box::new(|| Ok(Box::new(Panicky) as Box<dyn Renderer>)),
            Some(Box::new(move |_| f.store(true, Ordering::SeqCst))),
        );
        for i in 0..50 {
            shared.send(Event::Progress { percent: i as f32 });
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        shared.finish();
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(shared.model().percent, 49.0);
        assert!(fell_back.load(Ordering::SeqCst), "the failure was noticed");
    }
}
