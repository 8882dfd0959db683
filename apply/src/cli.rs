//! Command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{AfterAction, UiChoice};
use crate::manifest::BackendKind;

#[derive(Debug, Parser)]
#[command(
    name = "system-update",
    version,
    about = "Prepare, trigger and apply offline system updates (systemd.offline-updates(7))"
)]
pub struct Cli {
    /// Act on the tree under DIR (an image, a scratch root) instead of /.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
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
        #[arg(long)]
        purge: bool,
    },
    /// Show the last result.
    Results(JsonArg),
    /// Apply the triggered update (what system-update-apply.service runs).
    Apply(ApplyArgs),
    /// Remove failed states and old pre-update snapshots.
    Cleanup {
        /// Keep `keep-failed` failed states too (what runs after a normal
        /// boot); by default every failed state is removed.
        #[arg(long)]
        boot: bool,
    },
    /// Play a whole offline update on a scratch root, with the UI.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct JsonArg {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Backend; deduced from .deb files when not given.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Replace an update that is already prepared.
    #[arg(long)]
    pub force: bool,
    /// Title shown on screen and in the result.
    #[arg(long)]
    pub title: Option<String>,
    /// Run PROGRAM [ARG...] as the update (command backend).
    #[arg(long, value_name = "PROGRAM", num_args = 1.., allow_hyphen_values = true, conflicts_with = "files")]
    pub command: Option<Vec<String>>,
    /// Payload files (.deb for the dpkg backend).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TriggerArgs {
    #[arg(long, conflicts_with_all = ["poweroff", "no_reboot"])]
    pub reboot: bool,
    #[arg(long, conflicts_with = "no_reboot")]
    pub poweroff: bool,
    /// Arm the update but do not reboot now.
    #[arg(long)]
    pub no_reboot: bool,
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
    #[arg(long, value_enum)]
    pub ui: Option<UiChoice>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to build the packages and the scratch root (default: a new
    /// directory under $TMPDIR, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub ui: Option<UiChoice>,
}
