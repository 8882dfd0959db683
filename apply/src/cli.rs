//! The command line: its definition, and carrying it out.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::backend::{self, BackendKind};
use crate::config::{AfterAction, Config, UiChoice};
use crate::paths::Root;
use crate::{apply, cleanup, demo, exit, logging, power, prepare, status, summary, trigger};

#[derive(Debug, Parser)]
#[command(
    name = "system-update",
    version,
    about = "Prepare, trigger and apply offline system updates (systemd.offline-updates(7))"
)]
pub struct Cli {
    /// Act on the tree under DIR (an image, a scratch root) instead of /.
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Put a payload into the update directory and write its manifest.
    Prepare(PrepareArgs),
    /// Arm the prepared update (/system-update) and reboot into it.
    Trigger(TriggerArgs),
    /// Show whether an update is prepared and triggered, and the last result.
    Status(JsonArg),
    /// Remove the trigger; with --purge also the prepared update.
    Cancel {
        /// Also remove the prepared update (its manifest and payload).
        #[arg(long)]
        purge: bool,
        /// Print JSON (its schema is in system-update(8)) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show the last result.
    Results(JsonArg),
    /// List the updates applied so far, newest first (keep-results of them).
    History(JsonArg),
    /// Show an update's log (the newest update's without ID).
    Log {
        /// The update's id, as history lists it.
        id: Option<String>,
        /// Print JSON (its schema is in system-update(8)) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply the triggered update (what system-update-apply.service runs).
    Apply(ApplyArgs),
    /// Check the first boot after an update and confirm it or arm the
    /// rollback (what system-update-probation.service runs).
    Probation,
    /// Remove failed states and old pre-update snapshots.
    Cleanup {
        /// Keep `keep-failed` failed states too (what runs after a normal
        /// boot); by default every failed state is removed.
        #[arg(long)]
        boot: bool,
    },
    /// Play a whole offline update on a scratch root, with the UI.
    Demo(DemoArgs),
    /// Print the shell completion script for SHELL (make install installs
    /// them for bash, zsh and fish).
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON (its schema is in system-update(8)) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Backend; deduced from the files' names when not given.
    #[arg(long, value_parser = backend::value_parser())]
    pub backend: Option<BackendKind>,
    /// Replace an update that is already prepared.
    #[arg(long)]
    pub force: bool,
    /// Prepare a package even when its version is the one installed (it
    /// is then reinstalled).
    #[arg(long, conflicts_with = "from")]
    pub reinstall: bool,
    /// Title shown on screen and in the result.
    #[arg(long)]
    pub title: Option<String>,
    /// Run PROGRAM [ARG...] as the update (command backend).
    #[arg(long, value_name = "PROGRAM", num_args = 1.., allow_hyphen_values = true, conflicts_with = "files")]
    pub command: Option<Vec<String>>,
    /// Payload files (packages of one backend: .deb for dpkg).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Prepare what the distribution's tool would upgrade, resolved and
    /// downloaded from its repositories: full (apt full-upgrade, the
    /// default) or safe (apt upgrade: nothing removed, nothing new; apt
    /// only, dnf and pacman have no such mode).
    #[arg(long, value_name = "MODE", num_args = 0..=1, default_missing_value = "full",
          value_parser = ["full", "safe"], conflicts_with_all = ["files", "command", "install"])]
    pub upgrade: Option<String>,
    /// Prepare these packages and what they need, from the repositories.
    #[arg(long, value_name = "PACKAGE", num_args = 1.., conflicts_with_all = ["files", "command"])]
    pub install: Option<Vec<String>>,
    /// Sign the manifest with this minisign secret key (runs minisign).
    #[arg(long, value_name = "SECRET_KEY_FILE")]
    pub sign: Option<PathBuf>,
    /// Import an update prepared elsewhere (removable media): verify its
    /// signature and checksums, copy it into the update directory.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["files", "command", "backend", "title", "sign", "upgrade", "install"])]
    pub from: Option<PathBuf>,
    /// With --from: accept a signed update that is not newer than the
    /// newest signed update applied here (going back, or applying it again).
    #[arg(long, requires = "from")]
    pub allow_older: bool,
    /// Print JSON (its schema is in system-update(8)) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// Reboot once the update is over (the default unless after-action
    /// says otherwise in /etc/system-update.toml).
    #[arg(long, conflicts_with = "poweroff")]
    pub reboot: bool,
    /// Power off once the update is over.
    #[arg(long)]
    pub poweroff: bool,
    /// Arm the update but do not reboot into it now; it is applied at the
    /// next boot, whenever that is.
    #[arg(long)]
    pub no_reboot: bool,
    /// Reboot into the update without asking (the question is only asked
    /// on a terminal).
    #[arg(short = 'y', long = "yes")]
    pub yes: bool,
    /// auto: soft-reboot into the update and out of it where systemd can
    /// (254 and later) and the update leaves kernel, initrd, boot loader
    /// and firmware alone; always-reboot: full reboots (default:
    /// reboot-mode in /etc/system-update.toml, else auto).
    #[arg(long, value_enum, value_name = "MODE")]
    pub reboot_mode: Option<crate::config::RebootMode>,
    /// Drop another tool's /system-update or /etc/system-update link (its
    /// pending update) and arm ours; without it such a link is left alone
    /// and nothing is triggered.
    #[arg(long)]
    pub replace_foreign: bool,
    /// Print JSON (its schema is in system-update(8)) instead of text.
    #[arg(long)]
    pub json: bool,
}

