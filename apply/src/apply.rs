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
use crate::backend::command::CommandBackend;
use crate::backend::dpkg::Dpkg;
use crate::backend::{Backend, BackendError, Sink};
use crate::config::{AfterAction, Config, ConfigError, UiChoice};
use crate::exit;
use crate::local::{self, LocalError, LocalState};
use crate::lock::LockError;
use crate::logcap::{self, HeadTail};
use crate::manifest::{BackendKind, Manifest};
use crate::paths::{self, Root};
use crate::power;
use crate::result::{self, Outcome, PackageChange, ResultError, ResultRecord};
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
    /// Extra dpkg arguments; only the demo sets them.
    pub dpkg_extra_args: Vec<String>,
    /// Bounds on the backend's program (stall-timeout in the config).
    pub limits: crate::backend::process::Limits,
}

/// Seconds the final screen stays before the after-action.
const COUNTDOWN_SUCCESS: u64 = 3;
const COUNTDOWN_FAILURE: u64 = 10;

/// Sends backend events to the UI, the journal and the log file.
/// The backend's lines reach the log file and the journal through a
/// head-and-tail bound each (logcap), the UI through its own bounded model.
struct Reporter<'a> {
    ui: &'a Ui,
    log: Option<File>,
    file_cap: HeadTail,
    journal_cap: HeadTail,
}

