//! `apply`: what system-update-apply.service runs at boot (steps 5-8 of
//! systemd.offline-updates(7)).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use system_update_tui::{Event, Output, Ui, UiOptions};

use crate::atomic;
use crate::attempts::{self, AttemptsError, State};
use crate::backend::{Backend, BackendError, PackageChange, Sink, Transaction};
use crate::config::{AfterAction, Config, ConfigError, UiChoice};
use crate::exit;
use crate::local::{self, LocalError, LocalState};
use crate::lock::LockError;
use crate::logcap::{self, HeadTail};
use crate::manifest::{Manifest, VerifiedFile};
use crate::paths::{self, Root};
use crate::power;
use crate::result::{self, Outcome, ResultError, ResultRecord};
use crate::signature;
use crate::snapshot::{self, Provider, SnapshotError, SnapshotRecord};
use crate::space;
use crate::timefmt;
use crate::trigger;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Attempts(#[from] AttemptsError),
    #[error(transparent)]
    Result(#[from] ResultError),
}

pub struct ApplyOptions {
    pub no_reboot: bool,
    pub ui: Option<UiChoice>,
    pub output: Output,
    /// Extra arguments for the backend's program; only the demo sets them
    /// (its scratch root belongs to a normal user and has no shell).
    pub backend_args: Vec<String>,
    /// Bounds on the backend's program (stall-timeout in the config).
    pub limits: crate::backend::process::Limits,
}

/// Sends backend events to the UI, the journal and the log file.
/// The backend's lines reach the log file and the journal through a
/// head-and-tail bound each (logcap), the UI through its own bounded model.
struct Reporter<'a> {
    ui: &'a Ui,
    log: Option<File>,
    file_cap: HeadTail,
    journal_cap: HeadTail,
    /// The packages the transaction reported, for the result record.
    packages: Vec<PackageChange>,
}

impl Reporter<'_> {
    fn new(ui: &Ui, log: Option<File>) -> Reporter<'_> {
        Reporter {
            ui,
            log,
            file_cap: HeadTail::new(logcap::FILE_HEAD, logcap::FILE_TAIL),
            journal_cap: HeadTail::new(logcap::JOURNAL_HEAD, logcap::JOURNAL_TAIL),
            packages: Vec::new(),
        }
    }

    fn write_file(&mut self, line: &str) {
        if let Some(f) = self.log.as_mut() {
            if let Err(e) = writeln!(f, "{line}") {
                tracing::warn!("log file: {e}; no longer writing it");
                self.log = None;
            }
        }
    }

    /// Our own lines (the attempt header): always written.
    fn log_line(&mut self, line: &str) {
        self.write_file(line);
    }

    /// Writes what the caps kept for the end. Before the log is copied
    /// anywhere (a rollback takes it into the restored root) and at drop.
    fn finish_log(&mut self) {
        let (summary, tail) = self.journal_cap.finish();
        if let Some(s) = &summary {
            tracing::info!(target: "backend", "{s}");
        }
        for l in tail.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            tracing::info!(target: "backend", "{}", String::from_utf8_lossy(l));
        }
        let (summary, tail) = self.file_cap.finish();
        if let Some(s) = &summary {
            self.write_file(s);
        }
        if let Some(f) = self.log.as_mut() {
            if let Err(e) = f.write_all(&tail) {
                tracing::warn!("log file: {e}; no longer writing it");
                self.log = None;
            }
        }
        if let Some(f) = self.log.as_mut() {
            if let Err(e) = f.sync_data() {
                tracing::warn!("log file: {e}");
            }
        }
    }
}

impl Drop for Reporter<'_> {
    fn drop(&mut self) {
        self.finish_log();
    }
}

impl Sink for Reporter<'_> {
    fn event(&mut self, event: Event) {
        match &event {
            Event::Step { index, total, name } => tracing::info!("[{index}/{total}] {name}"),
            Event::Message { text } => tracing::info!("{text}"),
            Event::Package(p) => {
                tracing::info!(
                    "{}: {} -> {}",
                    p.name,
                    p.before.as_deref().unwrap_or("(none)"),
                    p.after.as_deref().unwrap_or("(none)")
                );
                self.packages.push(p.clone());
            }
            _ => {}
        }
        self.ui.send(event);
    }

    fn output(&mut self, line: &str) {
        if self.journal_cap.push(line) {
            tracing::info!(target: "backend", "{line}");
        }
        if self.file_cap.push(line) {
            self.write_file(line);
        }
        self.ui.send(Event::Log {
            line: line.to_string(),
        });
    }
}

/// `apply` with a configuration that could not be read: the update cannot
/// be carried out, and a trigger left in place would bring every boot back
/// here. Removes our links (found without the configuration: those to the
/// default update directory or to a directory with a manifest of ours) and
/// records why; returns the exit status: USAGE when it acted (the unit's
/// FailureAction= reboots into the normal system), OK when no trigger of
/// ours was there (another updater may be running: leave it alone). The
/// caller prints the error (one line, on stderr: the journal at boot).
pub fn config_failed(root: &Root, err: &ConfigError) -> i32 {
    match trigger::remove_ours_without_config(root) {
        Ok(removed) if !removed.is_empty() => {
            let now = timefmt::now_rfc3339();
            let rec = ResultRecord {
                format: result::JSON_FORMAT,
                id: None,
                title: None,
                backend: None,
                outcome: Outcome::Failure,
                stop_requested: false,
                packages: Vec::new(),
                started: now.clone(),
                finished: Some(now),
                attempts: 0,
                error: Some(err.to_string()),
                log: None,
                snapshot: None,
                legs: None,
                probation: None,
            };
            if let Err(e) = result::store(root, &rec) {
                tracing::error!("{e}");
            }
            exit::USAGE
        }
        Ok(_) => exit::OK,
        Err(e) => {
            tracing::error!("cannot remove the trigger: {e}");
            exit::USAGE
        }
    }
}

