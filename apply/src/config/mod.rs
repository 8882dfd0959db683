//! `/etc/system-update.toml`: the admin's defaults.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::paths::{self, Root};
use crate::snapshot::SnapshotChoice;

mod unattended;
pub use unattended::{check_windows, AutoPrepare, WhenUsers, WINDOWS_MAX};

/// What happens once an update is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AfterAction {
    Reboot,
    Poweroff,
    None,
}

impl AfterAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AfterAction::Reboot => "reboot",
            AfterAction::Poweroff => "poweroff",
            AfterAction::None => "none",
        }
    }

    pub fn event(self) -> system_update_events::AfterAction {
        match self {
            AfterAction::Reboot => system_update_events::AfterAction::Reboot,
            AfterAction::Poweroff => system_update_events::AfterAction::PowerOff,
            AfterAction::None => system_update_events::AfterAction::None,
        }
    }
}

/// How the machine enters and leaves the update environment
/// (`reboot-mode`, `trigger --reboot-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RebootMode {
    /// soft-reboot where systemd has it (254 and later), both legs; the
    /// way out is a full reboot when the update touched the kernel, the
    /// initrd, the boot loader or firmware, or was rolled back.
    #[default]
    Auto,
    /// Full reboots only.
    AlwaysReboot,
}

impl RebootMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RebootMode::Auto => "auto",
            RebootMode::AlwaysReboot => "always-reboot",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UiChoice {
    Auto,
    Fullscreen,
    Plain,
    Plymouth,
    None,
}

impl UiChoice {
    pub fn mode(self) -> system_update_tui::UiMode {
        use system_update_tui::UiMode;
        match self {
            UiChoice::Auto => UiMode::Auto,
            UiChoice::Fullscreen => UiMode::Fullscreen,
            UiChoice::Plain => UiMode::Plain,
            UiChoice::Plymouth => UiMode::Plymouth,
            UiChoice::None => UiMode::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// Absolute path inside the root.
    pub update_dir: PathBuf,
    pub after_action: AfterAction,
    pub ui: UiChoice,
    pub attempt_limit: u32,
    /// Snapshot provider before the transaction.
    pub snapshot: SnapshotChoice,
    /// Pre-update snapshots kept by `cleanup` (the newest ones).
    pub keep_snapshots: usize,
    /// Failed states kept by the cleanup after a normal boot.
    pub keep_failed: usize,
    /// Result records kept in the history (`system-update history`).
    pub keep_results: usize,
    /// Keep the update directory's files after a successful update (by
    /// default they go, as `dnf5 offline clean` would).
    pub keep_update: bool,
    /// Seconds a backend may go without output or progress before it is
    /// killed; 0: never.
    pub stall_timeout: u64,
    /// Refuse updates without a valid signature by a trusted key.
    pub require_signature: bool,
    /// Seconds the success screen stays before the after-action.
    pub final_screen_success: u64,
    /// Seconds the failure screen stays (longer: someone may need to read
    /// why, or photograph it).
    pub final_screen_failure: u64,
    /// The full screen's heading in place of "System update".
    pub ui_title: Option<String>,
    /// A line at the bottom of the full screen ("call extension 123").
    pub ui_footer: Option<String>,
    /// The header's colour: a name (blue, cyan, magenta, ...) or #rrggbb.
    pub ui_accent: Option<String>,
    /// soft-reboot legs where possible, or full reboots only.
    pub reboot_mode: RebootMode,
    /// The first boot after an update with a snapshot is on probation.
    pub probation: bool,
    /// The unit whose activation confirms that boot.
    pub health_target: String,
    /// Seconds the probation boot has to reach the health target.
    pub health_timeout: u64,
    /// Units that must not fail in the probation boot.
    pub must_run: Vec<String>,
    /// Boots that may try to be confirmed; the next one rolls back.
    pub probation_boots: u32,
    /// etcd's client URLs (http://host:port); empty: no fleet.
    pub fleet_endpoints: Vec<String>,
    /// The fleet group this machine belongs to.
    pub fleet_group: String,
    /// How many of the group may be updating at once.
    pub fleet_slots: u32,
    /// The Prometheus text file written after each result (absolute path
    /// inside the root); none by default.
    pub metrics_file: Option<PathBuf>,
    /// Maintenance windows in which `auto` may arm an update (window.rs);
    /// none: `auto` arms nothing.
    pub window: Vec<String>,
    /// What `auto` prepares from the repositories.
    pub auto_prepare: AutoPrepare,
    /// Whether `auto` waits for logged-in users to leave.
    pub when_users: WhenUsers,
    /// Percent of battery charge below which nothing is installed unless
    /// on mains.
    pub min_battery: u8,
    /// Minutes logged-in users are warned before `auto` reboots; 0: none.
    pub reboot_warning: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            update_dir: PathBuf::from(paths::DEFAULT_UPDATE_DIR),
            after_action: AfterAction::Reboot,
            ui: UiChoice::Auto,
            attempt_limit: 2,
            snapshot: SnapshotChoice::Auto,
            keep_snapshots: 1,
            keep_failed: 1,
            keep_results: 10,
            keep_update: false,
            // An hour: a DKMS module build or an initramfs rebuild on a
            // slow machine can be silent for many minutes, and killing a
            // working transaction is worse than waiting for a hung one.
            stall_timeout: 3600,
            require_signature: false,
            final_screen_success: 5,
            final_screen_failure: 15,
            ui_title: None,
            ui_footer: None,
            ui_accent: None,
            reboot_mode: RebootMode::Auto,
            probation: true,
            health_target: DEFAULT_HEALTH_TARGET.to_string(),
            // Five minutes: a server's network-online and a kiosk's display
            // manager are up in well under one; a slow disk check is not.
            health_timeout: 300,
            must_run: Vec::new(),
            probation_boots: 2,
            fleet_endpoints: Vec::new(),
            fleet_group: "default".to_string(),
            fleet_slots: 1,
            metrics_file: None,
            window: Vec::new(),
            auto_prepare: AutoPrepare::Upgrade,
            when_users: WhenUsers::Warn,
            min_battery: crate::supply::DEFAULT_MIN_BATTERY,
            reboot_warning: 5,
        }
    }
}

