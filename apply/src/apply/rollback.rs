//! Going back: the rollback of a failed update to its snapshot, the
//! rollback a boot on probation asked for, and what a broken configuration
//! still owes the boot (its trigger and a due rollback consumed).

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use system_update_tui::Event;

use crate::atomic;
use crate::cleanup;
use crate::config::{AfterAction, Config};
use crate::exit;
use crate::lock::LockError;
use crate::paths::Root;
use crate::power;
use crate::result::{self, Outcome, ResultRecord};
use crate::snapshot::{self, Provider, SnapshotRecord};
use crate::timefmt;
use crate::trigger;

use super::leave::{after_action, countdown};
use super::said;
use super::ui::start_ui;
use super::*;

/// `apply` with a configuration that could not be read: the update cannot
/// be carried out, and a trigger left in place would bring every boot back
/// here. Removes our links (found without the configuration: those to the
/// default update directory or to a directory with a manifest of ours) and
/// records why; returns the exit status: USAGE when it acted (the unit's
/// FailureAction= reboots into the normal system), OK when no trigger of
/// ours was there (another updater may be running: leave it alone). The
/// caller prints the error (one line, on stderr: the journal at boot).
/// A due probation rollback is consumed first, as the rollback itself
/// consumes it: whatever the files say, the next boot is a normal one.
pub fn config_failed(root: &Root, err: &anyhow::Error) -> i32 {
    let due_consumed = due_without_config(root, err);
    match trigger::remove_ours_without_config(root) {
        Ok(removed) if !removed.is_empty() => {
            let now = timefmt::now_rfc3339();
            let mut rec = ResultRecord::begun(None, None, now.clone());
            rec.outcome = Outcome::Failure;
            rec.finished = Some(now);
            rec.error = Some(crate::oneline::of(err.as_ref()));
            if let Err(e) = crate::history::keep(root, &rec) {
                tracing::error!("{}", crate::oneline::of(e.as_ref()));
            }
            exit::USAGE
        }
        Ok(_) if due_consumed => exit::USAGE,
        Ok(_) => exit::OK,
        Err(e) => {
            tracing::error!("cannot remove the trigger: {e}");
            exit::USAGE
        }
    }
}

/// The probation's marker with no configuration to roll back by: removed
/// (probation::take, the marker first), the verdict recorded in the
/// update's record and logged; the updated system stays. True when the
/// marker is what brought this boot here.
pub(super) fn due_without_config(root: &Root, err: &anyhow::Error) -> bool {
    use crate::probation::{self, Due};
    match probation::take(root) {
        Due::None => false,
        Due::Stray { why, sent_here } => {
            tracing::error!("{why}");
            sent_here
        }
        Due::NoSnapshot(s) => {
            probation::fail_without_rollback(root, &s, NO_SNAPSHOT);
            true
        }
        Due::Rollback(s) => {
            let why = format!(
                "the configuration could not be read ({}), so it is not rolled back and the updated system stays",
                crate::oneline::of(err.as_ref())
            );
            probation::fail_without_rollback(root, &s, &why);
            true
        }
    }
}

/// Why a due rollback of an update without a snapshot is not carried out.
pub(super) const NO_SNAPSHOT: &str =
    "There is no snapshot to roll back to, so the updated system stays";

/// What the probation's marker made of this run.
pub(super) enum AfterBoot {
    /// Rolled back (or another instance is at it): the exit status.
    Done(i32),
    /// No rollback of ours: reported, the normal flow goes on.
    Stray { sent_here: bool },
    /// No marker: the normal flow.
    NotDue,
}

