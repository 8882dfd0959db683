//! Plain lines for dumb terminals, pipes and logs: one line per step and per
//! 5 % of progress, the outcome, the countdown. No escape codes.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::event::{AfterAction, Outcome, Text};
use crate::model::{ceil_secs, format_duration, Model};

/// Turns successive model states into lines. Pure, so tests need no I/O.
#[derive(Debug)]
pub struct PlainLines {
    /// The language of the lines (English on a console that cannot show
    /// another).
    pub tr: crate::i18n::Tr,
    title_done: bool,
    steps_done: u64,
    bucket: Option<u32>,
    message: Option<Text>,
    finish_done: bool,
    countdown_done: bool,
}

impl Default for PlainLines {
    fn default() -> PlainLines {
        PlainLines {
            tr: crate::i18n::Tr::english(),
            title_done: false,
            steps_done: 0,
            bucket: None,
            message: None,
            finish_done: false,
            countdown_done: false,
        }
    }
}

impl PlainLines {
    pub fn new() -> PlainLines {
        PlainLines::default()
    }

    /// The lines to print for what changed since the last call.
    pub fn lines(&mut self, m: &Model, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        let tr = self.tr;
        if !self.title_done {
            if let Some(t) = &m.title {
                out.push(tr.f("System update: {}", &[t]));
                self.title_done = true;
            }
        }
        // In the order they came: the steps before the message, the
        // message, the steps after it.
        let steps = self.new_steps(m);
        let message = self.new_message(m);
        let before = steps.iter().take_while(|(n, _)| *n <= m.message_steps);
        let before = before.count();
        out.extend(steps[..before].iter().map(|(_, l)| l.clone()));
        out.extend(message);
        out.extend(steps[before..].iter().map(|(_, l)| l.clone()));
        if m.finish.is_none() {
            let bucket = (m.percent / 5.0).floor() as u32;
            if bucket > self.bucket.unwrap_or(0) {
                let eta = m
                    .eta(now)
                    .map(|d| format!(", {}", tr.f("about {} left", &[&format_duration(d)])))
                    .unwrap_or_default();
                out.push(format!("{:3} %{eta}", bucket * 5));
                self.bucket = Some(bucket);
            }
        }
        if m.finish.is_some() && !self.finish_done {
            self.finish_done = true;
            out.extend(outcome_lines(m, now, tr));
        }
        if !self.countdown_done {
            if let Some((action, left)) = m.countdown(now) {
                self.countdown_done = true;
                match action {
                    AfterAction::Reboot => {
                        out.push(tr.f("Restarting in {} s.", &[&ceil_secs(left)]))
                    }
                    AfterAction::PowerOff => {
                        out.push(tr.f("Powering off in {} s.", &[&ceil_secs(left)]))
                    }
                    AfterAction::None => {}
                }
            }
        }
        out
    }

    /// The step lines not printed yet, each with its number among all
    /// steps. Steps missed while we were slow are still printed (the model
    /// keeps the recent ones).
    fn new_steps(&mut self, m: &Model) -> Vec<(u64, String)> {
        let first = (m.steps_seen + 1).saturating_sub(m.recent_steps.len() as u64);
        let lines = m
            .recent_steps
            .iter()
            .zip(first..)
            .filter(|(_, n)| *n > self.steps_done)
            .map(|(s, n)| {
                let name = self.tr.text(&s.name);
                (n, format!("[{}/{}] {name}", s.index, s.total))
            })
            .collect();
        self.steps_done = m.steps_seen;
        lines
    }

    /// The message, when it is new and no step line says the same.
    fn new_message(&mut self, m: &Model) -> Option<String> {
        if m.message == self.message {
            return None;
        }
        self.message = m.message.clone();
        let msg = m.message.as_ref().filter(|t| !t.english.is_empty())?;
        let said = m
            .step
            .as_ref()
            .is_some_and(|s| s.name.english == msg.english);
        (!said).then(|| self.tr.text(msg).into_owned())
    }
}