/// What probation waits for unless the admin names another target: the
/// point systemd(7)'s boot-complete.target documents for "this boot is
/// good". Where nothing hooks into it, multi-user.target stands in.
pub const DEFAULT_HEALTH_TARGET: &str = "boot-complete.target";

/// Longest health-timeout: an hour.
pub const HEALTH_TIMEOUT_MAX: u64 = 3600;

/// Longest stall-timeout: a day. Larger values only defer a hang, and a
/// huge one overflows the deadline (`Instant` + seconds) mid-transaction.
pub const STALL_TIMEOUT_MAX: u64 = 86_400;

/// Every number in the file and the values it may take, inclusive, as
/// system-update.toml(5) lists them: a value outside is refused when the
/// file is read, before it can reach a deadline, a loop or a count.
pub const RANGES: [(&str, u64, u64); 12] = [
    ("attempt-limit", 1, 10),
    ("keep-snapshots", 0, 100),
    ("keep-failed", 0, 100),
    ("keep-results", 0, 1000),
    ("stall-timeout", 0, STALL_TIMEOUT_MAX),
    ("final-screen-success", 0, FINAL_SCREEN_MAX),
    ("final-screen-failure", 0, FINAL_SCREEN_MAX),
    ("health-timeout", 1, HEALTH_TIMEOUT_MAX),
    ("probation-boots", 1, 10),
    ("fleet-slots", 1, 1000),
    ("min-battery", 0, 100),
    ("reboot-warning", 0, REBOOT_WARNING_MAX),
];

/// Longest reboot-warning: an hour, in minutes.
pub const REBOOT_WARNING_MAX: u64 = 60;