impl Reporter<'_> {
    fn new(ui: &Ui, log: Option<File>) -> Reporter<'_> {
        Reporter {
            ui,
            log,
            file_cap: HeadTail::new(logcap::FILE_HEAD, logcap::FILE_TAIL),
            journal_cap: HeadTail::new(logcap::JOURNAL_HEAD, logcap::JOURNAL_TAIL),
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

    fn end(&mut self, outcome: Outcome, error: Option<String>, packages: Vec<PackageChange>) {
        self.record.outcome = outcome;
        self.record.error = error;
        self.record.packages = packages;
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

pub fn run(
    root: &Root,
    config: &Config,
    opts: &ApplyOptions,
    stop: &Arc<AtomicBool>,
) -> Result<i32, ApplyError> {
    let ud = &config.update_dir;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ApplyError::Io { path, source }
    };
    let links = trigger::inspect(root, ud).map_err(io_err(root.dir()))?;
    if trigger::ours(&links).is_none() {
        tracing::info!(
            "no update of ours to apply: {}",
            trigger::why_not_ours(&links, ud)
        );
        return Ok(exit::OK);
    }
    let _lock = match crate::prepare::lock_root(root) {
        Ok(l) => l,
        Err(LockError::Busy(p)) => {
            tracing::info!(
                "{}: another instance is applying the update; nothing to do",
                p.display()
            );
            return Ok(exit::OK);
        }
        Err(e) => return Err(e.into()),
    };
    // The instance that held the lock may have finished meanwhile.
    let links = trigger::inspect(root, ud).map_err(io_err(root.dir()))?;
    if trigger::ours(&links).is_none() {
        tracing::info!(
            "the update was applied meanwhile: {}",
            trigger::why_not_ours(&links, ud)
        );
        return Ok(exit::OK);
    }

    let udh = root.host(ud);
    // Verified before anything is changed: an update whose signature does
    // not hold is never used, not even for the repair at the limit.
    let manifest = signature::load_manifest(root, &udh, config.require_signature).map(|l| {
        tracing::info!("manifest {}: {}", l.manifest.id, l.verified);
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
        },
    };

    let provider = snapshot::select(root, config.snapshot);

    let ui = Ui::start(UiOptions {
        mode: opts.ui.unwrap_or(config.ui).mode(),
        output: opts.output.clone(),
    });
    ui.send(Event::Started { title });
    let mut sink = Reporter::new(&ui, log_file);
    sink.log_line(&format!(
        "== {} attempt {} at {}",
        id.as_deref().unwrap_or("unknown update"),
        state.attempts + 1,
        run.record.started
    ));

    if state.attempts >= config.attempt_limit {
        // The link goes first: whatever happens from here on, even a crash
        // in the repair below, the next boot is a normal one.
        if let Err(e) = trigger::remove_ours(root, ud) {
            tracing::error!("cannot remove the trigger: {e}");
        }
        let mut msg = format!(
            "the update was interrupted {} time(s), the limit (attempt-limit = {}); not trying again",
            state.attempts, config.attempt_limit
        );
        let will_roll_back = match (&provider, &id) {
            (Ok(p), Some(id)) => p.can_roll_back(id),
            _ => false,
        };
        if state.transaction_started && !will_roll_back {
            // Should the repair itself be cut, the next boot still says why.
            run.record.error = Some(msg.clone());
            run.store();
            msg += &recover_at_limit(root, &udh, &manifest, &state, opts, &mut sink);
        }
        run.end(Outcome::Interrupted, Some(msg), Vec::new());
    } else {
        // Counted and on disk before anything is touched.
        state.attempts += 1;
        attempts::store(&udh, &state)?;
        run.record.attempts = state.attempts;
        run.record.error = Some(format!(
            "attempt {} did not finish (power cut, crash or kill)",
            state.attempts
        ));
        run.store();
        let (outcome, error, packages) = match manifest {
            Ok(m) => transaction(
                root,
                &udh,
                &m,
                &local,
                &mut state,
                opts,
                &provider,
                &mut run.record.snapshot,
                &mut sink,
            ),
            Err(e) => (Outcome::VerificationFailed, Some(e.to_string()), Vec::new()),
        };
        run.record.stop_requested = stop.load(Ordering::SeqCst);
        run.end(outcome, error, packages);
    }
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
    // A successful update's payload has done its work: status then says
    // nothing is prepared, and a new prepare needs no --force. A failed
    // one is kept, to look at or to retry.
    if outcome == Outcome::Success && !config.keep_update {
        match crate::updatedir::clear(&udh, &[], true) {
            Ok(c) if !c.left.is_empty() => tracing::info!(
                "{}: kept what is not part of the update: {}",
                udh.display(),
                c.left.join(", ")
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("{}: cannot clear the applied update: {e}", udh.display()),
        }
    }
    let rolled_back = match (&provider, &id) {
        (Ok(p), Some(id))
            if matches!(outcome, Outcome::Failure | Outcome::Interrupted)
                && state.transaction_started =>
        {
            sink.event(Event::Message {
                text: "Rolling back to the snapshot taken before the update".into(),
            });
            roll_back(root, ud, p, id, &mut run.record)
        }
        _ => false,
    };
    if !rolled_back
        && run
            .record
            .snapshot
            .as_ref()
            .is_some_and(|s| s.provider != "none")
    {
        mark_cleanup_pending(root);
    }

    ui.send(Event::Finished {
        outcome: if outcome == Outcome::Success {
            system_update_tui::Outcome::Success
        } else {
            system_update_tui::Outcome::Failure
        },
        detail: run.record.error.clone().map(|e| {
            if rolled_back {
                format!("{e} The system was rolled back to its state before the update.")
            } else {
                e
            }
        }),
        log_path: log_path.map(|p| root.host(&p)),
    });

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
    if action != AfterAction::None {
        let secs = if outcome == Outcome::Success {
            COUNTDOWN_SUCCESS
        } else {
            COUNTDOWN_FAILURE
        };
        for left in (1..=secs).rev() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            ui.send(Event::Countdown {
                action: action.ui(),
                remaining: Duration::from_secs(left),
            });
            std::thread::sleep(Duration::from_secs(1));
        }
    }
    drop(sink);
    ui.finish();

    let code = exit::for_outcome(outcome);
    let power_action = match action {
        AfterAction::Reboot => power::Action::Reboot,
        AfterAction::Poweroff => power::Action::PowerOff,
        AfterAction::None => return Ok(code),
    };
    match power::request(power_action) {
        Ok(method) => {
            tracing::info!("{power_action:?} queued ({method:?})");
            // Queued: a non-zero exit would make FailureAction= race it.
            Ok(exit::OK)
        }
        Err(e) => {
            tracing::error!("{e}");
            Ok(code)
        }
    }
}

fn make_backend(
    root: &Root,
    udh: &Path,
    m: &Manifest,
    state: &State,
    opts: &ApplyOptions,
) -> Result<Box<dyn Backend>, BackendError> {
    Ok(match m.backend {
        BackendKind::Dpkg => Box::new(Dpkg::new(
            root.clone(),
            udh,
            &m.files,
            opts.dpkg_extra_args.clone(),
            opts.limits,
        )?),
        BackendKind::Command => Box::new(CommandBackend::new(
            root.clone(),
            udh,
            m.command.clone().unwrap_or_default(),
            m.id.clone(),
            state.attempts,
            opts.limits,
        )),
    })
}

/// At the attempt limit with a transaction cut short and no snapshot to go
/// back to: the backend's recovery, once, so the package database is not
/// left half-configured. Returns what to add to the error.
fn recover_at_limit(
    root: &Root,
    udh: &Path,
    manifest: &Result<Manifest, crate::manifest::ManifestError>,
    state: &State,
    opts: &ApplyOptions,
    sink: &mut Reporter<'_>,
) -> String {
    let Ok(m) = manifest else {
        return "; check the system (dpkg --audit)".into();
    };
    sink.event(Event::Message {
        text: "Repairing the package database after the interrupted update".into(),
    });
    match make_backend(root, udh, m, state, opts).and_then(|mut b| b.recover(sink)) {
        Ok(()) => "; the interrupted transaction was brought to a consistent state (dpkg --configure -a), \
                   the rest of the update was not installed"
            .into(),
        Err(e) => format!(
            "; repairing the package database failed too ({e}): check the system (dpkg --audit) and run dpkg --configure -a"
        ),
    }
}

/// Steps 4-7 once the attempt is counted: recovery, stale check,
/// verification, snapshot, the backend.
#[allow(clippy::too_many_arguments)]
fn transaction(
    root: &Root,
    udh: &Path,
    m: &Manifest,
    local: &Result<LocalState, LocalError>,
    state: &mut State,
    opts: &ApplyOptions,
    provider: &Result<Provider, SnapshotError>,
    snapshot: &mut Option<SnapshotRecord>,
    sink: &mut Reporter<'_>,
) -> (Outcome, Option<String>, Vec<PackageChange>) {
    let mut backend = match make_backend(root, udh, m, state, opts) {
        Ok(b) => b,
        Err(e) => return (Outcome::Failure, Some(e.to_string()), Vec::new()),
    };

    if state.attempts > 1 && state.transaction_started {
        if let Err(e) = backend.recover(sink) {
            // The install below may still repair it; the log has the detail.
            tracing::warn!("recovery: {e}");
        }
    } else {
        // Our own earlier attempt changes the database: compare only while
        // no transaction of ours has run.
        let why = match (backend.fingerprint(), local) {
            (Ok(None), _) => None,
            (Ok(Some(now)), Ok(l)) if l.db_fingerprint.as_deref() == Some(now.as_str()) => None,
            (Ok(Some(_)), Ok(_)) => Some(format!(
                "{}; nothing was installed. Prepare the update again (system-update prepare --force)",
                trigger::stale_message(root)
            )),
            (Ok(Some(_)), Err(e)) => Some(format!("{e}; nothing was installed")),
            (Err(e), _) => return (Outcome::Failure, Some(e.to_string()), Vec::new()),
        };
        if let Some(why) = why {
            return (Outcome::Stale, Some(why), Vec::new());
        }
    }

    sink.event(Event::Message {
        text: "Verifying the update".into(),
    });
    // Held open until the backend is done: what it runs is what was checked.
    let verified = match m.open_verified(udh) {
        Ok(v) => v,
        Err(e) => return (Outcome::VerificationFailed, Some(e.to_string()), Vec::new()),
    };
    let paths: Vec<(String, PathBuf)> = verified
        .iter()
        .map(|v| (v.name.clone(), v.path()))
        .collect();
    backend.use_verified(&paths);

    let provider = match provider {
        Ok(p) => p,
        Err(e) => return (Outcome::Failure, Some(e.to_string()), Vec::new()),
    };
    if !state.transaction_started {
        // A retry after a power cut is half-installed already: the figures
        // would no longer mean anything, and stopping there helps nobody.
        let needed = match backend.required_bytes() {
            Ok(n) => n,
            Err(e) => return (Outcome::Failure, Some(e.to_string()), Vec::new()),
        };
        let snapshotting = !matches!(provider, Provider::None { .. });
        if let Err(msg) = space::check(root.dir(), needed, snapshotting) {
            return (Outcome::Failure, Some(msg), Vec::new());
        }
    }
    sink.event(Event::Message {
        text: "Taking a snapshot".into(),
    });
    match provider.take(&m.id) {
        Ok(rec) => {
            match (&rec.name, &rec.note) {
                (Some(name), _) => tracing::info!("snapshot {name} taken"),
                (None, Some(note)) => tracing::info!("{note}"),
                (None, None) => {}
            }
            *snapshot = Some(rec);
        }
        Err(e) => return (Outcome::Failure, Some(e.to_string()), Vec::new()),
    }

    if !state.transaction_started {
        state.transaction_started = true;
        if let Err(e) = attempts::store(udh, state) {
            return (Outcome::Failure, Some(e.to_string()), Vec::new());
        }
    }
    let result = backend.install(sink);
    let packages = backend.changes();
    match result {
        Ok(()) => {
            sink.event(Event::Progress { percent: 100.0 });
            (Outcome::Success, None, packages)
        }
        Err(e) => (Outcome::Failure, Some(e.to_string()), packages),
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
fn mark_cleanup_pending(root: &Root) {
    let path = root.host(&Path::new(paths::RESULTS_DIR).join(paths::CLEANUP_PENDING));
    if let Err(e) = atomic::write(&path, b"", 0o644) {
        tracing::warn!("{}: {e}", path.display());
    }
}