impl TriggerArgs {
    pub fn after_action(&self) -> Option<AfterAction> {
        if self.reboot {
            Some(AfterAction::Reboot)
        } else if self.poweroff {
            Some(AfterAction::Poweroff)
        } else {
            None
        }
    }
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Do not reboot or power off afterwards.
    #[arg(long)]
    pub no_reboot: bool,
    /// The progress UI (default: ui in /etc/system-update.toml, else auto).
    /// On / it draws on every active console; with --root on the invoking
    /// terminal only.
    #[arg(long, value_enum)]
    pub ui: Option<UiChoice>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the packages and the scratch root (default: a new
    /// directory under $TMPDIR, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The progress UI (default auto: full screen on a capable terminal,
    /// plain lines on a dumb one or when the output is not a terminal).
    #[arg(long, value_enum)]
    pub ui: Option<UiChoice>,
}

/// An error as one line for the person who ran the command: the error and
/// those of its causes that its own text does not already quote (our typed
/// errors print their source; anyhow's `{:#}` would print it a second
/// time), and the hint to run as root when a cause is EACCES or EPERM and we
/// are not root.
pub fn message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut denied = false;
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            denied |= io.kind() == std::io::ErrorKind::PermissionDenied;
        }
        let own = e.to_string();
        if !text.contains(&own) {
            text = format!("{text}: {own}");
        }
        cause = e.source();
    }
    if denied && !nix::unistd::geteuid().is_root() {
        text += " (run as root)";
    }
    text
}

