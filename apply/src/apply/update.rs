//! One update from its claim to its way out: what the phases of `run`
//! share (the manifest as verified, the local state, the attempt counter,
//! the snapshot provider, the record), and the phases around the attempt.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use system_update_tui::{Event, Ui};

use crate::attempts::{self, State};
use crate::backend::Sink;
use crate::config::{AfterAction, Config};
use crate::local::{self, LocalError, LocalState};
use crate::manifest::{Manifest, ManifestError};
use crate::paths::Root;
use crate::power;
use crate::result::{Outcome, ResultRecord};
use crate::signature;
use crate::snapshot::{self, Provider};
use crate::timefmt;
use crate::trigger;

use super::leave::{self, Left};
use super::phases::{self, Attempt};
use super::record::Run;
use super::reporter::{open_log, Reporter};
use super::rollback;
use super::said;
use super::{ApplyOptions, Verdict};

pub(super) struct Update<'a> {
    root: &'a Root,
    config: &'a Config,
    opts: &'a ApplyOptions,
    /// The update directory on the host.
    udh: PathBuf,
    manifest: Result<Manifest, ManifestError>,
    /// The manifest's signature verified (replay protection follows it).
    signed: bool,
    local: Result<LocalState, LocalError>,
    state: State,
    provider: anyhow::Result<Provider>,
    run: Run<'a>,
    log: Option<std::fs::File>,
}

/// What the way out was decided to be, before the record is ended.
pub(super) struct Leaving {
    action: AfterAction,
    power: Option<power::Action>,
}

