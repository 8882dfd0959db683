//! Where the update's events go: the UI, the journal and the log file
//! (each line bounded by its own head-and-tail cap).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use system_update_tui::{Event, Ui};

use crate::atomic;
use crate::backend::{PackageChange, Sink};
use crate::logcap::{self, HeadTail};
use crate::paths::{self, Root};

/// Sends backend events to the UI, the journal and the log file.
/// The backend's lines reach the log file and the journal through a
/// head-and-tail bound each (logcap), the UI through its own bounded model.
pub(super) struct Reporter<'a> {
    ui: &'a Ui,
    log: Option<File>,
    file_cap: HeadTail,
    journal_cap: HeadTail,
    /// The packages the transaction reported, for the result record.
    pub(super) packages: Vec<PackageChange>,
}

impl Reporter<'_> {
    pub(super) fn new(ui: &Ui, log: Option<File>) -> Reporter<'_> {
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
    pub(super) fn log_line(&mut self, line: &str) {
        self.write_file(line);
    }

    /// Writes what the caps kept for the end. Before the log is copied
    /// anywhere (a rollback takes it into the restored root) and at drop.
    pub(super) fn finish_log(&mut self) {
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
            Event::Step {
                index, total, name, ..
            } => tracing::info!("[{index}/{total}] {name}"),
            Event::Message { text, .. } => tracing::info!("{text}"),
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

pub(super) fn open_log(root: &Root, id: &str) -> (Option<File>, Option<PathBuf>) {
    let name = format!("{id}.log");
    let inside = Path::new(paths::LOG_DIR).join(&name);
    let host = root.host(&inside);
    // Maintainer scripts print what they like, secrets included: 0640 for
    // the log group (adm) where there is one, else 0600; never through a
    // link planted in the log directory.
    let group = atomic::log_group(root);
    let mode = atomic::private_mode(group);
    let opened =
        crate::rooted::create_dir_all(root, Path::new(paths::LOG_DIR), 0o755).and_then(|dir| {
            use nix::fcntl::OFlag;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND | OFlag::O_NONBLOCK;
            let f = dir.open(name.as_ref(), flags, mode)?;
            if !f.metadata()?.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            nix::sys::stat::fchmod(&f, nix::sys::stat::Mode::from_bits_truncate(mode))?;
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
