//! The history of updates: a copy of every update's result record, one file
//! per update, beside `last.json`, pruned to the newest `keep-results`; and
//! each update's log, as `system-update history` and `system-update log`
//! show them (what `dnf5 offline log` and `pkcon offline-get-results` give).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::atomic;
use crate::paths::{self, Root};
use crate::result::{self, ResultRecord};
use crate::rooted;

/// Under the results directory.
pub const HISTORY_DIR: &str = "history";

/// A log is printed whole up to this size; the rest is summed up in a line
/// (the log itself keeps its head and tail within a cap of its own).
const LOG_PRINT_MAX: u64 = 32 << 20;

fn dir(root: &Root) -> PathBuf {
    root.host(&Path::new(paths::RESULTS_DIR).join(HISTORY_DIR))
}

/// The record's file name: its id when that is a plain name (the manifest's
/// id rules make it one), else its start time, which a record always has.
fn file_name(rec: &ResultRecord) -> String {
    let plain = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && !s.starts_with(['.', '-'])
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    match rec.id.as_deref() {
        Some(id) if plain(id) => format!("{id}.json"),
        _ => {
            let stamp: String = rec
                .started
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(32)
                .collect();
            format!("no-id-{stamp}.json")
        }
    }
}

fn inside_dir() -> PathBuf {
    Path::new(paths::RESULTS_DIR).join(HISTORY_DIR)
}

/// Writes (or replaces) `rec`'s entry.
fn store(root: &Root, rec: &ResultRecord, data: &[u8]) -> anyhow::Result<()> {
    let name = file_name(rec);
    let p = dir(root).join(&name);
    let shown = || p.display().to_string();
    let d = rooted::create_dir_all(root, &inside_dir(), 0o755).with_context(shown)?;
    let group = atomic::log_group(root);
    d.write(name.as_ref(), data, atomic::private_mode(group), group)
        .with_context(shown)
}

/// The results directory, made when missing.
fn results_dir(root: &Root) -> std::io::Result<rooted::Dir> {
    rooted::create_dir_all(root, Path::new(paths::RESULTS_DIR), 0o755)
}

/// The record as the last result (`last.json`) and as its entry in the
/// history, so the history always holds what `last.json` says.
pub fn keep(root: &Root, record: &ResultRecord) -> anyhow::Result<()> {
    let p = result::path(root);
    let shown = || p.display().to_string();
    let d = results_dir(root).with_context(shown)?;
    let mut data = serde_json::to_vec_pretty(record).unwrap_or_default();
    data.push(b'\n');
    // Records quote errors, which quote maintainer scripts: not for everyone.
    let group = atomic::log_group(root);
    d.write(
        paths::RESULT_NAME.as_ref(),
        &data,
        atomic::private_mode(group),
        group,
    )
    .with_context(shown)?;
    store(root, record, &data)
}

/// As `keep`, written into two parts of the space reserve (the record
/// and its history copy): for a disk filled since the transaction began.
pub fn keep_reserved(root: &Root, record: &ResultRecord) -> anyhow::Result<()> {
    let mut data = serde_json::to_vec_pretty(record).unwrap_or_default();
    data.push(b'\n');
    let group = atomic::log_group(root);
    let targets = [
        (
            PathBuf::from(paths::RESULTS_DIR),
            paths::RESULT_NAME.to_string(),
        ),
        (inside_dir(), file_name(record)),
    ];
    for (inside, name) in targets {
        let target = root.host(&inside).join(&name);
        let shown = || target.display().to_string();
        let Some(spare) = crate::reserve::take(root) else {
            anyhow::bail!("{}: no space reserved for it is left", target.display());
        };
        let results = results_dir(root).with_context(shown)?;
        let d = rooted::create_dir_all(root, &inside, 0o755).with_context(shown)?;
        let mode = atomic::private_mode(group);
        d.write_over(
            name.as_ref(),
            (&results, spare.as_ref()),
            &data,
            mode,
            group,
        )
        .with_context(shown)?;
    }
    Ok(())
}

