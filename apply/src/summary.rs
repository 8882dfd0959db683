//! What `prepare`, `trigger` and `cancel` print once they are done: a line
//! for a person, or one JSON object (`--json`, schema in system-update(8))
//! for automation.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{AfterAction, RebootMode};
use crate::manifest::Manifest;
use crate::prepare::Cancelled;
use crate::result::JSON_FORMAT;
use crate::signature::Verified;
use system_update_events::text::count;

/// How the manifest is vouched for, as JSON says it.
#[derive(Serialize)]
struct Signature {
    signed: bool,
    /// The trusted key that verified it; unknown when it was just signed.
    key: Option<String>,
}

impl Signature {
    fn of(v: Option<&Verified>, just_signed: bool) -> Signature {
        match v {
            Some(Verified::Signed(k)) => Signature {
                signed: true,
                key: Some(k.to_string()),
            },
            _ => Signature {
                signed: just_signed,
                key: None,
            },
        }
    }
}

#[derive(Serialize)]
struct PreparedJson<'a> {
    format: u32,
    id: &'a str,
    title: &'a str,
    backend: String,
    files: Vec<&'a str>,
    update_dir: &'a Path,
    #[serde(flatten)]
    signature: Signature,
}

/// `prepare`: the update now in `update_dir`. `verified` is what an
/// import checked; `just_signed` that `--sign` signed it.
pub fn prepared(
    m: &Manifest,
    update_dir: &Path,
    verified: Option<&Verified>,
    just_signed: bool,
    json: bool,
) -> String {
    if json {
        return to_json(&PreparedJson {
            format: JSON_FORMAT,
            id: &m.id,
            title: &m.title,
            backend: m.backend.to_string(),
            files: m.files.iter().map(|f| f.name.as_str()).collect(),
            update_dir,
            signature: Signature::of(verified, just_signed),
        });
    }
    let how = match (verified, just_signed) {
        (Some(v), _) => format!(", {v}"),
        (None, true) => ", signed".to_string(),
        (None, false) => String::new(),
    };
    format!(
        "Prepared {} ({}{how}): {} in {}. Run system-update trigger to apply it at the next boot.\n",
        m.title,
        m.id,
        count(m.files.len(), "file", "files"),
        update_dir.display()
    )
}

#[derive(Serialize)]
struct TriggeredJson<'a> {
    format: u32,
    id: &'a str,
    title: &'a str,
    #[serde(flatten)]
    signature: Signature,
    after_action: Option<&'static str>,
    reboot_mode: RebootMode,
    /// How the machine goes into the update now: soft-reboot, reboot, or
    /// none (`--no-reboot`, `--root`).
    now: &'static str,
}

/// `trigger`: what was armed and how the machine goes into it now.
pub struct Triggered<'a> {
    pub manifest: &'a Manifest,
    pub verified: &'a Verified,
    pub after: Option<AfterAction>,
    pub reboot_mode: RebootMode,
    pub now: &'static str,
}

pub fn triggered(t: &Triggered, json: bool) -> String {
    if json {
        return to_json(&TriggeredJson {
            format: JSON_FORMAT,
            id: &t.manifest.id,
            title: &t.manifest.title,
            signature: Signature::of(Some(t.verified), false),
            after_action: t.after.map(AfterAction::as_str),
            reboot_mode: t.reboot_mode,
            now: t.now,
        });
    }
    format!(
        "Triggered {} ({}): it is applied at the next boot.\n",
        t.manifest.title, t.verified
    )
}

#[derive(Serialize)]
struct CancelledJson<'a> {
    format: u32,
    removed_links: &'a [PathBuf],
    purged: Option<PurgedJson<'a>>,
}

#[derive(Serialize)]
struct PurgedJson<'a> {
    removed: Vec<String>,
    dir_removed: bool,
    left: &'a [String],
}

/// `cancel`: the links removed and, with `--purge`, the update's files.
pub fn cancelled(done: &Cancelled, update_dir: &Path, json: bool) -> String {
    if json {
        return to_json(&CancelledJson {
            format: JSON_FORMAT,
            removed_links: &done.links,
            purged: done.purged.as_ref().map(|p| PurgedJson {
                removed: p
                    .removed
                    .iter()
                    .filter_map(|f| f.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect(),
                dir_removed: p.dir_removed,
                left: &p.left,
            }),
        });
    }
    let mut out = String::new();
    for r in &done.links {
        out += &format!("Removed {}\n", r.display());
    }
    if let Some(p) = &done.purged {
        let dir = update_dir.display();
        if !p.removed.is_empty() {
            let n = count(p.removed.len(), "file", "files");
            out += &format!("Removed the prepared update ({n}) from {dir}\n");
        }
        if p.dir_removed {
            out += &format!("Removed {dir}\n");
        }
        if !p.left.is_empty() {
            out += &format!(
                "Left in {dir}, not part of the update: {}\n",
                p.left.join(", ")
            );
        }
    }
    if done.links.is_empty() && done.purged.as_ref().is_none_or(|p| p.removed.is_empty()) {
        out += "Nothing to cancel: no update of ours is triggered.\n";
    }
    out
}

fn to_json(v: &impl Serialize) -> String {
    // Serializing our own structs of strings and numbers cannot fail.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    s.push('\n');
    s
}
