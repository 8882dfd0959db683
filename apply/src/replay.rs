//! Replay protection for signed updates. A signature says who made an
//! update, not that it is still the one to install: an older signed update
//! (a known-vulnerable version, or one already applied) is as valid as the
//! newest. The manifest's `created` time is signed with it, so the newest
//! signed update applied here is remembered (`newest-signed` beside the
//! result record) and an import or trigger of one created no later is
//! refused unless the admin allows it (`prepare --from --allow-older`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Manifest;
use crate::paths::{self, Root};
use crate::signature::Verified;

const MARK_NAME: &str = "newest-signed";
const MARK_MAX: u64 = 4096;

/// The newest signed update applied on this root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    pub id: String,
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("update {id} was already applied here (signed, created {created}); nothing was changed: prepare a newer one, or give --allow-older to apply it again")]
    AlreadyApplied { id: String, created: String },
    #[error("update {id} (created {created}) is older than {newest_id} (created {newest_created}), the newest signed update applied here; nothing was changed: give --allow-older to go back to it")]
    Older {
        id: String,
        created: String,
        newest_id: String,
        newest_created: String,
    },
    #[error("update {id}: its created time {created:?} is not a UTC time (YYYY-MM-DDTHH:MM:SSZ), so it cannot be ordered against the updates applied here; give --allow-older to apply it anyway")]
    Unordered { id: String, created: String },
    #[error("{path}: {message}; it records the newest signed update applied here: restore it, or remove it to accept any signed update")]
    Mark { path: PathBuf, message: String },
}

pub fn mark_path(root: &Root) -> PathBuf {
    root.host(&Path::new(paths::RESULTS_DIR).join(MARK_NAME))
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the one form that orders as text.
fn is_utc_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

fn load(root: &Root) -> Result<Option<Mark>, ReplayError> {
    let path = mark_path(root);
    let bad = |message: String| ReplayError::Mark {
        path: path.clone(),
        message,
    };
    let inside = Path::new(paths::RESULTS_DIR).join(MARK_NAME);
    let text = match crate::untrusted::read_text_in(root, &inside, MARK_MAX, true) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    let mark: Mark = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if !is_utc_time(&mark.created) {
        return Err(bad(format!("created {:?} is not a UTC time", mark.created)));
    }
    Ok(Some(mark))
}

/// Refuses a signed update that is not newer than the newest signed one
/// applied here; unsigned updates are made on this machine and not
/// checked.
pub fn check(
    root: &Root,
    m: &Manifest,
    verified: &Verified,
    allow_older: bool,
) -> Result<(), ReplayError> {
    if allow_older || !matches!(verified, Verified::Signed(_)) {
        return Ok(());
    }
    if !is_utc_time(&m.created) {
        return Err(ReplayError::Unordered {
            id: m.id.clone(),
            created: m.created.clone(),
        });
    }
    let Some(newest) = load(root)? else {
        return Ok(());
    };
    if newest.id == m.id {
        return Err(ReplayError::AlreadyApplied {
            id: m.id.clone(),
            created: m.created.clone(),
        });
    }
    if m.created < newest.created {
        return Err(ReplayError::Older {
            id: m.id.clone(),
            created: m.created.clone(),
            newest_id: newest.id,
            newest_created: newest.created,
        });
    }
    Ok(())
}

/// After a signed update was applied: it is the newest now, unless a newer
/// one was applied before (an older one allowed by the admin).
pub fn advance(root: &Root, m: &Manifest) -> Result<(), ReplayError> {
    let path = mark_path(root);
    let io_err = |e: std::io::Error| ReplayError::Mark {
        path: path.clone(),
        message: e.to_string(),
    };
    if !is_utc_time(&m.created) {
        return Ok(());
    }
    if let Ok(Some(newest)) = load(root) {
        if newest.created > m.created {
            return Ok(());
        }
    }
    let mark = Mark {
        id: m.id.clone(),
        created: m.created.clone(),
    };
    let dir = crate::rooted::create_dir_all(root, Path::new(paths::RESULTS_DIR), 0o755)
        .map_err(io_err)?;
    let data = serde_json::to_vec(&mark).unwrap_or_default();
    dir.write(MARK_NAME.as_ref(), &data, 0o644, None)
        .map_err(io_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::KeyId;

    fn manifest(id: &str, created: &str) -> Manifest {
        let text = format!(
            "schema = 2\nid = \"{id}\"\ntitle = \"t\"\nbackend = \"command\"\ncreated = \"{created}\"\ncommand = [\"/bin/true\"]\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn utc_times() {
        assert!(is_utc_time("2026-12-06T03:05:25Z"));
        for bad in [
            "2026-12-06 03:05:25Z",
            "2026-12-06T03:05:25+01:00",
            "",
            "yesterday",
        ] {
            assert!(!is_utc_time(bad), "{bad}");
        }
    }

    #[test]
    fn older_and_same_are_refused_newer_and_unsigned_pass() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let signed = Verified::Signed(KeyId(1));
        let new = manifest("b", "2026-12-06T00:00:00Z");
        let old = manifest("a", "2026-11-01T00:00:00Z");
        check(&root, &old, &signed, false).unwrap();
        advance(&root, &new).unwrap();
        assert!(matches!(
            check(&root, &old, &signed, false),
            Err(ReplayError::Older { .. })
        ));
        assert!(matches!(
            check(&root, &new, &signed, false),
            Err(ReplayError::AlreadyApplied { .. })
        ));
        check(&root, &old, &signed, true).unwrap();
        check(&root, &old, &Verified::Unsigned, false).unwrap();
        check(
            &root,
            &manifest("c", "2026-12-07T00:00:00Z"),
            &signed,
            false,
        )
        .unwrap();
        // An older one applied by the admin's leave does not lower the mark.
        advance(&root, &old).unwrap();
        assert_eq!(load(&root).unwrap().unwrap().id, "b");
        let odd = manifest("d", "Sunday");
        assert!(matches!(
            check(&root, &odd, &signed, false),
            Err(ReplayError::Unordered { .. })
        ));
    }

    #[test]
    fn a_broken_mark_refuses_signed_updates() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let p = mark_path(&root);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "{").unwrap();
        let e = check(
            &root,
            &manifest("a", "2026-11-01T00:00:00Z"),
            &Verified::Signed(KeyId(1)),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("newest-signed"), "{e}");
    }
}
