//! `/etc/system-update.toml`: the admin's defaults.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::{self, Root};
use crate::snapshot::SnapshotChoice;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}; fix or remove the file")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

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

    pub fn ui(self) -> system_update_tui::AfterAction {
        match self {
            AfterAction::Reboot => system_update_tui::AfterAction::Reboot,
            AfterAction::Poweroff => system_update_tui::AfterAction::PowerOff,
            AfterAction::None => system_update_tui::AfterAction::None,
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
    /// Refuse updates without a valid signature by a trusted key.
    pub require_signature: bool,
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
            require_signature: false,
        }
    }
}

impl Config {
    /// Reads the config file under `root`; a missing file means defaults.
    pub fn load(root: &Root) -> Result<Config, ConfigError> {
        let path = root.host(Path::new(paths::CONFIG_FILE));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let config: Config =
            toml::from_str(text).map_err(|e| invalid(e.message().trim().to_string()))?;
        if !config.update_dir.is_absolute() || config.update_dir == Path::new("/") {
            return Err(invalid(format!(
                "update-dir {:?} must be an absolute directory other than /",
                config.update_dir
            )));
        }
        if config.attempt_limit == 0 {
            return Err(invalid("attempt-limit must be at least 1".into()));
        }
        Ok(Config {
            update_dir: paths::normalize(&config.update_dir),
            ..config
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_file() {
        let e = Config::parse("atempt-limit = 3\n", Path::new("/etc/system-update.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("atempt-limit"), "{e}");
        assert!(e.contains("/etc/system-update.toml"), "{e}");
    }

    #[test]
    fn full_file() {
        let c = Config::parse(
            "update-dir = \"/srv/up\"\nafter-action = \"poweroff\"\nui = \"plain\"\nattempt-limit = 1\n\
             snapshot = \"btrfs\"\nkeep-snapshots = 3\nkeep-failed = 0\nrequire-signature = true\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.update_dir, Path::new("/srv/up"));
        assert_eq!(c.after_action, AfterAction::Poweroff);
        assert_eq!(c.ui, UiChoice::Plain);
        assert_eq!(c.attempt_limit, 1);
        assert_eq!(c.snapshot, SnapshotChoice::Btrfs);
        assert_eq!(c.keep_snapshots, 3);
        assert_eq!(c.keep_failed, 0);
        assert!(c.require_signature);
    }

    #[test]
    fn empty_is_default() {
        assert_eq!(
            Config::parse("", Path::new("x")).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn relative_dir_and_zero_limit_refused() {
        assert!(Config::parse("update-dir = \"var/x\"\n", Path::new("x")).is_err());
        assert!(Config::parse("attempt-limit = 0\n", Path::new("x")).is_err());
    }
}
