//! dpkg's --status-fd lines as progress events: two steps per package, unpacked and configured.

use super::*;

/// Turns `--status-fd` lines into progress events. Each package counts two
/// units: unpacked, then configured.
pub(super) struct Progress {
    pub(super) total: u32,
    pub(super) step: u32,
    pub(super) units: BTreeMap<String, u32>,
    pub(super) packages: Vec<String>,
    pub(super) errors: Vec<String>,
    pub(super) last_percent: f32,
}

impl Progress {
    /// dpkg's fatal errors (its database cannot be written, on a full disk
    /// for one) come only on its output, never on the status descriptor:
    /// kept, so the record says why instead of an exit status alone.
    pub(super) fn output(&mut self, line: &str) {
        if let Some(e) = line.strip_prefix("dpkg: error: ") {
            self.errors.push(e.trim().to_string());
        }
    }

    pub(super) fn new(total: u32) -> Progress {
        Progress {
            total,
            step: 0,
            units: BTreeMap::new(),
            packages: Vec::new(),
            errors: Vec::new(),
            last_percent: -1.0,
        }
    }

    pub(super) fn feed(&mut self, line: &str) -> Vec<Event> {
        let mut ev = Vec::new();
        if let Some(rest) = line.strip_prefix("processing: ") {
            let mut it = rest.splitn(2, ": ");
            let (action, pkg) = (it.next().unwrap_or(""), bare(it.next().unwrap_or("")));
            let said = match action {
                "install" | "upgrade" => UNPACKING,
                "configure" => CONFIGURING,
                "remove" | "purge" => crate::backend::said::REMOVING,
                "trigproc" => TRIGGERS,
                _ => PROCESSING,
            };
            let name = said.with(&[&pkg]);
            if action != "trigproc" && !self.packages.iter().any(|p| p == pkg) {
                self.packages.push(pkg.to_string());
            }
            if self.total > 0 && matches!(action, "install" | "upgrade" | "configure") {
                self.step = (self.step + 1).min(2 * self.total);
                ev.push(Event::step(self.step, 2 * self.total, name));
            } else {
                ev.push(Event::message(name));
            }
        } else if let Some(rest) = line.strip_prefix("status: ") {
            // "status: pkg: state" or "status: pkg : error : message".
            if let Some((pkg, msg)) = rest.split_once(" : error : ") {
                self.errors.push(format!("{}: {}", bare(pkg), msg.trim()));
            } else if let Some((pkg, state)) = rest.rsplit_once(':') {
                let unit = match state.trim() {
                    "unpacked" => 1,
                    "installed" => 2,
                    _ => 0,
                };
                let u = self.units.entry(bare(pkg).to_string()).or_insert(0);
                *u = (*u).max(unit);
                if self.total > 0 {
                    let done: u32 = self.units.values().sum();
                    let pct = (done as f32 * 100.0 / (2 * self.total) as f32).min(100.0);
                    if pct > self.last_percent {
                        self.last_percent = pct;
                        ev.push(Event::Progress { percent: pct });
                    }
                }
            }
        }
        ev
    }
}
