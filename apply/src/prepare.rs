//! `prepare` and `cancel`: the update directory's contents.

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::backend::{Action, BackendError, BackendKind, GuessError, Request};
use crate::config::Config;
use crate::local::{self, LocalError, LocalState};
use crate::lock::{self, LockError};
use crate::manifest::{self, Manifest, ManifestError, PackageSignature, PayloadFile};
use crate::paths::{self, Root};
use crate::signature::{self, SignError, Verified};
use crate::timefmt;
use crate::trigger;
use crate::updatedir;
use system_update_events::text::count;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0}: an update is already prepared; use --force to replace it, or system-update cancel --purge")]
    AlreadyPrepared(PathBuf),
    #[error("{dir}: holds files that are not part of a prepared update ({entries}); nothing was changed: move them away, or set another update-dir in /etc/system-update.toml")]
    NotOurs { dir: PathBuf, entries: String },
    #[error("nothing to prepare: give package files, or --command PROGRAM")]
    Nothing,
    #[error(transparent)]
    Guess(#[from] GuessError),
    #[error("--backend {0} takes package files, not --command")]
    FilesNotCommand(&'static str),
    #[error("{0}: no package database of a backend that resolves updates here; give --backend, or package files")]
    NoPackageManager(PathBuf),
    #[error("{0}")]
    NoSpace(String),
    /// Not an error to the admin: the system is up to date.
    #[error(
        "nothing to do: the repositories have nothing newer for this system; nothing was prepared"
    )]
    NothingToDo,
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    #[error("{0}: no such file")]
    NoSuchFile(PathBuf),
    #[error("{0}: two payload files have this name; rename one")]
    DuplicateName(String),
    #[error("{file}: a package for {arch}, but {root} installs only {fits}; nothing was prepared: give the package built for this root's architecture")]
    Architecture {
        file: PathBuf,
        arch: String,
        root: PathBuf,
        fits: String,
    },
    #[error(
        "{package} is given twice, as {first} and {second}; nothing was prepared: give one of them"
    )]
    DuplicatePackage {
        package: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{file}: {package} {version} is already installed on {root}, so this would only reinstall it; nothing was prepared: give --reinstall if that is what you want")]
    Reinstall {
        file: PathBuf,
        package: String,
        version: String,
        root: PathBuf,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The update to import does not verify (signature, checksums, names).
    #[error(transparent)]
    Verify(#[from] ManifestError),
    #[error(
        "{0}: this is the update directory itself; give the directory the update was copied to"
    )]
    FromUpdateDir(PathBuf),
    #[error("{0}: no manifest.toml here; give the directory that holds the update (its manifest.toml, signature and payload)")]
    FromNoManifest(PathBuf),
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    /// An imported update's required package signature does not verify
    /// with this root's keys.
    #[error(transparent)]
    PackageSignature(BackendError),
}

/// How `prepare --from` imports.
pub struct Import {
    /// Replace an update already prepared.
    pub force: bool,
    /// Accept a signed update no newer than the newest applied (replay).
    pub allow_older: bool,
}

