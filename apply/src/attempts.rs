//! The attempt counter in the update directory: counted and fsynced before
//! anything is touched, so a crash or power cut can never loop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::paths;
use crate::paths::Root;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub attempts: u32,
    /// The backend was started at least once: the package database may
    /// have been changed by us, so it no longer matches the prepare-time
    /// fingerprint.
    #[serde(default)]
    pub transaction_started: bool,
    /// The boot trees' fingerprint before the first transaction (boottree),
    /// kept across cut attempts; the way out compares it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_tree: Option<String>,
    /// The update's packages and their versions before the first
    /// transaction (a package not listed was not installed), kept across
    /// cut attempts: a cut can remove a package's old entry before its new
    /// one is written, and only this says it was there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<BTreeMap<String, String>>,
}

/// What a corrupt counter counts as: one attempt with the transaction
/// started, the worst case short of the limit, so recovery runs.
const CORRUPT: State = State {
    attempts: 1,
    transaction_started: true,
    boot_tree: None,
    before: None,
};

fn path(update_dir_host: &Path) -> PathBuf {
    update_dir_host.join(paths::STATE_NAME)
}

/// Reads the state; missing means no attempt yet. A corrupt file (the
/// atomic write makes it unlikely), or one that is no regular file of ours
/// (a FIFO, a device, a link: never opened through), counts as CORRUPT;
/// the next store replaces it.
pub fn load(update_dir_host: &Path) -> anyhow::Result<State> {
    use crate::untrusted::{self, UntrustedError};
    let p = path(update_dir_host);
    match untrusted::read_text(&p, untrusted::STATE_MAX, false) {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap_or(CORRUPT)),
        Err(e) if e.is_not_found() => Ok(State::default()),
        Err(UntrustedError::Io { source, .. }) => Err(source).context(p.display().to_string()),
        Err(e) => {
            tracing::warn!("{e}; counted as an interrupted attempt");
            Ok(CORRUPT)
        }
    }
}

/// Replaces the counter in `update_dir` (inside the root, resolved there).
pub fn store(root: &Root, update_dir: &Path, state: &State) -> anyhow::Result<()> {
    let p = path(&root.host(update_dir));
    let data = serde_json::to_vec(state).unwrap_or_default();
    crate::rooted::open_dir(root, update_dir)
        .and_then(|d| d.write(paths::STATE_NAME.as_ref(), &data, 0o644, None))
        .with_context(|| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_survives_garbage() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(d.path()).unwrap().attempts, 0);
        store(
            &Root::new(d.path()),
            Path::new("/"),
            &State {
                attempts: 2,
                transaction_started: false,
                ..State::default()
            },
        )
        .unwrap();
        assert_eq!(load(d.path()).unwrap().attempts, 2);
        std::fs::write(d.path().join(paths::STATE_NAME), b"xx").unwrap();
        assert_eq!(load(d.path()).unwrap().attempts, 1);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn store_then_load_round_trips(attempts in any::<u32>(), started in any::<bool>()) {
            let d = tempfile::tempdir().unwrap();
            let s = State { attempts, transaction_started: started, ..State::default() };
            store(&Root::new(d.path()), Path::new("/"), &s).unwrap();
            prop_assert_eq!(load(d.path()).unwrap(), s);
        }

        #[test]
        fn any_file_content_loads(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let d = tempfile::tempdir().unwrap();
            std::fs::write(d.path().join(paths::STATE_NAME), &bytes).unwrap();
            // Garbage counts as a started attempt, never as none.
            let s = load(d.path()).unwrap();
            if serde_json::from_slice::<State>(&bytes).is_err() {
                prop_assert_eq!(s, State { attempts: 1, transaction_started: true, ..State::default() });
            }
        }
    }
}