/// How the update ended, as lines: the outcome and why, and where the log
/// is; nothing before the end. What a person must still read when the
/// screen that showed it is gone.
pub fn outcome_lines(m: &Model, now: Instant, tr: crate::i18n::Tr) -> Vec<String> {
    let Some(f) = &m.finish else {
        return Vec::new();
    };
    let detail = || f.detail.as_deref().unwrap_or(tr.s("no detail"));
    let mut out = vec![match f.outcome {
        Outcome::Success => tr.f(
            "Update succeeded (took {}).",
            &[&format_duration(m.elapsed(now))],
        ),
        Outcome::RolledBackAfterBoot => tr.f("UPDATE ROLLED BACK: {}", &[&detail()]),
        Outcome::Deferred => tr.f("UPDATE POSTPONED: {}", &[&detail()]),
        _ => tr.f("UPDATE FAILED: {}", &[&detail()]),
    }];
    if let Some(p) = &f.log_path {
        out.push(tr.f("Full log: {}", &[&p.display()]));
    }
    out
}

pub struct PlainRenderer {
    out: Box<dyn Write + Send>,
    lines: PlainLines,
}

impl PlainRenderer {
    pub fn new(out: Box<dyn Write + Send>) -> PlainRenderer {
        PlainRenderer {
            out,
            lines: PlainLines::new(),
        }
    }

    /// Lines in the language `tr` says.
    pub fn with_tr(mut self, tr: crate::i18n::Tr) -> PlainRenderer {
        self.lines.tr = tr;
        self
    }
}

impl crate::runtime::Renderer for PlainRenderer {
    fn render(&mut self, model: &Model, now: Instant) -> anyhow::Result<u64> {
        let mut buf = String::new();
        for l in self.lines.lines(model, now) {
            buf.push_str(&l);
            buf.push('\n');
        }
        if !buf.is_empty() {
            self.out.write_all(buf.as_bytes()).context("terminal")?;
            self.out.flush().context("terminal")?;
        }
        Ok(buf.len() as u64)
    }

    fn tick(&self, _model: &Model) -> Option<Duration> {
        None
    }

    fn restore(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn a_slow_renderer_prints_a_message_where_it_came_among_the_steps() {
        let t = Instant::now();
        let mut m = Model::new();
        let step = |index, name: &str| Event::step(index, 3, Text::foreign(name));
        let say = |text: &str| Event::message(Text::foreign(text));
        // All before the first frame, as at 10 frames a second.
        for e in [
            say("Installing 3 package(s) with dpkg"),
            step(1, "Unpacking a"),
            step(2, "Configuring a"),
            say("Setting up a (2) ..."),
            step(3, "Configuring b"),
        ] {
            m.apply(&e, t);
        }
        let mut p = PlainLines::new();
        // Only the last message is kept: the first is gone.
        assert_eq!(
            p.lines(&m, t),
            [
                "[1/3] Unpacking a",
                "[2/3] Configuring a",
                "Setting up a (2) ...",
                "[3/3] Configuring b",
            ]
        );
        let mut m = Model::new();
        m.apply(&say("Installing 1 package(s) with dpkg"), t);
        m.apply(&step(1, "Unpacking a"), t);
        let mut p = PlainLines::new();
        assert_eq!(
            p.lines(&m, t),
            ["Installing 1 package(s) with dpkg", "[1/3] Unpacking a"]
        );
        assert!(p.lines(&m, t).is_empty(), "nothing twice");
    }

    #[test]
    fn a_line_per_step_and_per_five_percent() {
        let t = Instant::now();
        let mut m = Model::new();
        let mut p = PlainLines::new();
        let mut all = Vec::new();
        m.apply(
            &Event::Started {
                title: "Test".into(),
            },
            t,
        );
        all.extend(p.lines(&m, t));
        for i in 0..=100 {
            m.apply(&Event::Progress { percent: i as f32 }, t);
            if i % 50 == 0 {
                m.apply(
                    &Event::step(i / 50 + 1, 3, Text::foreign(format!("step {i}"))),
                    t,
                );
            }
            // Only look every 7 events: intermediate states are skipped.
            if i % 7 == 0 {
                all.extend(p.lines(&m, t));
            }
        }
        m.apply(
            &Event::Finished {
                outcome: Outcome::Success,
                detail: None,
                log_path: None,
            },
            t,
        );
        all.extend(p.lines(&m, t));
        let steps = all.iter().filter(|l| l.starts_with('[')).count();
        assert_eq!(steps, 3, "{all:?}");
        let pct = all.iter().filter(|l| l.ends_with('%')).count();
        assert!((10..=20).contains(&pct), "{all:?}");
        assert!(all.iter().all(|l| !l.contains('\u{1b}')));
        assert_eq!(all.first().map(String::as_str), Some("System update: Test"));
        assert!(all
            .last()
            .is_some_and(|l| l.starts_with("Update succeeded")));
    }
}
