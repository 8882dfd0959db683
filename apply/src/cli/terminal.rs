//! The terminal of the person who runs a command: what is printed there
//! and how, the question before a reboot, the signals that ask to stop.

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::CommandFactory;

use super::{Cli, Cmd, TriggerArgs};
use crate::config::{Config, UiChoice};
use crate::logging;
use crate::paths::Root;

/// An error as one line for the person who ran the command: the error and
/// those of its causes that its own text does not already quote (our typed
/// errors print their source; anyhow's `{:#}` would print it a second
/// time), and the hint to run as root when a cause is EACCES or EPERM and we
/// are not root.
pub fn message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = crate::oneline::of(err);
    let mut denied = false;
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            denied |= io.kind() == std::io::ErrorKind::PermissionDenied;
        }
        cause = e.source();
    }
    if denied && !nix::unistd::geteuid().is_root() {
        text += " (run as root)";
    }
    // Errors quote payload names, titles and backends' lines: every one
    // goes to a terminal through the one cleaner.
    system_update_events::text::clean_to(&text, system_update_events::text::LINE_MAX)
}

/// Asks on the terminal, as dnf5 does before its offline reboot; without a
/// terminal on both ends (a script, a unit) there is nobody to ask: yes.
pub(super) fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ").context("writing the question")?;
    err.flush().context("writing the question")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(is_yes(&answer))
}

/// Whether `trigger` asks before rebooting: only when it would reboot this
/// machine now, -y was not given, and a person is at a terminal.
pub(super) fn must_ask(a: &TriggerArgs, live: bool, interactive: bool) -> bool {
    !a.no_reboot && live && !a.yes && interactive
}

pub(super) fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// SIGTERM, SIGINT and SIGHUP only raise a flag: the transaction finishes.
pub(super) fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("installing signal handlers")?;
    }
    Ok(flag)
}

/// Everything we print on stdout, line by line through the one cleaner:
/// titles, ids, names and errors come from manifests, records and
/// maintainer scripts.
pub(super) fn print(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(system_update_events::text::clean_lines(s).as_bytes());
}

/// How much of the log goes to stderr when there is no journal. A command
/// that answers on the terminal its log would reach keeps only warnings
/// there. A UI that
/// draws on the terminal stderr also writes to already tells the story
/// there: the log's lines would say every step a second time (plain) or
/// scribble over the screen (full screen); the log file keeps them.
pub(super) fn stderr_for(cmd: &Cmd, root: &Root) -> logging::Stderr {
    use logging::Stderr;
    let ui = match cmd {
        Cmd::Demo(a) => a.ui.unwrap_or(UiChoice::Auto),
        // On / the UI is on the consoles, not on this terminal.
        Cmd::Apply(a) if !root.is_live() => {
            a.ui.or_else(|| Config::load(root).ok().map(|c| c.ui))
                .unwrap_or(UiChoice::Auto)
        }
        Cmd::Apply(_) => return Stderr::Full,
        // The command's answer on stdout says it: its info lines would say
        // it again on the same terminal (the journal keeps them where
        // there is one).
        _ if shares_terminal() => return Stderr::Warnings,
        _ => return Stderr::Full,
    };
    let demo = matches!(cmd, Cmd::Demo(_));
    match ui {
        UiChoice::None => Stderr::Full,
        _ if !shares_terminal() => {
            if demo {
                Stderr::Warnings
            } else {
                Stderr::Full
            }
        }
        UiChoice::Plain => Stderr::Warnings,
        _ => Stderr::Off,
    }
}

/// Whether stdout (where the UI draws with --root and in the demo) and
/// stderr are the same terminal.
fn shares_terminal() -> bool {
    use std::os::fd::AsFd;
    let (out, err) = (std::io::stdout(), std::io::stderr());
    if !out.is_terminal() || !err.is_terminal() {
        return false;
    }
    match (
        nix::sys::stat::fstat(out.as_fd()),
        nix::sys::stat::fstat(err.as_fd()),
    ) {
        (Ok(o), Ok(e)) => o.st_rdev == e.st_rdev,
        _ => false,
    }
}

/// The completion script for `shell`. clap_complete's bash script sets
/// `cmd` for a subcommand from the program's name with `-` as `__`
/// (`system__update__subcmd__status`) but names the case that completes it
/// with `-` as `__subcmd__` (`system__subcmd__update__subcmd__status`):
/// nothing after a subcommand would complete. The case names are made to
/// agree with what is set.
pub fn completion_script(shell: clap_complete::Shell) -> String {
    const BIN: &str = "system-update";
    const SEP: &str = "__subcmd__";
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut buf);
    let script = String::from_utf8_lossy(&buf).into_owned();
    if shell != clap_complete::Shell::Bash {
        return script;
    }
    let wrong = format!("{}{SEP}", BIN.replace('-', SEP));
    let right = format!("{}{SEP}", BIN.replace('-', "__"));
    script.replace(&wrong, &right)
}
