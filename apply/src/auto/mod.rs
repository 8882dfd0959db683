//! `system-update auto`: one idempotent pass of unattended updates, what
//! system-update-auto.timer runs. In order: nothing while an update is
//! pending, on probation or a rollback is armed (never stacks); prepare
//! from the repositories (any time: downloads need no window); then, only
//! inside a maintenance window, the people (inhibitors, logged-in users),
//! the power, the fleet's slot (taken last, so that a machine held back
//! by its people holds no slot), and the update armed and rebooted into
//! as `trigger` does. A pass with nothing pending first settles the last
//! update with the fleet. Each step that says no ends the pass with the reason;
//! the next pass (the timer) asks again.

mod answer;
mod fleet;

pub use answer::Answer;

use anyhow::Context;
use jiff::Timestamp;

use crate::config::{AutoPrepare, Config, WhenUsers};
use crate::logind;
use crate::manifest::{Manifest, ManifestError};
use crate::paths::Root;
use crate::window::Schedule;

/// One pass as asked for.
pub struct Pass {
    /// The time the windows are judged at (the clock; `--now` in tests).
    pub now: Timestamp,
    /// Arm, but do not reboot; always so under `--root`.
    pub no_reboot: bool,
}

/// Why nothing may be armed now, or None: an update pending (ours or
/// another tool's), a rollback armed, a boot on probation.
fn busy(root: &Root, config: &Config) -> Option<String> {
    use crate::trigger::LinkState;
    let links = match crate::trigger::inspect(root, &config.update_dir) {
        Ok(l) => l,
        Err(e) => return Some(format!("the trigger links cannot be read: {e}")),
    };
    for l in &links {
        match &l.state {
            LinkState::Missing => {}
            LinkState::Ours | LinkState::Dangling => {
                return Some(
                    "an update is already triggered: it is applied at the next boot".into(),
                )
            }
            LinkState::Elsewhere(t) => {
                return Some(format!(
                    "another tool's update is pending ({} -> {})",
                    l.path.display(),
                    t.display()
                ))
            }
        }
    }
    if crate::probation::marker(root) != crate::probation::Marker::Absent {
        return Some("a rollback is armed for the next boot".into());
    }
    match crate::probation::load(root) {
        Ok(Some(s)) => Some(format!(
            "update {} is on probation until a boot confirms it",
            s.id
        )),
        Ok(None) => None,
        Err(e) => Some(format!("the probation state cannot be read: {e:#}")),
    }
}

/// The update to arm: the one prepared, else one prepared now from the
/// repositories (auto-prepare). `Err(why)`: nothing to arm.
fn prepared(root: &Root, config: &Config) -> anyhow::Result<Result<String, String>> {
    let udh = root.host(&config.update_dir);
    match Manifest::load(&udh) {
        Ok(m) => match failed_before(root, &m.id) {
            // Never the same failed update again by itself: an admin
            // looks first, or the repositories bring a new one.
            Some(why) if config.auto_prepare == AutoPrepare::None => return Ok(Err(why)),
            Some(why) => {
                tracing::info!("{why}: preparing anew from the repositories");
                return from_repositories(root, config, true);
            }
            None => return Ok(Ok(m.id)),
        },
        Err(ManifestError::Missing(_)) => {}
        Err(e) => anyhow::bail!(
            "the prepared update cannot be read: {e}; remove it with system-update cancel --purge"
        ),
    }
    from_repositories(root, config, false)
}

/// Why the prepared update `id` is not to be tried again: the last
/// record is its own, and it did not end well (deferred and stale ones
/// are tried again).
fn failed_before(root: &Root, id: &str) -> Option<String> {
    use crate::result::Outcome;
    let last = crate::result::load(root).ok()??;
    if last.id.as_deref() != Some(id) || matches!(last.outcome, Outcome::Deferred | Outcome::Stale)
    {
        return None;
    }
    if last.outcome == Outcome::Success {
        return Some(format!(
            "the prepared update {id} was applied already (keep-update)"
        ));
    }
    Some(format!(
        "the prepared update {id} ended {} (system-update results): it is not tried again unattended; prepare it again or cancel it",
        last.outcome.as_str()
    ))
}

/// Prepares from the repositories as auto-prepare says (`force`: over the
/// update prepared, which is stale). `Ok(Err(why))`: nothing to prepare.
fn from_repositories(
    root: &Root,
    config: &Config,
    force: bool,
) -> anyhow::Result<Result<String, String>> {
    let safe = match config.auto_prepare {
        AutoPrepare::None => return Ok(Err("nothing is prepared (auto-prepare is none)".into())),
        AutoPrepare::Safe => true,
        AutoPrepare::Upgrade => false,
    };
    let req = crate::prepare::PrepareRequest {
        backend: None,
        force,
        title: None,
        command: None,
        files: Vec::new(),
        sign: None,
        resolve: Some(crate::backend::Request::Upgrade { safe }),
        reinstall: false,
    };
    match crate::prepare::prepare(root, config, req) {
        Ok(m) => {
            tracing::info!("prepared {} from the repositories", m.id);
            Ok(Ok(m.id))
        }
        Err(crate::prepare::PrepareError::NothingToDo) => {
            Ok(Err("the system is up to date: nothing to prepare".into()))
        }
        Err(e) => Err(anyhow::anyhow!(
            "preparing from the repositories: {}",
            crate::oneline::of(&e)
        )),
    }
}

/// The windows in the root's zone; none configured arms nothing.
fn schedule(root: &Root, config: &Config) -> anyhow::Result<Schedule> {
    let windows = crate::config::check_windows(&config.window).map_err(anyhow::Error::msg)?;
    Ok(Schedule {
        windows,
        tz: crate::window::local_zone(root)?,
    })
}

