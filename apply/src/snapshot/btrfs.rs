//! The few btrfs operations a snapshot and a rollback need, straight through
//! the kernel's ioctls (linux/btrfs.h): no `btrfs` program at boot, where
//! the update environment may not have it.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The id of the top-level subvolume of every btrfs filesystem.
pub const TOP_LEVEL_ID: u64 = 5;
const BTRFS_SUPER_MAGIC: i64 = 0x9123_683E;
// A subvolume's root directory always has this inode number.
const FIRST_FREE_OBJECTID: u64 = 256;
const ROOT_TREE_OBJECTID: u64 = 1;
const ROOT_TREE_DIR_OBJECTID: u64 = 6;
const DIR_ITEM_KEY: u32 = 84;
const ROOT_REF_KEY: u32 = 156;
const ROOT_BACKREF_KEY: u32 = 144;
const SUBVOL_RDONLY: u64 = 1 << 1;
const SUBVOL_NAME_MAX: usize = 4039;
const PATH_NAME_MAX: usize = 4087;
const INO_LOOKUP_PATH_MAX: usize = 4080;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("{0}: not on a btrfs filesystem")]
    NotBtrfs(PathBuf),
    #[error("{0}: not a btrfs subvolume")]
    NotSubvolume(PathBuf),
    #[error("subvolume name {0:?} is empty, too long or contains '/'")]
    BadName(String),
    #[error("{path}: the kernel answered {what} that cannot be read")]
    Malformed { path: PathBuf, what: &'static str },
}

type Result<T> = std::result::Result<T, Error>;

#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; PATH_NAME_MAX + 1],
}

#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; INO_LOOKUP_PATH_MAX],
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct SearchKey {
    tree_id: u64,
    min_objectid: u64,
    max_objectid: u64,
    min_offset: u64,
    max_offset: u64,
    min_transid: u64,
    max_transid: u64,
    min_type: u32,
    max_type: u32,
    nr_items: u32,
    unused: u32,
    unused1: [u64; 4],
}

const SEARCH_BUF: usize = 4096 - std::mem::size_of::<SearchKey>();

#[repr(C)]
struct SearchArgs {
    key: SearchKey,
    buf: [u8; SEARCH_BUF],
}

// Only the fixed-size header is read from the kernel's buffer.
const SEARCH_HEADER_LEN: usize = 32;

mod ioc {
    use super::{InoLookupArgs, SearchArgs, VolArgs, VolArgsV2};
    nix::ioctl_write_ptr!(snap_destroy, 0x94, 15, VolArgs);
    nix::ioctl_readwrite!(tree_search, 0x94, 17, SearchArgs);
    nix::ioctl_readwrite!(ino_lookup, 0x94, 18, InoLookupArgs);
    nix::ioctl_write_ptr!(default_subvol, 0x94, 19, u64);
    nix::ioctl_write_ptr!(snap_create_v2, 0x94, 23, VolArgsV2);
    nix::ioctl_read!(subvol_getflags, 0x94, 25, u64);
    nix::ioctl_write_ptr!(subvol_setflags, 0x94, 26, u64);
}

fn open_dir(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        op: "open",
        source,
    })
}

fn ioctl_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(nix::Error) -> Error + 'a {
    move |e| Error::Io {
        path: path.to_owned(),
        op,
        source: io::Error::from_raw_os_error(e as i32),
    }
}

fn copy_name<const N: usize>(name: &OsStr, dest: &mut [u8; N]) -> Result<()> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= N || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(Error::BadName(name.to_string_lossy().into_owned()));
    }
    dest[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// Whether `path` is on a btrfs filesystem.
pub fn is_btrfs(path: &Path) -> Result<bool> {
    let st = nix::sys::statfs::statfs(path).map_err(ioctl_err(path, "statfs"))?;
    Ok(st.filesystem_type().0 as i64 == BTRFS_SUPER_MAGIC)
}

/// Whether `path` is the root directory of a btrfs subvolume (false when
/// nothing is there).
pub fn is_subvolume(path: &Path) -> Result<bool> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                op: "stat",
                source,
            })
        }
    };
    Ok(md.is_dir() && md.ino() == FIRST_FREE_OBJECTID && is_btrfs(path)?)
}