impl From<LocalError> for PrepareError {
    fn from(e: LocalError) -> PrepareError {
        match e {
            LocalError::Io { path, source } => PrepareError::Io { path, source },
            LocalError::Missing(path) | LocalError::Invalid { path, .. } => PrepareError::Io {
                path,
                source: io::Error::other("cannot write the local state"),
            },
        }
    }
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
    crate::privdir::PrivateDir::new_in(&base, "download").map_err(io_err(&base))
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn lock_path(root: &Root) -> PathBuf {
    root.host(&Path::new(paths::RESULTS_DIR).join(paths::LOCK_NAME))
}

/// Takes the lock of `root`, its path first checked to stay in the root.
pub fn lock_root(root: &Root) -> Result<lock::Lock, LockError> {
    let inside = Path::new(paths::RESULTS_DIR).join(paths::LOCK_NAME);
    let path = root.confined(&inside).map_err(|source| LockError::Open {
        path: lock_path(root),
        source,
    })?;
    lock::try_lock(&path)
}

/// Empties the update directory, keeping the directory itself.
/// Empties the update directory of what is ours (updatedir::clear),
/// keeping the directory; `also`: files copied in before the manifest.
fn clear_dir(dir: &Path, also: &[String]) -> Result<(), PrepareError> {
    let c = updatedir::clear(dir, also, false).map_err(io_err(dir))?;
    if c.left.is_empty() {
        Ok(())
    } else {
        Err(PrepareError::NotOurs {
            dir: dir.to_path_buf(),
            entries: c.left.join(", "),
        })
    }
}

/// A file given on the command line: "no such file" when it is not there,
/// "not a regular file" when it is something else.
fn regular_file(p: &Path) -> Result<(), PrepareError> {
    match std::fs::metadata(p) {
        Ok(md) if md.is_file() => Ok(()),
        Ok(_) => Err(PrepareError::NotAFile(p.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(PrepareError::NoSuchFile(p.to_path_buf()))
        }
        Err(e) => Err(io_err(p)(e)),
    }
}

/// Refuses a directory that holds anything but a prepared update of ours:
/// an update-dir that names the wrong directory must cost nothing.
fn refuse_foreign(dir: &Path) -> Result<(), PrepareError> {
    let foreign = updatedir::foreign_entries(dir).map_err(io_err(dir))?;
    if foreign.is_empty() {
        return Ok(());
    }
    Err(PrepareError::NotOurs {
        dir: dir.to_path_buf(),
        entries: foreign.join(", "),
    })
}

/// Empties the update directory for a new update. What replaces an armed
/// update must be triggered on its own: the old trigger (and with it its
/// after-action) goes first, so the next boot never installs what nobody
/// triggered.
fn make_room(root: &Root, config: &Config, udh: &Path) -> Result<(), PrepareError> {
    refuse_foreign(udh)?;
    trigger::remove_ours(root, &config.update_dir).map_err(io_err(root.dir()))?;
    atomic::create_dir_all(udh, 0o755).map_err(io_err(udh))?;
    clear_dir(udh, &[])
}

pub fn prepare(
    root: &Root,
    config: &Config,
    req: PrepareRequest,
) -> Result<Manifest, PrepareError> {
    let _lock = lock_root(root)?;
    let udh = root.host(&config.update_dir);
    let mpath = Manifest::path(&udh);
    if mpath.exists() && !req.force {
        return Err(PrepareError::AlreadyPrepared(mpath));
    }

    let mut req = req;
    let mut plan = Vec::new();
    let mut resolved_by = None;
    let mut _staging = None;
    if let Some(request) = req.resolve.take() {
        let kind = match req.backend {
            Some(b) => b,
            None => BackendKind::managing(root)
                .ok_or_else(|| PrepareError::NoPackageManager(root.dir().to_path_buf()))?,
        };
        kind.check_database(root)?;
        let staging = staging(root)?;
        let r = kind.resolve(root, &request, staging.path())?;
        if r.plan.is_empty() {
            return Err(PrepareError::NothingToDo);
        }
        req.files = r.files;
        req.backend = Some(kind);
        plan = r.plan;
        resolved_by = Some(r.checked_by);
        _staging = Some(staging);
    }
    let removals: Vec<String> = plan
        .iter()
        .filter(|p| p.action == Action::Remove)
        .map(|p| p.name.clone())
        .collect();

    let backend = match (req.backend, &req.command) {
        (Some(b), Some(_)) if !b.takes_command() => {
            return Err(PrepareError::FilesNotCommand(b.name()))
        }
        (Some(b), _) => b,
        (None, Some(_)) => BackendKind::command(),
        (None, None) => BackendKind::guess(&req.files)?,
    };

    // What gets copied: the files, and for --command a program given as a
    // relative path to an existing file (it then travels with the payload).
    let mut sources: Vec<PathBuf> = req.files.clone();
    let mut argv = req.command.clone();
    if backend.takes_command() && argv.is_none() {
        // --backend command FILE...: the first file is the program.
        match sources.first() {
            Some(p) => argv = Some(vec![p.to_string_lossy().into_owned()]),
            None => return Err(PrepareError::Nothing),
        }
        sources.remove(0);
    }
    let mut program_source = None;
    if let Some(a) = argv.as_mut() {
        let prog = PathBuf::from(&a[0]);
        if !prog.is_absolute() {
            let name = prog
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| PrepareError::NotAFile(prog.clone()))?;
            regular_file(&prog)?;
            a[0] = name;
            program_source = Some(prog);
        }
    }

    // Detached signatures beside the packages travel with them.
    let companions: Vec<PathBuf> = if backend.takes_command() {
        Vec::new()
    } else {
        sources.iter().flat_map(|f| backend.companions(f)).collect()
    };
    let mut names = Vec::new();
    for f in sources
        .iter()
        .chain(program_source.iter())
        .chain(companions.iter())
    {
        regular_file(f)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if names.contains(&name) {
            return Err(PrepareError::DuplicateName(name));
        }
        names.push(name);
    }

    if let Some(key) = &req.sign {
        // Before the update directory is emptied.
        regular_file(key)?;
    }

    let mut fields = Vec::new();
    let mut signatures = vec![false; sources.len()];
    if !backend.takes_command() {
        backend.check_database(root)?;
        for f in &sources {
            fields.push(Some(backend.inspect(f)?));
        }
        // Whose files these are, before anything else is judged by them.
        signatures = backend.check_signatures(root, &sources, resolved_by.is_some())?;
        check_architectures(root, backend, &sources, &fields)?;
        check_duplicates(&sources, &fields)?;
        if !req.reinstall {
            check_reinstalls(root, backend, &sources, &fields)?;
        }
        // Nothing that cannot install reaches a boot.
        backend.preflight(root, &sources, &removals)?;
    }
    let db_fingerprint = backend.fingerprint(root)?;

    let download: u64 = sources
        .iter()
        .chain(program_source.iter())
        .chain(companions.iter())
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .fold(0, u64::saturating_add);
    let installed: u64 = fields
        .iter()
        .flatten()
        .filter_map(|f| f.installed_size)
        .fold(0u64, |s, kib| s.saturating_add(kib.saturating_mul(1024)));
    check_room(root, &udh, download, installed)?;

    make_room(root, config, &udh)?;
    updatedir::begin(&udh, &names).map_err(io_err(&udh))?;
    let mut files = Vec::new();
    for (i, f) in sources
        .iter()
        .chain(program_source.iter())
        .chain(companions.iter())
        .enumerate()
    {
        let dest = udh.join(&names[i]);
        atomic::copy(f, &dest).map_err(io_err(&dest))?;
        if program_source.as_deref() == Some(f.as_path()) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err(&dest))?;
        }
        let sha256 = manifest::sha256_file(&dest).map_err(io_err(&dest))?;
        let deb = fields.get(i).cloned().flatten();
        files.push(PayloadFile {
            name: names[i].clone(),
            sha256,
            package: deb.as_ref().map(|d| d.package.clone()),
            version: deb.as_ref().map(|d| d.version.clone()),
            installed_size: deb.and_then(|d| d.installed_size),
            signature: signatures
                .get(i)
                .is_some_and(|r| *r)
                .then_some(PackageSignature::Required),
        });
    }

    let title = req.title.unwrap_or_else(|| match (&backend, &argv) {
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
    let m = Manifest {
        schema: manifest::schema_for(&files),
        id: format!("{}-{}", timefmt::now_compact(), std::process::id()),
        title,
        backend,
        created: timefmt::now_rfc3339(),
        command: argv,
        files,
        plan,
        resolved_by,
    };
    let text = m.to_toml();
    let local = LocalState {
        db_fingerprint,
        ..LocalState::default()
    };
    let sig = match &req.sign {
        Some(key) => Some(sign_text(&udh, &text, key, &m.id)?),
        None => None,
    };
    finish(&udh, &text, sig.as_deref(), &local)?;
    if sig.is_some() {
        warn_if_untrusted(root, &udh, config);
    }
    Ok(m)
}

/// Refuses a package built for an architecture the root does not install:
/// it would pass every check here and fail only in the update boot.
fn check_architectures(
    root: &Root,
    backend: BackendKind,
    files: &[PathBuf],
    fields: &[Option<crate::backend::PackageInfo>],
) -> Result<(), PrepareError> {
    let Some(fits) = backend.architectures(root)? else {
        return Ok(());
    };
    for (file, info) in files.iter().zip(fields) {
        let Some(arch) = info.as_ref().and_then(|i| i.arch.as_ref()) else {
            continue;
        };
        if !fits.contains(arch) {
            return Err(PrepareError::Architecture {
                file: file.clone(),
                arch: arch.clone(),
                root: root.dir().to_path_buf(),
                fits: fits.join(", "),
            });
        }
    }
    Ok(())
}

/// Refuses a set that names one package twice: the package manager would
/// take one of them, and the result would list it twice.
fn check_duplicates(
    files: &[PathBuf],
    fields: &[Option<crate::backend::PackageInfo>],
) -> Result<(), PrepareError> {
    let named: Vec<(&PathBuf, &str)> = files
        .iter()
        .zip(fields)
        .filter_map(|(f, i)| Some((f, i.as_ref()?.package.as_str())))
        .collect();
    for (i, (second, package)) in named.iter().enumerate() {
        if let Some((first, _)) = named[..i].iter().find(|(_, p)| p == package) {
            return Err(PrepareError::DuplicatePackage {
                package: package.to_string(),
                first: first.to_path_buf(),
                second: second.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// Refuses a package at the version already installed unless asked to
/// (`--reinstall`): an update that changes nothing is more often a
/// mistake (the wrong file) than a repair.
fn check_reinstalls(
    root: &Root,
    backend: BackendKind,
    files: &[PathBuf],
    fields: &[Option<crate::backend::PackageInfo>],
) -> Result<(), PrepareError> {
    let installed = backend.installed(root)?;
    for (file, info) in files.iter().zip(fields) {
        let Some(info) = info else { continue };
        if installed.get(&info.package) == Some(&info.version) {
            return Err(PrepareError::Reinstall {
                file: file.clone(),
                package: info.package.clone(),
                version: info.version.clone(),
                root: root.dir().to_path_buf(),
            });
        }
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
    let free = crate::space::available(existing).map_err(io_err(existing))?;
    if needed <= free {
        return Ok(());
    }
    Err(PrepareError::NoSpace(format!(
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
    )))
}

/// Signs `text` (the manifest as it will be written) with minisign;
/// returns the signature file's contents.
fn sign_text(udh: &Path, text: &str, key: &Path, id: &str) -> Result<Vec<u8>, PrepareError> {
    let pid = std::process::id();
    let tmp = udh.join(format!(".sign-{pid}.toml"));
    let tmp_sig = udh.join(format!(".sign-{pid}.minisig"));
    let result = (|| {
        atomic::write(&tmp, text.as_bytes(), 0o600).map_err(io_err(&tmp))?;
        signature::sign(key, &tmp, &tmp_sig, &format!("system-update manifest {id}"))?;
        std::fs::read(&tmp_sig).map_err(io_err(&tmp_sig))
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&tmp_sig);
    result
}

/// Writes the local state, the signature and, last, the manifest: its
/// presence means "complete", and a signature never sits beside a manifest
/// it was not made for longer than a crash between two renames.
fn finish(
    udh: &Path,
    text: &str,
    sig: Option<&[u8]>,
    local: &LocalState,
) -> Result<(), PrepareError> {
    local::store(udh, local)?;
    let sig_path = signature::path(udh);
    match sig {
        Some(s) => atomic::write(&sig_path, s, 0o644).map_err(io_err(&sig_path))?,
        None => atomic::remove(&sig_path).map_err(io_err(&sig_path))?,
    }
    let mpath = Manifest::path(udh);
    atomic::write(&mpath, text.as_bytes(), 0o644).map_err(io_err(&mpath))?;
    updatedir::done(udh).map_err(io_err(udh))
}

/// After `--sign`: says so when this machine would refuse the signature
/// (its public key not trusted here), which is fine for an update made for
/// other machines.
fn warn_if_untrusted(root: &Root, udh: &Path, config: &Config) {
    if let Err(e) = signature::load_manifest(root, udh, config.require_signature) {
        tracing::warn!("this machine would not accept the update: {e}");
    }
}

/// `prepare --from DIR`: brings in an update prepared elsewhere (removable
/// media). The signature (against this machine's keys and config) and the
/// payload names are checked before anything is copied; the checksums are
/// checked on the copies, since the media may change under us; the
/// manifest and signature are written as they were verified, and this
/// machine's package database fingerprint goes into the local state.
pub fn import(
    root: &Root,
    config: &Config,
    from: &Path,
    how: &Import,
) -> Result<(Manifest, Verified), PrepareError> {
    let _lock = lock_root(root)?;
    let udh = root.host(&config.update_dir);
    let mpath = Manifest::path(&udh);
    if mpath.exists() && !how.force {
        return Err(PrepareError::AlreadyPrepared(mpath));
    }
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(from), std::fs::canonicalize(&udh)) {
        if a == b {
            return Err(PrepareError::FromUpdateDir(from.to_path_buf()));
        }
    }
    let loaded = match signature::load_manifest(root, from, config.require_signature) {
        Err(ManifestError::Missing(_)) => {
            return Err(PrepareError::FromNoManifest(from.to_path_buf()))
        }
        r => r?,
    };
    let (m, verified) = (loaded.manifest, loaded.verified);
    crate::replay::check(root, &m, &verified, how.allow_older)?;
    let media = open_media(from, &m)?;
    m.backend.check_database(root)?;
    let db_fingerprint = m.backend.fingerprint(root)?;
    let size = media
        .iter()
        .map(|(_, n)| *n)
        .fold(0u64, u64::saturating_add);
    let installed = m
        .files
        .iter()
        .filter_map(|f| f.installed_size)
        .fold(0u64, |s, kib| s.saturating_add(kib.saturating_mul(1024)));
    check_room(root, &udh, size, installed)?;

    make_room(root, config, &udh)?;
    let incoming: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
    updatedir::begin(&udh, &incoming).map_err(io_err(&udh))?;
    let copied = m
        .files
        .iter()
        .zip(media)
        .try_for_each(|(f, src)| import_file(&m, f, src, from, &udh))
        // Against this machine's keys, the ones that count, before the
        // reboot rather than in it (the boot checks again).
        .and_then(|()| {
            m.check_package_signatures(root, &udh)
                .map_err(PrepareError::PackageSignature)
        });
    if let Err(e) = copied {
        let names: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
        let _ = clear_dir(&udh, &names);
        return Err(e);
    }
    let local = LocalState {
        db_fingerprint,
        imported_from: Some(from.to_path_buf()),
        allow_older: how.allow_older,
        ..LocalState::default()
    };
    finish(
        &udh,
        &loaded.text,
        loaded.signature.as_deref().map(str::as_bytes),
        &local,
    )?;
    Ok((m, verified))
}

/// Each payload file on the media, opened once (a regular file, no link
/// followed, never waiting on a FIFO) with its size from that descriptor:
/// what is checked is what gets copied, however the media changes.
fn open_media(from: &Path, m: &Manifest) -> Result<Vec<(std::fs::File, u64)>, PrepareError> {
    m.files
        .iter()
        .map(|f| {
            let src = from.join(&f.name);
            match crate::untrusted::open_regular(&src, false) {
                Ok((file, md)) => Ok((file, md.len())),
                Err(crate::untrusted::UntrustedError::NotRegular { path, .. }) => {
                    Err(PrepareError::NotAFile(path))
                }
                Err(crate::untrusted::UntrustedError::Io { path, source }) => {
                    Err(PrepareError::Verify(ManifestError::PayloadRead {
                        path,
                        source,
                    }))
                }
                Err(e) => Err(PrepareError::Verify(ManifestError::Untrusted(e))),
            }
        })
        .collect()
}

/// Copies one opened payload file into the update directory, hashing the
/// bytes as they are written: no more than the size it had when opened,
/// and the copy must match the signed checksum.
fn import_file(
    m: &Manifest,
    f: &manifest::PayloadFile,
    (src, size): (std::fs::File, u64),
    from: &Path,
    udh: &Path,
) -> Result<(), PrepareError> {
    use std::io::Read;
    let dest = udh.join(&f.name);
    let shown = from.join(&f.name);
    let mode = if m.command.as_ref().is_some_and(|a| a[0] == f.name) {
        0o755
    } else {
        0o644
    };
    // One byte more than its size: a file that grows is caught, not copied on.
    let mut reader = manifest::Hashing::new(src.take(size.saturating_add(1)));
    atomic::copy_reader(&mut reader, &dest, mode).map_err(io_err(&shown))?;
    let (found, count) = reader.finish();
    if count != size {
        return Err(PrepareError::Io {
            path: shown,
            source: io::Error::other(format!(
                "changed while it was copied ({size} bytes when opened, {count} read); nothing was prepared"
            )),
        });
    }
    if !found.eq_ignore_ascii_case(&f.sha256) {
        return Err(PrepareError::Verify(ManifestError::Checksum {
            path: shown,
            expected: f.sha256.clone(),
            found,
        }));
    }
    Ok(())
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
    let links = trigger::remove_ours(root, &config.update_dir).map_err(io_err(root.dir()))?;
    let purged = if purge {
        let udh = root.host(&config.update_dir);
        // Only what is ours, never a recursive delete: see updatedir.
        Some(updatedir::clear(&udh, &[], true).map_err(io_err(&udh))?)
    } else {
        None
    };
    Ok(Cancelled { links, purged })
}
