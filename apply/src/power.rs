//! The after-action: reboot or power off, gracefully.
//!
//! At boot in system-update.target the system bus is usually not running, so
//! talk to systemd on its private socket (as `systemctl` does as root) and
//! queue `reboot.target`/`poweroff.target`; else run `systemctl`; only as the
//! last resort sync and reboot(2). Never `Manager.Reboot()`, which skips the
//! orderly stop of units and the clean unmount.

use std::os::unix::net::UnixStream;
use std::process::Command;

const PRIVATE_SOCKET: &str = "/run/systemd/private";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reboot,
    PowerOff,
}

impl Action {
    fn target(self) -> &'static str {
        match self {
            Action::Reboot => "reboot.target",
            Action::PowerOff => "poweroff.target",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Reboot => "reboot",
            Action::PowerOff => "poweroff",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error("cannot {action}: systemd ({private}), systemctl ({systemctl}) and reboot(2) ({syscall}) all failed")]
    AllFailed {
        action: &'static str,
        private: String,
        systemctl: String,
        syscall: String,
    },
}

/// How the action was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PrivateBus,
    Systemctl,
    Syscall,
}

fn via_private_socket(action: Action) -> Result<(), String> {
    let stream =
        UnixStream::connect(PRIVATE_SOCKET).map_err(|e| format!("{PRIVATE_SOCKET}: {e}"))?;
    let conn = zbus::blocking::connection::Builder::async_io_unix_stream(stream)
        .p2p()
        .build()
        .map_err(|e| e.to_string())?;
    conn.call_method(
        None::<&str>,
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "StartUnit",
        &(action.target(), "replace-irreversibly"),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

fn via_systemctl(action: Action) -> Result<(), String> {
    let status = Command::new("systemctl")
        .arg(action.verb())
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("systemctl {}: {status}", action.verb()))
    }
}

fn via_syscall(action: Action) -> Result<(), String> {
    use nix::sys::reboot::{reboot, RebootMode};
    nix::unistd::sync();
    let mode = match action {
        Action::Reboot => RebootMode::RB_AUTOBOOT,
        Action::PowerOff => RebootMode::RB_POWER_OFF,
    };
    // Returns only on failure.
    match reboot(mode) {
        Ok(never) => match never {},
        Err(e) => Err(e.to_string()),
    }
}

/// Queues the action; returns once systemd has it (or never, for reboot(2)).
pub fn request(action: Action) -> Result<Method, PowerError> {
    let private = match via_private_socket(action) {
        Ok(()) => return Ok(Method::PrivateBus),
        Err(e) => e,
    };
    tracing::warn!(
        "{}: systemd private socket: {private}; trying systemctl",
        action.verb()
    );
    let systemctl = match via_systemctl(action) {
        Ok(()) => return Ok(Method::Systemctl),
        Err(e) => e,
    };
    tracing::error!(
        "{}: systemctl: {systemctl}; syncing and calling reboot(2)",
        action.verb()
    );
    let syscall = match via_syscall(action) {
        Ok(()) => return Ok(Method::Syscall),
        Err(e) => e,
    };
    Err(PowerError::AllFailed {
        action: action.verb(),
        private,
        systemctl,
        syscall,
    })
}