struct Run<'a> {
    root: &'a Root,
    record: ResultRecord,
}

impl Run<'_> {
    fn store(&self) {
        if let Err(e) = result::store(self.root, &self.record) {
            tracing::error!("{e}");
        }
    }

    fn end(&mut self, verdict: Verdict) {
        let outcome = verdict.outcome;
        self.record.outcome = outcome;
        self.record.error = verdict.error;
        self.record.finished = Some(timefmt::now_rfc3339());
        match &self.record.error {
            Some(e) => tracing::error!("update {}: {e}", outcome.as_str()),
            None => tracing::info!("update {}", outcome.as_str()),
        }
        self.store();
    }
}

fn open_log(root: &Root, id: &str) -> (Option<File>, Option<PathBuf>) {
    let inside = Path::new(paths::LOG_DIR).join(format!("{id}.log"));
    let host = match root.confined(&inside) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("{e}; the backend's output goes to the journal only");
            return (None, None);
        }
    };
    // Maintainer scripts print what they like, secrets included: 0640 for
    // the log group (adm) where there is one, else 0600; never through a
    // link planted in the log directory.
    let group = atomic::log_group(root.dir());
    let mode = atomic::private_mode(group);
    let opened = host
        .parent()
        .map_or(Ok(()), |d| atomic::create_dir_all(d, 0o755))
        .and_then(|_| {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&host)?;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Some(g) = group {
                std::os::unix::fs::fchown(&f, None, Some(g))?;
            }
            Ok(f)
        });
    match opened {
        Ok(f) => (Some(f), Some(inside)),
        Err(e) => {
            tracing::warn!(
                "{}: {e}; the backend's output goes to the journal only",
                host.display()
            );
            (None, None)
        }
    }
}

/// How an attempt ended, before the rollback and the after-action: the one
/// answer every phase gives when it ends the update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub error: Option<String>,
}

impl Verdict {
    pub fn success() -> Verdict {
        Verdict {
            outcome: Outcome::Success,
            error: None,
        }
    }

    pub fn new(outcome: Outcome, error: impl ToString) -> Verdict {
        Verdict {
            outcome,
            error: Some(error.to_string()),
        }
    }

    pub fn failure(error: impl ToString) -> Verdict {
        Verdict::new(Outcome::Failure, error)
    }
}

/// A phase lets the update go on with what it found, or ends it.
pub type Phase<T> = Result<T, Verdict>;

/// Phase 1, claim the trigger: it must be ours, and we must hold the lock.
/// `None` when there is nothing for this instance to do (exit 0).
pub fn claim(root: &Root, ud: &Path) -> Result<Option<crate::lock::Lock>, ApplyError> {
    let io_err = |source| ApplyError::Io {
        path: root.dir().to_path_buf(),
        source,
    };
    let links = trigger::inspect(root, ud).map_err(io_err)?;
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
    let links = trigger::inspect(root, ud).map_err(io_err)?;
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
    pub opts: &'a ApplyOptions,
}

impl Attempt<'_> {
    fn open(&self, m: &Manifest, state: &State) -> Result<Box<dyn Backend>, BackendError> {
        m.backend.open(Transaction {
            root: self.root,
            update_dir: self.udh,
            manifest: m,
            attempt: state.attempts,
            limits: self.opts.limits,
            extra_args: &self.opts.backend_args,
        })
    }
}