impl<'a> Update<'a> {
    /// Load and verify: the manifest read once and its signature checked
    /// before anything is changed (an update whose signature does not hold
    /// is never used, not even for the repair at the limit), the local
    /// state, the attempt counter, the log and the record begun.
    pub(super) fn load(
        root: &'a Root,
        config: &'a Config,
        opts: &'a ApplyOptions,
    ) -> anyhow::Result<Update<'a>> {
        let udh = root.host(&config.update_dir);
        let mut signed = false;
        let manifest = crate::manifest::load(root, &udh, config.require_signature).map(|l| {
            tracing::info!("manifest {}: {}", l.manifest.id, l.verified);
            signed = matches!(l.verified, signature::Verified::Signed(_));
            l.manifest
        });
        let local = local::load(&udh);
        let state = attempts::load(&udh)?;
        let id = manifest.as_ref().ok().map(|m| m.id.clone());
        let (log, log_path) = open_log(root, id.as_deref().unwrap_or("unknown"));
        let record = begun(&manifest, &local, &state, log_path);
        Ok(Update {
            root,
            config,
            opts,
            udh,
            signed,
            local,
            state,
            provider: snapshot::select(root, config.snapshot),
            run: Run {
                root,
                record,
                full: None,
                for_rollback: false,
            },
            log,
            manifest,
        })
    }

    fn id(&self) -> Option<&str> {
        self.manifest.as_ref().ok().map(|m| m.id.as_str())
    }

    /// The UI told what is being updated; the log's header written.
    pub(super) fn start<'u>(&mut self, ui: &'u Ui) -> Reporter<'u> {
        ui.send(Event::Started {
            title: self.run.record.title.clone().unwrap_or_default(),
        });
        let mut sink = Reporter::new(ui, self.log.take());
        sink.log_line(&format!(
            "== {} attempt {} at {}",
            self.id().unwrap_or("unknown update"),
            self.state.attempts + 1,
            self.run.record.started
        ));
        sink
    }

    /// At the limit, the repair; else the attempt counted, then made.
    pub(super) fn attempt_or_repair(
        &mut self,
        sink: &mut Reporter<'_>,
        stop: &AtomicBool,
    ) -> anyhow::Result<Verdict> {
        let at = Attempt {
            root: self.root,
            udh: &self.udh,
            update_dir: &self.config.update_dir,
            opts: self.opts,
        };
        // A transaction begun before goes on whatever the power: a system
        // left half-updated is worse than a flat battery.
        if !self.state.transaction_started {
            if let Err(deferred) = phases::enough_power(self.root, self.config.min_battery) {
                return Ok(deferred);
            }
        }
        if self.state.attempts >= self.config.attempt_limit {
            let limit = phases::Limit {
                ud: &self.config.update_dir,
                config: self.config,
                manifest: &self.manifest,
                state: &self.state,
                provider: &self.provider,
            };
            return Ok(phases::at_limit(&at, &limit, &mut self.run, sink));
        }
        phases::count_attempt(&at, &mut self.state, &mut self.run)?;
        let verdict = match &self.manifest {
            Ok(m) => phases::attempt(
                &at,
                m,
                &self.local,
                &mut self.state,
                &self.provider,
                &mut self.run.record.snapshot,
                sink,
            ),
            Err(e) => Verdict::new(Outcome::VerificationFailed, e),
        };
        self.run.record.stop_requested = stop.load(Ordering::SeqCst);
        Ok(verdict)
    }

    /// Judge: the record's package list is what the backend reported in the
    /// stream; a success begins the probation and is the newest signed
    /// update applied.
    pub(super) fn judge(&mut self, verdict: &Verdict, sink: &mut Reporter<'_>) {
        self.run.record.packages = std::mem::take(&mut sink.packages);
        if verdict.outcome != Outcome::Success {
            return;
        }
        self.run.record.probation =
            crate::probation::begin(self.root, self.config, &self.run.record);
        if let (Ok(m), true) = (&self.manifest, self.signed) {
            if let Err(e) = crate::replay::advance(self.root, m) {
                tracing::warn!("{e}");
            }
        }
    }

    /// Whether a failed attempt goes back to its snapshot: the one place
    /// that decides it. `tries` is whether the rollback is attempted (and
    /// its absence noted in the record); the root rolls back when the
    /// provider also has this update's snapshot.
    fn rollback_tries(&self, outcome: Outcome) -> bool {
        matches!(outcome, Outcome::Failure | Outcome::Interrupted)
            && self.state.transaction_started
            && self.provider.is_ok()
            && self.id().is_some()
    }

    fn rolls_back(&self, outcome: Outcome) -> bool {
        self.rollback_tries(outcome)
            && matches!((&self.provider, self.id()), (Ok(p), Some(id)) if p.can_roll_back(id))
    }

    /// The way out, decided and recorded before the record is ended: the
    /// after-action (none on a tree that is not this machine, or when a
    /// stop was asked for) and soft-reboot or reboot.
    pub(super) fn way_out(&mut self, verdict: &Verdict, stop: &AtomicBool) -> Leaving {
        let action = if self.opts.no_reboot || stop.load(Ordering::SeqCst) {
            AfterAction::None
        } else if !self.root.is_live() {
            tracing::info!(
                "--root {}: not rebooting the running system",
                self.root.dir().display()
            );
            AfterAction::None
        } else {
            self.local
                .as_ref()
                .ok()
                .and_then(|l| l.after_action)
                .unwrap_or(self.config.after_action)
        };
        let left = Left {
            rolls_back: self.rolls_back(verdict.outcome),
            boot_tree: self
                .state
                .transaction_started
                .then_some(self.state.boot_tree.as_deref()),
        };
        let power = leave::way_out(
            self.root,
            self.config,
            &self.local,
            &self.manifest,
            action,
            left,
            &mut self.run.record,
        );
        Leaving { action, power }
    }

    /// Record: the verdict into the record, the log whole (before anything
    /// copies it), snapper's post snapshot, the history pruned.
    pub(super) fn record(&mut self, verdict: Verdict, sink: &mut Reporter<'_>) {
        // The next boot reads the restored root's record: the space
        // reserved is for the rollback then.
        self.run.for_rollback = self.rolls_back(verdict.outcome);
        self.run.end(verdict, self.state.transaction_started);
        sink.finish_log();
        // A post snapshot of a full disk would keep what filled it.
        if self.state.transaction_started && self.run.full.is_none() {
            let id = self.id().map(str::to_string);
            phases::close_pair(&self.provider, id.as_deref(), &mut self.run);
        }
        if let Err(e) = crate::history::prune(self.root, self.config.keep_results) {
            tracing::warn!("history: {}", crate::oneline::of(e.as_ref()));
        }
    }

    /// The attempt is over: the trigger goes (the next boot must be a
    /// normal one), a success's payload is cleared, a failure rolls back,
    /// and the snapshots are marked for the cleanup. Whether it rolled back.
    pub(super) fn end(&mut self, sink: &mut Reporter<'_>) -> bool {
        let outcome = self.run.record.outcome;
        if let Err(e) = trigger::remove_ours(self.root, &self.config.update_dir) {
            tracing::error!("cannot remove the trigger: {e}");
        }
        if outcome == Outcome::Success && !self.config.keep_update {
            leave::clear_applied(self.root, &self.config.update_dir);
        }
        let rolled_back = self.roll_back(outcome, sink);
        // Not needed any more (after a rollback of a real boot, the running
        // root is still the failed one, where it is).
        crate::reserve::release(self.root);
        // A boot on probation with a snapshot to go back to keeps it until
        // it is confirmed (system-update probation marks the cleanup then).
        let record = &self.run.record;
        let on_probation = record
            .probation
            .as_ref()
            .is_some_and(|p| p.reason.is_none());
        let snapshot = record
            .snapshot
            .as_ref()
            .is_some_and(|s| s.provider != "none");
        if !rolled_back && !on_probation && snapshot {
            crate::cleanup::mark_pending(self.root);
        }
        rolled_back
    }

    fn roll_back(&mut self, outcome: Outcome, sink: &mut Reporter<'_>) -> bool {
        if !self.rollback_tries(outcome) {
            return false;
        }
        let (Ok(p), Some(id)) = (&self.provider, self.id().map(str::to_string)) else {
            return false;
        };
        if self.rolls_back(outcome) {
            sink.event(Event::message(said::ROLLING_BACK.text()));
        }
        // On a full disk even the snapshot may not fit: the space reserved
        // is given back a part at a time until it does.
        let (root, full) = (self.root, self.run.full);
        let for_rollback = self.run.for_rollback;
        let mut room = || for_rollback && full.is_some() && crate::reserve::shrink(root);
        let record = &mut self.run.record;
        if rollback::roll_back(&self.config.update_dir, p, &id, record, full, &mut room) {
            return true;
        }
        // This root stays: its record says why it was not rolled back.
        self.run.for_rollback = false;
        self.run.store();
        false
    }

    /// Leave: the final screen, its countdown and the after-action; the
    /// exit status.
    pub(super) fn leave(
        self,
        ui: Ui,
        leaving: Leaving,
        rolled_back: bool,
        stop: &AtomicBool,
    ) -> i32 {
        let record = &self.run.record;
        let outcome = record.outcome;
        ui.send(Event::Finished {
            outcome,
            detail: record.error.clone().map(|e| {
                if rolled_back {
                    format!("{e} The system was rolled back to its state before the update.")
                } else {
                    e
                }
            }),
            log_path: record.log.as_ref().map(|p| self.root.host(p)),
        });
        leave::countdown(&ui, self.config, leaving.action, outcome, stop);
        ui.finish();
        let power = leaving.power.filter(|_| !stop.load(Ordering::SeqCst));
        leave::after_action(power, outcome)
    }
}

/// The record as it stands once the attempt is counted: `interrupted`
/// until the attempt says otherwise, so a power cut leaves a true one.
fn begun(
    manifest: &Result<Manifest, ManifestError>,
    local: &Result<LocalState, LocalError>,
    state: &State,
    log: Option<PathBuf>,
) -> ResultRecord {
    let m = manifest.as_ref().ok();
    let mut record = ResultRecord::begun(
        m.map(|m| m.id.clone()),
        Some(m.map_or_else(|| "Offline update".to_string(), |m| m.title.clone())),
        timefmt::now_rfc3339(),
    );
    record.backend = m.map(|m| m.backend.to_string());
    record.attempts = state.attempts;
    record.log = log;
    let triggered_in = local
        .as_ref()
        .ok()
        .and_then(|l| l.triggered_boot_id.as_deref());
    record.legs = Some(crate::legs::Legs {
        enter: crate::legs::entered(triggered_in),
        ..Default::default()
    });
    record
}
