//! What an `auto` pass answers: a line for a person and the journal, or
//! one JSON object (`--json`, schema in system-update(8)).

use serde::Serialize;

use crate::logind::{Inhibitor, Session};
use crate::result::JSON_FORMAT;

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub format: u32,
    /// nothing (nothing to do), waiting (not now: outside a window, people,
    /// power, the fleet), armed.
    pub action: &'static str,
    pub reason: String,
    /// The id of the update prepared, when there is one.
    pub prepared: Option<String>,
    /// When the open window closes (RFC 3339, UTC).
    pub window_closes: Option<String>,
    /// Outside the windows: when the next opens.
    pub next_window: Option<String>,
    pub power: Option<String>,
    /// The inhibitors blocking a shutdown.
    pub inhibitors: Vec<Inhibitor>,
    pub sessions: Vec<Session>,
    /// none, now, or scheduled (users warned, logind reboots later).
    pub reboot: &'static str,
}

impl Answer {
    pub(super) fn new() -> Answer {
        Answer {
            format: JSON_FORMAT,
            action: "nothing",
            reason: String::new(),
            prepared: None,
            window_closes: None,
            next_window: None,
            power: None,
            inhibitors: Vec::new(),
            sessions: Vec::new(),
            reboot: "none",
        }
    }

    pub(super) fn nothing(mut self, why: String) -> Answer {
        self.action = "nothing";
        self.reason = why;
        self
    }

    pub(super) fn waiting(mut self, why: String) -> Answer {
        self.action = "waiting";
        self.reason = why;
        self
    }

    /// The text a person reads, or the JSON.
    pub fn render(&self, json: bool) -> String {
        if json {
            return serde_json::to_string_pretty(self).unwrap_or_default() + "\n";
        }
        let mut out = format!("auto: {}: {}\n", self.action, self.reason);
        if let Some(id) = &self.prepared {
            out += &format!("Prepared: {id}\n");
        }
        if let Some(t) = &self.window_closes {
            out += &format!("The window closes at {t}\n");
        }
        if let Some(t) = &self.next_window {
            out += &format!("The next window opens at {t}\n");
        }
        if let Some(p) = &self.power {
            out += &format!("Power: {p}\n");
        }
        out
    }
}