/// Every record in the history, newest first, with its file. A record that
/// cannot be read is skipped with a warning: one bad file must not hide the
/// others.
pub fn list(root: &Root) -> anyhow::Result<Vec<(PathBuf, ResultRecord)>> {
    let d = dir(root);
    let inside = Path::new(paths::RESULTS_DIR).join(HISTORY_DIR);
    let names = match record_names(root, &inside) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| d.display().to_string()),
    };
    let mut out = Vec::new();
    for name in names {
        let p = d.join(&name);
        match crate::result::read(root, &inside.join(&name)) {
            Ok(r) => out.push((p, r)),
            // Not a bad file but a reader without the right: skipping
            // every record would say no update was ever applied.
            Err(e) if result::is_denied(&e) => return Err(e),
            Err(e) => tracing::warn!("{}; skipped", crate::oneline::of(e.as_ref())),
        }
    }
    // RFC 3339 times in UTC sort as text. Two updates in the same second
    // (a test, a quick retry) are told apart by when their record was last
    // written, not by the id, whose PID part does not grow with time.
    let hist = rooted::open_dir(root, &inside).ok();
    let written = |p: &Path| {
        let name = p.file_name().unwrap_or_default();
        hist.as_ref()
            .and_then(|h| h.lstat(name).ok())
            .map_or((0, 0), |st| (st.st_mtime, st.st_mtime_nsec))
    };
    let mut keyed: Vec<_> = out.into_iter().map(|(p, r)| (written(&p), p, r)).collect();
    keyed.sort_by(|(wa, _, a), (wb, _, b)| (&b.started, wb).cmp(&(&a.started, wa)));
    Ok(keyed.into_iter().map(|(_, p, r)| (p, r)).collect())
}

/// The `*.json` names in the history directory, listed through a
/// descriptor opened inside the root: a link on the way (the directory
/// itself, or one above it) never lists a directory of the host.
fn record_names(root: &Root, inside: &Path) -> std::io::Result<Vec<String>> {
    use nix::fcntl::OFlag;
    let fd = root.open_in(inside, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut dir = nix::dir::Dir::from_fd(fd.into())?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Regular files are told by their reader; names decide here.
        if name.ends_with(".json") && paths::is_plain_name(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Keeps the newest `keep` records; returns the files removed.
pub fn prune(root: &Root, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let old: Vec<_> = list(root)?.into_iter().skip(keep).collect();
    if old.is_empty() {
        return Ok(removed);
    }
    let d =
        rooted::open_dir(root, &inside_dir()).with_context(|| dir(root).display().to_string())?;
    for (p, _) in old {
        let name = p.file_name().unwrap_or_default();
        d.remove(name).with_context(|| p.display().to_string())?;
        removed.push(p);
    }
    Ok(removed)
}

/// The record of update `id`, or of the newest update.
pub fn find(root: &Root, id: Option<&str>) -> anyhow::Result<ResultRecord> {
    let all = list(root)?;
    match id {
        None => all
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow::anyhow!("no update has been applied yet")),
        Some(id) => all
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.id.as_deref() == Some(id))
            .ok_or_else(|| {
                anyhow::anyhow!("no update {id:?} in the history; system-update history lists them")
            }),
    }
}

/// An update's log, as a person may read it on a terminal: every line with
/// escapes and control characters taken out (maintainer scripts print what
/// they like), at most LOG_PRINT_MAX bytes of it.
pub fn log_text(root: &Root, rec: &ResultRecord) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let name = rec.id.as_deref().unwrap_or("without an id");
    let Some(inside) = rec.log.clone() else {
        anyhow::bail!("update {name} kept no log");
    };
    let normal = paths::normalize(&inside);
    if !normal.starts_with(paths::LOG_DIR) || normal == Path::new(paths::LOG_DIR) {
        anyhow::bail!(
            "{}: the record names a log outside {}; not reading it",
            inside.display(),
            paths::LOG_DIR
        );
    }
    let host = root.host(&normal);
    let cannot = || format!("{}: cannot read the log", host.display());
    // Opened as every state file is: a FIFO or a link to a device there
    // must neither hang nor flood us, and no link leads out of the root.
    let (f, md) = crate::untrusted::open_regular_in(root, &normal, false)
        .map_err(|e| anyhow::anyhow!("{}: {}", cannot(), e.without_path()))?;
    let size = md.len();
    let mut bytes = Vec::new();
    f.take(LOG_PRINT_MAX)
        .read_to_end(&mut bytes)
        .with_context(cannot)?;
    let mut lines: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(system_update_events::text::clean)
        .collect();
    if size > LOG_PRINT_MAX {
        lines.push(format!(
            "[{} more bytes in {}]",
            size - LOG_PRINT_MAX,
            normal.display()
        ));
    }
    Ok((normal, lines))
}

/// `history` as text: one line per update, newest first.
pub fn describe(records: &[(PathBuf, ResultRecord)]) -> String {
    if records.is_empty() {
        return "No update has been applied yet.\n".into();
    }
    let clean = system_update_events::text::clean;
    let mut s = format!(
        "{:<24} {:<20} {:<19} {}\n",
        "ID", "STARTED", "OUTCOME", "TITLE"
    );
    for (_, r) in records {
        s += &format!(
            "{:<24} {:<20} {:<19} {}\n",
            clean(r.id.as_deref().unwrap_or("-")),
            clean(&r.started),
            r.outcome.as_str(),
            clean(r.title.as_deref().unwrap_or("-"))
        );
    }
    s
}
