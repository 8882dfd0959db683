//! The phases of one attempt, each ending the update with a `Verdict` or
//! handing on what it found: claim, power, count, the limit and its
//! repair, recover or check stale, verify, space, snapshot, transaction.

use std::path::{Path, PathBuf};

use anyhow::Context;
use system_update_tui::Event;

use crate::attempts::{self, State};
use crate::backend::{Backend, BackendError, Sink, Transaction};
use crate::config::Config;
use crate::local::{LocalError, LocalState};
use crate::lock::LockError;
use crate::manifest::{Manifest, VerifiedFile};
use crate::paths::Root;
use crate::result::Outcome;
use crate::snapshot::{Provider, SnapshotRecord};
use crate::space;
use crate::trigger;

use super::record::Run;
use super::said;
use super::*;

/// Phase 1, claim the trigger: it must be ours, and we must hold the lock.
/// `None` when there is nothing for this instance to do (exit 0).
pub fn claim(root: &Root, ud: &Path) -> anyhow::Result<Option<crate::lock::Lock>> {
    let shown = || root.dir().display().to_string();
    let links = trigger::inspect(root, ud).with_context(shown)?;
    if trigger::ours(&links).is_none() {
        tracing::info!(
            "no update of ours to apply: {}",
            trigger::why_not_ours(&links, ud)
        );
        return Ok(None);
    }
    let lock = match crate::prepare::lock_root(root) {
        Ok(l) => l,
        Err(LockError::Busy(p)) => {
            tracing::info!(
                "{}: another instance is applying the update; nothing to do",
                p.display()
            );
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    // The instance that held the lock may have finished meanwhile.
    let links = trigger::inspect(root, ud).with_context(shown)?;
    if trigger::ours(&links).is_none() {
        tracing::info!(
            "the update was applied meanwhile: {}",
            trigger::why_not_ours(&links, ud)
        );
        return Ok(None);
    }
    Ok(Some(lock))
}

/// What the phases of one attempt share.
pub struct Attempt<'a> {
    pub root: &'a Root,
    /// The update directory on the host.
    pub udh: &'a Path,
    /// The same, as the root sees it.
    pub update_dir: &'a Path,
    pub opts: &'a ApplyOptions,
}

impl Attempt<'_> {
    pub(super) fn open(
        &self,
        m: &Manifest,
        state: &State,
    ) -> Result<Box<dyn Backend>, BackendError> {
        m.backend.open(Transaction {
            root: self.root,
            update_dir: self.udh,
            payload: m.payload(),
            attempt: state.attempts,
            limits: self.opts.limits,
            extra_args: &self.opts.backend_args,
            first: state.before.as_ref(),
        })
    }
}

/// Counted and on disk before anything is touched: a power cut from here
/// on counts against the limit.
/// Phase 2, power, before anything changes: on batteries below
/// `min_battery` the update is `deferred`: not begun, no attempt counted,
/// kept prepared for a later boot. Sysfs that cannot be read is taken as
/// mains: a broken power_supply class must not hold every update back.
pub fn enough_power(root: &Root, min_battery: u8) -> Phase<()> {
    let power = match crate::supply::read(root) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("power supplies not read ({e}): going on as on mains");
            return Ok(());
        }
    };
    let said = power.describe(min_battery);
    if power.enough(min_battery) {
        tracing::info!("power: {said}");
        return Ok(());
    }
    tracing::warn!("power: {said}; the update is deferred");
    Err(Verdict::new(
        Outcome::Deferred,
        format!("Not enough power to install the update: {said}. Nothing was changed; the update stays prepared."),
    ))
}

pub(super) fn count_attempt(
    at: &Attempt<'_>,
    state: &mut State,
    run: &mut Run<'_>,
) -> anyhow::Result<()> {
    state.attempts += 1;
    attempts::store(at.root, at.update_dir, state)?;
    run.record.attempts = state.attempts;
    run.record.error = Some(format!(
        "attempt {} did not finish (power cut, crash or kill)",
        state.attempts
    ));
    run.store();
    Ok(())
}

/// What the attempt limit's phase looks at.
pub(super) struct Limit<'a> {
    pub(super) ud: &'a Path,
    pub(super) config: &'a Config,
    pub(super) manifest: &'a Result<Manifest, crate::manifest::ManifestError>,
    pub(super) state: &'a State,
    pub(super) provider: &'a anyhow::Result<Provider>,
}

