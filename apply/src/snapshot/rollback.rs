//! Snapshot, rollback and retention on a btrfs root.
//!
//! Everything lives beside the root subvolume, in the directory of the top
//! level that holds it (mounted privately for the operation), so the names
//! say what they are and no rename ever crosses a subvolume:
//!
//! - `NAME.before-ID`: read-only, the root as it was before update ID;
//! - `NAME.failed-ID`: the root as the failed update left it, for inspection.
//!
//! A rollback makes a writable snapshot of the pre-update state and swaps it
//! with the root subvolume in one rename, so a boot that finds its root by
//! `subvol=` finds the restored one and the failed root is kept as
//! `NAME.failed-ID`; where the root is the default subvolume, the default
//! moves to it, and `subvolid=` in the restored fstab is rewritten.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::btrfs::{self, Error};
use super::layout::{fstab_with_new_root_id, Layout};

type Result<T> = anyhow::Result<T>;

/// What failed where: "PATH: OP failed".
fn op_failed(path: &Path, op: &str) -> String {
    format!("{}: {op} failed", path.display())
}

/// The top-level subvolume, mounted at a private directory until dropped.
pub struct TopLevel {
    dir: PathBuf,
}

impl TopLevel {
    /// Mounts `device`'s top-level subvolume below `run_dir` (a tmpfs such as
    /// /run: the update environment may have no other writable place).
    pub fn mount(device: &Path, run_dir: &Path) -> Result<TopLevel> {
        fs::create_dir_all(run_dir).with_context(|| op_failed(run_dir, "mkdir"))?;
        let dir = run_dir.join(format!("btrfs-top.{}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| op_failed(&dir, "mkdir"))?;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        if let Err(e) = mount(Some(device), &dir, Some("btrfs"), flags, Some("subvolid=5")) {
            let _ = fs::remove_dir(&dir);
            return Err(std::io::Error::from_raw_os_error(e as i32))
                .with_context(|| op_failed(device, "mount subvolid=5"));
        }
        Ok(TopLevel { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TopLevel {
    fn drop(&mut self) {
        // Lazy: a process still looking inside must not keep it mounted.
        if let Err(e) = umount2(&self.dir, MntFlags::MNT_DETACH) {
            tracing::warn!("unmounting {}: {e}", self.dir.display());
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

fn suffixed(name: &OsStr, kind: &str, id: &str) -> OsString {
    let mut s = name.to_owned();
    s.push(format!(".{kind}-{id}"));
    s
}

/// The name of the pre-update snapshot of update `id`.
pub fn before_name(layout: &Layout, id: &str) -> OsString {
    suffixed(layout.name(), "before", id)
}

/// The name under which the failed state of update `id` is kept.
pub fn failed_name(layout: &Layout, id: &str) -> OsString {
    suffixed(layout.name(), "failed", id)
}

/// Takes the read-only pre-update snapshot; returns its path relative to the
/// top level. A second attempt at the same update keeps the first attempt's
/// snapshot: by then the root may be half-updated.
pub fn take(layout: &Layout, id: &str, run_dir: &Path) -> Result<PathBuf> {
    let top = TopLevel::mount(&layout.device, run_dir)?;
    let name = before_name(layout, id);
    let rel = layout.parent().join(&name);
    if btrfs::is_subvolume(&top.path().join(&rel))? {
        tracing::info!(
            "keeping the snapshot {} of an earlier attempt",
            rel.display()
        );
        return Ok(rel);
    }
    btrfs::snapshot(
        &top.path().join(&layout.rel_path),
        &top.path().join(layout.parent()),
        &name,
        true,
    )?;
    Ok(rel)
}

/// A rolled-back root, with the top level still mounted so the caller can
/// record the outcome in the restored root before the reboot.
pub struct Restored {
    top: TopLevel,
    /// The restored root, as mounted now (under the private top level).
    pub root: PathBuf,
    /// The kept failed state, relative to the top level.
    pub failed: PathBuf,
}

impl Restored {
    /// The kept failed state, as mounted now (under the private top level).
    pub fn failed_root(&self) -> PathBuf {
        self.top.path().join(&self.failed)
    }

    /// Deletes the failed state (a full disk: it holds what filled it).
    pub fn drop_failed(&self) -> Result<()> {
        let path = self.top.path().join(&self.failed);
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::NotSubvolume(path.clone()).into());
        };
        Ok(btrfs::delete(parent, name)?)
    }

    /// Flushes the filesystem and unmounts the top level.
    pub fn finish(self) -> Result<()> {
        let f =
            fs::File::open(self.top.path()).with_context(|| op_failed(self.top.path(), "open"))?;
        nix::unistd::syncfs(&f)
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))
            .with_context(|| op_failed(self.top.path(), "syncfs"))?;
        Ok(())
    }
}

/// The name a restored root is made under before it swaps places with the
/// failed one.
fn restoring_name(layout: &Layout, id: &str) -> OsString {
    suffixed(layout.name(), "restoring", id)
}

/// A free name for the failed state of update `id`: a second rollback of the
/// same update keeps both.
fn free_failed_name(top: &Path, layout: &Layout, id: &str) -> OsString {
    let mut name = failed_name(layout, id);
    for n in 2..1000 {
        if fs::symlink_metadata(top.join(layout.parent()).join(&name)).is_err() {
            break;
        }
        name = failed_name(layout, id);
        name.push(format!(".{n}"));
    }
    name
}

/// Puts the state kept in `source` (a subvolume, relative to the top level:
/// our `NAME.before-ID` or snapper's pre snapshot) back as the root of the
/// next boot.
///
/// The restored root is made under a temporary name and then swaps names
/// with the running root in one rename (RENAME_EXCHANGE): at every instant,
/// power cut included, the root's path holds a complete root.
///
/// On a full disk, the snapshot and the swap are each tried again while
/// `room` makes more space; the restored copy made by one try serves the
/// next, since making it again would spend the metadata space just freed.
pub fn roll_back(
    layout: &Layout,
    id: &str,
    source: &Path,
    run_dir: &Path,
    room: &mut dyn FnMut() -> bool,
) -> Result<Restored> {
    let top = TopLevel::mount(&layout.device, run_dir)?;
    let t = top.path();
    let current = t.join(&layout.rel_path);
    let parent = t.join(layout.parent());
    if !btrfs::is_subvolume(&t.join(source))? {
        return Err(Error::NotSubvolume(t.join(source)).into());
    }
    if btrfs::subvolume_id(&current)? != layout.root_id {
        return Err(Error::Malformed {
            path: current,
            what: "a subvolume other than the running root at the root's path",
        }
        .into());
    }
    let restoring = restoring_name(layout, id);
    if fs::symlink_metadata(parent.join(&restoring)).is_ok() {
        // Left by a rollback cut after the swap: it is a failed state then,
        // and is kept as one.
        let keep = free_failed_name(t, layout, id);
        fs::rename(parent.join(&restoring), parent.join(&keep))
            .with_context(|| op_failed(&parent.join(&restoring), "rename"))?;
    }
    with_room(room, || {
        btrfs::snapshot(&t.join(source), &parent, &restoring, false)
    })?;
    if let Err(e) = with_room(room, || btrfs::exchange(&parent, layout.name(), &restoring)) {
        if let Err(del) = btrfs::delete(&parent, &restoring) {
            tracing::warn!("{}: {del}", parent.join(&restoring).display());
        }
        return Err(e.into());
    }
    let failed_name = free_failed_name(t, layout, id);
    let failed = match fs::rename(parent.join(&restoring), parent.join(&failed_name)) {
        Ok(()) => layout.parent().join(&failed_name),
        Err(e) => {
            tracing::warn!(
                "the failed state stays as {}: renaming it failed: {e}",
                restoring.to_string_lossy()
            );
            layout.parent().join(&restoring)
        }
    };
    carry_nested(t, &t.join(&failed), &current, layout.root_id);
    let new_id = btrfs::subvolume_id(&current)?;
    if btrfs::default_id(t)? == layout.root_id {
        btrfs::set_default(t, new_id)?;
    }
    let fstab = current.join("etc/fstab");
    if let Ok(text) = fs::read_to_string(&fstab) {
        if let Some(new) = fstab_with_new_root_id(&text, layout.root_id, new_id) {
            let mode = fs::metadata(&fstab).map_or(0o644, |m| m.permissions().mode() & 0o7777);
            crate::atomic::write(&fstab, new.as_bytes(), mode)
                .with_context(|| op_failed(&fstab, "write"))?;
        }
    }
    Ok(Restored {
        root: current,
        top,
        failed,
    })
}

/// Runs `step` until it succeeds or `room` can make no more space.
fn with_room<E: std::fmt::Display>(
    room: &mut dyn FnMut() -> bool,
    mut step: impl FnMut() -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    loop {
        match step() {
            Ok(()) => return Ok(()),
            Err(e) if room() => {
                tracing::info!("{e}; trying again with more of the space reserved");
            }
            Err(e) => return Err(e),
        }
    }
}

/// Moves the subvolumes nested in the failed root (snapper's `.snapshots`,
/// /var/lib/machines, a container store) into the restored one. A snapshot
/// does not descend into them, so they were never part of what is rolled
/// back; left behind they would vanish from the running system and keep the
/// failed state from ever being deleted. The snapshot left an empty
/// directory where each was; one that cannot move stays in the failed state,
/// with a warning.
fn carry_nested(fs_path: &Path, failed: &Path, restored: &Path, failed_id: u64) {
    let children = match btrfs::child_subvolumes(fs_path, failed_id) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("nested subvolumes stay in {}: {e}", failed.display());
            return;
        }
    };
    for rel in children {
        let (from, to) = (failed.join(&rel), restored.join(&rel));
        // An empty placeholder, or nothing when the snapshot predates it.
        let moved = make_parents(failed, restored, &rel).and_then(|()| match fs::remove_dir(&to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => fs::rename(&from, &to),
        });
        match moved {
            Ok(()) => tracing::info!("nested subvolume /{} carried over", rel.display()),
            Err(e) => tracing::warn!(
                "nested subvolume {} stays in the failed state: {e}",
                from.display()
            ),
        }
    }
}

/// Creates the directories leading to `rel` in `restored` that the snapshot
/// lacks, with the modes they have in `failed`.
fn make_parents(failed: &Path, restored: &Path, rel: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    let mut at = PathBuf::new();
    for part in parent.components() {
        at.push(part);
        if fs::symlink_metadata(restored.join(&at)).is_ok() {
            continue;
        }
        let mode = fs::metadata(failed.join(&at)).map_or(0o755, |m| m.permissions().mode());
        fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(restored.join(&at))?;
    }
    Ok(())
}

/// What retention found beside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub name: OsString,
    pub id: u64,
    pub failed: bool,
}

/// The snapshots and failed states beside the root, oldest first (subvolume
/// ids grow with creation).
pub fn list(layout: &Layout, top: &Path) -> Result<Vec<Kept>> {
    let dir = top.join(layout.parent());
    let mut before = layout.name().to_owned();
    before.push(".before-");
    let mut failed = layout.name().to_owned();
    failed.push(".failed-");
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| op_failed(&dir, "read_dir"))? {
        let e = e.with_context(|| op_failed(&dir, "read_dir"))?;
        let name = e.file_name();
        let is_failed = name.as_bytes().starts_with(failed.as_bytes());
        if !is_failed && !name.as_bytes().starts_with(before.as_bytes()) {
            continue;
        }
        if !btrfs::is_subvolume(&e.path())? {
            continue;
        }
        out.push(Kept {
            id: btrfs::subvolume_id(&e.path())?,
            name,
            failed: is_failed,
        });
    }
    out.sort_by_key(|k| k.id);
    Ok(out)
}

/// Deletes all but the newest `keep_before` snapshots and `keep_failed`
/// failed states; returns what it deleted.
pub fn prune(
    layout: &Layout,
    run_dir: &Path,
    keep_before: usize,
    keep_failed: usize,
) -> Result<Vec<OsString>> {
    let top = TopLevel::mount(&layout.device, run_dir)?;
    let all = list(layout, top.path())?;
    let mut deleted = Vec::new();
    for (failed, keep) in [(false, keep_before), (true, keep_failed)] {
        let of_kind: Vec<&Kept> = all.iter().filter(|k| k.failed == failed).collect();
        let excess = of_kind.len().saturating_sub(keep);
        for k in &of_kind[..excess] {
            btrfs::delete(&top.path().join(layout.parent()), &k.name)?;
            deleted.push(k.name.clone());
        }
    }
    Ok(deleted)
}
