//! The after-action: reboot or power off, gracefully.
//!
//! In order: logind's `Reboot`/`PowerOff` over the system bus, when the bus
//! runs and logind is on it (never activating it from the bare update
//! environment); else `systemctl --no-block reboot|poweroff`, which as root
//! starts `reboot.target`/`poweroff.target` with `replace-irreversibly` on
//! systemd's private socket when there is no bus; only as the last resort
//! sync and reboot(2). Never `Manager.Reboot()`, which skips the orderly stop
//! of units and the clean unmount.
//!
//! Not zbus on the private socket: systemd's replies there carry a sender
//! that is not a unique bus name, and zbus 5's connection executor panics on
//! them (seen in a real boot); systemctl is systemd's own client for it.

use std::path::Path;
use std::process::Command;

const SYSTEM_BUS_SOCKET: &str = "/run/dbus/system_bus_socket";
const LOGIND: &str = "org.freedesktop.login1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reboot,
    PowerOff,
    /// systemd's userspace reboot (254 and later): every unit stops, PID 1
    /// re-executes and the generators run again; the kernel stays.
    SoftReboot,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Reboot => "reboot",
            Action::PowerOff => "poweroff",
            Action::SoftReboot => "soft-reboot",
        }
    }

    fn logind_method(self) -> &'static str {
        match self {
            Action::Reboot => "Reboot",
            Action::PowerOff => "PowerOff",
            // Not asked of logind: systemctl starts soft-reboot.target.
            Action::SoftReboot => "Reboot",
        }
    }
}

/// How the action was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Logind,
    Systemctl,
    Syscall,
}

fn via_logind(action: Action) -> Result<(), String> {
    if !Path::new(SYSTEM_BUS_SOCKET).exists() {
        return Err(format!("no system bus ({SYSTEM_BUS_SOCKET})"));
    }
    let conn = zbus::blocking::Connection::system().map_err(|e| e.to_string())?;
    let dbus = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(|e| e.to_string())?;
    let name = zbus::names::BusName::try_from(LOGIND).map_err(|e| e.to_string())?;
    // Asking logind itself would activate it: not in the update environment.
    if !dbus.name_has_owner(name).map_err(|e| e.to_string())? {
        return Err("logind is not running".into());
    }
    conn.call_method(
        Some(LOGIND),
        "/org/freedesktop/login1",
        Some("org.freedesktop.login1.Manager"),
        action.logind_method(),
        &(false,),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

fn via_systemctl(action: Action) -> Result<(), String> {
    let status = Command::new("systemctl")
        .args(["--no-block", action.verb()])
        .status()
        .map_err(|e| format!("systemctl: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("systemctl --no-block {}: {status}", action.verb()))
    }
}

fn via_syscall(action: Action) -> Result<(), String> {
    use nix::sys::reboot::{reboot, RebootMode};
    nix::unistd::sync();
    let mode = match action {
        Action::Reboot | Action::SoftReboot => RebootMode::RB_AUTOBOOT,
        Action::PowerOff => RebootMode::RB_POWER_OFF,
    };
    // Returns only on failure.
    match reboot(mode) {
        Ok(never) => match never {},
        Err(e) => Err(e.to_string()),
    }
}

/// Queues the action; returns once systemd has it (or never, for reboot(2)).
/// A soft-reboot systemd refuses becomes a full reboot.
pub fn request(action: Action) -> anyhow::Result<Method> {
    if action == Action::SoftReboot {
        match via_systemctl(action) {
            Ok(()) => return Ok(Method::Systemctl),
            Err(e) => {
                tracing::warn!("soft-reboot: {e}; rebooting fully instead");
                return request(Action::Reboot);
            }
        }
    }
    let logind = match via_logind(action) {
        Ok(()) => return Ok(Method::Logind),
        Err(e) => e,
    };
    tracing::info!("{}: logind: {logind}; using systemctl", action.verb());
    let systemctl = match via_systemctl(action) {
        Ok(()) => return Ok(Method::Systemctl),
        Err(e) => e,
    };
    tracing::error!(
        "{}: {systemctl}; syncing and calling reboot(2)",
        action.verb()
    );
    let syscall = match via_syscall(action) {
        Ok(()) => return Ok(Method::Syscall),
        Err(e) => e,
    };
    anyhow::bail!(
        "cannot {}: logind ({logind}), systemctl ({systemctl}) and reboot(2) ({syscall}) all failed",
        action.verb()
    )
}
