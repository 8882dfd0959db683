//! Log through tracing: to the journal when journald runs, else stderr.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// How much goes to stderr when there is no journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// Operators' commands and the service: everything from info up.
    Full,
    /// The demo in plain mode: its UI already tells the story.
    Warnings,
    /// A full-screen UI owns the terminal: nothing (the log file has it).
    Off,
}

/// stderr through the one cleaner: log lines quote payload names, titles
/// and backends' output, and may reach an admin's terminal. The formatter
/// writes each event whole, in one call.
struct CleanStderr;

impl std::io::Write for CleanStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = system_update_events::text::clean_lines(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

pub fn init(stderr: Stderr) {
    let filter =
        EnvFilter::try_from_env("SYSTEM_UPDATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // The real root's journal: --root names the tree to update, not where
    // this process runs.
    if Path::new(JOURNAL_SOCKET).exists() {
        if let Ok(layer) = tracing_journald::layer() {
            let layer = layer.with_syslog_identifier("system-update".into());
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .try_init();
            return;
        }
    }
    let filter = match stderr {
        Stderr::Full => filter,
        Stderr::Warnings => EnvFilter::new("warn"),
        Stderr::Off => EnvFilter::new("off"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| CleanStderr)
        // No colours: every line goes through the cleaner, which would
        // take them out again.
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}