/// Whether `name` is a unit name systemd would take: a known suffix and
/// only the characters unit names may have (no path, no option, no space).
pub fn is_unit_name(name: &str) -> bool {
    const SUFFIXES: [&str; 11] = [
        ".service",
        ".socket",
        ".target",
        ".device",
        ".mount",
        ".automount",
        ".swap",
        ".timer",
        ".path",
        ".slice",
        ".scope",
    ];
    name.len() <= 255
        && !name.starts_with('-')
        && SUFFIXES
            .iter()
            .any(|s| name.len() > s.len() && name.ends_with(s))
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// Longest a final screen may stay.
pub const FINAL_SCREEN_MAX: u64 = 600;

/// Longest ui-title and ui-footer: one line of a screen.
pub const UI_TEXT_MAX: usize = 200;

/// The one message for a number outside its range.
fn out_of_range(key: &str, value: &str, min: u64, max: u64) -> String {
    format!("{key} = {value} is out of range: give a whole number from {min} to {max}")
}

/// A number in RANGES that serde refused (negative, too large for the
/// field's type, not a number): the range it wants.
fn bad_number(key: &str, value: &str, msg: &str) -> Option<String> {
    let (_, min, max) = RANGES.iter().find(|(k, _, _)| *k == key)?;
    Some(if value.parse::<i128>().is_ok() {
        out_of_range(key, value, *min, *max)
    } else {
        format!("{key}: {msg}; give a whole number from {min} to {max}")
    })
}

/// The keys that take `true` or `false`.
const SWITCHES: [&str; 3] = ["keep-update", "require-signature", "probation"];

/// toml's "string values must be quoted" for `key = word`, said for what
/// the key wants: a switch wants true or false, a text wants quotes.
fn unquoted(key: &str, word: &str) -> String {
    if SWITCHES.contains(&key) {
        format!("{key} = {word}: give true or false (without quotes)")
    } else {
        format!("{key} = {word}: put text in quotes: {key} = \"{word}\"")
    }
}

/// toml's message with the line and key it is about: "invalid type: string
/// \"1h\", expected u64" alone does not say which key.
fn located(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return msg;
    };
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text[start..].lines().next().unwrap_or("");
    let Some((key, value)) = line
        .split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, _)| !k.is_empty())
    else {
        return format!("line {line_no}: {msg}");
    };
    if msg.contains("must be quoted") {
        return format!("line {line_no}, {}", unquoted(key, value));
    }
    if let Some(said) = bad_number(key, value, &msg) {
        return format!("line {line_no}, {said}");
    }
    if msg.contains(key) {
        format!("line {line_no}: {msg}")
    } else {
        format!("line {line_no}, {key}: {msg}")
    }
}

impl Config {
    /// The numbers in RANGES' order, widened without loss.
    fn numbers(&self) -> [u64; 12] {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        [
            u64::from(self.attempt_limit),
            wide(self.keep_snapshots),
            wide(self.keep_failed),
            wide(self.keep_results),
            self.stall_timeout,
            self.final_screen_success,
            self.final_screen_failure,
            self.health_timeout,
            u64::from(self.probation_boots),
            u64::from(self.fleet_slots),
            u64::from(self.min_battery),
            self.reboot_warning,
        ]
    }

    /// Each number within its range (RANGES): before any of them reaches
    /// a deadline, a loop or a count.
    fn check_numbers(&self) -> Result<(), String> {
        for ((key, min, max), v) in RANGES.iter().zip(self.numbers()) {
            if !(*min..=*max).contains(&v) {
                return Err(out_of_range(key, &v.to_string(), *min, *max));
            }
        }
        Ok(())
    }

    /// Bounds on a backend's program from this configuration.
    pub fn backend_limits(&self) -> crate::backend::process::Limits {
        crate::backend::process::Limits {
            stall: (self.stall_timeout > 0)
                .then(|| std::time::Duration::from_secs(self.stall_timeout)),
        }
    }

