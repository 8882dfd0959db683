//! The console progress UI of an offline update.
//!
//! The apply service creates one [`Ui`], sends it [`Event`]s and finishes it.
//! The UI never blocks the update and can die without failing it: `send`
//! never waits on a console, and every renderer failure is logged and only
//! stops that renderer.

pub mod blank;
pub mod caps;
pub mod consoles;
pub use system_update_events as event;
pub mod fullscreen;
pub mod glyphs;
pub mod i18n;
pub mod mo;
pub mod model;
pub mod plain;
pub mod plymouth;
pub mod quiet;
mod runtime;
mod term;
mod unimap;

pub use event::{AfterAction, Event, Outcome, Text};
pub use model::Model;
pub use runtime::Renderer;
pub use term::restore_terminals;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use runtime::Shared;

/// Which renderer(s) to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UiMode {
    /// Plymouth when it answers, else full screen on capable terminals and
    /// plain lines on dumb ones.
    #[default]
    Auto,
    Fullscreen,
    Plain,
    Plymouth,
    None,
}

/// Where the screen is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Output {
    /// Every active system console (`/sys/class/tty/console/active`), as the
    /// apply service at boot wants.
    #[default]
    Consoles,
    /// These terminal devices.
    Devices(Vec<PathBuf>),
    /// The terminal on standard output (the demo), or plain lines when
    /// standard output is not a terminal.
    Stdout,
}

#[derive(Debug, Clone, Default)]
pub struct UiOptions {
    pub mode: UiMode,
    pub output: Output,
}

/// Knobs for tests and special setups; `Default` is what the apply
/// service wants.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// The operating system's name and the admin's title, footer and
    /// colour, for the full screen.
    pub branding: fullscreen::Branding,
    /// The `plymouth` client to run.
    pub plymouth: PathBuf,
    /// Timeout of every plymouth call.
    pub plymouth_timeout: Duration,
    /// How long `finish` waits for the renderers to draw the end.
    pub finish_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            plymouth: PathBuf::from(plymouth::DEFAULT_PROGRAM),
            plymouth_timeout: plymouth::CALL_TIMEOUT,
            finish_timeout: Duration::from_secs(3),
            branding: fullscreen::Branding::default(),
        }
    }
}

/// Handle on the running UI.
pub struct Ui {
    shared: Arc<Shared>,
    finished: bool,
}

impl Ui {
    /// Starts the UI. Never fails: what cannot be shown is logged and skipped.
    /// Consoles are opened and probed in the renderer threads, so this
    /// returns at once.
    pub fn start(opts: UiOptions) -> Ui {
        Ui::start_with(opts, Tuning::default())
    }

    /// As [`Ui::start`], with non-default knobs.
    pub fn start_with(opts: UiOptions, tuning: Tuning) -> Ui {
        let shared = Shared::new(opts, tuning);
        shared.start();
        Ui {
            shared,
            finished: false,
        }
    }

    /// Hands an event to the UI without waiting for any console.
    pub fn send(&self, event: Event) {
        self.shared.send(event);
    }

    /// Whether someone pressed a key on a console with a keyboard (a VT, a
    /// terminal emulator; never a serial line, where noise is no key) while
    /// the final screen was up: the caller may skip the countdown.
    pub fn key_pressed(&self) -> bool {
        self.shared.key_pressed()
    }

    /// The model as the UI sees it now (every event applied).
    pub fn model(&self) -> Model {
        self.shared.model()
    }

    /// Shows the last events, restores every terminal and returns, within
    /// a bounded time (a console stuck in a write is left behind).
    pub fn finish(mut self) {
        self.finished = true;
        self.shared.finish();
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.finish();
        }
    }
}
