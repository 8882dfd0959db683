//! `prepare --from`: an update prepared elsewhere, brought in from media.

use std::path::Path;

use super::*;

/// How `prepare --from` imports.
pub struct Import {
    /// Replace an update already prepared.
    pub force: bool,
    /// Accept a signed update no newer than the newest applied (replay).
    pub allow_older: bool,
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
        return Err(already_prepared(&mpath));
    }
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(from), std::fs::canonicalize(&udh)) {
        if a == b {
            return Err(refused!(
                "{}: this is the update directory itself; give the directory the update was copied to",
                from.display()
            ));
        }
    }
    let loaded = match crate::manifest::load(root, from, config.require_signature) {
        Err(ManifestError::Missing(_)) => {
            return Err(refused!("{}: no manifest.toml here; give the directory that holds the update (its manifest.toml, signature and payload)", from.display()))
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

    let dir = make_room(root, config, &udh)?;
    let incoming: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
    updatedir::begin(&dir, &incoming).with_context(|| udh.display().to_string())?;
    let copied = m
        .files
        .iter()
        .zip(media)
        .try_for_each(|(f, src)| import_file(&m, f, src, from, &dir))
        // Against this machine's keys, the ones that count, before the
        // reboot rather than in it (the boot checks again).
        .and_then(|()| {
            m.check_package_signatures(root, &udh)
                .map_err(PrepareError::PackageSignature)
        });
    if let Err(e) = copied {
        let names: Vec<String> = m.files.iter().map(|f| f.name.clone()).collect();
        let _ = clear_dir(root, config, &names);
        return Err(e);
    }
    let local = LocalState {
        db_fingerprint,
        imported_from: Some(from.to_path_buf()),
        allow_older: how.allow_older,
        ..LocalState::default()
    };
    finish(
        &dir,
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
                    Err(not_a_file(&path))
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
    dir: &crate::rooted::Dir,
) -> Result<(), PrepareError> {
    use std::io::Read;
    let shown = from.join(&f.name);
    let mode = if m.command.as_ref().is_some_and(|a| a[0] == f.name) {
        0o755
    } else {
        0o644
    };
    // One byte more than its size: a file that grows is caught, not copied on.
    let mut reader = manifest::Hashing::new(src.take(size.saturating_add(1)));
    dir.copy_reader(&mut reader, f.name.as_ref(), mode)
        .with_context(|| shown.display().to_string())?;
    let (found, count) = reader.finish();
    if count != size {
        return Err(anyhow::anyhow!(
            "{}: changed while it was copied ({size} bytes when opened, {count} read); nothing was prepared",
            shown.display()
        )
        .into());
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
