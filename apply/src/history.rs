//! The history of updates: a copy of every update's result record, one file
//! per update, beside `last.json`, pruned to the newest `keep-results`; and
//! each update's log, as `system-update history` and `system-update log`
//! show them (what `dnf5 offline log` and `pkcon offline-get-results` give).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::paths::{self, Root};
use crate::result::{self, ResultError, ResultRecord};
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
fn store(root: &Root, rec: &ResultRecord, data: &[u8]) -> Result<(), ResultError> {
    let name = file_name(rec);
    let p = dir(root).join(&name);
    let io_err = |source| ResultError::Io {
        path: p.clone(),
        source,
    };
    let d = rooted::create_dir_all(root, &inside_dir(), 0o755).map_err(io_err)?;
    let group = atomic::log_group(root);
    d.write(name.as_ref(), data, atomic::private_mode(group), group)
        .map_err(io_err)
}

/// The results directory, made when missing.
fn results_dir(root: &Root) -> std::io::Result<rooted::Dir> {
    rooted::create_dir_all(root, Path::new(paths::RESULTS_DIR), 0o755)
}

/// The record as the last result (`last.json`) and as its entry in the
/// history, so the history always holds what `last.json` says.
pub fn keep(root: &Root, record: &ResultRecord) -> Result<(), ResultError> {
    let p = result::path(root);
    let io_err = |source| ResultError::Io {
        path: p.clone(),
        source,
    };
    let d = results_dir(root).map_err(io_err)?;
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
    .map_err(io_err)?;
    store(root, record, &data)
}

/// As `keep`, written into two parts of the space reserve (the record
/// and its history copy): for a disk filled since the transaction began.
pub fn keep_reserved(root: &Root, record: &ResultRecord) -> Result<(), ResultError> {
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
        let shown = root.host(&inside).join(&name);
        let io_err = |source| ResultError::Io {
            path: shown.clone(),
            source,
        };
        let spare = crate::reserve::take(root)
            .ok_or_else(|| io_err(io::Error::other("no space reserved for it is left")))?;
        let results = results_dir(root).map_err(io_err)?;
        let d = rooted::create_dir_all(root, &inside, 0o755).map_err(io_err)?;
        let mode = atomic::private_mode(group);
        d.write_over(
            name.as_ref(),
            (&results, spare.as_ref()),
            &data,
            mode,
            group,
        )
        .map_err(io_err)?;
    }
    Ok(())
}

/// Every record in the history, newest first, with its file. A record that
/// cannot be read is skipped with a warning: one bad file must not hide the
/// others.
pub fn list(root: &Root) -> Result<Vec<(PathBuf, ResultRecord)>, ResultError> {
    let d = dir(root);
    let inside = Path::new(paths::RESULTS_DIR).join(HISTORY_DIR);
    let names = match record_names(root, &inside) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ResultError::Io { path: d, source }),
    };
    let mut out = Vec::new();
    for name in names {
        let p = d.join(&name);
        match crate::result::read(root, &inside.join(&name)) {
            Ok(r) => out.push((p, r)),
            // Not a bad file but a reader without the right: skipping
            // every record would say no update was ever applied.
            Err(e) if e.is_denied() => return Err(e),
            Err(e) => tracing::warn!("{e}; skipped"),
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
pub fn prune(root: &Root, keep: usize) -> Result<Vec<PathBuf>, ResultError> {
    let mut removed = Vec::new();
    let old: Vec<_> = list(root)?.into_iter().skip(keep).collect();
    if old.is_empty() {
        return Ok(removed);
    }
    let d = rooted::open_dir(root, &inside_dir()).map_err(|source| ResultError::Io {
        path: dir(root),
        source,
    })?;
    for (p, _) in old {
        let name = p.file_name().unwrap_or_default();
        d.remove(name).map_err(|source| ResultError::Io {
            path: p.clone(),
            source,
        })?;
        removed.push(p);
    }
    Ok(removed)
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Result(#[from] ResultError),
    #[error("no update {0:?} in the history; system-update history lists them")]
    UnknownId(String),
    #[error("no update has been applied yet")]
    Empty,
    #[error("update {0} kept no log")]
    NoLog(String),
    #[error("{0}: the record names a log outside {dir}; not reading it", dir = paths::LOG_DIR)]
    LogOutside(PathBuf),
    #[error("{path}: cannot read the log: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The record of update `id`, or of the newest update.
pub fn find(root: &Root, id: Option<&str>) -> Result<ResultRecord, HistoryError> {
    let all = list(root)?;
    match id {
        None => all
            .into_iter()
            .next()
            .map(|(_, r)| r)
            .ok_or(HistoryError::Empty),
        Some(id) => all
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| r.id.as_deref() == Some(id))
            .ok_or_else(|| HistoryError::UnknownId(id.to_string())),
    }
}

/// An update's log, as a person may read it on a terminal: every line with
/// escapes and control characters taken out (maintainer scripts print what
/// they like), at most LOG_PRINT_MAX bytes of it.
pub fn log_text(root: &Root, rec: &ResultRecord) -> Result<(PathBuf, Vec<String>), HistoryError> {
    let name = rec.id.clone().unwrap_or_else(|| "without an id".into());
    let inside = rec.log.clone().ok_or(HistoryError::NoLog(name))?;
    let normal = paths::normalize(&inside);
    if !normal.starts_with(paths::LOG_DIR) || normal == Path::new(paths::LOG_DIR) {
        return Err(HistoryError::LogOutside(inside));
    }
    let host = root.host(&normal);
    let log_err = |source| HistoryError::Log {
        path: host.clone(),
        source,
    };
    // Opened as every state file is: a FIFO or a link to a device there
    // must neither hang nor flood us, and no link leads out of the root.
    let (f, md) =
        crate::untrusted::open_regular_in(root, &normal, false).map_err(|e| HistoryError::Log {
            path: host.clone(),
            source: std::io::Error::other(e.without_path()),
        })?;
    let size = md.len();
    let mut bytes = Vec::new();
    f.take(LOG_PRINT_MAX)
        .read_to_end(&mut bytes)
        .map_err(log_err)?;
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
