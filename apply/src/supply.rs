//! Power supplies: whether there is enough power to install an update (on
//! mains, or a battery at `min-battery` percent or more), read from the
//! root's /sys/class/power_supply. Checked by `auto` before arming and by
//! `apply` in the update boot before anything changes.
//!
//! In a real sysfs each entry is a link into /sys/devices: every path is
//! opened with the links resolved inside the root (Root::open_in), each
//! attribute a bounded read. A machine with no supply listed at all (a
//! desktop, a virtual machine) runs on mains.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::paths::Root;

pub const POWER_SUPPLY: &str = "/sys/class/power_supply";
/// fwupd's default.
pub const DEFAULT_MIN_BATTERY: u8 = 30;
/// sysfs attributes are at most a page; their size shows as 4096.
const MAX_ATTR: u64 = 4096;
/// More supplies than any machine has: the rest is not read.
const MAX_SUPPLIES: usize = 64;

/// What the supplies say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Power {
    /// A mains adapter (or USB power) is online, or a battery charges.
    Mains { supply: Option<String> },
    /// On batteries only: their mean charge in percent.
    Battery { percent: u8 },
}

impl Power {
    /// Enough to install an update.
    pub fn enough(&self, min_battery: u8) -> bool {
        match self {
            Power::Mains { .. } => true,
            Power::Battery { percent } => *percent >= min_battery,
        }
    }

    /// A line for the journal, the answer and the result record.
    pub fn describe(&self, min_battery: u8) -> String {
        match self {
            Power::Mains { supply: Some(s) } => format!("on mains ({s})"),
            Power::Mains { supply: None } => "on mains (no power supply listed)".into(),
            Power::Battery { percent } if *percent >= min_battery => {
                format!("on battery at {percent}% (min-battery is {min_battery}%)")
            }
            Power::Battery { percent } => format!(
                "on battery at {percent}%, below min-battery {min_battery}%: connect the power"
            ),
        }
    }
}

/// One supply's attributes, as far as they could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supply {
    pub name: String,
    pub kind: String,
    pub online: Option<bool>,
    pub capacity: Option<u8>,
    pub status: Option<String>,
    /// `Device` for a mouse's or a headset's battery: not the machine's.
    pub scope: Option<String>,
}

/// The decision from the supplies read: mains when one is online, a
/// battery charges or is full, or nothing is listed; else the batteries'
/// mean charge (one whose charge cannot be read counts as empty).
pub fn decide(supplies: &[Supply]) -> Power {
    let mine = supplies
        .iter()
        .filter(|s| s.scope.as_deref() != Some("Device"));
    let mut batteries = Vec::new();
    for s in mine {
        if s.kind == "Battery" {
            if matches!(s.status.as_deref(), Some("Charging" | "Full")) {
                return Power::Mains {
                    supply: Some(format!(
                        "{} is {}",
                        s.name,
                        s.status.as_deref().unwrap_or("")
                    )),
                };
            }
            batteries.push(s.capacity.unwrap_or(0));
        } else if s.online == Some(true) {
            return Power::Mains {
                supply: Some(s.name.clone()),
            };
        }
    }
    if batteries.is_empty() {
        return Power::Mains { supply: None };
    }
    let sum: u32 = batteries.iter().map(|c| u32::from(*c)).sum();
    let mean = sum / batteries.len() as u32;
    Power::Battery {
        percent: u8::try_from(mean).unwrap_or(100),
    }
}

fn attr(root: &Root, dir: &Path, name: &str) -> Option<String> {
    let path = dir.join(name);
    match crate::untrusted::read_text_in(root, &path, MAX_ATTR, false) {
        Ok(t) => Some(t.trim().to_string()),
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            tracing::warn!("{e}");
            None
        }
    }
}

/// Reads one supply's attributes.
pub fn read_supply(root: &Root, name: &str) -> Supply {
    let dir = PathBuf::from(POWER_SUPPLY).join(name);
    Supply {
        name: name.to_string(),
        kind: attr(root, &dir, "type").unwrap_or_default(),
        online: attr(root, &dir, "online").map(|v| v == "1"),
        capacity: attr(root, &dir, "capacity")
            .and_then(|v| v.parse::<u8>().ok())
            .map(|c| c.min(100)),
        status: attr(root, &dir, "status"),
        scope: attr(root, &dir, "scope"),
    }
}

/// The names in the root's /sys/class/power_supply; none when it is not
/// there.
fn names(root: &Root) -> anyhow::Result<Vec<String>> {
    use nix::fcntl::OFlag;
    let inside = Path::new(POWER_SUPPLY);
    let dir = match root.open_in(inside, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("{}: {e}", root.host(inside).display()),
    };
    let fd = dir.as_fd().try_clone_to_owned()?;
    let mut d = nix::dir::Dir::from_fd(fd)
        .map_err(|e| anyhow::anyhow!("{}: {e}", root.host(inside).display()))?;
    let mut out = Vec::new();
    for entry in d.iter().flatten() {
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." || !crate::paths::is_plain_name(name) {
            continue;
        }
        if out.len() == MAX_SUPPLIES {
            tracing::warn!("more than {MAX_SUPPLIES} power supplies: the rest not read");
            break;
        }
        out.push(name.to_string());
    }
    out.sort();
    Ok(out)
}

/// What the root's power supplies say now.
pub fn read(root: &Root) -> anyhow::Result<Power> {
    let supplies: Vec<Supply> = names(root)?.iter().map(|n| read_supply(root, n)).collect();
    Ok(decide(&supplies))
}

#[cfg(test)]
mod tests;