fn require_subvolume(path: &Path) -> Result<()> {
    if !is_btrfs(path)? {
        return Err(Error::NotBtrfs(path.to_owned()));
    }
    if !is_subvolume(path)? {
        return Err(Error::NotSubvolume(path.to_owned()));
    }
    Ok(())
}

/// The id of the subvolume `path` lies in.
pub fn subvolume_id(path: &Path) -> Result<u64> {
    let dir = open_dir(path)?;
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; INO_LOOKUP_PATH_MAX],
    };
    // SAFETY: args is a properly sized, initialised btrfs_ioctl_ino_lookup_args.
    unsafe { ioc::ino_lookup(dir.as_raw_fd(), &mut args) }
        .map_err(ioctl_err(path, "BTRFS_IOC_INO_LOOKUP"))?;
    Ok(args.treeid)
}

/// Takes a snapshot of subvolume `source` as `dest_dir/name`.
pub fn snapshot(source: &Path, dest_dir: &Path, name: &OsStr, read_only: bool) -> Result<()> {
    require_subvolume(source)?;
    let src = open_dir(source)?;
    let dest = open_dir(dest_dir)?;
    let mut args = VolArgsV2 {
        fd: src.as_raw_fd() as i64,
        transid: 0,
        flags: if read_only { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    };
    copy_name(name, &mut args.name)?;
    // SAFETY: args is a properly sized, initialised btrfs_ioctl_vol_args_v2
    // and src stays open for the call.
    unsafe { ioc::snap_create_v2(dest.as_raw_fd(), &args) }
        .map_err(ioctl_err(&dest_dir.join(name), "BTRFS_IOC_SNAP_CREATE_V2"))?;
    Ok(())
}

/// Deletes subvolume `parent/name` (which must hold no other subvolume).
pub fn delete(parent: &Path, name: &OsStr) -> Result<()> {
    let target = parent.join(name);
    require_subvolume(&target)?;
    // A read-only snapshot is deleted as readily as a writable one by root,
    // but clearing the flag first keeps this working where that is refused.
    set_read_only(&target, false)?;
    let dir = open_dir(parent)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    copy_name(name, &mut args.name)?;
    // SAFETY: args is a properly sized, initialised btrfs_ioctl_vol_args.
    unsafe { ioc::snap_destroy(dir.as_raw_fd(), &args) }
        .map_err(ioctl_err(&target, "BTRFS_IOC_SNAP_DESTROY"))?;
    Ok(())
}

/// Whether subvolume `path` is read-only.
#[cfg(test)]
pub fn is_read_only(path: &Path) -> Result<bool> {
    let dir = open_dir(path)?;
    let mut flags = 0u64;
    // SAFETY: flags is a u64, as BTRFS_IOC_SUBVOL_GETFLAGS writes.
    unsafe { ioc::subvol_getflags(dir.as_raw_fd(), &mut flags) }
        .map_err(ioctl_err(path, "BTRFS_IOC_SUBVOL_GETFLAGS"))?;
    Ok(flags & SUBVOL_RDONLY != 0)
}

/// Makes subvolume `path` read-only or writable.
pub fn set_read_only(path: &Path, read_only: bool) -> Result<()> {
    let dir = open_dir(path)?;
    let mut flags = 0u64;
    // SAFETY: as in is_read_only.
    unsafe { ioc::subvol_getflags(dir.as_raw_fd(), &mut flags) }
        .map_err(ioctl_err(path, "BTRFS_IOC_SUBVOL_GETFLAGS"))?;
    let new = if read_only {
        flags | SUBVOL_RDONLY
    } else {
        flags & !SUBVOL_RDONLY
    };
    if new != flags {
        // SAFETY: new is a u64, as BTRFS_IOC_SUBVOL_SETFLAGS reads.
        unsafe { ioc::subvol_setflags(dir.as_raw_fd(), &new) }
            .map_err(ioctl_err(path, "BTRFS_IOC_SUBVOL_SETFLAGS"))?;
    }
    Ok(())
}

/// Makes subvolume `id` the one mounted when no subvol=/subvolid= is given.
/// `fs_path` is any path on the filesystem.
pub fn set_default(fs_path: &Path, id: u64) -> Result<()> {
    let dir = open_dir(fs_path)?;
    // SAFETY: id is a u64, as BTRFS_IOC_DEFAULT_SUBVOL reads.
    unsafe { ioc::default_subvol(dir.as_raw_fd(), &id) }
        .map_err(ioctl_err(fs_path, "BTRFS_IOC_DEFAULT_SUBVOL"))?;
    Ok(())
}

/// `N` bytes of `data` from `at`, when there are that many.
fn bytes_at<const N: usize>(data: &[u8], at: usize) -> Option<[u8; N]> {
    data.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// One item found by a tree search: its key and its bytes.
struct Item {
    objectid: u64,
    offset: u64,
    data: Vec<u8>,
}

/// Items of one type and objectid in tree `tree_id` (needs CAP_SYS_ADMIN),
/// read a buffer at a time: a root may hold hundreds of subvolumes.
fn search(fs_path: &Path, tree_id: u64, objectid: u64, item_type: u32) -> Result<Vec<Item>> {
    let dir = open_dir(fs_path)?;
    let malformed = || Error::Malformed {
        path: fs_path.to_owned(),
        what: "a tree search result",
    };
    let mut items: Vec<Item> = Vec::new();
    let mut min_offset = 0u64;
    // Bounded: each round moves min_offset past at least one item.
    for _ in 0..1_000_000 {
        let mut args = SearchArgs {
            key: SearchKey {
                tree_id,
                min_objectid: objectid,
                max_objectid: objectid,
                min_offset,
                max_offset: u64::MAX,
                min_transid: 0,
                max_transid: u64::MAX,
                min_type: item_type,
                max_type: item_type,
                nr_items: 4096,
                ..SearchKey::default()
            },
            buf: [0; SEARCH_BUF],
        };
        // SAFETY: args is a properly sized, initialised btrfs_ioctl_search_args.
        unsafe { ioc::tree_search(dir.as_raw_fd(), &mut args) }
            .map_err(ioctl_err(fs_path, "BTRFS_IOC_TREE_SEARCH"))?;
        if args.key.nr_items == 0 {
            return Ok(items);
        }
        let mut at = 0usize;
        for _ in 0..args.key.nr_items {
            let header = args
                .buf
                .get(at..at + SEARCH_HEADER_LEN)
                .ok_or_else(malformed)?;
            // struct btrfs_ioctl_search_header, in the CPU's byte order.
            let u64_at = |i: usize| {
                bytes_at(header, i)
                    .map(u64::from_ne_bytes)
                    .ok_or_else(malformed)
            };
            let len = bytes_at(header, 28)
                .map(u32::from_ne_bytes)
                .ok_or_else(malformed)? as usize;
            let data = args
                .buf
                .get(at + SEARCH_HEADER_LEN..at + SEARCH_HEADER_LEN + len)
                .ok_or_else(malformed)?;
            items.push(Item {
                objectid: u64_at(8)?,
                offset: u64_at(16)?,
                data: data.to_vec(),
            });
            at += SEARCH_HEADER_LEN + len;
        }
        match items.last().map(|i| i.offset.checked_add(1)) {
            Some(Some(next)) => min_offset = next,
            _ => return Ok(items),
        }
    }
    Err(malformed())
}

/// The id of the filesystem's default subvolume.
pub fn default_id(fs_path: &Path) -> Result<u64> {
    // The root tree's directory holds one item, "default", whose location
    // key names the default subvolume.
    let items = search(
        fs_path,
        ROOT_TREE_OBJECTID,
        ROOT_TREE_DIR_OBJECTID,
        DIR_ITEM_KEY,
    )?;
    let Some(item) = items.first() else {
        return Ok(TOP_LEVEL_ID);
    };
    // struct btrfs_dir_item starts with the little-endian location objectid.
    bytes_at(&item.data, 0)
        .map(u64::from_le_bytes)
        .ok_or(Error::Malformed {
            path: fs_path.to_owned(),
            what: "the default subvolume item",
        })
}

/// The path of subvolume `id` relative to the top-level subvolume, e.g.
/// `@` or `roots/debian`. `fs_path` is any path on the filesystem.
pub fn subvolume_path(fs_path: &Path, id: u64) -> Result<PathBuf> {
    let mut parts: Vec<PathBuf> = Vec::new();
    let mut current = id;
    // Bounded: a subvolume chain deeper than this is not a layout we boot.
    for _ in 0..64 {
        if current == TOP_LEVEL_ID {
            let mut path = PathBuf::new();
            for p in parts.iter().rev() {
                path.push(p);
            }
            return Ok(path);
        }
        let malformed = || Error::Malformed {
            path: fs_path.to_owned(),
            what: "a subvolume back reference",
        };
        let item = search(fs_path, ROOT_TREE_OBJECTID, current, ROOT_BACKREF_KEY)?
            .into_iter()
            .find(|i| i.objectid == current)
            .ok_or_else(malformed)?;
        // struct btrfs_root_ref { le64 dirid; le64 sequence; le16 name_len; } name
        let dirid = u64::from_le_bytes(bytes_at(&item.data, 0).ok_or_else(malformed)?);
        let name_len = u16::from_le_bytes(bytes_at(&item.data, 16).ok_or_else(malformed)?) as usize;
        let name = item.data.get(18..18 + name_len).ok_or_else(malformed)?;
        let parent = item.offset;
        let mut part = dir_in_subvolume(fs_path, parent, dirid)?;
        part.push(OsStr::from_bytes(name));
        parts.push(part);
        current = parent;
    }
    Err(Error::Malformed {
        path: fs_path.to_owned(),
        what: "a subvolume chain deeper than 64",
    })
}

/// The path of directory `dirid` inside subvolume `tree` ("" for its root).
fn dir_in_subvolume(fs_path: &Path, tree: u64, dirid: u64) -> Result<PathBuf> {
    let dir = open_dir(fs_path)?;
    let mut args = InoLookupArgs {
        treeid: tree,
        objectid: dirid,
        name: [0; INO_LOOKUP_PATH_MAX],
    };
    // SAFETY: as in subvolume_id.
    unsafe { ioc::ino_lookup(dir.as_raw_fd(), &mut args) }
        .map_err(ioctl_err(fs_path, "BTRFS_IOC_INO_LOOKUP"))?;
    let name = CStr::from_bytes_until_nul(&args.name).map_err(|_| Error::Malformed {
        path: fs_path.to_owned(),
        what: "an inode path",
    })?;
    // The kernel ends a non-empty path with '/'.
    Ok(PathBuf::from(OsStr::from_bytes(name.to_bytes())))
}

/// The subvolumes directly inside subvolume `id`, as paths relative to its
/// root. `fs_path` is any path on the filesystem.
pub fn child_subvolumes(fs_path: &Path, id: u64) -> Result<Vec<PathBuf>> {
    let malformed = || Error::Malformed {
        path: fs_path.to_owned(),
        what: "a subvolume reference",
    };
    let mut out = Vec::new();
    for item in search(fs_path, ROOT_TREE_OBJECTID, id, ROOT_REF_KEY)? {
        if item.objectid != id {
            continue;
        }
        // struct btrfs_root_ref, as in subvolume_path.
        let dirid = u64::from_le_bytes(bytes_at(&item.data, 0).ok_or_else(malformed)?);
        let name_len = u16::from_le_bytes(bytes_at(&item.data, 16).ok_or_else(malformed)?) as usize;
        let name = item.data.get(18..18 + name_len).ok_or_else(malformed)?;
        let mut path = dir_in_subvolume(fs_path, id, dirid)?;
        path.push(OsStr::from_bytes(name));
        out.push(path);
    }
    Ok(out)
}

/// Swaps the names `a` and `b` inside directory `dir` in one step: a power
/// cut leaves either both old names or both new ones.
pub fn exchange(dir: &Path, a: &OsStr, b: &OsStr) -> Result<()> {
    use nix::fcntl::{renameat2, RenameFlags};
    let d = open_dir(dir)?;
    renameat2(&d, a, &d, b, RenameFlags::RENAME_EXCHANGE)
        .map_err(ioctl_err(dir, "renameat2 RENAME_EXCHANGE"))
}