    /// Reads the config file under `root`, every link on the way resolved
    /// inside it; a missing file means defaults.
    pub fn load(root: &Root) -> anyhow::Result<Config> {
        let cannot = |path: &Path| format!("{}: cannot read", path.display());
        let inside = Path::new(paths::CONFIG_FILE);
        let path = root.host(inside);
        let max = crate::untrusted::CONFIG_MAX;
        let text = match crate::untrusted::read_text_in(root, inside, max, true) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(Config::default()),
            Err(crate::untrusted::UntrustedError::Io { path, source }) => {
                return Err(source).with_context(|| cannot(&path))
            }
            // It names the path itself.
            Err(e) => anyhow::bail!("{e}; fix or remove the file"),
        };
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Config> {
        let invalid = |message: String| {
            anyhow::anyhow!("{}: {message}; fix or remove the file", path.display())
        };
        let config: Config = toml::from_str(text).map_err(|e| invalid(located(text, &e)))?;
        if !config.update_dir.is_absolute() {
            return Err(invalid(format!(
                "update-dir {:?} must be an absolute path",
                config.update_dir
            )));
        }
        // Normalised before it is judged: "/var/.." is "/".
        let update_dir = paths::normalize(&config.update_dir);
        if let Some(why) = crate::updatedir::unsuitable(&update_dir) {
            return Err(invalid(format!(
                "update-dir {:?} (that is {}) cannot be the update directory: {why}; \
                 choose a directory of its own such as /var/lib/system-update",
                config.update_dir,
                update_dir.display()
            )));
        }
        config.check_numbers().map_err(invalid)?;
        for (key, v) in [
            ("ui-title", &config.ui_title),
            ("ui-footer", &config.ui_footer),
        ] {
            if v.as_ref()
                .is_some_and(|t| t.chars().count() > UI_TEXT_MAX || t.contains('\n'))
            {
                return Err(invalid(format!(
                    "{key} must be one line of at most {UI_TEXT_MAX} characters"
                )));
            }
        }
        for unit in std::iter::once(&config.health_target).chain(&config.must_run) {
            if !is_unit_name(unit) {
                return Err(invalid(format!(
                    "{unit:?} is not a unit name: give names such as \"multi-user.target\" or \"nginx.service\""
                )));
            }
        }
        check_windows(&config.window).map_err(invalid)?;
        if let Some(a) = &config.ui_accent {
            if system_update_tui::fullscreen::Branding::parse_accent(a).is_none() {
                return Err(invalid(format!(
                    "ui-accent {a:?} is not a colour: give a name (blue, cyan, green, magenta, red, yellow, white, gray, light-blue, ...) or #rrggbb"
                )));
            }
        }
        check_fleet(&config).map_err(invalid)?;
        Ok(Config {
            update_dir,
            ..config
        })
    }
}

/// Most fleet endpoints; the longest one, and the longest group name.
const FLEET_ENDPOINTS_MAX: usize = 16;
const FLEET_TEXT_MAX: usize = 200;
const FLEET_GROUP_MAX: usize = 64;

/// fleet-endpoints are plain http URLs (no TLS stack in here), the group
/// a name that fits in an etcd key, metrics-file an absolute path.
fn check_fleet(c: &Config) -> Result<(), String> {
    if c.fleet_endpoints.len() > FLEET_ENDPOINTS_MAX {
        return Err(format!(
            "fleet-endpoints: at most {FLEET_ENDPOINTS_MAX} URLs"
        ));
    }
    for e in &c.fleet_endpoints {
        let host = e.strip_prefix("http://").unwrap_or("");
        if host.is_empty() || e.len() > FLEET_TEXT_MAX || !e.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "fleet-endpoints: {e:?} is not an etcd client URL: give http://HOST:PORT \
                 (https is not spoken: put a local TLS proxy in front of etcd)"
            ));
        }
    }
    let g = &c.fleet_group;
    if g.is_empty()
        || g.len() > FLEET_GROUP_MAX
        || !g
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        || g.starts_with('.')
    {
        return Err(format!(
            "fleet-group {g:?}: give a name of 1 to {FLEET_GROUP_MAX} letters, digits, '.', '_' or '-'"
        ));
    }
    if c.metrics_file
        .as_ref()
        .is_some_and(|p| !p.is_absolute() || p.as_os_str().len() > 4096)
    {
        return Err("metrics-file must be an absolute path, such as \
                    /var/lib/prometheus/node-exporter/system-update.prom"
            .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
