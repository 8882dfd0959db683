//! Renderer threads: one per console (and one for plymouth), each fed from
//! the shared model through a "something changed" flag, so `send` never
//! waits on a console and a slow console skips frames, never events.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::consoles;
use crate::event::Event;
use crate::model::Model;
use crate::plymouth::{Plymouth, PlymouthRenderer};
use crate::{Output, Tuning, UiMode, UiOptions};

mod renderers;
use renderers::{device_renderer, hostname, stdout_renderer};

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

#[cfg(test)]
mod tests;
