//! `local.json` beside the manifest: what belongs to this machine and not
//! to the update, so the (possibly signed) manifest is never rewritten. The
//! package database's fingerprint is taken here when the update is prepared
//! or imported; the after-action is chosen at `trigger`.
//!
//! Not in attempts.json: that one is reset at every trigger and a corrupt
//! copy must count as an attempt, while a missing or corrupt local state
//! must make an update of a backend with a database stale (nothing installed).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{AfterAction, RebootMode};
use crate::paths;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LocalState {
    /// The package database's fingerprint when the update was prepared or
    /// imported on this machine (backends with a database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_fingerprint: Option<String>,
    /// Chosen at trigger (--reboot, --poweroff); else the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_action: Option<AfterAction>,
    /// The directory `prepare --from` imported the update from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<PathBuf>,
    /// Chosen at trigger (--reboot-mode); else the config's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reboot_mode: Option<RebootMode>,
    /// The kernel's boot id when `trigger` sent the machine into the update:
    /// the same at apply means it came by soft-reboot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_boot_id: Option<String>,
    /// The admin allowed a signed update no newer than the newest applied
    /// here (`prepare --from --allow-older`; see replay).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_older: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}: missing; prepare the update again (system-update prepare, or prepare --from)")]
    Missing(PathBuf),
    #[error("{path}: unreadable ({message}); prepare the update again")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub fn path(update_dir_host: &Path) -> PathBuf {
    update_dir_host.join(paths::LOCAL_NAME)
}

/// Small JSON; anything larger than this is not ours.
const MAX_SIZE: u64 = 64 * 1024;

/// Read as every state file is (untrusted::read_text): a FIFO, a device
/// or a link there is refused as invalid, never opened through.
pub fn load(update_dir_host: &Path) -> Result<LocalState, LocalError> {
    use crate::untrusted::{self, UntrustedError};
    let p = path(update_dir_host);
    let text = match untrusted::read_text(&p, MAX_SIZE, false) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Err(LocalError::Missing(p)),
        Err(UntrustedError::Io { source, .. }) => return Err(LocalError::Io { path: p, source }),
        Err(e) => {
            return Err(LocalError::Invalid {
                path: p,
                message: e.without_path(),
            })
        }
    };
    serde_json::from_str(&text).map_err(|e| LocalError::Invalid {
        path: p,
        message: e.to_string(),
    })
}

/// Replaces `local.json` in `dir`, the update directory.
pub fn store(dir: &crate::rooted::Dir, state: &LocalState) -> anyhow::Result<()> {
    use anyhow::Context;
    let data = serde_json::to_vec_pretty(state).unwrap_or_default();
    dir.write(paths::LOCAL_NAME.as_ref(), &data, 0o644, None)
        .with_context(|| dir.shown(paths::LOCAL_NAME).display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_missing_and_garbage() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(load(d.path()), Err(LocalError::Missing(_))));
        let s = LocalState {
            db_fingerprint: Some("sha256:ab".into()),
            after_action: Some(AfterAction::Poweroff),
            imported_from: Some("/media/usb/update".into()),
            reboot_mode: Some(crate::config::RebootMode::AlwaysReboot),
            triggered_boot_id: Some("0e1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d".into()),
            allow_older: true,
        };
        store(&dir_of(d.path()), &s).unwrap();
        assert_eq!(load(d.path()).unwrap(), s);
        std::fs::write(path(d.path()), b"{\"db-fingerprint\": 3}").unwrap();
        assert!(matches!(load(d.path()), Err(LocalError::Invalid { .. })));
    }
}

#[cfg(test)]
fn dir_of(p: &Path) -> crate::rooted::Dir {
    crate::rooted::open_dir(&crate::paths::Root::new(p), Path::new("/")).unwrap()
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_file_content_loads_or_says_why(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(path(d.path()), &bytes).unwrap();
            if let Err(e) = load(d.path()) {
                prop_assert!(e.to_string().contains("local.json"), "{}", e);
            }
        }

        #[test]
        fn store_then_load_round_trips(fp in proptest::option::of("sha256:[0-9a-f]{64}")) {
            let d = tempfile::tempdir().unwrap();
            let s = LocalState { db_fingerprint: fp, ..LocalState::default() };
            store(&dir_of(d.path()), &s).unwrap();
            prop_assert_eq!(load(d.path()).unwrap(), s);
        }
    }
}
