//! The progress model: everything a screen shows, fed by events.
//!
//! Kept apart from drawing so that every renderer draws the same state and
//! tests can build a state without a terminal. Time is passed in (`now`)
//! rather than read, so snapshots are reproducible.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::event::Text;
use crate::event::{AfterAction, Event, Outcome};

/// Log lines kept for the tail; a 200x60 screen shows about 45.
pub const LOG_TAIL: usize = 64;
/// Steps remembered for renderers that print one line per step and may lag.
const STEP_HISTORY: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub index: u32,
    pub total: u32,
    pub name: Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub outcome: Outcome,
    pub detail: Option<String>,
    pub log_path: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub title: Option<String>,
    pub step: Option<Step>,
    /// How many Step events so far; with `recent_steps` lets a lagging
    /// renderer print the steps it missed.
    pub steps_seen: u64,
    pub recent_steps: VecDeque<Step>,
    pub percent: f32,
    pub message: Option<Text>,
    /// `steps_seen` when the message came: a renderer that missed steps
    /// prints it among them where it belongs.
    pub message_steps: u64,
    pub log: VecDeque<String>,
    pub finish: Option<Finish>,
    countdown: Option<(AfterAction, Duration, Instant)>,
    started_at: Option<Instant>,
    finished_at: Option<Instant>,
    /// First progress sample (time, percent): the ETA is the rate since then.
    first_progress: Option<(Instant, f32)>,
    last_progress_at: Option<Instant>,
    /// Bumped by every event: renderers redraw when it changes.
    pub version: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            title: None,
            step: None,
            steps_seen: 0,
            recent_steps: VecDeque::new(),
            percent: 0.0,
            message: None,
            message_steps: 0,
            log: VecDeque::new(),
            finish: None,
            countdown: None,
            started_at: None,
            finished_at: None,
            first_progress: None,
            last_progress_at: None,
            version: 0,
        }
    }
}

impl Model {
    pub fn new() -> Model {
        Model::default()
    }

    /// Applies one event received at `now`.
    pub fn apply(&mut self, event: &Event, now: Instant) {
        // The package list is the result record's; the screen shows steps.
        if let Event::Package(_) = event {
            return;
        }
        self.version += 1;
        if self.started_at.is_none() {
            self.started_at = Some(now);
        }
        match event {
            Event::Started { title } => {
                self.title = Some(clean(title));
                self.started_at = Some(now);
            }
            Event::Step { index, total, .. } => {
                let step = Step {
                    index: *index,
                    total: *total,
                    name: words(event),
                };
                self.steps_seen += 1;
                if self.recent_steps.len() == STEP_HISTORY {
                    self.recent_steps.pop_front();
                }
                self.recent_steps.push_back(step.clone());
                self.step = Some(step);
            }
            Event::Progress { percent } => {
                let p = if percent.is_finite() {
                    percent.clamp(0.0, 100.0)
                } else {
                    self.percent
                };
                self.percent = p;
                if self.first_progress.is_none() {
                    self.first_progress = Some((now, p));
                }
                self.last_progress_at = Some(now);
            }
            Event::Message { .. } => {
                self.message = Some(words(event));
                self.message_steps = self.steps_seen;
            }
            Event::Log { line } => {
                if self.log.len() == LOG_TAIL {
                    self.log.pop_front();
                }
                self.log.push_back(clean(line));
            }
            Event::Finished {
                outcome,
                detail,
                log_path,
            } => {
                if *outcome == Outcome::Success {
                    self.percent = 100.0;
                }
                self.finish = Some(Finish {
                    outcome: *outcome,
                    detail: detail.as_deref().map(clean),
                    log_path: log_path.clone(),
                });
                self.finished_at = Some(now);
            }
            Event::Countdown { action, remaining } => {
                self.countdown = Some((*action, *remaining, now));
            }
            Event::Package(_) => {}
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Time since the update started; frozen once it is finished.
    pub fn elapsed(&self, now: Instant) -> Duration {
        match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => f.saturating_duration_since(s),
            (Some(s), None) => now.saturating_duration_since(s),
            _ => Duration::ZERO,
        }
    }

    /// Estimated time left, from the rate of progress since the first
    /// sample. None until there is enough to go on (2 s and 1 %).
    pub fn eta(&self, now: Instant) -> Option<Duration> {
        if self.finish.is_some() {
            return None;
        }
        let (t0, p0) = self.first_progress?;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        let dp = f64::from(self.percent - p0);
        if dt < 2.0 || dp < 1.0 {
            return None;
        }
        let left = dt * f64::from(100.0 - self.percent) / dp;
        // Clamp: a stalled start would otherwise promise days.
        Some(Duration::from_secs_f64(left.min(99.0 * 3600.0)))
    }

    /// The after-action and the time left before it, counted down from the
    /// last Countdown event.
    pub fn countdown(&self, now: Instant) -> Option<(AfterAction, Duration)> {
        let (action, remaining, at) = self.countdown?;
        Some((
            action,
            remaining.saturating_sub(now.saturating_duration_since(at)),
        ))
    }
}

/// A step's or a message's words, cleaned for a screen.
fn words(event: &Event) -> Text {
    event.words().unwrap_or_default().map(clean)
}

/// The one cleaner of text for a terminal lives below the records and
/// the UI, in the events crate; the screens use it with their bound.
pub use system_update_events::text::{clean, clean_to};

/// "1:05", "12:34", "1:02:03".
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Whole seconds, rounded up, so a countdown never shows 0 before the end.
pub fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_escapes_and_controls() {
        assert_eq!(clean("\u{1b}[1;31mred\u{1b}[0m\tx\u{7}"), "red x");
        assert_eq!(clean("10%\r20%\r30%"), "30%");
        assert_eq!(clean("line\r"), "line");
        assert_eq!(clean("\u{1b}]0;title\u{7}ok"), "ok");
        assert_eq!(clean("\u{1b}(B\u{1b}[mplain"), "plain");
        assert_eq!(clean("été ✓"), "été ✓");
        assert_eq!(clean("gpl\u{202e}txt.exe\u{2069}"), "gpltxt.exe");
    }

