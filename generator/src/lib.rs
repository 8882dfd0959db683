//! system-update-generator: a drop-in for systemd-system-update-generator(8).
//!
//! When `/system-update` or `/etc/system-update` exists (as lstat sees it: a
//! dangling symlink counts), `default.target` is redirected to
//! `system-update.target` for this boot by a symlink in the early generator
//! directory. Step 3 of systemd.offline-updates(7).

pub mod cmdline;
pub mod log;

use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use log::{Level, Logger};

/// The triggers, relative to the root, in the order systemd checks them.
pub const TRIGGERS: [&str; 2] = ["system-update", "etc/system-update"];

/// Ours alone: `system-update probation` leaves this when the first boot
/// after an update was not confirmed healthy, and the update environment
/// then rolls back to the pre-update snapshot. Only roots whose package
/// database (under /var/lib) is on the root subvolume get a snapshot, so
/// /var/lib is there before any other mount.
pub const PROBATION_DUE: &str = "var/lib/system-update-results/probation-due";

/// Where this build links `default.target` to: the unit directory of the
/// systemd it was built for (see build.rs).
pub const TARGET_UNIT: &str = concat!(env!("SYSTEM_UPDATE_UNIT_DIR"), "/system-update.target");

/// What the generator did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No trigger: the boot goes on to the usual default.target.
    NoUpdate,
    /// `default.target` now points at system-update.target.
    Redirected { trigger: String },
    /// Another generator (systemd's own) already made the same link.
    AlreadyRedirected { trigger: String },
    /// Running in the initrd, where the update does not apply.
    InInitrd,
}

/// A failure that leaves the boot without its redirection.
#[derive(Debug)]
pub enum Error {
    Link { path: PathBuf, source: io::Error },
    Conflict { path: PathBuf, found: String },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Link { path, source } => {
                write!(f, "Failed to create symlink {}: {source}", path.display())
            }
            Error::Conflict { path, found } => write!(
                f,
                "{} already exists and is {found}, not a link to system-update.target; \
                 another generator set the default target, not redirecting the boot",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Looks at the triggers below `root` and writes `early_dir/default.target`.
/// `target` is the unit file the link points to.
pub fn generate(
    root: &Path,
    early_dir: &Path,
    target: &str,
    log: &mut Logger,
) -> Result<Outcome, Error> {
    if root.join("etc/initrd-release").exists() {
        log.log(
            Level::Debug,
            format_args!("Skipping generator, running in the initrd."),
        );
        return Ok(Outcome::InInitrd);
    }
    let Some(trigger) = find_trigger(root, log) else {
        log.log(
            Level::Debug,
            format_args!("No /system-update or /etc/system-update, nothing to do."),
        );
        return Ok(Outcome::NoUpdate);
    };

    let link = early_dir.join("default.target");
    let outcome = match symlink(target, &link) {
        Ok(()) => {
            if trigger.ends_with(PROBATION_DUE) {
                log.log(
                    Level::Notice,
                    format_args!(
                        "{trigger} exists: the last update's first boot was not confirmed; \
                         booting into system-update.target to roll it back."
                    ),
                );
            } else {
                log.log(
                    Level::Info,
                    format_args!(
                        "{trigger} exists: booting into system-update.target for an offline update."
                    ),
                );
            }
            Outcome::Redirected { trigger }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match std::fs::read_link(&link) {
            Ok(dest) if dest.file_name() == Some("system-update.target".as_ref()) => {
                log.log(
                    Level::Debug,
                    format_args!("{} already points to {}.", link.display(), dest.display()),
                );
                Outcome::AlreadyRedirected { trigger }
            }
            Ok(dest) => {
                return Err(Error::Conflict {
                    path: link,
                    found: format!("a link to {}", dest.display()),
                })
            }
            Err(_) => {
                return Err(Error::Conflict {
                    path: link,
                    found: "not a symlink".into(),
                })
            }
        },
        Err(source) => return Err(Error::Link { path: link, source }),
    };

    warn_about_cmdline(root, log);
    Ok(outcome)
}

/// The first trigger that exists, as `/system-update` or `/etc/system-update`,
/// then the probation's. Errors other than "does not exist" are logged and
/// that path is skipped.
fn find_trigger(root: &Path, log: &mut Logger) -> Option<String> {
    for rel in TRIGGERS.into_iter().chain([PROBATION_DUE]) {
        let shown = format!("/{rel}");
        match std::fs::symlink_metadata(root.join(rel)) {
            // Ours is only ever written as an empty regular file: anything
            // else there (a directory, a FIFO, a link) is not a rollback
            // to do, and honouring it would send every boot back, since
            // apply could not remove it.
            Ok(md) if rel == PROBATION_DUE && !md.file_type().is_file() => log.log(
                Level::Warning,
                format_args!(
                    "{shown} is not a regular file, ignoring it; remove it (rm -r {shown})."
                ),
            ),
            Ok(_) => return Some(shown),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log.log(
                Level::Warning,
                format_args!("Failed to check if {shown} exists, ignoring: {e}"),
            ),
        }
    }
    None
}

/// The kernel command line outranks any default target: say so, as systemd
/// does, since the update will not run this boot.
fn warn_about_cmdline(root: &Path, log: &mut Logger) {
    let line = match std::fs::read_to_string(root.join("proc/cmdline")) {
        Ok(l) => l,
        Err(e) => {
            log.log(
                Level::Warning,
                format_args!("Failed to parse kernel command line, ignoring: {e}"),
            );
            return;
        }
    };
    for o in cmdline::overrides(&line) {
        match o {
            cmdline::Override::Unit(_) => log.log(
                Level::Warning,
                format_args!(
                    "Offline system update overridden by kernel command line systemd.unit= setting"
                ),
            ),
            cmdline::Override::Runlevel(w) => log.log(
                Level::Warning,
                format_args!(
                    "Offline system update overridden by runlevel \"{w}\" on the kernel command line"
                ),
            ),
        }
    }
}
