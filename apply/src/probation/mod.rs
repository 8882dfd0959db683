//! Boot health after an update: the first normal boot after a successful
//! update is on probation until it reaches the health target (default
//! boot-complete.target, multi-user.target where nothing hooks into that)
//! within `health-timeout` seconds with none of the `must-run` units failed.
//!
//! `apply` starts the probation (`begin`); system-update-probation.service
//! runs `system-update probation` early in each normal boot (`check_boot`),
//! which counts the boot before anything else, and on the last allowed boot
//! (`probation-boots`) leaves the `probation-due` marker before it waits: a
//! boot that never gets as far as confirming (a hang, a power cut, a reboot)
//! finds the marker next time, and our generator sends that boot into the
//! update environment, where `apply` removes the marker first and rolls
//! back to the pre-update snapshot. A confirmed boot removes the marker and
//! the state. Without a snapshot the probation only reports.
//!
//! Bounded: the marker goes before the rollback starts and the restored
//! root (taken before the update) has neither marker nor state, so there is
//! at most one probation rollback per update and never a loop.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::{Config, DEFAULT_HEALTH_TARGET};
use crate::paths::Root;
use crate::result::{self, ResultRecord};
pub use crate::result::{ProbationRecord as Record, Verdict};
use crate::rooted;
use crate::timefmt;

mod health;
pub use health::*;

/// The probation of the last update (inside the root).
pub const STATE: &str = "/var/lib/system-update-results/probation.json";
/// Present when the next boot must roll back; the generator checks it
/// (system_update_generator::PROBATION_DUE, relative there).
pub const DUE: &str = "/var/lib/system-update-results/probation-due";

/// Anything larger is not ours.
const STATE_MAX: u64 = 64 << 10;
const POLL: Duration = Duration::from_secs(1);
const FALLBACK_TARGET: &str = "multi-user.target";

/// What `probation.json` holds between boots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct State {
    /// The update on probation.
    pub id: String,
    /// A snapshot of the system before it exists to go back to.
    pub can_roll_back: bool,
    /// Boots that began on probation so far.
    pub boots: u32,
    /// probation-boots when the update was applied.
    pub limit: u32,
    pub since: String,
    /// Why the last boot was not confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The state as it must be, or why it cannot be used (the probation is
/// over for it).
fn invalid(p: &Path, message: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!(
        "{}: unreadable ({message}); removed, the probation is over",
        p.display()
    )
}

pub fn load(root: &Root) -> anyhow::Result<Option<State>> {
    let p = root.host(Path::new(STATE));
    let text = match crate::untrusted::read_text_in(root, Path::new(STATE), STATE_MAX, true) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(invalid(&p, e)),
    };
    let state: State = serde_json::from_str(&text).map_err(|e| invalid(&p, e))?;
    // The id reaches terminals and names records: the manifest's rules.
    if !crate::manifest::valid_id(&state.id) {
        return Err(invalid(&p, "its update id is not a valid id"));
    }
    Ok(Some(state))
}

pub fn store(root: &Root, state: &State) -> anyhow::Result<()> {
    let p = root.host(Path::new(STATE));
    let shown = || p.display().to_string();
    let (dir, name) = rooted::split(Path::new(STATE)).with_context(shown)?;
    let dir = rooted::create_dir_all(root, dir, 0o755).with_context(shown)?;
    let mut data = serde_json::to_vec_pretty(state).unwrap_or_default();
    data.push(b'\n');
    dir.write(name, &data, 0o644, None).with_context(shown)
}

/// The rollback marker as one look without following a link sees it:
/// the one reader of it (apply, the probation check, status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    Absent,
    /// Our empty regular file: the generator sends the boot to roll back.
    Armed,
    /// Something else (a directory, a FIFO, a link): not ours, never a
    /// rollback, and the generator ignores it too. The line says what to do.
    Stray(String),
}