    #[test]
    fn eta_from_rate() {
        let t = Instant::now();
        let mut m = Model::new();
        m.apply(&Event::Progress { percent: 0.0 }, t);
        assert_eq!(m.eta(t + Duration::from_secs(1)), None);
        m.apply(
            &Event::Progress { percent: 25.0 },
            t + Duration::from_secs(10),
        );
        let eta = m.eta(t + Duration::from_secs(10)).map(|d| d.as_secs());
        assert_eq!(eta, Some(30));
    }

    #[test]
    fn countdown_counts_down() {
        let t = Instant::now();
        let mut m = Model::new();
        m.apply(
            &Event::Countdown {
                action: AfterAction::Reboot,
                remaining: Duration::from_secs(10),
            },
            t,
        );
        let (a, left) = m.countdown(t + Duration::from_millis(2500)).unwrap();
        assert_eq!(a, AfterAction::Reboot);
        assert_eq!(ceil_secs(left), 8);
    }

    #[test]
    fn progress_is_clamped() {
        let t = Instant::now();
        let mut m = Model::new();
        m.apply(&Event::Progress { percent: 140.0 }, t);
        assert_eq!(m.percent, 100.0);
        m.apply(&Event::Progress { percent: f32::NAN }, t);
        assert_eq!(m.percent, 100.0);
    }

    #[test]
    fn step_history_is_bounded() {
        let t = Instant::now();
        let mut m = Model::new();
        for i in 1..=100 {
            m.apply(&Event::step(i, 100, Text::foreign(format!("s{i}"))), t);
        }
        assert_eq!(m.steps_seen, 100);
        assert_eq!(m.recent_steps.len(), STEP_HISTORY);
        assert_eq!(m.recent_steps.back().map(|s| s.index), Some(100));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Text with the escapes that matter mixed in: CSI, OSC (BEL and ST
    /// ended), charset designators, C0 and C1 controls, DEL, tabs, CR.
    fn hostile() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                "[ -~]{0,6}",
                Just("\u{1b}[1;31m".to_string()),
                Just("\u{1b}]0;HACKED\u{7}".to_string()),
                Just("\u{1b}]2;x\u{1b}\\".to_string()),
                Just("\u{1b}(B".to_string()),
                Just("\u{1b}".to_string()),
                Just("\u{9b}2J".to_string()),
                Just("\r".to_string()),
                Just("\t".to_string()),
                Just("\u{7f}".to_string()),
                Just("é✓".to_string()),
                Just("\u{202e}".to_string()),
                Just("\u{2066}".to_string()),
                Just("\u{200f}".to_string()),
                any::<char>().prop_map(String::from),
            ],
            0..20,
        )
        .prop_map(|v| v.concat())
    }

    fn terminal_safe(s: &str) -> bool {
        s.chars()
            .all(|c| !c.is_control() && !system_update_events::text::is_bidi_control(c))
    }

    proptest! {
        #[test]
        fn clean_lets_no_control_through(s in hostile()) {
            let c = clean(&s);
            prop_assert!(terminal_safe(&c), "{:?} -> {:?}", s, c);
            prop_assert!(c.len() <= system_update_events::text::SCREEN_MAX + 4, "{}", c.len());
        }

        #[test]
        fn clean_of_arbitrary_text(s in any::<String>()) {
            let c = clean(&s);
            prop_assert!(terminal_safe(&c), "{:?} -> {:?}", s, c);
        }

        #[test]
        fn clean_is_idempotent(s in hostile()) {
            let once = clean(&s);
            prop_assert_eq!(clean(&once), once.clone());
        }

        #[test]
        fn plain_text_passes_unchanged(s in "[ -~]{0,100}") {
            // Up to the blanks at its ends.
            let c = clean(&s);
            prop_assert_eq!(c.trim(), s.trim());
        }

        #[test]
        fn clean_to_bounds_the_length(s in hostile(), max in 0usize..64) {
            prop_assert!(clean_to(&s, max).len() <= max + 4);
        }
    }
}