pub fn run(
    root: &Root,
    config: &Config,
    opts: &ApplyOptions,
    stop: &Arc<AtomicBool>,
) -> Result<i32, ApplyError> {
    let ud = &config.update_dir;
    if crate::probation::is_due(root) {
        return roll_back_after_boot(root, config, opts, stop);
    }
    let Some(_lock) = claim(root, ud)? else {
        return Ok(exit::OK);
    };

    let udh = root.host(ud);
    // Verified before anything is changed: an update whose signature does
    // not hold is never used, not even for the repair at the limit.
    let mut signed = false;
    let manifest = signature::load_manifest(root, &udh, config.require_signature).map(|l| {
        tracing::info!("manifest {}: {}", l.manifest.id, l.verified);
        signed = matches!(l.verified, signature::Verified::Signed(_));
        l.manifest
    });
    let local = local::load(&udh);
    let after = local
        .as_ref()
        .ok()
        .and_then(|l| l.after_action)
        .unwrap_or(config.after_action);
    let (id, title) = match &manifest {
        Ok(m) => (Some(m.id.clone()), m.title.clone()),
        Err(_) => (None, "Offline update".to_string()),
    };
    let mut state = attempts::load(&udh)?;
    let (log_file, log_path) = open_log(root, id.as_deref().unwrap_or("unknown"));
    let mut run = Run {
        root,
        record: ResultRecord {
            format: result::JSON_FORMAT,
            id: id.clone(),
            title: Some(title.clone()),
            backend: manifest.as_ref().ok().map(|m| m.backend.to_string()),
            outcome: Outcome::Interrupted,
            stop_requested: false,
            packages: Vec::new(),
            started: timefmt::now_rfc3339(),
            finished: None,
            attempts: state.attempts,
            error: None,
            log: log_path.clone(),
            snapshot: None,
            legs: Some(crate::legs::Legs {
                enter: crate::legs::entered(
                    local
                        .as_ref()
                        .ok()
                        .and_then(|l| l.triggered_boot_id.as_deref()),
                ),
                ..Default::default()
            }),
            probation: None,
        },
    };

    let provider = snapshot::select(root, config.snapshot);

    let ui = start_ui(root, config, opts);
    ui.send(Event::Started { title });
    let mut sink = Reporter::new(&ui, log_file);
    sink.log_line(&format!(
        "== {} attempt {} at {}",
        id.as_deref().unwrap_or("unknown update"),
        state.attempts + 1,
        run.record.started
    ));
    let at = Attempt {
        root,
        udh: &udh,
        opts,
    };

    let verdict = if state.attempts >= config.attempt_limit {
        at_limit(
            &at, ud, config, &manifest, &state, &provider, &mut run, &mut sink,
        )
    } else {
        count_attempt(&udh, &mut state, &mut run)?;
        let verdict = match &manifest {
            Ok(m) => attempt(
                &at,
                m,
                &local,
                &mut state,
                &provider,
                &mut run.record.snapshot,
                &mut sink,
            ),
            Err(e) => Verdict::new(Outcome::VerificationFailed, e),
        };
        run.record.stop_requested = stop.load(Ordering::SeqCst);
        verdict
    };
    // The record's package list is what the backend reported in the stream.
    run.record.packages = std::mem::take(&mut sink.packages);
    if verdict.outcome == Outcome::Success {
        run.record.probation = crate::probation::begin(root, config, &run.record);
        if let (Ok(m), true) = (&manifest, signed) {
            if let Err(e) = crate::replay::advance(root, m) {
                tracing::warn!("{e}");
            }
        }
    }
    let action = if opts.no_reboot || stop.load(Ordering::SeqCst) {
        AfterAction::None
    } else if !root.is_live() {
        tracing::info!(
            "--root {}: not rebooting the running system",
            root.dir().display()
        );
        AfterAction::None
    } else {
        after
    };
    let will_roll_back = matches!(verdict.outcome, Outcome::Failure | Outcome::Interrupted)
        && state.transaction_started
        && matches!((&provider, &id), (Ok(p), Some(id)) if p.can_roll_back(id));
    let power_action = way_out(
        root,
        config,
        &local,
        &manifest,
        action,
        Left {
            rolls_back: will_roll_back,
            boot_tree: state
                .transaction_started
                .then_some(state.boot_tree.as_deref()),
        },
        &mut run.record,
    );
    run.end(verdict);
    // The backend is done: the log is whole before anything copies it.
    sink.finish_log();
    if state.transaction_started {
        close_pair(&provider, id.as_deref(), &mut run);
    }
    let outcome = run.record.outcome;
    if let Err(e) = crate::history::prune(root, config.keep_results) {
        tracing::warn!("history: {e}");
    }

    // The attempt is over: the next boot must be a normal one.
    if let Err(e) = trigger::remove_ours(root, ud) {
        tracing::error!("cannot remove the trigger: {e}");
    }
    if outcome == Outcome::Success && !config.keep_update {
        clear_applied(&udh);
    }
    let rolled_back = match (&provider, &id) {
        (Ok(p), Some(id))
            if matches!(outcome, Outcome::Failure | Outcome::Interrupted)
                && state.transaction_started =>
        {
            if p.can_roll_back(id) {
                sink.event(Event::Message {
                    text: "Rolling back to the snapshot taken before the update".into(),
                });
            }
            roll_back(root, ud, p, id, &mut run.record)
        }
        _ => false,
    };
    // A boot on probation with a snapshot to go back to keeps it until it
    // is confirmed (system-update probation marks the cleanup then).
    let on_probation = run
        .record
        .probation
        .as_ref()
        .is_some_and(|p| p.reason.is_none());
    if !rolled_back
        && !on_probation
        && run
            .record
            .snapshot
            .as_ref()
            .is_some_and(|s| s.provider != "none")
    {
        mark_cleanup_pending(root);
    }

    ui.send(Event::Finished {
        outcome,
        detail: run.record.error.clone().map(|e| {
            if rolled_back {
                format!("{e} The system was rolled back to its state before the update.")
            } else {
                e
            }
        }),
        log_path: log_path.map(|p| root.host(&p)),
    });

    countdown(&ui, config, action, outcome, stop);
    drop(sink);
    ui.finish();
    let power_action = power_action.filter(|_| !stop.load(Ordering::SeqCst));
    Ok(after_action(power_action, outcome))
}

/// What the attempt left behind that decides the way out.
struct Left<'a> {
    /// The root goes back to its snapshot.
    rolls_back: bool,
    /// The boot trees' fingerprint from before the transaction, when one
    /// ran (`Some(None)`: it ran, but none was taken).
    boot_tree: Option<Option<&'a str>>,
}