pub fn marker(root: &Root) -> Marker {
    let p = root.host(Path::new(DUE));
    let look = rooted::split(Path::new(DUE))
        .and_then(|(dir, name)| rooted::open_dir(root, dir)?.lstat(name));
    match look {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => Marker::Armed,
        Ok(_) => Marker::Stray(format!(
            "{}: not a regular file, so no rollback marker of ours; nothing is rolled back for it: remove it (rm -r {})",
            p.display(),
            p.display()
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Marker::Absent,
        Err(e) => Marker::Stray(format!(
            "{}: {e}; nothing is rolled back for it: check it and remove it",
            p.display()
        )),
    }
}

/// Whether the next boot (or this one, in the update environment) is to
/// roll back.
pub fn is_due(root: &Root) -> bool {
    marker(root) == Marker::Armed
}

/// What the marker and the state say together, once `take` has consumed
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// No marker: nothing to do.
    None,
    /// Armed for an update with a snapshot: roll it back.
    Rollback(State),
    /// Armed for an update without a snapshot (the probation check never
    /// arms one, so by hand or an older version): nothing to roll back to;
    /// its own record says so (fail_without_rollback).
    NoSnapshot(State),
    /// A marker that is no rollback to do (not a regular file, without a
    /// valid state, not removable): the line for the journal; no record
    /// is touched.
    /// `sent_here`: it was our regular file, so it is what brought this
    /// boot into the update environment.
    Stray { why: String, sent_here: bool },
}

/// The one reader of the marker and the state for the update environment:
/// reads both and removes them, the marker first, before anything else is
/// done, so whatever their content no further boot is sent back. Only a
/// state that names an update with a snapshot is a rollback; only a valid
/// state's own update record may be written afterwards.
pub fn take(root: &Root) -> Due {
    match marker(root) {
        Marker::Absent => return Due::None,
        Marker::Stray(why) => {
            return Due::Stray {
                why,
                sent_here: false,
            }
        }
        Marker::Armed => {}
    }
    let state = load(root);
    let stray = |why: String| Due::Stray {
        why,
        sent_here: true,
    };
    if let Err(e) = end(root) {
        return stray(format!(
            "{e:#}; the rollback marker cannot be removed, so nothing is rolled back (it would come back every boot): remove {DUE} by hand"
        ));
    }
    match state {
        Ok(Some(s)) if s.can_roll_back => Due::Rollback(s),
        Ok(Some(s)) => Due::NoSnapshot(s),
        Ok(None) => stray(format!(
            "{DUE} without {STATE}: no update is on probation; marker removed, nothing rolled back, no record changed"
        )),
        Err(e) => stray(format!("{e:#}; nothing rolled back, no record changed")),
    }
}

fn arm(root: &Root) -> anyhow::Result<()> {
    let p = root.host(Path::new(DUE));
    rooted::write(root, Path::new(DUE), b"", 0o644).with_context(|| p.display().to_string())
}

/// The marker, then the state: gone, and on disk, before anything else.
/// A stray marker (not our regular file) is reported and left: it may be
/// a directory we cannot remove, and it must not keep the state alive.
pub fn end(root: &Root) -> anyhow::Result<()> {
    let files: &[&str] = match marker(root) {
        Marker::Stray(why) => {
            tracing::error!("{why}");
            &[STATE]
        }
        _ => &[DUE, STATE],
    };
    for f in files {
        let p = root.host(Path::new(f));
        rooted::remove(root, Path::new(f)).with_context(|| p.display().to_string())?;
    }
    Ok(())
}

/// Called by `apply` after a successful update: the next normal boot is
/// on probation. Returns what the result record says of it.
pub fn begin(root: &Root, config: &Config, record: &ResultRecord) -> Option<Record> {
    if !config.probation {
        return None;
    }
    let id = record.id.clone()?;
    let can_roll_back = record
        .snapshot
        .as_ref()
        .is_some_and(|s| s.provider != "none" && s.name.is_some() && !s.rolled_back);
    let state = State {
        id,
        can_roll_back,
        boots: 0,
        limit: config.probation_boots,
        since: timefmt::now_rfc3339(),
        reason: None,
    };
    if let Err(e) = store(root, &state) {
        tracing::error!("{e:#}; the next boot is not on probation");
        return None;
    }
    Some(Record {
        verdict: Verdict::Pending,
        boots: 0,
        limit: state.limit,
        target: None,
        reason: (!can_roll_back).then(|| {
            "no snapshot: the first boot is checked and reported, never rolled back".to_string()
        }),
        at: None,
    })
}

/// Why a state's boots were not confirmed, as the record says it.
pub fn reason(state: &State) -> String {
    state.reason.clone().unwrap_or_else(|| {
        format!(
            "{} boot(s) ended before they were confirmed (power cut, hang or reset)",
            state.boots
        )
    })
}

/// A due rollback that is not carried out (`why`: no snapshot, no
/// configuration): the update's own record (only if the last one is
/// that update's) gets the verdict and the reason, and the updated system
/// stays. Logged too.
pub fn fail_without_rollback(root: &Root, state: &State, why: &str) {
    let reason = reason(state);
    tracing::error!(
        "update {}: its first boot was not healthy: {reason}; {why}",
        state.id
    );
    match result::load(root) {
        Ok(Some(mut r)) if r.id.as_deref() == Some(state.id.as_str()) => {
            r.error = Some(format!(
                "The system did not start properly after the update: {reason}. {why}."
            ));
            r.probation = Some(Record {
                verdict: Verdict::Failed,
                boots: state.boots,
                limit: state.limit,
                target: r.probation.as_ref().and_then(|p| p.target.clone()),
                reason: Some(reason),
                at: Some(timefmt::now_rfc3339()),
            });
            if let Err(e) = crate::history::keep(root, &r) {
                tracing::error!("{}", crate::oneline::of(e.as_ref()));
            }
        }
        Ok(_) => tracing::warn!(
            "the last result record is not update {}'s; not updating it",
            state.id
        ),
        Err(e) => tracing::error!("{}", crate::oneline::of(e.as_ref())),
    }
}

/// Writes `probation` into the last result record when it is that
/// update's.
pub fn record(root: &Root, id: &str, probation: Record) {
    match result::load(root) {
        Ok(Some(mut r)) if r.id.as_deref() == Some(id) => {
            r.probation = Some(probation);
            if let Err(e) = crate::history::keep(root, &r) {
                tracing::error!("{}", crate::oneline::of(e.as_ref()));
            }
        }
        Ok(_) => tracing::warn!("the last result record is not update {id}'s; not updating it"),
        Err(e) => tracing::error!("{}", crate::oneline::of(e.as_ref())),
    }
}

/// `system-update probation`, early in every normal boot while an update
/// is on probation: counts the boot, arms the rollback on the last allowed
/// one, waits for the health target and confirms or not. Returns the exit
/// status.
pub fn check_boot(root: &Root, config: &Config, stop: &AtomicBool) -> i32 {
    let mut state = match load(root) {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::info!("no update is on probation");
            return crate::exit::OK;
        }
        Err(e) => {
            tracing::error!("{e:#}");
            if let Err(e) = end(root) {
                tracing::error!("{e:#}");
            }
            return crate::exit::FAILURE;
        }
    };
    let mut check = Check::new(root, &state);
    if let Some(code) = check.not_checked(config) {
        return code;
    }
    if let Err(code) = count_boot(root, &mut state, &mut check) {
        return code;
    }
    let (target, hooked) = announce(config, &state, &mut check);
    let health = match wait_healthy(config, &target, &hooked, stop) {
        Ok(h) => h,
        Err(()) => {
            tracing::info!("stopped before the boot was confirmed; it counts as not confirmed");
            return crate::exit::OK;
        }
    };
    match health {
        Ok(()) => check.confirmed(&state, &target),
        Err(why) => check.not_confirmed(&mut state, why),
    }
}

