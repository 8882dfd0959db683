//! The Prometheus text file for the admin's monitoring (`metrics-file`,
//! node_exporter's textfile collector): computed from the state that is
//! already kept (the last result, the trigger, probation), written
//! atomically so that the collector never reads half a file. Names and
//! labels are in system-update(8).

use std::path::Path;

use crate::config::Config;
use crate::paths::Root;
use crate::result::ResultRecord;

/// What the file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// The last result: outcome, finished (seconds since the epoch),
    /// duration in seconds, attempts.
    pub last: Option<Last>,
    /// Our trigger is armed.
    pub pending: bool,
    /// A probation verdict's name ("pending", "confirmed", ...), or "none".
    pub probation: String,
    /// The fleet group halted, when a fleet command or `auto` asked etcd.
    pub fleet_halted: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Last {
    pub outcome: String,
    pub finished: Option<u64>,
    pub duration: Option<u64>,
    pub attempts: u32,
}

/// Rewrites the metrics file from the state, if `metrics-file` names one.
/// Cheap (a few small files read) and never fails the caller: a failure is
/// a warning in the journal.
pub fn refresh(root: &Root, config: &Config) {
    refresh_knowing(root, config, None);
}

/// refresh, with the fleet's halt as etcd just said it (None: unknown, the
/// file's previous value is kept).
pub fn refresh_knowing(root: &Root, config: &Config, fleet_halted: Option<bool>) {
    let Some(file) = &config.metrics_file else {
        return;
    };
    if let Err(e) = write(root, config, file, fleet_halted) {
        tracing::warn!("metrics-file {}: not written: {e:#}", file.display());
    }
}

fn write(
    root: &Root,
    config: &Config,
    file: &Path,
    fleet_halted: Option<bool>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let previous = crate::untrusted::read_text_in(root, file, 64 << 10, false).ok();
    let m = Metrics {
        fleet_halted: fleet_halted.or_else(|| previous.as_deref().and_then(halted_in)),
        ..gather(root, config)
    };
    let (dir, name) = crate::rooted::split(file)?;
    let dir = crate::rooted::create_dir_all(root, dir, 0o755).context("its directory")?;
    dir.write(name, render(&m).as_bytes(), 0o644, None)?;
    Ok(())
}

/// The metrics from the state under `root`; what cannot be read is left out.
pub fn gather(root: &Root, config: &Config) -> Metrics {
    let record = crate::result::load(root).ok().flatten();
    let pending = crate::trigger::inspect(root, &config.update_dir)
        .is_ok_and(|links| crate::trigger::ours(&links).is_some());
    let on_probation = crate::probation::load(root).ok().flatten().is_some();
    let verdict = record
        .as_ref()
        .and_then(|r| r.probation.as_ref())
        .map(|p| label_of(&p.verdict));
    let probation = match (on_probation, verdict) {
        (true, _) => "pending".to_string(),
        (false, Some(v)) => v,
        (false, None) => "none".to_string(),
    };
    Metrics {
        last: record.as_ref().map(last_of),
        pending,
        probation,
        fleet_halted: None,
    }
}

/// A serde enum's name ("rolled-back-after-boot").
fn label_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn last_of(r: &ResultRecord) -> Last {
    let started = crate::timefmt::parse_rfc3339(&r.started);
    let finished = r
        .finished
        .as_deref()
        .and_then(crate::timefmt::parse_rfc3339);
    Last {
        outcome: label_of(&r.outcome),
        finished,
        duration: started.zip(finished).map(|(s, f)| f.saturating_sub(s)),
        attempts: r.attempts,
    }
}

/// The previous file's fleet halt, carried over when nobody asked etcd.
fn halted_in(text: &str) -> Option<bool> {
    let line = text
        .lines()
        .find(|l| l.starts_with("system_update_fleet_halted "))?;
    match line.rsplit(' ').next()? {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, u64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
    for (labels, v) in samples {
        out.push_str(&format!("{name}{labels} {v}\n"));
    }
}

/// The text exposition format, one gauge per fact.
pub fn render(m: &Metrics) -> String {
    let mut out = String::new();
    let none = String::new;
    if let Some(l) = &m.last {
        let labels = format!("{{outcome=\"{}\"}}", l.outcome);
        gauge(
            &mut out,
            "system_update_last_outcome",
            "The last update's outcome, as its label (1).",
            &[(labels, 1)],
        );
        if let Some(f) = l.finished {
            gauge(
                &mut out,
                "system_update_last_finished_timestamp_seconds",
                "When the last update ended.",
                &[(none(), f)],
            );
        }
        if let Some(d) = l.duration {
            gauge(
                &mut out,
                "system_update_last_duration_seconds",
                "How long the last update took.",
                &[(none(), d)],
            );
        }
        gauge(
            &mut out,
            "system_update_last_attempts",
            "Attempts the last update took.",
            &[(none(), u64::from(l.attempts))],
        );
    }
    gauge(
        &mut out,
        "system_update_pending",
        "1 while an update is armed for the next boot.",
        &[(none(), u64::from(m.pending))],
    );
    let labels = format!("{{state=\"{}\"}}", m.probation);
    gauge(
        &mut out,
        "system_update_probation",
        "The probation of the last update's boot, as its state label (1).",
        &[(labels, 1)],
    );
    if let Some(h) = m.fleet_halted {
        gauge(
            &mut out,
            "system_update_fleet_halted",
            "1 while the fleet group is halted.",
            &[(none(), u64::from(h))],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_halt_is_carried_over() {
        let m = Metrics {
            probation: "none".into(),
            fleet_halted: Some(true),
            ..Metrics::default()
        };
        assert_eq!(halted_in(&render(&m)), Some(true));
        let m = Metrics {
            fleet_halted: None,
            ..m
        };
        assert_eq!(halted_in(&render(&m)), None);
    }
}
