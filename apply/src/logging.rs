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
        .with_writer(std::io::stderr)
        // Escapes only for a person at a terminal, not into a redirected log.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}