/// Phase 2, the attempt limit: the link goes first, so that whatever
/// happens from here on, even a crash in the repair, the next boot is a
/// normal one; then the backend's repair, once, when a transaction was cut
/// short and no snapshot will put things back.
pub(super) fn at_limit(
    at: &Attempt<'_>,
    limit: &Limit<'_>,
    run: &mut Run<'_>,
    sink: &mut dyn Sink,
) -> Verdict {
    let Limit {
        ud,
        config,
        manifest,
        state,
        provider,
    } = *limit;
    if let Err(e) = trigger::remove_ours(at.root, ud) {
        tracing::error!("cannot remove the trigger: {e}");
    }
    let mut msg = format!(
        "the update was interrupted {} time(s), the limit (attempt-limit = {}); not trying again",
        state.attempts, config.attempt_limit
    );
    let will_roll_back = match (provider, manifest) {
        (Ok(p), Ok(m)) => p.can_roll_back(&m.id),
        _ => false,
    };
    if state.transaction_started && !will_roll_back {
        // Should the repair itself be cut, the next boot still says why.
        run.record.error = Some(msg.clone());
        run.store();
        msg += &repair(at, manifest, state, sink);
    }
    Verdict::new(Outcome::Interrupted, msg)
}

/// The backend's repair of a transaction cut short; returns what to add to
/// the error.
pub fn repair(
    at: &Attempt<'_>,
    manifest: &Result<Manifest, crate::manifest::ManifestError>,
    state: &State,
    sink: &mut dyn Sink,
) -> String {
    let Ok(m) = manifest else {
        return "; the update could not be read, so the package manager's own repair was not run: check the package database".into();
    };
    let says = m.backend.repair();
    sink.event(Event::message(said::REPAIRING.text()));
    let repaired = at.open(m, state).and_then(|mut b| {
        // The checked payload, held open, for a repair that needs a package
        // again (dpkg's reinstreq); a payload that fails the check is not
        // used, and the repair does what it can without it.
        let _verified = verify(at.root, at.udh, m, b.as_mut(), sink)
            .map_err(|v| tracing::warn!("the payload is not used for the repair: {v:?}"))
            .ok();
        let r = b.recover(sink);
        // The record says what the database holds now, repaired or not: a
        // cut attempt may have installed all, some or none of the update.
        for p in b.changes() {
            sink.event(Event::Package(p));
        }
        r
    });
    match repaired {
        Ok(()) => format!("; {}", says.done),
        Err(e) => format!("; repairing failed too ({e}): {}", says.by_hand),
    }
}

/// Phases 3 to 6 once the attempt is counted.
pub fn attempt(
    at: &Attempt<'_>,
    m: &Manifest,
    local: &Result<LocalState, LocalError>,
    state: &mut State,
    provider: &anyhow::Result<Provider>,
    snapshot: &mut Option<SnapshotRecord>,
    sink: &mut dyn Sink,
) -> Verdict {
    let mut phases = || -> Phase<Verdict> {
        let mut backend = at.open(m, state).map_err(Verdict::failure)?;
        recover_or_check_stale(at.root, m, local, state, backend.as_mut(), sink)?;
        // Held open until the backend is done: what it runs is what was checked.
        let _verified = verify(at.root, at.udh, m, backend.as_mut(), sink)?;
        let provider = provider
            .as_ref()
            .map_err(|e| Verdict::failure(crate::oneline::of(e.as_ref())))?;
        check_space(at.root, provider, state, backend.as_ref())?;
        *snapshot = Some(take_snapshot(provider, &m.id, sink)?);
        // After the snapshot, which must not share its blocks.
        crate::reserve::make(at.root);
        mark_started(at, m, state)?;
        Ok(transaction(backend.as_mut(), sink))
    };
    match phases() {
        Ok(v) | Err(v) => v,
    }
}

/// Phase 3: a retry after a cut finishes what the last attempt began; a
/// first attempt refuses a package database that changed since prepare.
pub fn recover_or_check_stale(
    root: &Root,
    m: &Manifest,
    local: &Result<LocalState, LocalError>,
    state: &State,
    backend: &mut dyn Backend,
    sink: &mut dyn Sink,
) -> Phase<()> {
    if state.attempts > 1 && state.transaction_started {
        if let Err(e) = backend.recover(sink) {
            // The install below may still repair it; the log has the detail.
            tracing::warn!("recovery: {e}");
        }
        return Ok(());
    }
    // Our own earlier attempt changes the database: compare only while no
    // transaction of ours has run.
    let stale = |why: String| Err(Verdict::new(Outcome::Stale, why));
    match (m.backend.fingerprint(root), local) {
        (Ok(None), _) => Ok(()),
        (Ok(Some(now)), Ok(l)) if l.db_fingerprint.as_deref() == Some(now.as_str()) => Ok(()),
        (Ok(Some(_)), Ok(_)) => stale(format!(
            "{}; nothing was installed. Prepare the update again (system-update prepare --force)",
            m.backend.stale_message(root)
        )),
        (Ok(Some(_)), Err(e)) => stale(format!("{e}; nothing was installed")),
        (Err(e), _) => Err(Verdict::failure(e)),
    }
}

