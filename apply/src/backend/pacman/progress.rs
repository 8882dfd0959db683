//! pacman's output as progress events: its checks, then one step per package.

use super::*;

/// Turns pacman's `--noprogressbar` output into progress events: the
/// checks take the first 10 %, each package an equal share of the rest.
pub(super) struct Progress {
    pub(super) total: u32,
    pub(super) step: u32,
    pub(super) current: Option<String>,
    pub(super) errors: Vec<String>,
    pub(super) last: f32,
}

impl Progress {
    pub(super) fn new(total: u32) -> Progress {
        Progress {
            total,
            step: 0,
            current: None,
            errors: Vec::new(),
            last: -1.0,
        }
    }

    pub(super) fn percent(&mut self, p: f32) -> Option<Event> {
        let p = p.clamp(0.0, 100.0);
        (p > self.last).then(|| {
            self.last = p;
            Event::Progress { percent: p }
        })
    }

    pub(super) fn feed(&mut self, line: &str) -> Vec<Event> {
        let mut ev = Vec::new();
        let l = line.trim();
        if let Some(e) = l.strip_prefix("error: ") {
            self.errors.push(match (&self.current, e) {
                (Some(pkg), "command failed to execute correctly") => {
                    format!("{pkg}: its install script failed")
                }
                _ => e.to_string(),
            });
            return ev;
        }
        if let Some(rest) = l.strip_prefix("Packages (") {
            // "Packages (2) hello-2.0-1  needs-1.0-1": pacman's own count
            // (dependencies included).
            if let Some(n) = rest.split(')').next().and_then(|n| n.parse::<u32>().ok()) {
                self.total = self.total.max(n);
            }
            return ev;
        }
        let check = match l {
            "checking keyring..." => Some((2.0, m_("Checking the keyring"))),
            "checking package integrity..." => Some((4.0, m_("Checking the packages' integrity"))),
            "loading package files..." => Some((6.0, m_("Loading the packages"))),
            "checking for file conflicts..." => Some((8.0, m_("Checking for file conflicts"))),
            "checking available disk space..." => Some((9.0, m_("Checking the disk space"))),
            _ => None,
        };
        if let Some((pct, text)) = check {
            ev.push(Event::message(text.text()));
            ev.extend(self.percent(pct));
            return ev;
        }
        for verb in [
            "installing",
            "upgrading",
            "reinstalling",
            "downgrading",
            "removing",
        ] {
            let Some(pkg) = l
                .strip_prefix(verb)
                .and_then(|r| r.strip_prefix(' '))
                .and_then(|r| r.strip_suffix("..."))
            else {
                continue;
            };
            if pkg.is_empty() || pkg.contains(' ') {
                continue;
            }
            self.current = Some(pkg.to_string());
            if verb == "removing" || self.total == 0 {
                ev.push(Event::message(said::REMOVING.with(&[&pkg])));
                return ev;
            }
            // The previous package is done once the next one starts.
            ev.extend(self.percent(10.0 + 90.0 * self.step as f32 / self.total as f32));
            self.step = (self.step + 1).min(self.total);
            ev.push(Event::step(
                self.step,
                self.total,
                said::doing(verb).with(&[&pkg]),
            ));
            return ev;
        }
        ev
    }
}