/// The way out of the update environment (legs.rs), recorded: a
/// soft-reboot unless the mode, systemd, a rollback or what the backend
/// installed (kernel, initrd, boot loader, firmware) says otherwise.
fn way_out(
    root: &Root,
    config: &Config,
    local: &Result<LocalState, LocalError>,
    manifest: &Result<Manifest, crate::manifest::ManifestError>,
    action: AfterAction,
    left: Left<'_>,
    record: &mut ResultRecord,
) -> Option<power::Action> {
    use crate::config::RebootMode;
    use crate::legs;
    let mode = local
        .as_ref()
        .ok()
        .and_then(|l| l.reboot_mode)
        .unwrap_or(config.reboot_mode);
    let supported = if action == AfterAction::Reboot && mode == RebootMode::Auto {
        legs::soft_reboot_supported()
    } else {
        Err(String::new())
    };
    let (power_action, why) =
        legs::way_out(
            action,
            mode,
            &supported,
            left.rolls_back,
            || match manifest {
                // Files on disk first: they include what scripts wrote.
                Ok(m) => left
                    .boot_tree
                    .and_then(|before| crate::boottree::changed(root, before))
                    .or_else(|| m.backend.boot_files(root, &record.packages)),
                Err(_) => Some("the update could not be read".into()),
            },
        );
    match (&power_action, &why) {
        (Some(a), Some(w)) => tracing::info!("leaving the update by {a:?}: {w}"),
        (Some(a), None) => tracing::info!("leaving the update by {a:?}"),
        _ => {}
    }
    let legs = record.legs.get_or_insert_with(Default::default);
    legs.leave = Some(legs::leg_of(power_action));
    legs.leave_why = why;
    power_action
}

/// The update environment of a boot whose update was not confirmed
/// healthy (probation.rs): the marker goes first, so the boot after this
/// one is a normal one whatever happens here; then the pre-update snapshot
/// is put back and the machine reboots into it.
fn roll_back_after_boot(
    root: &Root,
    config: &Config,
    opts: &ApplyOptions,
    stop: &Arc<AtomicBool>,
) -> Result<i32, ApplyError> {
    use crate::probation;
    let _lock = match crate::prepare::lock_root(root) {
        Ok(l) => l,
        Err(LockError::Busy(p)) => {
            tracing::info!("{}: another instance is acting; nothing to do", p.display());
            return Ok(exit::OK);
        }
        Err(e) => return Err(e.into()),
    };
    let state = probation::load(root);
    if let Err(e) = probation::end(root) {
        tracing::error!("{e}");
    }
    let last = result::load(root).ok().flatten();
    let (id, boots, limit, reason) = match state {
        Ok(Some(s)) => (
            Some(s.id),
            s.boots,
            s.limit,
            s.reason.unwrap_or_else(|| {
                format!(
                    "{} boot(s) ended before they were confirmed (power cut, hang or reset)",
                    s.boots
                )
            }),
        ),
        Ok(None) => (
            last.as_ref().and_then(|r| r.id.clone()),
            0,
            0,
            "the probation's state is missing".to_string(),
        ),
        Err(e) => (
            last.as_ref().and_then(|r| r.id.clone()),
            0,
            0,
            e.to_string(),
        ),
    };
    let now = timefmt::now_rfc3339();
    let mut record = match last {
        Some(r) if r.id.is_some() && r.id == id => r,
        _ => ResultRecord {
            format: result::JSON_FORMAT,
            id: id.clone(),
            title: None,
            backend: None,
            outcome: Outcome::Success,
            stop_requested: false,
            packages: Vec::new(),
            started: now.clone(),
            finished: None,
            attempts: 0,
            error: None,
            log: None,
            snapshot: None,
            legs: None,
            probation: None,
        },
    };
    tracing::error!(
        "update {}: its first boot was not healthy: {reason}; rolling back",
        id.as_deref().unwrap_or("unknown")
    );

    let ui = start_ui(root, config, opts);
    ui.send(Event::Started {
        title: format!(
            "Rolling back {}",
            record.title.as_deref().unwrap_or("the last update")
        ),
    });
    ui.send(Event::Message {
        text: "Rolling back to the snapshot taken before the update".into(),
    });
    let error = format!("The system did not start properly after the update: {reason}.");
    record.outcome = Outcome::RolledBackAfterBoot;
    record.error = Some(error.clone());
    record.finished = Some(now.clone());
    record.probation = Some(probation::Record {
        verdict: probation::Verdict::RolledBack,
        boots,
        limit,
        target: record.probation.as_ref().and_then(|p| p.target.clone()),
        reason: Some(reason.clone()),
        at: Some(now),
    });
    let legs = record.legs.get_or_insert_with(Default::default);
    legs.leave = Some(crate::legs::Leg::Reboot);
    legs.leave_why = Some("the root was rolled back to its snapshot".into());
    let rolled_back = match (snapshot::select(root, config.snapshot), &id) {
        (Ok(p), Some(id)) => roll_back(root, &config.update_dir, &p, id, &mut record),
        (Err(e), _) => {
            tracing::error!("{e}");
            false
        }
        (_, None) => false,
    };
    let outcome = if rolled_back {
        Outcome::RolledBackAfterBoot
    } else {
        // Still the updated system: say so, and why it stays.
        record.outcome = Outcome::Success;
        if let Some(p) = record.probation.as_mut() {
            p.verdict = probation::Verdict::Failed;
        }
        record.error = Some(format!(
            "{error} The rollback failed, so the updated system stays: {}",
            record
                .snapshot
                .as_ref()
                .and_then(|s| s.note.clone())
                .unwrap_or_else(|| "no snapshot".into())
        ));
        if let Err(e) = result::store(root, &record) {
            tracing::error!("{e}");
        }
        Outcome::Failure
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
    Ok(after_action(power_action, outcome))
}

/// The progress UI on the consoles, in the system's language and with its
/// branding.
fn start_ui(root: &Root, config: &Config, opts: &ApplyOptions) -> Ui {
    load_language(
        root,
        ui_locale(root, &opts.output, |k| std::env::var(k).ok()),
    );
    Ui::start_with(
        UiOptions {
            mode: opts.ui.unwrap_or(config.ui).mode(),
            output: opts.output.clone(),
        },
        system_update_tui::Tuning {
            branding: branding(root, config),
            ..Default::default()
        },
    )
}

/// The language the UI speaks, `var` reading the environment. The
/// consoles of the update boot speak the system's (nobody logged in there);
/// the terminal of the person who ran us (the demo, `apply --root`) speaks
/// theirs, as every command does.
pub fn ui_locale(
    root: &Root,
    output: &Output,
    var: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    match output {
        Output::Stdout => user_locale(var),
        Output::Consoles | Output::Devices(_) => system_locale(root),
    }
}

/// The locale for messages by POSIX's precedence: LC_ALL, LC_MESSAGES,
/// LANG, the first that is set and not empty.
pub fn user_locale(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()))
}