/// Phase 4: each payload file opened once and checked through that
/// descriptor, the package signatures the manifest requires checked again
/// on those descriptors against the root's keys (they may have changed
/// since prepare); the backend runs those descriptors.
pub fn verify(
    root: &Root,
    udh: &Path,
    m: &Manifest,
    backend: &mut dyn Backend,
    sink: &mut dyn Sink,
) -> Phase<Vec<VerifiedFile>> {
    sink.event(Event::message(said::VERIFYING.text()));
    let failed = |e: String| Verdict::new(Outcome::VerificationFailed, e);
    let verified = m.open_verified(udh).map_err(|e| failed(e.to_string()))?;
    let paths: Vec<(String, PathBuf)> = verified
        .iter()
        .map(|v| (v.name.clone(), v.path()))
        .collect();
    let required = m.required_signatures(&paths);
    if let Err(e) = m.backend.verify_signatures(root, &required, &paths) {
        let names: Vec<(String, String)> = paths
            .iter()
            .map(|(n, p)| (p.to_string_lossy().into_owned(), n.clone()))
            .collect();
        return Err(failed(crate::backend::unname(&e.to_string(), &names)));
    }
    backend.use_verified(&paths);
    Ok(verified)
}

/// Phase 5a: room for the packages and the snapshot. A retry after a power
/// cut is half-installed already: the figures would no longer mean
/// anything, and stopping there helps nobody.
pub fn check_space(
    root: &Root,
    provider: &Provider,
    state: &State,
    backend: &dyn Backend,
) -> Phase<()> {
    if state.transaction_started {
        return Ok(());
    }
    let snapshotting = !matches!(provider, Provider::None { .. });
    space::check(root.dir(), backend.required_bytes(), snapshotting).map_err(Verdict::failure)
}

/// Phase 5b: the snapshot point (a no-op record when there is none).
pub fn take_snapshot(provider: &Provider, id: &str, sink: &mut dyn Sink) -> Phase<SnapshotRecord> {
    sink.event(Event::message(said::SNAPSHOT.text()));
    let rec = provider
        .take(id)
        .map_err(|e| Verdict::failure(crate::oneline::of(e.as_ref())))?;
    match (&rec.name, &rec.note) {
        (Some(name), _) => tracing::info!("snapshot {name} taken"),
        (None, Some(note)) => tracing::info!("{note}"),
        (None, None) => {}
    }
    Ok(rec)
}

/// From here on the database may be ours to repair: on disk before the
/// backend starts.
pub(super) fn mark_started(at: &Attempt<'_>, m: &Manifest, state: &mut State) -> Phase<()> {
    let root = at.root;
    if !state.transaction_started {
        state.transaction_started = true;
        // Before anything is changed, and once: a later attempt would see
        // what a cut one already wrote. No fingerprint: a full reboot out.
        state.boot_tree = crate::boottree::fingerprint(root)
            .map_err(|why| tracing::warn!("boot files not recorded: {why}"))
            .ok();
        state.before = crate::backend::versions_of(m.backend, m.payload(), root)
            .map_err(|why| tracing::warn!("versions before the update not recorded: {why}"))
            .ok();
        attempts::store(root, at.update_dir, state)
            .map_err(|e| Verdict::failure(format!("{e:#}")))?;
    }
    Ok(())
}

/// Phase 6: the backend's transaction; what it touched goes into the
/// stream as `Package` events, whatever the outcome.
pub fn transaction(backend: &mut dyn Backend, sink: &mut dyn Sink) -> Verdict {
    let result = backend.install(sink);
    for p in backend.changes() {
        sink.event(Event::Package(p));
    }
    match result {
        Ok(()) => {
            sink.event(Event::Progress { percent: 100.0 });
            Verdict::success()
        }
        Err(e) => Verdict::failure(e),
    }
}

/// Takes snapper's post snapshot, whatever the outcome, before a rollback
/// puts the pre-update state back: the pair then shows what the update did.
pub(super) fn close_pair(provider: &anyhow::Result<Provider>, id: Option<&str>, run: &mut Run<'_>) {
    let (Ok(p), Some(id)) = (provider, id) else {
        return;
    };
    match p.close(id, run.record.outcome.as_str()) {
        Ok(Some(post)) => {
            tracing::info!("snapper post snapshot {post} taken");
            run.record
                .snapshot
                .get_or_insert_with(|| SnapshotRecord::new(p.name()))
                .snapper_post = Some(post);
            run.store();
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("{}", crate::oneline::of(e.as_ref())),
    }
}
