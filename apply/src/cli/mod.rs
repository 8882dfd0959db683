//! The command line: its definition (here), carrying it out (`commands`)
//! and the terminal it is given on (`terminal`).

mod commands;
mod terminal;

pub use commands::run;
pub use terminal::{completion_script, message};

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::{self, BackendKind};
use crate::config::{AfterAction, UiChoice};
pub use crate::demo::DemoArgs;

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
    /// Show or steer this machine's fleet group in etcd (fleet-endpoints
    /// in /etc/system-update.toml).
    Fleet {
        #[command(subcommand)]
        action: FleetCmd,
    },
    /// One pass of unattended updates (what system-update-auto.timer
    /// runs): prepare, and inside a maintenance window arm the update and
    /// reboot into it, unless something says not now.
    Auto(AutoArgs),
    /// Give the consoles back the kernel's console level and systemd's
    /// status output that an apply which died left lowered (what
    /// system-update-apply.service runs after it stops).
    RestoreConsole,
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

#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// Show the group's slots, who holds them, and whether it is halted.
    Status(JsonArg),
    /// Free the slots a machine holds (one that died during its update).
    Unlock {
        /// The machine's id (32 hex digits), as `fleet status` lists it.
        id: String,
        /// Print JSON (its schema is in system-update(8)) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Lift the group's halt: its members may arm updates again.
    Resume(JsonArg),
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
pub struct AutoArgs {
    /// Arm the update but do not reboot into it (never under --root).
    #[arg(long)]
    pub no_reboot: bool,
    /// Judge the windows at this time (RFC 3339) instead of the clock:
    /// for tests only.
    #[arg(long, hide = true, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
    /// Print JSON (its schema is in system-update(8)) instead of text.
    #[arg(long)]
    pub json: bool,
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

#[cfg(test)]
mod tests {
    use super::terminal::{is_yes, must_ask};
    use super::*;
    use clap::CommandFactory;

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
