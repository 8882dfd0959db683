//! The result record: what happened to the last update, kept outside the
//! update directory so it outlives it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::paths::{self, Root};
use crate::snapshot::SnapshotRecord;

pub use system_update_events::{Outcome, PackageChange};

/// Version of the JSON this program writes (result records, `status`,
/// `results`, `history`, `log`): raised whenever a key changes meaning or
/// goes away. Keys are snake_case. The schema is in system-update(8).
pub const JSON_FORMAT: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultRecord {
    /// JSON_FORMAT of the program that wrote the record (0: before formats).
    #[serde(default)]
    pub format: u32,
    pub id: Option<String>,
    pub title: Option<String>,
    pub backend: Option<String>,
    pub outcome: Outcome,
    /// A SIGTERM/SIGINT/SIGHUP arrived; the transaction was finished first.
    pub stop_requested: bool,
    pub packages: Vec<PackageChange>,
    pub started: String,
    pub finished: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
    /// The backend's full output (path inside the root).
    pub log: Option<PathBuf>,
    /// The snapshot taken before the transaction and what became of it.
    #[serde(default)]
    pub snapshot: Option<SnapshotRecord>,
    /// How the machine came into the update and how it left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legs: Option<crate::legs::Legs>,
    /// The first boot after the update: on probation, confirmed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation: Option<ProbationRecord>,
}

/// What the result record says of the probation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Waiting for the first boot to be confirmed.
    Pending,
    Confirmed,
    /// Not confirmed, and no snapshot to go back to: reported only.
    Failed,
    /// Not confirmed; the rollback follows at the next boot.
    RollingBack,
    /// Not confirmed; the pre-update snapshot was put back.
    RolledBack,
    /// `probation = false` when the boot came: not checked.
    Off,
}

/// The probation's part of the result record (probation.rs writes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct ProbationRecord {
    pub verdict: Verdict,
    pub boots: u32,
    pub limit: u32,
    /// The target that was waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why the boot was not confirmed (a failed unit's name), or why
    /// there is no rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the verdict was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl ProbationRecord {
    pub fn describe(&self) -> String {
        let v = match self.verdict {
            Verdict::Pending => "pending",
            Verdict::Confirmed => "confirmed",
            Verdict::Failed => "not confirmed",
            Verdict::RollingBack => "not confirmed, rolling back at the next boot",
            Verdict::RolledBack => "not confirmed, rolled back",
            Verdict::Off => "off",
        };
        let mut s = format!("{v} (boot {} of at most {})", self.boots, self.limit);
        if let Some(t) = &self.target {
            s += &format!(", health target {t}");
        }
        if let Some(r) = &self.reason {
            s += &format!(": {r}");
        }
        s
    }
}

impl ResultRecord {
    /// The one builder of a record: begun at `started`, `interrupted`
    /// until something says otherwise (a power cut leaves a true record).
    pub fn begun(id: Option<String>, title: Option<String>, started: String) -> ResultRecord {
        ResultRecord {
            format: JSON_FORMAT,
            id,
            title,
            backend: None,
            outcome: Outcome::Interrupted,
            stop_requested: false,
            packages: Vec::new(),
            started,
            finished: None,
            attempts: 0,
            error: None,
            log: None,
            snapshot: None,
            legs: None,
            probation: None,
        }
    }
}

/// What a record's error says when the disk was full: the words of
/// ENOSPC, which is what every tool prints then.
pub const DISK_FULL: &str = "No space left on device";

/// What to do about a full disk, for `results` and `status`.
pub const DISK_FULL_ADVICE: &str = "free some space on the root file system, then prepare the update again (system-update prepare --force)";

/// A failure's error on a full disk: what was said and the cause.
pub fn disk_full_error(said: &str, root: &Path, free: u64) -> String {
    let said = said.trim_end_matches('.');
    let sep = if said.is_empty() { "" } else { ". " };
    let cause = if said.contains(DISK_FULL) {
        String::new()
    } else {
        format!("{DISK_FULL} (ENOSPC), ")
    };
    format!(
        "{said}{sep}The disk was full: {cause}{} free on {}",
        crate::space::human(free),
        root.display()
    )
}

impl ResultRecord {
    /// A failure because the disk was full.
    pub fn disk_full(&self) -> bool {
        self.outcome != Outcome::Success
            && self.error.as_deref().is_some_and(|e| e.contains(DISK_FULL))
    }
}

/// The reader may not read it (EACCES): a question of who asks, not a
/// bad record.
pub fn is_denied(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::PermissionDenied)
    })
}

pub fn path(root: &Root) -> PathBuf {
    root.host(&Path::new(paths::RESULTS_DIR).join(paths::RESULT_NAME))
}