/// Whether this machine may go on to arm as a member of its fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Proceed,
    Wait(String),
}

/// The fleet's slot, taken last before arming (auto/fleet.rs): a machine
/// without a fleet proceeds.
pub fn fleet_gate(root: &Root, config: &Config) -> Gate {
    fleet::gate(root, config)
}

/// Why the people on the machine hold the reboot back, or None: a
/// shutdown-blocking inhibitor, or (when-users = "wait") a logged-in user.
/// Only the running system's logind is asked: under --root it is another
/// machine's.
pub fn held_by_people(seen: &logind::Seen, when_users: WhenUsers) -> Option<String> {
    let blocking = seen.blocking();
    if !blocking.is_empty() {
        let who: Vec<String> = blocking.iter().map(|i| i.describe()).collect();
        return Some(format!("a shutdown is inhibited by {}", who.join("; ")));
    }
    if when_users == WhenUsers::Wait && !seen.sessions.is_empty() {
        let mut users: Vec<&str> = seen.sessions.iter().map(|s| s.user.as_str()).collect();
        // Each name once, however many sessions (and in whatever order).
        users.sort_unstable();
        users.dedup();
        return Some(format!(
            "logged in: {} (when-users is wait)",
            users.join(", ")
        ));
    }
    None
}

fn look_at_people(root: &Root) -> logind::Seen {
    if !root.is_live() {
        tracing::info!("--root: not asking logind, which is the running system's");
        return logind::Seen::default();
    }
    logind::look().unwrap_or_else(|e| {
        tracing::warn!("logind not asked ({e}): no inhibitors or sessions known");
        logind::Seen::default()
    })
}

/// One pass; its answer. An error is a step that could not be carried out
/// (a broken update, a failed prepare), never a reason to wait.
pub fn run(root: &Root, config: &Config, pass: &Pass) -> anyhow::Result<Answer> {
    let mut a = Answer::new();
    if let Some(why) = busy(root, config) {
        return Ok(a.nothing(why));
    }
    fleet::settle(root, config);
    match prepared(root, config)? {
        Ok(id) => a.prepared = Some(id),
        Err(why) => return Ok(a.nothing(why)),
    }
    if config.window.is_empty() {
        return Ok(
            a.waiting("no maintenance window is configured (window): nothing is armed".into())
        );
    }
    let schedule = schedule(root, config)?;
    match schedule.is_open(pass.now) {
        Some(close) => a.window_closes = Some(close.to_string()),
        None => {
            a.next_window = schedule.next_open(pass.now).map(|t| t.to_string());
            return Ok(a.waiting("outside the maintenance windows".into()));
        }
    }
    let seen = look_at_people(root);
    a.inhibitors = seen.blocking().into_iter().cloned().collect();
    a.sessions = seen.sessions.clone();
    if let Some(why) = held_by_people(&seen, config.when_users) {
        return Ok(a.waiting(why));
    }
    let power = crate::supply::read(root)?;
    a.power = Some(power.describe(config.min_battery));
    if !power.enough(config.min_battery) {
        let why = format!("not enough power: {}", power.describe(config.min_battery));
        return Ok(a.waiting(why));
    }
    if let Gate::Wait(why) = fleet_gate(root, config) {
        return Ok(a.waiting(why));
    }
    arm(root, config, pass, a)
}

/// Arms the update as `trigger` does, then reboots into it: at once, or
/// with logged-in users warned reboot-warning minutes before by logind's
/// scheduled reboot.
fn arm(root: &Root, config: &Config, pass: &Pass, mut a: Answer) -> anyhow::Result<Answer> {
    let req = crate::trigger::Arm {
        after: None,
        reboot_mode: config.reboot_mode,
        replace_foreign: false,
    };
    match crate::trigger::arm(root, config, &req) {
        // The package database moved on since the update was prepared
        // (an admin's install): prepared again, when auto prepares.
        Err(crate::trigger::TriggerError::Stale(why))
            if config.auto_prepare != AutoPrepare::None =>
        {
            tracing::info!("the prepared update is stale ({why}): preparing it again");
            match from_repositories(root, config, true)? {
                Ok(id) => a.prepared = Some(id),
                Err(why) => return Ok(a.nothing(why)),
            }
            crate::trigger::arm(root, config, &req)
        }
        armed => armed,
    }
    .map_err(|e| anyhow::anyhow!("arming the update: {}", crate::oneline::of(&e)))?;
    a.action = "armed";
    if pass.no_reboot || !root.is_live() {
        a.reason = "armed: it is applied at the next boot".into();
        return Ok(a);
    }
    if config.reboot_warning > 0 && !a.sessions.is_empty() {
        let at = pass.now.as_microsecond() + i64::try_from(config.reboot_warning)? * 60_000_000;
        match logind::schedule_reboot(u64::try_from(at)?) {
            Ok(()) => {
                a.reboot = "scheduled";
                a.reason = format!(
                    "armed; the users are warned and the machine reboots in {} minutes",
                    config.reboot_warning
                );
            }
            Err(e) => {
                a.reason = format!("armed, but the users could not be warned ({e}): not rebooting now; it is applied at the next boot");
            }
        }
        return Ok(a);
    }
    let (way, _) = crate::trigger::way_in(config.reboot_mode);
    crate::power::request(way).context("rebooting into the update")?;
    a.reboot = "now";
    a.reason = "armed; rebooting into the update".into();
    Ok(a)
}

#[cfg(test)]
mod tests;
