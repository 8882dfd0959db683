//! rpm's and dnf's output as progress events: one step per package installed.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    Before,
    Installing,
    CleaningUp,
}

/// Turns rpm's `-v -h --percent` output (and dnf's transaction lines) into
/// progress events. Installing takes the first 90 %, removing the old
/// versions the rest.
pub(super) struct Progress {
    pub(super) total: u32,
    pub(super) step: u32,
    pub(super) phase: Phase,
    pub(super) errors: Vec<String>,
    pub(super) last: f32,
}

impl Progress {
    pub(super) fn new(total: u32) -> Progress {
        Progress {
            total,
            step: 0,
            phase: Phase::Before,
            errors: Vec::new(),
            last: -1.0,
        }
    }

    pub(super) fn percent(&mut self, pct: f32) -> Option<Event> {
        if self.total == 0 || !pct.is_finite() {
            return None;
        }
        let pct = pct.clamp(0.0, 100.0);
        let overall = match self.phase {
            Phase::Before => return None,
            Phase::Installing => {
                (self.step.saturating_sub(1) as f32 + pct / 100.0) * 90.0 / self.total as f32
            }
            Phase::CleaningUp => 90.0 + pct / 10.0,
        }
        .clamp(0.0, 100.0);
        if overall > self.last {
            self.last = overall;
            Some(Event::Progress { percent: overall })
        } else {
            None
        }
    }

    pub(super) fn start(&mut self, verb: &str, name: &str) -> Event {
        self.step = (self.step + 1).min(self.total.max(1));
        Event::step(
            self.step,
            self.total.max(1),
            said::doing(verb).with(&[&name]),
        )
    }

    pub(super) fn feed(&mut self, line: &str) -> Vec<Event> {
        let mut ev = Vec::new();
        let l = line.trim();
        if l.contains("scriptlet failed") || l.starts_with("error:") {
            let e = l
                .trim_start_matches("warning: ")
                .trim_start_matches("error: ");
            if e != "Failed dependencies:" {
                self.errors.push(e.to_string());
            }
            return ev;
        }
        match l {
            "Updating / installing..." => {
                self.phase = Phase::Installing;
                return ev;
            }
            "Cleaning up / removing..." => {
                self.phase = Phase::CleaningUp;
                ev.push(Event::message(REMOVING_OLD.text()));
                return ev;
            }
            _ => {}
        }
        // dnf: "  Installing       : hello-2.0-1.noarch      1/2".
        if let Some((verb, rest)) = l.split_once(" : ") {
            let verb = verb.trim();
            let pkg = rest.split_whitespace().next().unwrap_or("");
            if matches!(
                verb,
                "Installing" | "Upgrading" | "Reinstalling" | "Downgrading"
            ) {
                self.phase = Phase::Installing;
                ev.push(self.start(verb, pkg));
                ev.extend(self.percent(100.0));
            } else if matches!(verb, "Cleanup" | "Erasing" | "Obsoleting") {
                self.phase = Phase::CleaningUp;
            }
            return ev;
        }
        let Some((head, pct)) = l.split_once("%%") else {
            return ev;
        };
        let head = head.trim();
        let pct: Option<f32> = pct.trim().parse().ok();
        match (head, self.phase) {
            ("", _) => {}
            ("Verifying...", _) => ev.push(Event::message(said::VERIFYING.text())),
            ("Preparing...", _) => ev.push(Event::message(PREPARING.text())),
            (name, Phase::Installing) if self.total > 0 => ev.push(self.start("Installing", name)),
            (name, _) => ev.push(Event::message(said::REMOVING.with(&[&name]))),
        }
        if let Some(p) = pct {
            ev.extend(self.percent(p));
        }
        ev
    }
}