pub fn load(root: &Root) -> anyhow::Result<Option<ResultRecord>> {
    let inside = Path::new(paths::RESULTS_DIR).join(paths::RESULT_NAME);
    match crate::untrusted::read_text_in(root, &inside, crate::untrusted::STATE_MAX, false) {
        Ok(text) => parse(root, &inside, &text).map(Some),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One record (`last.json`, `history/*.json`) at `inside` the root, read as
/// every state file is: a regular file, no link followed at its end and
/// every one on the way resolved inside the root, never blocking on a FIFO,
/// at most untrusted::STATE_MAX bytes.
pub fn read(root: &Root, inside: &Path) -> anyhow::Result<ResultRecord> {
    let text = crate::untrusted::read_text_in(root, inside, crate::untrusted::STATE_MAX, false)?;
    parse(root, inside, &text)
}

fn parse(root: &Root, inside: &Path, text: &str) -> anyhow::Result<ResultRecord> {
    serde_json::from_str(text).map_err(|e| {
        let path = root.host(inside);
        anyhow::anyhow!("{}: unreadable result record: {e}", path.display())
    })
}

/// Several lines for people, every one made safe for a terminal: titles,
/// errors and versions come from manifests and maintainer scripts, and an
/// escape sequence in them must not reach the admin's terminal.
pub fn describe(r: &ResultRecord) -> String {
    system_update_events::text::clean_lines(&describe_raw(r))
}

fn describe_raw(r: &ResultRecord) -> String {
    let mut s = format!(
        "Last update: {} ({})\n  outcome:  {}{}\n  started:  {}\n  finished: {}\n  attempts: {}\n",
        r.title.as_deref().unwrap_or("unknown"),
        r.id.as_deref().unwrap_or("no id"),
        r.outcome.as_str(),
        if r.stop_requested {
            " (a stop was asked for)"
        } else {
            ""
        },
        r.started,
        r.finished.as_deref().unwrap_or("-"),
        r.attempts
    );
    if let Some(e) = &r.error {
        s += &format!("  error:    {e}\n");
    }
    if r.disk_full() {
        s += &format!("  to do:    {DISK_FULL_ADVICE}\n");
    }
    if let Some(l) = &r.log {
        s += &format!("  log:      {}\n", l.display());
    }
    if let Some(snap) = &r.snapshot {
        s += &describe_snapshot(snap);
    }
    // Nothing to say of a run that rebooted nothing (--root, --no-reboot).
    if let Some(l) = r
        .legs
        .as_ref()
        .filter(|l| l.enter.is_some() || l.leave.is_some_and(|v| v != crate::legs::Leg::None))
    {
        let leg = |l: Option<crate::legs::Leg>| l.map_or("-", |l| l.as_str());
        s += &format!(
            "  legs:     in by {}, out by {}",
            leg(l.enter),
            leg(l.leave)
        );
        match &l.leave_why {
            Some(w) => s += &format!(" ({w})\n"),
            None => s.push('\n'),
        }
    }
    if let Some(p) = &r.probation {
        s += &format!("  probation: {}\n", p.describe());
    }
    for p in &r.packages {
        s += &format!(
            "  {} {} -> {}",
            p.name,
            p.before.as_deref().unwrap_or("(none)"),
            p.after.as_deref().unwrap_or("(none)")
        );
        // Said only when it is not what the arrow suggests.
        match p.state.as_deref() {
            None | Some("installed" | "removed" | "not-installed") => s.push('\n'),
            Some(st) => s += &format!(" ({st})\n"),
        }
    }
    s
}

/// The record's snapshot lines.
fn describe_snapshot(snap: &SnapshotRecord) -> String {
    let mut s = String::new();
    s += &match (&snap.name, snap.rolled_back) {
        (Some(name), true) => match &snap.failed_state {
            Some(f) => format!(
                "  snapshot: {name} ({}); rolled back, the failed state is kept as {f}\n",
                snap.provider
            ),
            None => format!(
                "  snapshot: {name} ({}); rolled back, the failed state is not kept\n",
                snap.provider
            ),
        },
        (Some(name), false) => format!("  snapshot: {name} ({})\n", snap.provider),
        (None, _) => String::new(),
    };
    s += &match (snap.snapper_pre, snap.snapper_post) {
        (Some(pre), Some(post)) => {
            format!("  snapper:  pre {pre}, post {post} (snapper status {pre}..{post})\n")
        }
        (Some(pre), None) => format!("  snapper:  pre {pre}, no post snapshot\n"),
        _ => String::new(),
    };
    if let Some(note) = &snap.note {
        s += &format!("  snapshot: {note}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_named_once_and_says_what_to_do() {
        let e = disk_full_error("dpkg exited with status 2.", Path::new("/"), 1 << 20);
        assert_eq!(
            e,
            "dpkg exited with status 2. The disk was full: No space left on device (ENOSPC), 1.0 MiB free on /"
        );
        let e = disk_full_error("x: No space left on device", Path::new("/"), 0);
        assert_eq!(
            e,
            "x: No space left on device. The disk was full: 0 B free on /"
        );
        let mut r = ResultRecord::begun(Some("u1".into()), None, "then".into());
        r.outcome = Outcome::Failure;
        r.error = Some(e);
        assert!(r.disk_full());
        let text = describe(&r);
        assert!(
            text.contains(&format!("  to do:    {DISK_FULL_ADVICE}\n")),
            "{text}"
        );
        r.outcome = Outcome::Success;
        assert!(!r.disk_full());
        r.outcome = Outcome::Failure;
        r.error = Some("dpkg exited with status 1".into());
        assert!(!describe(&r).contains("to do:"));
    }

    #[test]
    fn outcome_names_match_serde() {
        for o in [
            Outcome::Success,
            Outcome::Failure,
            Outcome::Interrupted,
            Outcome::VerificationFailed,
            Outcome::Stale,
            Outcome::RolledBackAfterBoot,
            Outcome::Deferred,
        ] {
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
    }
}
