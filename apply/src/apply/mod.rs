//! `apply`: what system-update-apply.service runs at boot (steps 5-8 of
//! systemd.offline-updates(7)), as a list of named phases (`run`). Each
//! phase is a function of its own with one input and one output: the
//! phases of one attempt (`phases`), where the events go (`reporter`), the
//! record (`record`), the way out (`leave`) and going back (`rollback`).

mod leave;
mod phases;
mod record;
mod reporter;
mod rollback;
mod said;
mod ui;
mod update;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use system_update_tui::Output;

use crate::config::{Config, UiChoice};
use crate::exit;
use crate::paths::Root;
use crate::result::Outcome;

pub use phases::claim;
pub use rollback::config_failed;

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

/// Applies the triggered update: the phases in order, each ending the
/// update or handing on what it found.
pub fn run(
    root: &Root,
    config: &Config,
    opts: &ApplyOptions,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<i32> {
    // A boot on probation that was not confirmed: its rollback first.
    let stray_sent_here = match rollback::due(root, config, opts, stop)? {
        rollback::AfterBoot::Done(code) => {
            crate::metrics::refresh(root, config);
            return Ok(code);
        }
        rollback::AfterBoot::Stray { sent_here } => sent_here,
        rollback::AfterBoot::NotDue => false,
    };
    let Some(_lock) = claim(root, &config.update_dir)? else {
        // A stray marker that brought this boot here is gone: a failure
        // status has FailureAction= reboot into a normal boot.
        return Ok(if stray_sent_here {
            exit::FAILURE
        } else {
            exit::OK
        });
    };
    let mut update = update::Update::load(root, config, opts)?;
    let ui = ui::start_ui(root, config, opts);
    let mut sink = update.start(&ui);
    let verdict = update.attempt_or_repair(&mut sink, stop)?;
    update.judge(&verdict, &mut sink);
    let leaving = update.way_out(&verdict, stop);
    update.record(verdict, &mut sink);
    let rolled_back = update.end(&mut sink);
    // Once the record is whole and the trigger gone.
    crate::metrics::refresh(root, config);
    drop(sink);
    Ok(update.leave(ui, leaving, rolled_back, stop))
}