/// One boot's check: the update on probation and the record of it.
struct Check<'a> {
    root: &'a Root,
    id: String,
    rec: Record,
}

impl<'a> Check<'a> {
    fn new(root: &'a Root, state: &State) -> Check<'a> {
        Check {
            root,
            id: state.id.clone(),
            rec: Record {
                verdict: Verdict::Pending,
                boots: state.boots,
                limit: state.limit,
                target: None,
                reason: None,
                at: None,
            },
        }
    }

    /// The verdict into the update's record.
    fn finish(&mut self, verdict: Verdict, reason: Option<String>) {
        self.rec.verdict = verdict;
        self.rec.reason = reason;
        self.rec.at = Some(timefmt::now_rfc3339());
        record(self.root, &self.id, self.rec.clone());
    }

    /// The boots that are not checked: probation off, or a rollback that
    /// was due and did not happen (reported, never a loop).
    fn not_checked(&mut self, config: &Config) -> Option<i32> {
        let (root, id) = (self.root, self.id.clone());
        if !config.probation {
            tracing::info!("probation = false: update {id}'s boot is not checked");
            let _ = end(root).map_err(|e| tracing::error!("{e:#}"));
            self.finish(Verdict::Off, None);
            crate::cleanup::mark_pending(root);
            return Some(crate::exit::OK);
        }
        if let Marker::Stray(why) = marker(root) {
            tracing::error!("{why}");
        }
        if !is_due(root) {
            return None;
        }
        // This boot should have been the rollback: our generator is not
        // the one that ran.
        let why = format!(
            "a rollback was due, but this boot was not sent to system-update.target: is system-update-generator installed and enabled ({})?",
            DUE
        );
        tracing::error!("update {id}: {why}");
        let _ = end(root).map_err(|e| tracing::error!("{e:#}"));
        self.finish(Verdict::Failed, Some(why));
        Some(crate::exit::FAILURE)
    }

    fn confirmed(&mut self, state: &State, target: &str) -> i32 {
        if let Err(e) = end(self.root) {
            tracing::error!("{e:#}");
        }
        let said = format!("update {}: boot confirmed ({target} reached)", self.id);
        tracing::info!("{said}");
        say(&said);
        self.finish(Verdict::Confirmed, None);
        if state.can_roll_back {
            crate::cleanup::mark_pending(self.root);
        }
        crate::exit::OK
    }

    fn not_confirmed(&mut self, state: &mut State, why: String) -> i32 {
        let id = self.id.clone();
        if !state.can_roll_back {
            tracing::error!("update {id}: boot not confirmed: {why}; no snapshot to roll back to");
            let _ = end(self.root).map_err(|e| tracing::error!("{e:#}"));
            self.finish(Verdict::Failed, Some(why));
            return crate::exit::FAILURE;
        }
        tracing::error!("update {id}: boot not confirmed: {why}; rolling back at the next boot");
        state.reason = Some(why.clone());
        if let Err(e) = store(self.root, state) {
            tracing::error!("{e:#}");
        }
        if let Err(e) = arm(self.root) {
            tracing::error!("{e:#}; the update is not rolled back");
            self.finish(Verdict::Failed, Some(why));
            return crate::exit::FAILURE;
        }
        self.finish(Verdict::RollingBack, Some(why));
        if self.root.is_live() {
            match crate::power::request(crate::power::Action::Reboot) {
                Ok(m) => tracing::info!("reboot queued ({m:?})"),
                Err(e) => tracing::error!("{e}"),
            }
        }
        crate::exit::OK
    }
}

/// This boot counted, on disk, and on the last allowed one the rollback
/// armed before the wait: should it never confirm, the next rolls back.
fn count_boot(root: &Root, state: &mut State, check: &mut Check<'_>) -> Result<(), i32> {
    state.boots += 1;
    check.rec.boots = state.boots;
    if let Err(e) = store(root, state) {
        tracing::error!("{e:#}; not checking this boot");
        return Err(crate::exit::FAILURE);
    }
    if state.can_roll_back && state.boots >= state.limit {
        if let Err(e) = arm(root) {
            tracing::error!("{e:#}; a boot that does not confirm will not be rolled back");
        }
    }
    Ok(())
}

/// The target the boot must reach, said on the console and in the
/// journal; boot-complete.target started (it is outside the boot's
/// transaction unless something pulls it in; no other target is started:
/// multi-user.target again would start its failed units again).
fn announce(config: &Config, state: &State, check: &mut Check<'_>) -> (String, Vec<String>) {
    let hooked = if config.health_target == DEFAULT_HEALTH_TARGET {
        hooks(DEFAULT_HEALTH_TARGET)
    } else {
        Vec::new()
    };
    let target = choose_target(&config.health_target, &hooked);
    if target != config.health_target {
        tracing::info!(
            "nothing hooks into {}; waiting for {target} instead",
            config.health_target
        );
    }
    check.rec.target = Some(target.clone());
    let running = if config.must_run.is_empty() {
        String::new()
    } else {
        format!(" with {} running", config.must_run.join(", "))
    };
    let waiting = format!(
        "update {}: boot {} of at most {} on probation; waiting up to {} s for {target}{running}",
        check.id, state.boots, state.limit, config.health_timeout
    );
    tracing::info!("{waiting}");
    say(&waiting);
    if target == DEFAULT_HEALTH_TARGET {
        if let Err(e) = systemctl(&["start", "--no-block", "--", &target]) {
            tracing::warn!("{e}");
        }
    }
    (target, hooked)
}

/// The text `status` shows while an update is on probation.
pub fn status_line(root: &Root) -> Option<String> {
    let s = load(root).ok()??;
    Some(format!(
        "Update {} is on probation: boot {} of at most {}{}{}\n",
        s.id,
        s.boots,
        s.limit,
        if s.can_roll_back {
            ""
        } else {
            " (no snapshot: reported only)"
        },
        if is_due(root) {
            "; the next boot rolls it back unless this one is confirmed"
        } else {
            ""
        }
    ))
}

/// Where the state lives on the host.
#[cfg(test)]
pub fn state_path(root: &Root) -> std::path::PathBuf {
    root.host(Path::new(STATE))
}

#[cfg(test)]
mod tests;
