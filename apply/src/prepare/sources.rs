//! What `prepare` copies and what it checks of it before anything is
//! written: nothing that cannot install reaches a boot.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::{refused, regular_file, PrepareError, PrepareRequest, Resolution};
use crate::backend::{BackendKind, PackageInfo};
use crate::manifest::{PackageSignature, PayloadFile};
use crate::paths::Root;
use crate::updatedir;
use anyhow::Context;

/// What gets copied: the payload files, for `--command` a program given as
/// a relative path to an existing file (it then travels with the payload),
/// and the detached signatures beside the packages; each by the name it
/// gets in the update directory.
pub(super) struct Sources {
    files: Vec<PathBuf>,
    program: Option<PathBuf>,
    companions: Vec<PathBuf>,
    pub(super) argv: Option<Vec<String>>,
    names: Vec<String>,
}

impl Sources {
    pub(super) fn gather(
        req: &PrepareRequest,
        backend: BackendKind,
    ) -> Result<Sources, PrepareError> {
        let mut files: Vec<PathBuf> = req.files.clone();
        let mut argv = req.command.clone();
        if backend.takes_command() && argv.is_none() {
            // --backend command FILE...: the first file is the program.
            match files.first() {
                Some(p) => argv = Some(vec![p.to_string_lossy().into_owned()]),
                None => {
                    return Err(refused!(
                        "nothing to prepare: give package files, or --command PROGRAM"
                    ))
                }
            }
            files.remove(0);
        }
        let program = match argv.as_mut() {
            Some(a) => travelling_program(a)?,
            None => None,
        };
        let companions = if backend.takes_command() {
            Vec::new()
        } else {
            files.iter().flat_map(|f| backend.companions(f)).collect()
        };
        let mut s = Sources {
            files,
            program,
            companions,
            argv,
            names: Vec::new(),
        };
        s.names = s.name_each()?;
        Ok(s)
    }

    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        self.files
            .iter()
            .chain(self.program.iter())
            .chain(self.companions.iter())
    }

    /// Each a regular file, named once in the update directory.
    fn name_each(&self) -> Result<Vec<String>, PrepareError> {
        let mut names = Vec::new();
        for f in self.all() {
            regular_file(f)?;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if names.contains(&name) {
                return Err(refused!(
                    "{name}: two payload files have this name; rename one"
                ));
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Bytes to copy.
    pub(super) fn download(&self) -> u64 {
        self.all()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .fold(0, u64::saturating_add)
    }

    /// Copies each into `dir`, the update directory, hashing the bytes as
    /// they are written.
    pub(super) fn copy_into(
        &self,
        dir: &crate::rooted::Dir,
        checked: &Checked,
    ) -> Result<Vec<PayloadFile>, PrepareError> {
        updatedir::begin(dir, &self.names).with_context(|| dir.shown("").display().to_string())?;
        let mut files = Vec::new();
        for (i, f) in self.all().enumerate() {
            let name = &self.names[i];
            let dest = dir.shown(name);
            let mode = if self.program.as_deref() == Some(f.as_path()) {
                0o755
            } else {
                0o644
            };
            let src = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(f)
                .with_context(|| f.display().to_string())?;
            let mut reader = crate::digest::Hashing::new(src);
            dir.copy_reader(&mut reader, name.as_ref(), mode)
                .with_context(|| dest.display().to_string())?;
            let (sha256, _) = reader.finish();
            files.push(checked.payload_file(i, name.clone(), sha256));
        }
        Ok(files)
    }
}

/// A relative program path of `--command` that names an existing file
/// travels with the payload: `argv[0]` becomes its name there.
fn travelling_program(argv: &mut [String]) -> Result<Option<PathBuf>, PrepareError> {
    let prog = PathBuf::from(&argv[0]);
    if prog.is_absolute() {
        return Ok(None);
    }
    let name = prog
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| super::not_a_file(&prog))?;
    regular_file(&prog)?;
    argv[0] = name;
    Ok(Some(prog))
}

/// What the checks learnt of each payload file, in `Sources::files` order.
pub(super) struct Checked {
    fields: Vec<Option<PackageInfo>>,
    signatures: Vec<bool>,
}

impl Checked {
    /// Bytes the packages take installed.
    pub(super) fn installed(&self) -> u64 {
        crate::backend::kib_total(
            self.fields
                .iter()
                .flatten()
                .filter_map(|f| f.installed_size),
        )
    }

    fn payload_file(&self, i: usize, name: String, sha256: String) -> PayloadFile {
        let info = self.fields.get(i).cloned().flatten();
        PayloadFile {
            name,
            sha256,
            package: info.as_ref().map(|d| d.package.clone()),
            version: info.as_ref().map(|d| d.version.clone()),
            installed_size: info.and_then(|d| d.installed_size),
            signature: self
                .signatures
                .get(i)
                .is_some_and(|r| *r)
                .then_some(PackageSignature::Required),
        }
    }
}

/// Whose files these are, then whether they can install: nothing that
/// cannot reaches a boot.
pub(super) fn check(
    root: &Root,
    backend: BackendKind,
    sources: &Sources,
    resolved: &Resolution,
    reinstall: bool,
) -> Result<Checked, PrepareError> {
    let files = &sources.files;
    if backend.takes_command() {
        return Ok(Checked {
            fields: Vec::new(),
            signatures: vec![false; files.len()],
        });
    }
    backend.check_database(root)?;
    let mut fields = Vec::new();
    for f in files {
        fields.push(Some(backend.inspect(f)?));
    }
    let signatures = backend.check_signatures(root, files, resolved.checked_by.is_some())?;
    check_architectures(root, backend, files, &fields)?;
    check_duplicates(files, &fields)?;
    if !reinstall {
        check_reinstalls(root, backend, files, &fields)?;
    }
    backend.preflight(root, files, &resolved.removals())?;
    Ok(Checked { fields, signatures })
}

/// Refuses a package built for an architecture the root does not install:
/// it would pass every check here and fail only in the update boot.
fn check_architectures(
    root: &Root,
    backend: BackendKind,
    files: &[PathBuf],
    fields: &[Option<PackageInfo>],
) -> Result<(), PrepareError> {
    let Some(fits) = backend.architectures(root)? else {
        return Ok(());
    };
    for (file, info) in files.iter().zip(fields) {
        let Some(arch) = info.as_ref().and_then(|i| i.arch.as_ref()) else {
            continue;
        };
        if !fits.contains(arch) {
            return Err(refused!(
                "{}: a package for {arch}, but {} installs only {}; nothing was prepared: give the package built for this root's architecture",
                file.display(),
                root.dir().display(),
                fits.join(", ")
            ));
        }
    }
    Ok(())
}

/// Refuses a set that names one package twice: the package manager would
/// take one of them, and the result would list it twice.
fn check_duplicates(files: &[PathBuf], fields: &[Option<PackageInfo>]) -> Result<(), PrepareError> {
    let named: Vec<(&PathBuf, &str)> = files
        .iter()
        .zip(fields)
        .filter_map(|(f, i)| Some((f, i.as_ref()?.package.as_str())))
        .collect();
    for (i, (second, package)) in named.iter().enumerate() {
        if let Some((first, _)) = named[..i].iter().find(|(_, p)| p == package) {
            return Err(refused!(
                "{package} is given twice, as {} and {}; nothing was prepared: give one of them",
                first.display(),
                second.display()
            ));
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
    fields: &[Option<PackageInfo>],
) -> Result<(), PrepareError> {
    let installed = backend.installed(root)?;
    for (file, info) in files.iter().zip(fields) {
        let Some(info) = info else { continue };
        if installed.get(&info.package) == Some(&info.version) {
            return Err(refused!(
                "{}: {} {} is already installed on {}, so this would only reinstall it; nothing was prepared: give --reinstall if that is what you want",
                file.display(),
                info.package,
                info.version,
                root.dir().display()
            ));
        }
    }
    Ok(())
}