/// Asks on the terminal, as dnf5 does before its offline reboot; without a
/// terminal on both ends (a script, a unit) there is nobody to ask: yes.
fn confirm(question: &str) -> anyhow::Result<bool> {
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
fn must_ask(a: &TriggerArgs, live: bool, interactive: bool) -> bool {
    !a.no_reboot && live && !a.yes && interactive
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// SIGTERM, SIGINT and SIGHUP only raise a flag: the transaction finishes.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
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

fn print(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

/// The commands that act on no tree: `--root` means nothing to them, and
/// probation checks the boot that is running, whatever tree is named.
fn root_refused(cmd: &Cmd) -> Option<&'static str> {
    match cmd {
        Cmd::Demo(_) => Some("demo builds its own scratch root (use --workdir)"),
        Cmd::Completions { .. } => Some("completions read no tree"),
        Cmd::Probation => Some("probation checks the boot that is running, which is /"),
        _ => None,
    }
}

/// `--root` as every command, backend and child process gets it: absolute
/// and with no link in it, so that a tool joining it to a directory of its
/// own (apt does) or run from another directory finds the same tree.
fn resolve_root(given: Option<&Path>) -> Result<Root, String> {
    let Some(dir) = given else {
        return Ok(Root::new("/"));
    };
    let shown = dir.display();
    let abs = std::fs::canonicalize(dir).map_err(|e| format!("--root {shown}: {}", message(&e)))?;
    match std::fs::metadata(&abs) {
        Ok(md) if md.is_dir() => Ok(Root::new(abs)),
        Ok(_) => Err(format!("--root {shown}: not a directory")),
        Err(e) => Err(format!("--root {shown}: {}", message(&e))),
    }
}

/// The request `prepare` carries out for files, a command or the
/// repositories.
fn prepare_request(a: PrepareArgs) -> prepare::PrepareRequest {
    use crate::backend::Request;
    prepare::PrepareRequest {
        backend: a.backend,
        force: a.force,
        title: a.title,
        command: a.command,
        files: a.files,
        sign: a.sign,
        reinstall: a.reinstall,
        resolve: match (a.upgrade.as_deref(), a.install) {
            (Some(mode), _) => Some(Request::Upgrade {
                safe: mode == "safe",
            }),
            (None, Some(pkgs)) => Some(Request::Install(pkgs)),
            (None, None) => None,
        },
    }
}

/// Soft-reboot where systemd can and the mode allows, else a full reboot
/// (why goes to the journal); with the line that tells the person.
fn way_into_the_update(mode: crate::config::RebootMode) -> (power::Action, Option<String>) {
    let supported = match mode {
        crate::config::RebootMode::Auto => crate::legs::soft_reboot_supported(),
        crate::config::RebootMode::AlwaysReboot => Err("reboot-mode always-reboot".into()),
    };
    let way = crate::legs::way_in(mode, &supported);
    match (&way, &supported) {
        (power::Action::SoftReboot, Ok(v)) => (
            way,
            Some(format!("Soft-rebooting into the update (systemd {v}).\n")),
        ),
        (_, Err(why)) => {
            tracing::info!("a full reboot into the update: {why}");
            (way, None)
        }
        _ => (way, None),
    }
}

/// How much of the log goes to stderr when there is no journal. A UI that
/// draws on the terminal stderr also writes to already tells the story
/// there: the log's lines would say every step a second time (plain) or
/// scribble over the screen (full screen); the log file keeps them.
fn stderr_for(cmd: &Cmd, root: &Root) -> logging::Stderr {
    use logging::Stderr;
    let ui = match cmd {
        Cmd::Demo(a) => a.ui.unwrap_or(UiChoice::Auto),
        // On / the UI is on the consoles, not on this terminal.
        Cmd::Apply(a) if !root.is_live() => {
            a.ui.or_else(|| Config::load(root).ok().map(|c| c.ui))
                .unwrap_or(UiChoice::Auto)
        }
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

/// Carries out one command line; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let (Some(dir), Some(why)) = (&cli.root, root_refused(&cli.command)) {
        eprintln!(
            "system-update: --root {} does not apply here: {why}",
            dir.display()
        );
        return Ok(exit::USAGE);
    }
    // A root that is not there is a typo, not a tree to build.
    let root = match resolve_root(cli.root.as_deref()) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("system-update: {why}");
            return Ok(exit::USAGE);
        }
    };
    logging::init(stderr_for(&cli.command, &root));

    if let Cmd::Completions { shell } = &cli.command {
        print(&completion_script(*shell));
        return Ok(exit::OK);
    }
    if let Cmd::Demo(args) = &cli.command {
        let stop = stop_flag()?;
        return demo::run(args, &stop);
    }

    // What happened needs no configuration: it must be readable when the
    // configuration is what went wrong.
    match &cli.command {
        Cmd::Results(a) => {
            print(&status::results(&root, a.json)?);
            return Ok(exit::OK);
        }
        Cmd::History(a) => {
            print(&status::history(&root, a.json)?);
            return Ok(exit::OK);
        }
        Cmd::Log { id, json } => {
            return match status::log(&root, id.as_deref(), *json) {
                Ok(text) => {
                    print(&text);
                    Ok(exit::OK)
                }
                Err(e) => {
                    eprintln!("system-update: {}", message(&e));
                    Ok(exit::FAILURE)
                }
            }
        }
        _ => {}
    }

    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("system-update: {}", message(&e));
            if matches!(cli.command, Cmd::Apply(_)) {
                return Ok(apply::config_failed(&root, &e));
            }
            if matches!(cli.command, Cmd::Probation) {
                // The boot is still checked, leniently: defaults name no
                // must-run unit, and a broken file must not roll back.
                let stop = stop_flag()?;
                return Ok(crate::probation::check_boot(
                    &root,
                    &Config::default(),
                    &stop,
                ));
            }
            return Ok(exit::USAGE);
        }
    };

    match cli.command {
        Cmd::Prepare(a) => {
            let json = a.json;
            let just_signed = a.sign.is_some();
            let prepared = match &a.from {
                Some(from) => {
                    let how = prepare::Import {
                        force: a.force,
                        allow_older: a.allow_older,
                    };
                    prepare::import(&root, &config, from, &how).map(|(m, v)| (m, Some(v)))
                }
                None => prepare::prepare(&root, &config, prepare_request(a)).map(|m| (m, None)),
            };
            let (m, verified) = match prepared {
                Ok(p) => p,
                Err(prepare::PrepareError::NothingToDo) => {
                    print(&format!("{}\n", prepare::PrepareError::NothingToDo));
                    return Ok(exit::OK);
                }
                Err(e) => {
                    eprintln!("system-update: {}", message(&e));
                    return Ok(match e {
                        prepare::PrepareError::Verify(_)
                        | prepare::PrepareError::Replay(_)
                        | prepare::PrepareError::PackageSignature(_) => exit::VERIFICATION,
                        _ => exit::FAILURE,
                    });
                }
            };
            print(&summary::prepared(
                &m,
                &config.update_dir,
                verified.as_ref(),
                just_signed,
                json,
            ));
            Ok(exit::OK)
        }
        Cmd::Trigger(a) => {
            let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
            if must_ask(&a, root.is_live(), interactive)
                && !confirm("Reboot now to apply the update?")?
            {
                eprintln!("system-update: not triggered; nothing was changed");
                return Ok(exit::FAILURE);
            }
            let mode = a.reboot_mode.unwrap_or(config.reboot_mode);
            let req = trigger::Arm {
                after: a.after_action(),
                reboot_mode: mode,
                replace_foreign: a.replace_foreign,
            };
            let (m, verified) = match trigger::arm(&root, &config, &req) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("system-update: {}", message(&e));
                    return Ok(match e {
                        // Nothing to verify is not a verification failure.
                        trigger::TriggerError::Manifest(
                            crate::manifest::ManifestError::Missing(_),
                        ) => exit::FAILURE,
                        trigger::TriggerError::Manifest(_)
                        | trigger::TriggerError::Replay(_)
                        | trigger::TriggerError::PackageSignature(_) => exit::VERIFICATION,
                        trigger::TriggerError::Stale(_) => exit::STALE,
                        _ => exit::FAILURE,
                    });
                }
            };
            let way = if a.no_reboot || !root.is_live() {
                None
            } else {
                Some(way_into_the_update(mode))
            };
            let now = match &way {
                None => "none",
                Some((power::Action::SoftReboot, _)) => "soft-reboot",
                Some(_) => "reboot",
            };
            let t = summary::Triggered {
                manifest: &m,
                verified: &verified,
                after: a.after_action(),
                reboot_mode: mode,
                now,
            };
            print(&summary::triggered(&t, a.json));
            let Some((way, said)) = way else {
                if !a.no_reboot && !a.json {
                    print("Not rebooting: --root is not /.\n");
                }
                return Ok(exit::OK);
            };
            if let (Some(said), false) = (said, a.json) {
                print(&said);
            }
            power::request(way).context("rebooting into the update")?;
            Ok(exit::OK)
        }
        Cmd::Status(a) => {
            print(&status::status(&root, &config, a.json)?);
            Ok(exit::OK)
        }
        // Handled before the configuration is read.
        Cmd::Results(_) | Cmd::History(_) | Cmd::Log { .. } => Ok(exit::OK),
        Cmd::Cancel { purge, json } => {
            let done = prepare::cancel(&root, &config, purge)?;
            print(&summary::cancelled(&done, &config.update_dir, json));
            Ok(exit::OK)
        }
        Cmd::Apply(a) => {
            let stop = stop_flag()?;
            let opts = apply::ApplyOptions {
                no_reboot: a.no_reboot,
                ui: a.ui,
                // Another tree (an image, a scratch root) is not this
                // machine's update: its consoles are not ours to take.
                output: if root.is_live() {
                    system_update_tui::Output::Consoles
                } else {
                    system_update_tui::Output::Stdout
                },
                backend_args: Vec::new(),
                limits: config.backend_limits(),
            };
            Ok(apply::run(&root, &config, &opts, &stop)?)
        }
        Cmd::Probation => {
            let stop = stop_flag()?;
            Ok(crate::probation::check_boot(&root, &config, &stop))
        }
        Cmd::Cleanup { boot } => {
            match cleanup::cleanup(&root, &config, boot)? {
                cleanup::Cleaned::Nothing(why) => {
                    print(&format!("No snapshots to clean up: {why}.\n"))
                }
                cleanup::Cleaned::Removed(r) if r.is_empty() => {
                    print("No snapshots or failed states beyond what is kept.\n")
                }
                cleanup::Cleaned::Removed(r) => {
                    for p in r {
                        print(&format!("Removed {}\n", p.display()));
                    }
                }
            }
            Ok(exit::OK)
        }
        // Handled before the configuration is read.
        Cmd::Demo(_) | Cmd::Completions { .. } => Ok(exit::OK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` explains every flag and argument of every command.
    #[test]
    fn every_argument_has_help() {
        let cmd = Cli::command();
        let mut missing = Vec::new();
        for sub in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            for arg in sub.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{} {id}", sub.get_name()));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    #[test]
    fn trigger_asks_only_a_person_before_rebooting_this_machine() {
        let args = |extra: &[&str]| {
            let mut v = vec!["system-update", "trigger"];
            v.extend_from_slice(extra);
            match Cli::try_parse_from(v).unwrap().command {
                Cmd::Trigger(t) => t,
                _ => unreachable!(),
            }
        };
        assert!(must_ask(&args(&[]), true, true));
        assert!(must_ask(&args(&["--poweroff"]), true, true));
        assert!(!must_ask(&args(&["-y"]), true, true), "-y");
        assert!(!must_ask(&args(&["--yes"]), true, true), "--yes");
        assert!(
            !must_ask(&args(&[]), true, false),
            "no terminal: no question"
        );
        assert!(!must_ask(&args(&[]), false, true), "--root: no reboot");
        assert!(
            !must_ask(&args(&["--no-reboot"]), true, true),
            "no reboot now"
        );
        assert!(!must_ask(&args(&["--poweroff", "--no-reboot"]), true, true));
    }

    #[test]
    fn only_yes_confirms() {
        for a in ["y\n", "Y", "yes\n", " YES "] {
            assert!(is_yes(a), "{a:?}");
        }
        for a in ["", "\n", "n", "no", "yess", "ja"] {
            assert!(!is_yes(a), "{a:?}");
        }
    }
}