/// The UI speaks `locale` when a catalogue for it is installed (English
/// otherwise, and on consoles that cannot show it).
fn load_language(root: &Root, locale: Option<String>) {
    let Some(locale) = locale else {
        return;
    };
    let mut dirs = system_update_tui::i18n::default_dirs();
    if !root.is_live() {
        // The catalogues under an image's root, never through a link out.
        if let Ok(f) = root.confined(Path::new("/usr/share/locale/system-update")) {
            dirs.extend(f.parent().map(Path::to_path_buf));
        }
    }
    match system_update_tui::i18n::load(&locale, &dirs) {
        Some(p) => tracing::info!("console messages in {locale} ({})", p.display()),
        None => tracing::debug!("no catalogue for {locale}: console messages in English"),
    }
}

/// The system's locale for messages as the update boot knows it: LC_ALL,
/// LC_MESSAGES or LANG of /etc/locale.conf (systemd) or, on Debian,
/// /etc/default/locale. Not our environment: nobody logged in here.
pub fn system_locale(root: &Root) -> Option<String> {
    first_of(
        root,
        &["/etc/locale.conf", "/etc/default/locale"],
        parse_locale,
    )
}

pub fn parse_locale(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            (!v.is_empty()).then(|| v.to_string())
        })
    };
    get("LC_ALL")
        .or_else(|| get("LC_MESSAGES"))
        .or_else(|| get("LANG"))
}

/// What the full screen says of this machine: its operating system's
/// PRETTY_NAME (os-release of the root being updated) and the admin's
/// title, footer and colour.
fn branding(root: &Root, config: &Config) -> system_update_tui::fullscreen::Branding {
    use system_update_tui::fullscreen::Branding;
    Branding {
        system: pretty_name(root),
        title: config.ui_title.clone(),
        footer: config.ui_footer.clone(),
        accent: config.ui_accent.as_deref().and_then(Branding::parse_accent),
    }
}

/// os-release's PRETTY_NAME, unquoted; None when there is none.
pub fn pretty_name(root: &Root) -> Option<String> {
    first_of(
        root,
        &["/etc/os-release", "/usr/lib/os-release"],
        parse_pretty_name,
    )
}

/// What `parse` finds in the first of the root's files `paths` that has
/// it: regular files within the config size cap, never through a link
/// that could lead out of an image's root.
fn first_of<T>(root: &Root, paths: &[&str], parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    paths.iter().find_map(|p| {
        let path = root.confined(Path::new(p)).ok()?;
        let text = crate::untrusted::read_text(&path, crate::untrusted::CONFIG_MAX, false).ok()?;
        parse(&text)
    })
}

pub fn parse_pretty_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))
        .map(|v| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v)
                .replace("\\\"", "\"")
        })
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(120).collect())
}

