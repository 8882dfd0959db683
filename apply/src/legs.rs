//! The two legs of an update: into the update environment after `trigger`,
//! and out of it after `apply`. Each is a full reboot or, where systemd
//! has it (254 and later), a soft-reboot: userspace starts from scratch
//! (every unit stops, PID 1 re-executes, the generators run again) on the
//! same kernel, without firmware, boot loader, initrd or a second
//! passphrase for an encrypted disk. The way out is a full reboot whenever
//! the new userspace would not match what only a boot loads (the backend
//! says which packages put files there) or the root itself was swapped by
//! a rollback.

use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::config::{AfterAction, RebootMode};
use crate::power;

/// The kernel's id for this boot; unchanged by a soft-reboot.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// The first systemd with `systemctl soft-reboot`.
pub const SOFT_REBOOT_SINCE: u32 = 254;

/// How a leg went (the result record's `legs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Leg {
    SoftReboot,
    Reboot,
    Poweroff,
    /// Nothing was asked for (`--no-reboot`, `after-action = none`).
    None,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::SoftReboot => "soft-reboot",
            Leg::Reboot => "reboot",
            Leg::Poweroff => "poweroff",
            Leg::None => "none",
        }
    }
}

/// The result record's account of both legs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Legs {
    /// How this boot was entered, from the boot id `trigger` recorded:
    /// `None` when it recorded none (another root, an older trigger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enter: Option<Leg>,
    /// What `apply` asked for on the way out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave: Option<Leg>,
    /// Why the way out was a full reboot where a soft-reboot was allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_why: Option<String>,
}

pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string(BOOT_ID).ok()?;
    let id = id.trim();
    (id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .then(|| id.to_string())
}

/// How this boot began, given the boot id `trigger` recorded.
pub fn entered(recorded: Option<&str>) -> Option<Leg> {
    let recorded = recorded?;
    let now = boot_id()?;
    Some(if now == recorded {
        Leg::SoftReboot
    } else {
        Leg::Reboot
    })
}

/// `systemd 257 (257.13-1~deb13u1)` → 257.
pub fn parse_systemd_version(text: &str) -> Option<u32> {
    let first = text.lines().next()?;
    let mut words = first.split_whitespace();
    (words.next()? == "systemd").then_some(())?;
    let v = words.next()?;
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Whether this system can soft-reboot: booted with systemd, and one new
/// enough. Err says why not, for the log and the record.
pub fn soft_reboot_supported() -> Result<u32, String> {
    if !std::path::Path::new("/run/systemd/system").is_dir() {
        return Err("not booted with systemd".into());
    }
    let out = Command::new("systemctl")
        .arg("--version")
        .env("SYSTEMD_PAGER", "")
        .output()
        .map_err(|e| format!("systemctl --version: {e}"))?;
    let v = parse_systemd_version(&String::from_utf8_lossy(&out.stdout))
        .ok_or("systemctl --version: no version")?;
    if v < SOFT_REBOOT_SINCE {
        return Err(format!(
            "systemd {v} has no soft-reboot (since {SOFT_REBOOT_SINCE})"
        ));
    }
    Ok(v)
}

/// The way into the update environment.
pub fn way_in(mode: RebootMode, supported: &Result<u32, String>) -> power::Action {
    match (mode, supported) {
        (RebootMode::Auto, Ok(_)) => power::Action::SoftReboot,
        _ => power::Action::Reboot,
    }
}

/// The way out: the action and, when a soft-reboot was allowed by the
/// mode but not taken, why.
pub fn way_out(
    action: AfterAction,
    mode: RebootMode,
    supported: &Result<u32, String>,
    rolled_back: bool,
    boot_files: impl FnOnce() -> Option<String>,
) -> (Option<power::Action>, Option<String>) {
    match action {
        AfterAction::None => (None, None),
        AfterAction::Poweroff => (Some(power::Action::PowerOff), None),
        AfterAction::Reboot => {
            if mode == RebootMode::AlwaysReboot {
                return (Some(power::Action::Reboot), None);
            }
            let why = match supported {
                Err(e) => Some(e.clone()),
                Ok(_) if rolled_back => {
                    Some("the root was rolled back to its snapshot".to_string())
                }
                Ok(_) => boot_files(),
            };
            match why {
                None => (Some(power::Action::SoftReboot), None),
                Some(w) => (Some(power::Action::Reboot), Some(w)),
            }
        }
    }
}

pub fn leg_of(action: Option<power::Action>) -> Leg {
    match action {
        None => Leg::None,
        Some(power::Action::SoftReboot) => Leg::SoftReboot,
        Some(power::Action::Reboot) => Leg::Reboot,
        Some(power::Action::PowerOff) => Leg::Poweroff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_versions() {
        assert_eq!(
            parse_systemd_version("systemd 257 (257.13-1~deb13u1)\n+PAM +AUDIT"),
            Some(257)
        );
        assert_eq!(
            parse_systemd_version("systemd 252 (252.39-1~deb12u1)"),
            Some(252)
        );
        assert_eq!(parse_systemd_version("systemd 256~rc3"), Some(256));
        assert_eq!(parse_systemd_version("elogind 252"), None);
        assert_eq!(parse_systemd_version(""), None);
    }

    #[test]
    fn the_way_out() {
        let new: Result<u32, String> = Ok(257);
        let old: Result<u32, String> = Err("systemd 252 has no soft-reboot (since 254)".into());
        let none = || None;
        let kernel = || Some("vmtest-kernel installs /boot/x".to_string());
        use power::Action::*;
        assert_eq!(
            way_out(AfterAction::Reboot, RebootMode::Auto, &new, false, none),
            (Some(SoftReboot), None)
        );
        assert_eq!(
            way_out(AfterAction::Reboot, RebootMode::Auto, &new, false, kernel),
            (Some(Reboot), Some("vmtest-kernel installs /boot/x".into()))
        );
        assert_eq!(
            way_out(AfterAction::Reboot, RebootMode::Auto, &new, true, none).0,
            Some(Reboot)
        );
        assert_eq!(
            way_out(AfterAction::Reboot, RebootMode::Auto, &old, false, none),
            (
                Some(Reboot),
                Some("systemd 252 has no soft-reboot (since 254)".into())
            )
        );
        assert_eq!(
            way_out(
                AfterAction::Reboot,
                RebootMode::AlwaysReboot,
                &new,
                false,
                none
            ),
            (Some(Reboot), None)
        );
        assert_eq!(
            way_out(AfterAction::Poweroff, RebootMode::Auto, &new, false, none),
            (Some(PowerOff), None)
        );
        assert_eq!(
            way_out(AfterAction::None, RebootMode::Auto, &new, false, none),
            (None, None)
        );
        assert_eq!(way_in(RebootMode::Auto, &new), SoftReboot);
        assert_eq!(way_in(RebootMode::Auto, &old), Reboot);
        assert_eq!(way_in(RebootMode::AlwaysReboot, &new), Reboot);
    }
}
