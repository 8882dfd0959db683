//! `prepare` and `cancel`: the update directory's contents.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::atomic;
use crate::backend::{Action, BackendError, BackendKind, Request};
use crate::config::Config;
use crate::local::{self, LocalState};
use crate::lock::{self, LockError};
use crate::manifest::{self, Manifest, ManifestError, PayloadFile};
use crate::paths::{self, Root};
use crate::rooted;
use crate::signature::{self, Verified};
use crate::timefmt;
use crate::trigger;
use crate::updatedir;
use system_update_events::text::count;

mod import;
mod sources;

pub use import::{import, Import};
use sources::{check, Sources};

/// Why `prepare` stopped. Variants only for what its exit status
/// branches on: nothing to do (0), an update that does not verify (3);
/// the rest is anyhow with the file named (1).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Not an error to the admin: the system is up to date.
    #[error(
        "nothing to do: the repositories have nothing newer for this system; nothing was prepared"
    )]
    NothingToDo,
    /// The update to import does not verify (signature, checksums, names).
    #[error(transparent)]
    Verify(#[from] ManifestError),
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    /// An imported update's required package signature does not verify
    /// with this root's keys.
    #[error(transparent)]
    PackageSignature(BackendError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<BackendError> for PrepareError {
    fn from(e: BackendError) -> PrepareError {
        PrepareError::Other(e.into())
    }
}

impl From<LockError> for PrepareError {
    fn from(e: LockError) -> PrepareError {
        PrepareError::Other(e.into())
    }
}

/// A refusal of `prepare`'s own, in one line.
macro_rules! refused {
    ($($arg:tt)*) => {
        PrepareError::Other(anyhow::anyhow!($($arg)*))
    };
}
use refused;

/// An update is already prepared: its manifest is `mpath`.
fn already_prepared(mpath: &Path) -> PrepareError {
    refused!(
        "{}: an update is already prepared; use --force to replace it, or system-update cancel --purge",
        mpath.display()
    )
}

/// A directory that holds what is not ours.
fn not_ours(dir: &Path, entries: &[String]) -> PrepareError {
    refused!(
        "{}: holds files that are not part of a prepared update ({}); nothing was changed: move them away, or set another update-dir in /etc/system-update.toml",
        dir.display(),
        entries.join(", ")
    )
}

fn not_a_file(p: &Path) -> PrepareError {
    refused!("{}: not a regular file", p.display())
}

pub struct PrepareRequest {
    pub backend: Option<BackendKind>,
    pub force: bool,
    pub title: Option<String>,
    pub command: Option<Vec<String>>,
    pub files: Vec<PathBuf>,
    /// minisign secret key to sign the manifest with.
    pub sign: Option<PathBuf>,
    /// Resolve the update from the distribution's repositories instead of
    /// taking `files`.
    pub resolve: Option<Request>,
    /// Accept a package whose version is the one installed.
    pub reinstall: bool,
}

/// Where the packages of a resolved update are downloaded before they are
/// copied in like hand-given files; removed when dropped. On the running
/// system /var/tmp (a full upgrade may not fit a tmpfs /tmp).
fn staging(root: &Root) -> Result<crate::privdir::PrivateDir, PrepareError> {
    let base = if root.is_live() {
        PathBuf::from("/var/tmp")
    } else {
        std::env::temp_dir()
    };
    let dir = crate::privdir::PrivateDir::new_in(&base, "download");
    Ok(dir.with_context(|| base.display().to_string())?)
}

pub fn lock_path(root: &Root) -> PathBuf {
    root.host(&Path::new(paths::RESULTS_DIR).join(paths::LOCK_NAME))
}

/// Takes the lock of `root`, in its results directory resolved inside it.
pub fn lock_root(root: &Root) -> Result<lock::Lock, LockError> {
    let dir = crate::rooted::create_dir_all(root, Path::new(paths::RESULTS_DIR), 0o755).map_err(
        |source| LockError::Open {
            path: lock_path(root),
            source,
        },
    )?;
    lock::try_lock(&dir, paths::LOCK_NAME)
}

/// Empties the update directory of what is ours (updatedir::clear),
/// keeping the directory; `also`: files copied in before the manifest.
fn clear_dir(root: &Root, config: &Config, also: &[String]) -> Result<(), PrepareError> {
    let dir = root.host(&config.update_dir);
    let c = updatedir::clear(root, &config.update_dir, also, false)
        .with_context(|| dir.display().to_string())?;
    if c.left.is_empty() {
        Ok(())
    } else {
        Err(not_ours(&dir, &c.left))
    }
}

/// A file given on the command line: "no such file" when it is not there,
/// "not a regular file" when it is something else.
fn regular_file(p: &Path) -> Result<(), PrepareError> {
    match std::fs::metadata(p) {
        Ok(md) if md.is_file() => Ok(()),
        Ok(_) => Err(not_a_file(p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(refused!("{}: no such file", p.display()))
        }
        Err(e) => Err(anyhow::Error::new(e)
            .context(p.display().to_string())
            .into()),
    }
}

/// Refuses a directory that holds anything but a prepared update of ours:
/// an update-dir that names the wrong directory must cost nothing.
fn refuse_foreign(dir: &Path) -> Result<(), PrepareError> {
    let foreign = updatedir::foreign_entries(dir).with_context(|| dir.display().to_string())?;
    if foreign.is_empty() {
        return Ok(());
    }
    Err(not_ours(dir, &foreign))
}

/// Empties the update directory for a new update. What replaces an armed
/// update must be triggered on its own: the old trigger (and with it its
/// after-action) goes first, so the next boot never installs what nobody
/// triggered.
/// The update directory, opened inside the root, for what is written next.
fn make_room(root: &Root, config: &Config, udh: &Path) -> Result<rooted::Dir, PrepareError> {
    refuse_foreign(udh)?;
    trigger::remove_ours(root, &config.update_dir)
        .with_context(|| root.dir().display().to_string())?;
    let dir = rooted::create_dir_all(root, &config.update_dir, 0o755)
        .with_context(|| udh.display().to_string())?;
    clear_dir(root, config, &[])?;
    Ok(dir)
}

pub fn prepare(
    root: &Root,
    config: &Config,
    mut req: PrepareRequest,
) -> Result<Manifest, PrepareError> {
    let _lock = lock_root(root)?;
    let udh = root.host(&config.update_dir);
    let mpath = Manifest::path(&udh);
    if mpath.exists() && !req.force {
        return Err(already_prepared(&mpath));
    }
    let resolved = resolve(root, &mut req)?;
    let backend = choose_backend(&req)?;
    let sources = Sources::gather(&req, backend)?;
    if let Some(key) = &req.sign {
        // Before the update directory is emptied.
        regular_file(key)?;
    }
    let checked = check(root, backend, &sources, &resolved, req.reinstall)?;
    let db_fingerprint = backend.fingerprint(root)?;
    check_room(root, &udh, sources.download(), checked.installed())?;
    let dir = make_room(root, config, &udh)?;
    let files = sources.copy_into(&dir, &checked)?;
    let m = manifest_of(backend, req.title, sources.argv, files, resolved);
    let local = LocalState {
        db_fingerprint,
        ..LocalState::default()
    };
    write(root, config, &dir, &m, &local, req.sign.as_deref())?;
    Ok(m)
}

/// An update resolved from the repositories: its plan and who checked it;
/// the downloaded files, in a staging directory kept until they are copied.
#[derive(Default)]
pub(super) struct Resolution {
    plan: Vec<crate::backend::Planned>,
    pub(super) checked_by: Option<String>,
    _staging: Option<crate::privdir::PrivateDir>,
}

impl Resolution {
    pub(super) fn removals(&self) -> Vec<String> {
        self.plan
            .iter()
            .filter(|p| p.action == Action::Remove)
            .map(|p| p.name.clone())
            .collect()
    }
}

/// `prepare --upgrade`/`--install`: the plan and its downloaded files,
/// which then go on as files given by hand would.
fn resolve(root: &Root, req: &mut PrepareRequest) -> Result<Resolution, PrepareError> {
    let Some(request) = req.resolve.take() else {
        return Ok(Resolution::default());
    };
    let kind = match req.backend {
        Some(b) => b,
        None => BackendKind::managing(root)
            .ok_or_else(|| refused!("{}: no package database of a backend that resolves updates here; give --backend, or package files", root.dir().display()))?,
    };
    kind.check_database(root)?;
    let staging = staging(root)?;
    let r = kind.resolve(root, &request, staging.path())?;
    if r.plan.is_empty() {
        return Err(PrepareError::NothingToDo);
    }
    req.files = r.files;
    req.backend = Some(kind);
    Ok(Resolution {
        plan: r.plan,
        checked_by: Some(r.checked_by),
        _staging: Some(staging),
    })
}

fn choose_backend(req: &PrepareRequest) -> Result<BackendKind, PrepareError> {
    Ok(match (req.backend, &req.command) {
        (Some(b), Some(_)) if !b.takes_command() => {
            return Err(refused!(
                "--backend {} takes package files, not --command",
                b.name()
            ))
        }
        (Some(b), _) => b,
        (None, Some(_)) => BackendKind::command(),
        (None, None) => BackendKind::guess(&req.files)?,
    })
}

fn manifest_of(
    backend: BackendKind,
    title: Option<String>,
    argv: Option<Vec<String>>,
    files: Vec<PayloadFile>,
    resolved: Resolution,
) -> Manifest {
    let plan = resolved.plan;
    let title = title.unwrap_or_else(|| match (&backend, &argv) {
        (b, Some(a)) if b.takes_command() => format!("Update by {}", a[0]),
        _ if !plan.is_empty() => format!(
            "Update of {} from the repositories",
            count(plan.len(), "package", "packages")
        ),
        _ if files.len() == 1 => format!(
            "Update of {}",
            files[0].package.as_deref().unwrap_or(&files[0].name)
        ),
        _ => format!("Update of {}", count(files.len(), "package", "packages")),
    });
    Manifest {
        schema: manifest::schema_for(&files),
        id: format!("{}-{}", timefmt::now_compact(), std::process::id()),
        title,
        backend,
        created: timefmt::now_rfc3339(),
        command: argv,
        files,
        plan,
        resolved_by: resolved.checked_by,
    }
}

/// The manifest, its signature when asked for, and the local state.
fn write(
    root: &Root,
    config: &Config,
    dir: &rooted::Dir,
    m: &Manifest,
    local: &LocalState,
    sign: Option<&Path>,
) -> Result<(), PrepareError> {
    let udh = root.host(&config.update_dir);
    let text = m.to_toml();
    let sig = match sign {
        Some(key) => Some(sign_text(&udh, &text, key, &m.id)?),
        None => None,
    };
    finish(dir, &text, sig.as_deref(), local)?;
    if sig.is_some() {
        warn_if_untrusted(root, &udh, config);
    }
    Ok(())
}

/// Room for the payload in the update directory and, where that is on the
/// root's filesystem, for the packages installed as well (the boot checks
/// again, with a snapshot's margin); nothing is written when it does not fit.
fn check_room(root: &Root, udh: &Path, download: u64, installed: u64) -> Result<(), PrepareError> {
    use std::os::unix::fs::MetadataExt;
    let existing = udh
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or_else(|| root.dir());
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let same_fs = dev(existing).is_some() && dev(existing) == dev(root.dir());
    let needed = download
        .saturating_add(if same_fs { installed } else { 0 })
        .saturating_add(crate::space::BASE_MARGIN);
    let free = crate::space::available(existing).with_context(|| existing.display().to_string())?;
    if needed <= free {
        return Ok(());
    }
    Err(refused!(
        "not enough free space on {} for the update: {} needed ({} to keep the packages until the update boot{}), {} available; nothing was prepared. Free some space, or set another update-dir in /etc/system-update.toml",
        existing.display(),
        crate::space::human(needed),
        crate::space::human(download),
        if same_fs {
            format!(", {} to install them", crate::space::human(installed))
        } else {
            String::new()
        },
        crate::space::human(free)
    ))
}

/// Signs `text` (the manifest as it will be written) with minisign;
/// returns the signature file's contents.
fn sign_text(udh: &Path, text: &str, key: &Path, id: &str) -> Result<Vec<u8>, PrepareError> {
    let pid = std::process::id();
    let tmp = udh.join(format!(".sign-{pid}.toml"));
    let tmp_sig = udh.join(format!(".sign-{pid}.minisig"));
    let result = (|| {
        atomic::write(&tmp, text.as_bytes(), 0o600).with_context(|| tmp.display().to_string())?;
        signature::sign(key, &tmp, &tmp_sig, &format!("system-update manifest {id}"))?;
        std::fs::read(&tmp_sig).with_context(|| tmp_sig.display().to_string())
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&tmp_sig);
    Ok(result?)
}

/// Writes the local state, the signature and, last, the manifest: its
/// presence means "complete", and a signature never sits beside a manifest
/// it was not made for longer than a crash between two renames.
fn finish(
    dir: &rooted::Dir,
    text: &str,
    sig: Option<&[u8]>,
    local: &LocalState,
) -> Result<(), PrepareError> {
    local::store(dir, local)?;
    let sig_name = paths::SIGNATURE_NAME.as_ref();
    let sig_path = dir.shown(paths::SIGNATURE_NAME);
    match sig {
        Some(s) => dir.write(sig_name, s, 0o644, None),
        None => dir.remove(sig_name),
    }
    .with_context(|| sig_path.display().to_string())?;
    let mpath = dir.shown(paths::MANIFEST_NAME);
    dir.write(paths::MANIFEST_NAME.as_ref(), text.as_bytes(), 0o644, None)
        .with_context(|| mpath.display().to_string())?;
    updatedir::done(dir).with_context(|| dir.shown("").display().to_string())?;
    Ok(())
}

/// After `--sign`: says so when this machine would refuse the signature
/// (its public key not trusted here), which is fine for an update made for
/// other machines.
fn warn_if_untrusted(root: &Root, udh: &Path, config: &Config) {
    if let Err(e) = crate::manifest::load(root, udh, config.require_signature) {
        tracing::warn!("this machine would not accept the update: {e}");
    }
}

/// What `cancel` did.
pub struct Cancelled {
    /// Trigger links removed (paths inside the root).
    pub links: Vec<PathBuf>,
    /// With --purge: what was removed of the update directory, what was
    /// left there because it is not ours.
    pub purged: Option<updatedir::Cleared>,
}

pub fn cancel(root: &Root, config: &Config, purge: bool) -> Result<Cancelled, PrepareError> {
    let _lock = lock_root(root)?;
    let links = trigger::remove_ours(root, &config.update_dir)
        .with_context(|| root.dir().display().to_string())?;
    let purged = if purge {
        let udh = root.host(&config.update_dir);
        // Only what is ours, never a recursive delete: see updatedir.
        Some(
            updatedir::clear(root, &config.update_dir, &[], true)
                .with_context(|| udh.display().to_string())?,
        )
    } else {
        None
    };
    Ok(Cancelled { links, purged })
}
