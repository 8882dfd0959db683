//! `prepare` and `cancel`: the update directory's contents.

use std::io;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::backend::{dpkg, BackendError};
use crate::config::Config;
use crate::lock::{self, LockError};
use crate::manifest::{self, BackendKind, Manifest, PayloadFile, SCHEMA};
use crate::paths::{self, Root};
use crate::timefmt;
use crate::trigger;

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{0}: an update is already prepared; use --force to replace it, or system-update cancel --purge")]
    AlreadyPrepared(PathBuf),
    #[error("nothing to prepare: give .deb files, or --command PROGRAM")]
    Nothing,
    #[error("{0}: cannot deduce the backend from this file; give --backend")]
    UnknownBackend(PathBuf),
    #[error("--backend dpkg takes .deb files, not --command")]
    DpkgCommand,
    #[error("{0}: not a regular file")]
    NotAFile(PathBuf),
    #[error("{0}: two payload files have this name; rename one")]
    DuplicateName(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

pub struct PrepareRequest {
    pub backend: Option<BackendKind>,
    pub force: bool,
    pub title: Option<String>,
    pub command: Option<Vec<String>>,
    pub files: Vec<PathBuf>,
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

/// Empties the update directory, keeping the directory itself.
fn clear_dir(dir: &Path) -> Result<(), PrepareError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let p = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let r = if is_dir {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(io_err(&p))?;
    }
    atomic::fsync_dir(dir).map_err(io_err(dir))
}

pub fn prepare(
    root: &Root,
    config: &Config,
    req: PrepareRequest,
) -> Result<Manifest, PrepareError> {
    let _lock = lock::try_lock(&lock_path(root))?;
    let udh = root.host(&config.update_dir);
    let mpath = Manifest::path(&udh);
    if mpath.exists() && !req.force {
        return Err(PrepareError::AlreadyPrepared(mpath));
    }

    let backend = match (req.backend, &req.command) {
        (Some(BackendKind::Dpkg), Some(_)) => return Err(PrepareError::DpkgCommand),
        (Some(b), _) => b,
        (None, Some(_)) => BackendKind::Command,
        (None, None) => {
            if req.files.is_empty() {
                return Err(PrepareError::Nothing);
            }
            match req
                .files
                .iter()
                .find(|f| f.extension().is_none_or(|e| e != "deb"))
            {
                Some(f) => return Err(PrepareError::UnknownBackend(f.clone())),
                None => BackendKind::Dpkg,
            }
        }
    };

    // What gets copied: the files, and for --command a program given as a
    // relative path to an existing file (it then travels with the payload).
    let mut sources: Vec<PathBuf> = req.files.clone();
    let mut argv = req.command.clone();
    if backend == BackendKind::Command && argv.is_none() {
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
            if !prog.is_file() {
                return Err(PrepareError::NotAFile(prog));
            }
            a[0] = name;
            program_source = Some(prog);
        }
    }

    let mut names = Vec::new();
    for f in sources.iter().chain(program_source.iter()) {
        if !f.is_file() {
            return Err(PrepareError::NotAFile(f.clone()));
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if names.contains(&name) {
            return Err(PrepareError::DuplicateName(name));
        }
        names.push(name);
    }

    let mut fields = Vec::new();
    if backend == BackendKind::Dpkg {
        for f in &sources {
            fields.push(Some(dpkg::deb_fields(f)?));
        }
    }
    let db_fingerprint = match backend {
        BackendKind::Dpkg => Some(dpkg::fingerprint(root)?),
        BackendKind::Command => None,
    };

    std::fs::create_dir_all(&udh).map_err(io_err(&udh))?;
    clear_dir(&udh)?;
    let mut files = Vec::new();
    for (i, f) in sources.iter().chain(program_source.iter()).enumerate() {
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
        });
    }

    let title = req.title.unwrap_or_else(|| match (&backend, &argv) {
        (BackendKind::Command, Some(a)) => format!("Update by {}", a[0]),
        _ if files.len() == 1 => format!(
            "Update of {}",
            files[0].package.as_deref().unwrap_or(&files[0].name)
        ),
        _ => format!("Update of {} packages", files.len()),
    });
    let m = Manifest {
        schema: SCHEMA,
        id: format!("{}-{}", timefmt::now_compact(), std::process::id()),
        title,
        backend,
        after_action: config.after_action,
        created: timefmt::now_rfc3339(),
        db_fingerprint,
        command: argv,
        files,
    };
    // The manifest is written last: its presence means "complete".
    atomic::write(&mpath, m.to_toml().as_bytes(), 0o644).map_err(io_err(&mpath))?;
    Ok(m)
}

pub fn cancel(root: &Root, config: &Config, purge: bool) -> Result<Vec<PathBuf>, PrepareError> {
    let _lock = lock::try_lock(&lock_path(root))?;
    let removed = trigger::remove_ours(root, &config.update_dir).map_err(io_err(root.dir()))?;
    if purge {
        let udh = root.host(&config.update_dir);
        match std::fs::remove_dir_all(&udh) {
            Ok(()) => {
                if let Some(p) = udh.parent() {
                    atomic::fsync_dir(p).map_err(io_err(p))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&udh)(e)),
        }
    }
    Ok(removed)
}
