//! The keys of unattended updates (`system-update auto`), checked when the
//! file is read.

use serde::{Deserialize, Serialize};

/// What `auto` prepares from the repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoPrepare {
    /// Everything the repositories offer (`prepare --from-repositories`).
    #[default]
    Upgrade,
    /// Only what needs no new package nor removes one (`--safe`).
    Safe,
    /// Nothing: `auto` only arms what an admin prepared.
    None,
}

impl AutoPrepare {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoPrepare::Upgrade => "upgrade",
            AutoPrepare::Safe => "safe",
            AutoPrepare::None => "none",
        }
    }
}

/// What `auto` does while someone is logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenUsers {
    /// Warn them (reboot-warning) and go on.
    #[default]
    Warn,
    /// Give up for this window while anyone is logged in.
    Wait,
}

impl WhenUsers {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenUsers::Warn => "warn",
            WhenUsers::Wait => "wait",
        }
    }
}

/// More windows than any schedule needs.
pub const WINDOWS_MAX: usize = 32;

/// Each window parses (window.rs says the syntax); at most WINDOWS_MAX.
pub fn check_windows(windows: &[String]) -> Result<Vec<crate::window::Window>, String> {
    if windows.len() > WINDOWS_MAX {
        return Err(format!("window: at most {WINDOWS_MAX} windows"));
    }
    windows
        .iter()
        .map(|w| {
            w.parse().map_err(|e| {
                format!(
                    "window {w:?}: {e}; write windows as \"Sat,Sun 02:00-05:00\" or \"Mon-Fri 22:00-23:30\""
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    #[test]
    fn unattended_keys_are_read_and_checked() {
        let c = Config::parse(
            "window = [\"Sat,Sun 02:00-05:00\", \"Mon-Fri 22:00-23:30\"]\nauto-prepare = \"none\"\n\
             when-users = \"wait\"\nmin-battery = 50\nreboot-warning = 10\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.window.len(), 2);
        assert_eq!(c.auto_prepare, super::AutoPrepare::None);
        assert_eq!(c.when_users, super::WhenUsers::Wait);
        assert_eq!((c.min_battery, c.reboot_warning), (50, 10));
        let e = Config::parse("window = [\"Sun 2am-5am\"]\n", Path::new("/etc/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("window \"Sun 2am-5am\"") && e.contains("/etc/x.toml"),
            "{e}"
        );
        let many = format!("window = [{}]\n", vec!["\"01:00-02:00\""; 33].join(","));
        let e = Config::parse(&many, Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 32"), "{e}");
        let e = Config::parse("auto-prepare = \"all\"\n", Path::new("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("auto-prepare"), "{e}");
    }
}
