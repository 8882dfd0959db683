//! Progress events: the only thing the UI is told. They say nothing of
//! package managers; the apply service translates backend output into them.

use std::path::PathBuf;
use std::time::Duration;

/// How an update ended, as far as the screen is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

/// What the machine does once the update is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAction {
    Reboot,
    PowerOff,
    /// Nothing (`--no-reboot`, the demo, tests).
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The update begins; `title` names it ("Debian security update").
    Started { title: String },
    /// Step `index` (1-based) of `total`, e.g. "Installing hello 2.0".
    Step {
        index: u32,
        total: u32,
        name: String,
    },
    /// Overall progress, 0.0 to 100.0.
    Progress { percent: f32 },
    /// What is happening right now, one line.
    Message { text: String },
    /// One line of the backend's output, for the log tail.
    Log { line: String },
    /// The update is over. `detail` is the error on failure (one line),
    /// `log_path` where the full log is kept.
    Finished {
        outcome: Outcome,
        detail: Option<String>,
        log_path: Option<PathBuf>,
    },
    /// The after-action happens in `remaining`.
    Countdown {
        action: AfterAction,
        remaining: Duration,
    },
}
