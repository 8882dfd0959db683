//! Plymouth: when its daemon runs, the screen is its own; we tell it what
//! happens through the `plymouth` client.
//!
//! Every call has a timeout (offline updates elsewhere have hung on a stuck
//! plymouthd) and the first failure ends our use of it: the runtime then
//! falls back to the console renderers. Calls are rate-limited by the
//! renderer loop (one round every 2 s at most, the final screen included).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::event::{AfterAction, Outcome};
use crate::model::{ceil_secs, Model};

pub const DEFAULT_PROGRAM: &str = "plymouth";
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// At most one round of calls (message, progress) this often.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// The `plymouth` client, with a timeout on every call.
#[derive(Debug, Clone)]
pub struct Plymouth {
    program: PathBuf,
    timeout: Duration,
}

impl Plymouth {
    pub fn new(program: impl AsRef<Path>, timeout: Duration) -> Plymouth {
        Plymouth {
            program: program.as_ref().to_path_buf(),
            timeout,
        }
    }

    /// Runs `plymouth ARGS`; Ok only if it exits 0 within the timeout.
    pub fn call(&self, args: &[&str]) -> anyhow::Result<()> {
        let what = args.join(" ");
        let mut child = Command::new(&self.program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(st)) => anyhow::bail!("`plymouth {what}` failed ({st})"),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!("`plymouth {what}` timed out after {:?}", self.timeout);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(anyhow::Error::new(e).context("waiting for plymouth"));
                }
            }
        }
    }

    /// Whether plymouthd runs and answers.
    pub fn ping(&self) -> bool {
        self.call(&["--ping"]).is_ok()
    }
}

/// The one line plymouth shows for a model, in the system's language
/// (plymouth draws with its own fonts).
pub fn message_for(m: &Model, now: Instant) -> String {
    let tr = crate::i18n::Tr::for_console(true);
    if let Some(f) = &m.finish {
        let mut s = match f.outcome {
            Outcome::Success => tr.s("Update succeeded.").to_string(),
            Outcome::RolledBackAfterBoot => tr.f(
                "UPDATE ROLLED BACK: {}",
                &[&f.detail.as_deref().unwrap_or(tr.s("see the log"))],
            ),
            Outcome::Deferred => tr.f(
                "UPDATE POSTPONED: {}",
                &[&f.detail.as_deref().unwrap_or(tr.s("see the log"))],
            ),
            _ => tr.f(
                "UPDATE FAILED: {}",
                &[&f.detail.as_deref().unwrap_or(tr.s("see the log"))],
            ),
        };
        if let (false, Some(p)) = (f.outcome.is_success(), &f.log_path) {
            s.push(' ');
            s.push_str(&tr.f("Log: {}.", &[&p.display()]));
        }
        if let Some((action, left)) = m.countdown(now) {
            let what = match action {
                AfterAction::Reboot => Some(crate::i18n::n_("Restarting in {} s.")),
                AfterAction::PowerOff => Some(crate::i18n::n_("Powering off in {} s.")),
                AfterAction::None => None,
            };
            if let Some(w) = what {
                s.push(' ');
                s.push_str(&tr.f(w, &[&ceil_secs(left)]));
            }
        }
        return s;
    }
    let title = m.title.as_deref().unwrap_or_else(|| tr.s("System update"));
    let pct = format!("{:.0}", m.percent.floor());
    match &m.step {
        Some(st) => tr.f(
            "{}: {} ({}/{}), {} %. Do not turn off the computer.",
            &[&title, &tr.text(&st.name), &st.index, &st.total, &pct],
        ),
        None => tr.f("{}: preparing. Do not turn off the computer.", &[&title]),
    }
}

pub struct PlymouthRenderer {
    ply: Plymouth,
    mode_changed: bool,
    last_message: Option<String>,
    last_progress: Option<u32>,
}

impl PlymouthRenderer {
    /// Connects to plymouthd with the `plymouth` in PATH.
    pub fn connect() -> anyhow::Result<PlymouthRenderer> {
        PlymouthRenderer::connect_with(Plymouth::new(DEFAULT_PROGRAM, CALL_TIMEOUT))
    }

    /// Err when plymouthd does not answer `--ping`.
    pub fn connect_with(ply: Plymouth) -> anyhow::Result<PlymouthRenderer> {
        if let Err(e) = ply.call(&["--ping"]) {
            tracing::debug!("plymouth --ping: {e:#}");
            anyhow::bail!("plymouthd does not answer");
        }
        Ok(PlymouthRenderer {
            ply,
            mode_changed: false,
            last_message: None,
            last_progress: None,
        })
    }

    /// The calls one model state needs, in order.
    fn calls(&mut self, m: &Model, now: Instant) -> Vec<Vec<String>> {
        let mut calls = Vec::new();
        let msg = message_for(m, now);
        if self.last_message.as_deref() != Some(msg.as_str()) {
            calls.push(vec!["display-message".into(), format!("--text={msg}")]);
            self.last_message = Some(msg);
        }
        // The first message goes before the mode change: some themes hide
        // messages once the mode has changed.
        if !self.mode_changed {
            calls.push(vec!["change-mode".into(), "--updates".into()]);
            self.mode_changed = true;
        }
        let pct = m.percent.floor().clamp(0.0, 100.0) as u32;
        if self.last_progress != Some(pct) {
            calls.push(vec!["system-update".into(), format!("--progress={pct}")]);
            self.last_progress = Some(pct);
        }
        calls
    }
}

impl crate::runtime::Renderer for PlymouthRenderer {
    fn render(&mut self, model: &Model, now: Instant) -> anyhow::Result<u64> {
        for c in self.calls(model, now) {
            let args: Vec<&str> = c.iter().map(String::as_str).collect();
            self.ply.call(&args)?;
        }
        Ok(0)
    }

    fn tick(&self, model: &Model) -> Option<Duration> {
        model
            .countdown(Instant::now())
            .map(|_| Duration::from_secs(1))
    }

    fn restore(&mut self) {}

    fn min_interval(&self) -> Duration {
        INTERVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    #[test]
    fn first_message_before_mode_change_and_no_repeats() {
        let t = Instant::now();
        let mut r = PlymouthRenderer {
            ply: Plymouth::new("/nonexistent", CALL_TIMEOUT),
            mode_changed: false,
            last_message: None,
            last_progress: None,
        };
        let mut m = Model::new();
        m.apply(
            &Event::Started {
                title: "Upd".into(),
            },
            t,
        );
        let c = r.calls(&m, t);
        assert_eq!(c[0][0], "display-message");
        assert_eq!(c[1], vec!["change-mode", "--updates"]);
        assert_eq!(c[2], vec!["system-update", "--progress=0"]);
        assert!(r.calls(&m, t).is_empty());
        m.apply(&Event::Progress { percent: 12.7 }, t);
        let c = r.calls(&m, t);
        assert!(c.contains(&vec![
            "system-update".to_string(),
            "--progress=12".to_string()
        ]));
    }

    #[test]
    fn missing_program_is_an_error_not_a_hang() {
        let p = Plymouth::new("/nonexistent/plymouth", Duration::from_millis(100));
        let e = p.call(&["--ping"]).unwrap_err();
        assert_eq!(e.to_string(), "cannot run /nonexistent/plymouth");
        assert!(!p.ping());
    }

    #[test]
    fn hung_plymouth_times_out() {
        let p = Plymouth::new("sleep", Duration::from_millis(200));
        let t = Instant::now();
        let e = p.call(&["5"]).unwrap_err();
        assert_eq!(e.to_string(), "`plymouth 5` timed out after 200ms");
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
