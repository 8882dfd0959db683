//! Leaving the update environment: the way out (soft-reboot or reboot),
//! the final screen's countdown and the after-action.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use system_update_tui::{Event, Ui};

use crate::config::{AfterAction, Config};
use crate::exit;
use crate::local::{LocalError, LocalState};
use crate::manifest::Manifest;
use crate::paths::Root;
use crate::power;
use crate::result::{Outcome, ResultRecord};

/// What the attempt left behind that decides the way out.
pub(super) struct Left<'a> {
    /// The root goes back to its snapshot.
    pub(super) rolls_back: bool,
    /// The boot trees' fingerprint from before the transaction, when one
    /// ran (`Some(None)`: it ran, but none was taken).
    pub(super) boot_tree: Option<Option<&'a str>>,
}

/// The way out of the update environment (legs.rs), recorded: a
/// soft-reboot unless the mode, systemd, a rollback or what the backend
/// installed (kernel, initrd, boot loader, firmware) says otherwise.
pub(super) fn way_out(
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
                // The package lists first, which name the package; then
                // the files on disk, which include what scripts wrote.
                Ok(m) => m.backend.boot_files(root, &record.packages).or_else(|| {
                    left.boot_tree
                        .and_then(|before| crate::boottree::changed(root, before))
                }),
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

/// A successful update's payload has done its work: `status` then says
/// nothing is prepared, and a new prepare needs no --force. A failed one is
/// kept, to look at or to retry.
pub(super) fn clear_applied(root: &Root, update_dir: &Path) {
    let udh = root.host(update_dir);
    match crate::updatedir::clear(root, update_dir, &[], true) {
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
pub(super) fn countdown(
    ui: &Ui,
    config: &Config,
    action: AfterAction,
    outcome: Outcome,
    stop: &AtomicBool,
) {
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
pub(super) fn after_action(power_action: Option<power::Action>, outcome: Outcome) -> i32 {
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