/// A successful update's payload has done its work: `status` then says
/// nothing is prepared, and a new prepare needs no --force. A failed one is
/// kept, to look at or to retry.
fn clear_applied(udh: &Path) {
    match crate::updatedir::clear(udh, &[], true) {
        Ok(c) if !c.left.is_empty() => tracing::info!(
            "{}: kept what is not part of the update: {}",
            udh.display(),
            c.left.join(", ")
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("{}: cannot clear the applied update: {e}", udh.display()),
    }
}

/// The final screen stays this long (final-screen-success, -failure),
/// counting down, before the action; a key on a console with a keyboard
/// ends it at once.
fn countdown(ui: &Ui, config: &Config, action: AfterAction, outcome: Outcome, stop: &AtomicBool) {
    if action == AfterAction::None {
        return;
    }
    let secs = if outcome == Outcome::Success {
        config.final_screen_success
    } else {
        config.final_screen_failure
    };
    for left in (1..=secs).rev() {
        ui.send(Event::Countdown {
            action: action.event(),
            remaining: Duration::from_secs(left),
        });
        // In tenths, so that a key or a stop is answered at once.
        for _ in 0..10 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if ui.key_pressed() {
                tracing::info!("a key was pressed: not waiting for the countdown");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The last phase: reboot, soft-reboot or power off; returns the exit
/// status.
fn after_action(power_action: Option<power::Action>, outcome: Outcome) -> i32 {
    let code = exit::for_outcome(outcome);
    let Some(power_action) = power_action else {
        return code;
    };
    match power::request(power_action) {
        Ok(method) => {
            tracing::info!("{power_action:?} queued ({method:?})");
            // Queued: a non-zero exit would make FailureAction= race it.
            exit::OK
        }
        Err(e) => {
            tracing::error!("{e}");
            code
        }
    }
}

/// Counted and on disk before anything is touched: a power cut from here
/// on counts against the limit.
fn count_attempt(udh: &Path, state: &mut State, run: &mut Run<'_>) -> Result<(), ApplyError> {
    state.attempts += 1;
    attempts::store(udh, state)?;
    run.record.attempts = state.attempts;
    run.record.error = Some(format!(
        "attempt {} did not finish (power cut, crash or kill)",
        state.attempts
    ));
    run.store();
    Ok(())
}

/// Phase 2, the attempt limit: the link goes first, so that whatever
/// happens from here on, even a crash in the repair, the next boot is a
/// normal one; then the backend's repair, once, when a transaction was cut
/// short and no snapshot will put things back.
#[allow(clippy::too_many_arguments)]
fn at_limit(
    at: &Attempt<'_>,
    ud: &Path,
    config: &Config,
    manifest: &Result<Manifest, crate::manifest::ManifestError>,
    state: &State,
    provider: &Result<Provider, SnapshotError>,
    run: &mut Run<'_>,
    sink: &mut dyn Sink,
) -> Verdict {
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
    sink.event(Event::Message {
        text: "Repairing the package database after the interrupted update".into(),
    });
    let repaired = at.open(m, state).and_then(|mut b| {
        // The checked payload, held open, for a repair that needs a package
        // again (dpkg's reinstreq); a payload that fails the check is not
        // used, and the repair does what it can without it.
        let _verified = verify(at.udh, m, b.as_mut(), sink)
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
    provider: &Result<Provider, SnapshotError>,
    snapshot: &mut Option<SnapshotRecord>,
    sink: &mut dyn Sink,
) -> Verdict {
    let mut phases = || -> Phase<Verdict> {
        let mut backend = at.open(m, state).map_err(Verdict::failure)?;
        recover_or_check_stale(at.root, m, local, state, backend.as_mut(), sink)?;
        // Held open until the backend is done: what it runs is what was checked.
        let _verified = verify(at.udh, m, backend.as_mut(), sink)?;
        let provider = provider.as_ref().map_err(Verdict::failure)?;
        check_space(at.root, provider, state, backend.as_ref())?;
        *snapshot = Some(take_snapshot(provider, &m.id, sink)?);
        mark_started(at.root, at.udh, state)?;
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
/// descriptor; the backend runs those descriptors.
pub fn verify(
    udh: &Path,
    m: &Manifest,
    backend: &mut dyn Backend,
    sink: &mut dyn Sink,
) -> Phase<Vec<VerifiedFile>> {
    sink.event(Event::Message {
        text: "Verifying the update".into(),
    });
    let verified = m
        .open_verified(udh)
        .map_err(|e| Verdict::new(Outcome::VerificationFailed, e))?;
    let paths: Vec<(String, PathBuf)> = verified
        .iter()
        .map(|v| (v.name.clone(), v.path()))
        .collect();
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
    sink.event(Event::Message {
        text: "Taking a snapshot".into(),
    });
    let rec = provider.take(id).map_err(Verdict::failure)?;
    match (&rec.name, &rec.note) {
        (Some(name), _) => tracing::info!("snapshot {name} taken"),
        (None, Some(note)) => tracing::info!("{note}"),
        (None, None) => {}
    }
    Ok(rec)
}

/// From here on the database may be ours to repair: on disk before the
/// backend starts.
fn mark_started(root: &Root, udh: &Path, state: &mut State) -> Phase<()> {
    if !state.transaction_started {
        state.transaction_started = true;
        // Before anything is changed, and once: a later attempt would see
        // what a cut one already wrote. No fingerprint: a full reboot out.
        state.boot_tree = crate::boottree::fingerprint(root)
            .map_err(|why| tracing::warn!("boot files not recorded: {why}"))
            .ok();
        attempts::store(udh, state).map_err(Verdict::failure)?;
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
fn close_pair(provider: &Result<Provider, SnapshotError>, id: Option<&str>, run: &mut Run<'_>) {
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
        Err(e) => tracing::warn!("{e}"),
    }
}

/// Puts the pre-update snapshot back for the next boot and records there
/// what happened: the restored root is where the next boot looks for the
/// result, the log and (absent) trigger. Returns whether it rolled back.
fn roll_back(
    root: &Root,
    ud: &Path,
    provider: &Provider,
    id: &str,
    record: &mut ResultRecord,
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
    let restored = match provider.roll_back(id) {
        Ok(r) => r,
        Err(e) => {
            note(
                record,
                provider.name(),
                format!("rollback failed, the failed state stays in place: {e}"),
            );
            return false;
        }
    };
    let failed = restored.failed_state().display().to_string();
    tracing::info!(
        "rolled back to the state before update {id}; the failed state is kept as {failed}"
    );
    let snap = record
        .snapshot
        .get_or_insert_with(|| SnapshotRecord::new(provider.name()));
    if snap.name.is_none() {
        snap.name = Some(restored.source().display().to_string());
    }
    snap.rolled_back = true;
    snap.failed_state = Some(failed);
    // The record says what the next boot runs: the versions from before.
    for p in &mut record.packages {
        p.after = p.before.clone();
        p.state = Some(crate::backend::presence(p.before.is_some(), p.before.is_some()).into());
    }

    let new_root = Root::new(restored.root());
    if let Some(log) = &record.log {
        let (from, to) = (root.host(log), new_root.host(log));
        let group = atomic::log_group(restored.root());
        let copied = to
            .parent()
            .map_or(Ok(()), |d| atomic::create_dir_all(d, 0o755))
            .and_then(|_| atomic::copy_mode(&from, &to, atomic::private_mode(group)));
        if let Err(e) = copied {
            tracing::warn!(
                "{}: cannot copy the log into the restored root: {e}",
                to.display()
            );
        }
    }
    if let Err(e) = result::store(&new_root, record) {
        tracing::error!("{e}");
    }
    if let Err(e) = trigger::remove_ours(&new_root, ud) {
        tracing::error!("cannot remove the trigger from the restored root: {e}");
    }
    mark_cleanup_pending(&new_root);
    if let Err(e) = restored.finish() {
        tracing::error!("{e}");
    }
    true
}

/// Tells the cleanup after the next normal boot that there are snapshots
/// to prune (system-update-cleanup-snapshots.service checks for the file).
pub fn mark_cleanup_pending(root: &Root) {
    let path = root.host(&Path::new(paths::RESULTS_DIR).join(paths::CLEANUP_PENDING));
    if let Err(e) = atomic::write(&path, b"", 0o644) {
        tracing::warn!("{}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    //! Each phase alone, with a fake backend on a temporary root.

    use super::*;
    use crate::backend::BackendKind;
    use crate::manifest::PayloadFile;

    #[derive(Default)]
    struct Fake {
        fail: Option<&'static str>,
        recovered: bool,
        verified: Vec<(String, PathBuf)>,
        required: u64,
    }

    impl Backend for Fake {
        fn recover(&mut self, _sink: &mut dyn Sink) -> Result<(), BackendError> {
            self.recovered = true;
            Ok(())
        }
        fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
            sink.event(Event::Step {
                index: 1,
                total: 1,
                name: "Installing a".into(),
            });
            match self.fail {
                Some(why) => Err(BackendError::Failed(why.into())),
                None => Ok(()),
            }
        }
        fn changes(&self) -> Vec<PackageChange> {
            vec![PackageChange {
                name: "a".into(),
                before: Some("1".into()),
                after: Some(if self.fail.is_some() { "1" } else { "2" }.into()),
                state: Some("installed".into()),
            }]
        }
        fn use_verified(&mut self, files: &[(String, PathBuf)]) {
            self.verified = files.to_vec();
        }
        fn required_bytes(&self) -> u64 {
            self.required
        }
    }

    #[derive(Default)]
    struct Events(Vec<Event>);

    impl Sink for Events {
        fn event(&mut self, e: Event) {
            self.0.push(e);
        }
        fn output(&mut self, _line: &str) {}
    }

    fn manifest(backend: &str, files: Vec<PayloadFile>) -> Manifest {
        Manifest {
            schema: crate::manifest::SCHEMA,
            id: "t".into(),
            title: "t".into(),
            backend: BackendKind::from_name(backend).unwrap(),
            created: "2026-11-26T00:00:00Z".into(),
            command: None,
            files,
            plan: Vec::new(),
            resolved_by: None,
        }
    }

    /// A root whose dpkg database holds one package.
    fn dpkg_root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(
            d.path().join("var/lib/dpkg/status"),
            "Package: a\nStatus: install ok installed\nVersion: 1\n\n",
        )
        .unwrap();
        let root = Root::new(d.path());
        (d, root)
    }

    #[test]
    fn the_locale_of_the_system() {
        assert_eq!(
            parse_locale("LANG=de_DE.UTF-8\n").as_deref(),
            Some("de_DE.UTF-8")
        );
        assert_eq!(
            parse_locale("# x\nLANG=\"en_US.UTF-8\"\nLC_MESSAGES=de_AT.UTF-8\n").as_deref(),
            Some("de_AT.UTF-8")
        );
        assert_eq!(parse_locale("LANGUAGE=fr\n"), None);
    }

    #[test]
    fn consoles_speak_the_systems_language_a_terminal_its_users() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(d.path().join("etc/locale.conf"), "LANG=de_DE.UTF-8\n").unwrap();
        let root = Root::new(d.path());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let french = env(&[("LANG", "fr_FR.UTF-8")]);
        assert_eq!(
            ui_locale(&root, &Output::Consoles, french).as_deref(),
            Some("de_DE.UTF-8")
        );
        assert_eq!(
            ui_locale(&root, &Output::Stdout, french).as_deref(),
            Some("fr_FR.UTF-8")
        );
        // Nothing set: the C locale, whatever the root says.
        assert_eq!(ui_locale(&root, &Output::Stdout, env(&[])), None);
        // POSIX's precedence; an empty variable counts as unset.
        let all = env(&[
            ("LC_ALL", "it_IT"),
            ("LC_MESSAGES", "es_ES"),
            ("LANG", "fr_FR"),
        ]);
        assert_eq!(user_locale(all).as_deref(), Some("it_IT"));
        let msgs = env(&[("LC_ALL", ""), ("LC_MESSAGES", "es_ES"), ("LANG", "fr_FR")]);
        assert_eq!(user_locale(msgs).as_deref(), Some("es_ES"));
        assert_eq!(
            user_locale(env(&[("LANG", "fr_FR")])).as_deref(),
            Some("fr_FR")
        );
    }

    #[test]
    fn os_release_pretty_name() {
        assert_eq!(
            parse_pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
                .as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            parse_pretty_name("PRETTY_NAME=Arch\n").as_deref(),
            Some("Arch")
        );
        assert_eq!(parse_pretty_name("PRETTY_NAME=\"\"\n"), None);
        assert_eq!(parse_pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn the_transaction_reports_its_packages_in_the_stream_whatever_the_outcome() {
        for fail in [None, Some("a: post-installation script failed")] {
            let mut b = Fake {
                fail,
                ..Fake::default()
            };
            let mut ev = Events::default();
            let v = transaction(&mut b, &mut ev);
            assert_eq!(v.outcome.is_success(), fail.is_none(), "{v:?}");
            assert_eq!(v.error.as_deref(), fail);
            let pkgs: Vec<_> =
                ev.0.iter()
                    .filter_map(|e| match e {
                        Event::Package(p) => Some(p.name.as_str()),
                        _ => None,
                    })
                    .collect();
            assert_eq!(pkgs, ["a"]);
        }
    }

    #[test]
    fn a_changed_database_is_stale_and_a_retry_recovers_instead() {
        let (_d, root) = dpkg_root();
        let m = manifest("dpkg", Vec::new());
        let now = m.backend.fingerprint(&root).unwrap();
        let same = Ok(LocalState {
            db_fingerprint: now.clone(),
            ..LocalState::default()
        });
        let other = Ok(LocalState {
            db_fingerprint: Some("sha256:0".into()),
            ..LocalState::default()
        });
        let first = State {
            attempts: 1,
            transaction_started: false,
            ..State::default()
        };
        let (mut b, mut ev) = (Fake::default(), Events::default());
        assert_eq!(
            recover_or_check_stale(&root, &m, &same, &first, &mut b, &mut ev),
            Ok(())
        );
        let v = recover_or_check_stale(&root, &m, &other, &first, &mut b, &mut ev).unwrap_err();
        assert_eq!(v.outcome, Outcome::Stale);
        assert!(v.error.unwrap().contains("var/lib/dpkg/status changed"));
        assert!(!b.recovered);

        // Our own cut transaction changed the database: not stale, repaired.
        let retry = State {
            attempts: 2,
            transaction_started: true,
            ..State::default()
        };
        assert_eq!(
            recover_or_check_stale(&root, &m, &other, &retry, &mut b, &mut ev),
            Ok(())
        );
        assert!(b.recovered);
        // A backend without a database is never stale.
        let m = manifest("command", Vec::new());
        assert_eq!(
            recover_or_check_stale(&root, &m, &other, &first, &mut b, &mut ev),
            Ok(())
        );
    }

    #[test]
    fn verification_hands_the_backend_descriptors_or_fails_before_any_change() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.deb"), b"payload").unwrap();
        let good = crate::manifest::sha256_file(&d.path().join("a.deb")).unwrap();
        let file = |sha256: String| PayloadFile {
            name: "a.deb".into(),
            sha256,
            package: None,
            version: None,
            installed_size: None,
        };
        let (mut b, mut ev) = (Fake::default(), Events::default());
        let m = manifest("dpkg", vec![file(good)]);
        let held = verify(d.path(), &m, &mut b, &mut ev).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(b.verified[0].0, "a.deb");
        assert!(b.verified[0].1.starts_with("/proc/self/fd/"));

        let mut b = Fake::default();
        let m = manifest("dpkg", vec![file("0".repeat(64))]);
        let v = verify(d.path(), &m, &mut b, &mut ev).unwrap_err();
        assert_eq!(v.outcome, Outcome::VerificationFailed);
        assert!(b.verified.is_empty(), "nothing reaches the backend");
    }

    #[test]
    fn no_room_fails_before_the_snapshot_but_a_retry_goes_on() {
        let (_d, root) = dpkg_root();
        let b = Fake {
            required: u64::MAX / 2,
            ..Fake::default()
        };
        let none = Provider::None { why: "test".into() };
        let first = State::default();
        let v = check_space(&root, &none, &first, &b).unwrap_err();
        assert_eq!(v.outcome, Outcome::Failure);
        let retry = State {
            attempts: 2,
            transaction_started: true,
            ..State::default()
        };
        assert_eq!(check_space(&root, &none, &retry, &b), Ok(()));
    }

    #[test]
    fn the_repair_at_the_limit_says_what_the_backend_did() {
        let (d, root) = dpkg_root();
        let opts = ApplyOptions {
            no_reboot: true,
            ui: None,
            output: Output::Stdout,
            backend_args: Vec::new(),
            limits: Default::default(),
        };
        let at = Attempt {
            root: &root,
            udh: d.path(),
            opts: &opts,
        };
        let mut ev = Events::default();
        let unreadable = Err(crate::manifest::ManifestError::Missing(d.path().into()));
        let said = repair(&at, &unreadable, &State::default(), &mut ev);
        assert!(said.contains("not run"), "{said}");
        let mut m = manifest("command", Vec::new());
        m.command = Some(vec!["/bin/true".into()]);
        let said = repair(&at, &Ok(m), &State::default(), &mut ev);
        assert!(said.contains("not run again"), "{said}");
    }
}