/// The first phase: a rollback the probation left due, if any.
pub(super) fn due(
    root: &Root,
    config: &Config,
    opts: &ApplyOptions,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<AfterBoot> {
    if crate::probation::marker(root) == crate::probation::Marker::Absent {
        return Ok(AfterBoot::NotDue);
    }
    roll_back_after_boot(root, config, opts, stop)
}

/// The update environment of a boot whose update was not confirmed
/// healthy (probation.rs): the marker goes first, so the boot after this
/// one is a normal one whatever happens here; then the pre-update snapshot
/// is put back and the machine reboots into it. A marker without an
/// update to roll back is only reported: no record is touched.
pub(super) fn roll_back_after_boot(
    root: &Root,
    config: &Config,
    opts: &ApplyOptions,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<AfterBoot> {
    let _lock = match crate::prepare::lock_root(root) {
        Ok(l) => l,
        Err(LockError::Busy(p)) => {
            tracing::info!("{}: another instance is acting; nothing to do", p.display());
            return Ok(AfterBoot::Done(exit::OK));
        }
        Err(e) => return Err(e.into()),
    };
    let state = match take_due(root) {
        Ok(s) => s,
        Err(after) => return Ok(after),
    };
    let reason = crate::probation::reason(&state);
    let mut record = rolled_back_record(root, &state, &reason);
    let ui = start_ui(root, config, opts);
    ui.send(Event::Started {
        title: format!(
            "Rolling back {}",
            record.title.as_deref().unwrap_or("the last update")
        ),
    });
    ui.send(Event::message(said::ROLLING_BACK.text()));
    let outcome = match snapshot::select(root, config.snapshot) {
        Ok(p)
            if roll_back(
                &config.update_dir,
                &p,
                &state.id,
                &mut record,
                None,
                &mut || false,
            ) =>
        {
            Outcome::RolledBackAfterBoot
        }
        Ok(_) => stays(root, &mut record),
        Err(e) => {
            tracing::error!("{}", crate::oneline::of(e.as_ref()));
            stays(root, &mut record)
        }
    };
    ui.send(Event::Finished {
        outcome,
        detail: record.error.clone(),
        log_path: None,
    });
    let action = if opts.no_reboot || !root.is_live() {
        AfterAction::None
    } else {
        AfterAction::Reboot
    };
    countdown(&ui, config, action, outcome, stop);
    ui.finish();
    let power_action = (action == AfterAction::Reboot).then_some(power::Action::Reboot);
    Ok(AfterBoot::Done(after_action(power_action, outcome)))
}

/// The marker and the probation's state, taken (the marker first); what
/// this run ends with when there is no rollback of ours to do.
fn take_due(root: &Root) -> Result<crate::probation::State, AfterBoot> {
    use crate::probation::{self, Due};
    match probation::take(root) {
        Due::Rollback(s) => Ok(s),
        Due::NoSnapshot(s) => {
            probation::fail_without_rollback(root, &s, NO_SNAPSHOT);
            Err(AfterBoot::Stray { sent_here: true })
        }
        Due::None => Err(AfterBoot::Done(exit::OK)),
        Due::Stray { why, sent_here } => {
            tracing::error!("{why}");
            Err(AfterBoot::Stray { sent_here })
        }
    }
}

/// The update's record (or a new one), saying it was rolled back after
/// its first boot and why, and that the way out is a full reboot.
fn rolled_back_record(root: &Root, state: &crate::probation::State, reason: &str) -> ResultRecord {
    use crate::probation;
    let id = Some(state.id.clone());
    let now = timefmt::now_rfc3339();
    let mut record = match result::load(root).ok().flatten() {
        Some(r) if r.id.is_some() && r.id == id => r,
        _ => ResultRecord {
            outcome: Outcome::Success,
            ..ResultRecord::begun(id.clone(), None, now.clone())
        },
    };
    tracing::error!(
        "update {}: its first boot was not healthy: {reason}; rolling back",
        state.id
    );
    record.outcome = Outcome::RolledBackAfterBoot;
    record.error = Some(format!(
        "The system did not start properly after the update: {reason}."
    ));
    record.finished = Some(now.clone());
    record.probation = Some(probation::Record {
        verdict: probation::Verdict::RolledBack,
        boots: state.boots,
        limit: state.limit,
        target: record.probation.as_ref().and_then(|p| p.target.clone()),
        reason: Some(reason.to_string()),
        at: Some(now),
    });
    let legs = record.legs.get_or_insert_with(Default::default);
    legs.leave = Some(crate::legs::Leg::Reboot);
    legs.leave_why = Some("the root was rolled back to its snapshot".into());
    record
}

/// The rollback did not happen: still the updated system; the record says
/// so, and why it stays.
fn stays(root: &Root, record: &mut ResultRecord) -> Outcome {
    record.outcome = Outcome::Success;
    if let Some(p) = record.probation.as_mut() {
        p.verdict = crate::probation::Verdict::Failed;
    }
    let why = record
        .snapshot
        .as_ref()
        .and_then(|s| s.note.clone())
        .unwrap_or_else(|| "no snapshot".into());
    let error = record.error.take().unwrap_or_default();
    record.error = Some(format!(
        "{error} The rollback failed, so the updated system stays: {why}"
    ));
    if let Err(e) = crate::history::keep(root, record) {
        tracing::error!("{}", crate::oneline::of(e.as_ref()));
    }
    Outcome::Failure
}

/// Puts the pre-update snapshot back for the next boot and records there
/// what happened: the restored root is where the next boot looks for the
/// result, the log and (absent) trigger. Returns whether it rolled back.
pub(super) fn roll_back(
    ud: &Path,
    provider: &Provider,
    id: &str,
    record: &mut ResultRecord,
    full: Option<u64>,
    room: &mut dyn FnMut() -> bool,
) -> bool {
    let note = |record: &mut ResultRecord, provider: &str, note: String| {
        tracing::warn!("{note}");
        let s = record
            .snapshot
            .get_or_insert_with(|| SnapshotRecord::new(provider));
        s.note = Some(note);
    };
    if let Provider::None { why } = provider {
        note(
            record,
            "none",
            format!("no rollback: no snapshot was possible ({why})"),
        );
        return false;
    }
    if !provider.can_roll_back(id) {
        note(
            record,
            provider.name(),
            format!("no rollback: no snapshot of update {id} was found"),
        );
        return false;
    }
    let restored = match provider.roll_back(id, room) {
        Ok(r) => r,
        Err(e) => {
            note(
                record,
                provider.name(),
                format!(
                    "rollback failed, the failed state stays in place: {}",
                    crate::oneline::of(e.as_ref())
                ),
            );
            return false;
        }
    };
    tracing::info!(
        "rolled back to the state before update {id}; the failed state is kept as {}",
        restored.failed_state().display()
    );
    record_rolled_back(record, provider.name(), &restored);
    let new_root = Root::new(restored.root());
    let failed_root = Root::new(restored.failed_root());
    if let Some(log) = &record.log {
        copy_log(&failed_root, &new_root, log);
    }
    match full {
        Some(free) => store_dropping_failed(&restored, &new_root, &failed_root, record, free),
        None => store_restored(&new_root, &failed_root, record),
    }
    if let Err(e) = trigger::remove_ours(&new_root, ud) {
        tracing::error!("cannot remove the trigger from the restored root: {e}");
    }
    cleanup::mark_pending(&new_root);
    if let Err(e) = restored.finish() {
        tracing::error!("{}", crate::oneline::of(e.as_ref()));
    }
    true
}

/// The record says what the next boot runs: the restored snapshot, and
/// the versions from before.
fn record_rolled_back(record: &mut ResultRecord, provider: &str, restored: &snapshot::Restored) {
    let snap = record
        .snapshot
        .get_or_insert_with(|| SnapshotRecord::new(provider));
    if snap.name.is_none() {
        snap.name = Some(restored.source().display().to_string());
    }
    snap.rolled_back = true;
    snap.failed_state = Some(restored.failed_state().display().to_string());
    for p in &mut record.packages {
        p.after = p.before.clone();
        p.state = Some(crate::backend::presence(p.before.is_some(), p.before.is_some()).into());
    }
}

/// The record, written into the restored root; on a full disk with the
/// failed root's space reserve given back a part at a time (deleting the
/// failed state frees nothing while this process has files open in it).
fn store_restored(new_root: &Root, failed_root: &Root, record: &ResultRecord) {
    loop {
        match crate::history::keep(new_root, record) {
            Ok(()) => return,
            Err(_) if crate::reserve::shrink(failed_root) => {}
            Err(e) => return tracing::error!("{}", crate::oneline::of(e.as_ref())),
        }
    }
}

/// The failed attempt's log, copied into the restored root: the next boot
/// runs that one.
fn copy_log(failed_root: &Root, new_root: &Root, log: &Path) {
    let to = new_root.host(log);
    let group = atomic::log_group(new_root);
    let copied = (|| {
        let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK;
        let mut from = failed_root.open_in(log, flags)?;
        if !from.metadata()?.is_file() {
            return Err(std::io::Error::other(
                "the failed root's log is not a regular file",
            ));
        }
        let (dir, name) = crate::rooted::split(log)?;
        let dir = crate::rooted::create_dir_all(new_root, dir, 0o755)?;
        dir.copy_reader(&mut from, name, atomic::private_mode(group))
    })();
    if let Err(e) = copied {
        tracing::warn!(
            "{}: cannot copy the log into the restored root: {e}",
            to.display()
        );
    }
}

/// A failure that filled the disk: its failed state holds what filled it
/// and is not kept at the cost of the next boot's free space. Its record
/// and log go into the restored root first (the record already saying
/// the failed state is gone), then it is deleted. btrfs frees its blocks
/// in the background, after a reboot too: nothing waits for that (this
/// process still holds files of it open, which defers it).
fn store_dropping_failed(
    restored: &snapshot::Restored,
    new_root: &Root,
    failed_root: &Root,
    record: &mut ResultRecord,
    free: u64,
) {
    let failed = restored.failed_state().display().to_string();
    if let Some(snap) = record.snapshot.as_mut() {
        snap.failed_state = None;
        snap.note = Some(format!(
            "the failed state {failed} was deleted: it held what filled the disk ({} free); the record and the log are kept",
            crate::space::human(free)
        ));
    }
    store_restored(new_root, failed_root, record);
    match restored.drop_failed() {
        Ok(()) => tracing::info!("the failed state {failed} was deleted: the disk was full"),
        Err(e) => {
            let e = crate::oneline::of(e.as_ref());
            tracing::error!("the disk stays full: {e}");
            if let Some(snap) = record.snapshot.as_mut() {
                snap.failed_state = Some(failed.clone());
                snap.note = Some(format!(
                    "the disk was full and the failed state {failed} could not be deleted ({e}): delete it to free the space (system-update cleanup)"
                ));
            }
            store_restored(new_root, failed_root, record);
        }
    }
}
