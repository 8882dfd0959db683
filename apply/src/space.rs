//! Free space before the transaction: an update that cannot fit fails
//! before it changes anything, with the figures that say why.

use std::path::Path;

/// Room kept for btrfs metadata when a snapshot pins the old extents.
pub const SNAPSHOT_MARGIN: u64 = 32 << 20;
/// Room kept in any case: dpkg's database, logs, the result record.
pub const BASE_MARGIN: u64 = 8 << 20;

/// Bytes available to an unprivileged writer... and to root, which is who
/// we are: f_bavail, so the reserve for root stays a reserve.
pub fn available(path: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Below this much free space after a failed transaction, the disk is
/// taken as full: the failure was (or would soon be) "No space left on
/// device", and what filled it must not stay at the cost of the next boot.
pub const FULL_BELOW: u64 = BASE_MARGIN;

/// The free bytes of `path`'s file system when it is full (below
/// FULL_BELOW); None when there is room or the figure cannot be read.
pub fn full(path: &Path) -> Option<u64> {
    available(path).ok().filter(|&free| free < FULL_BELOW)
}

/// 1536 -> "1.5 KiB".
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Ok when `payload` bytes (plus the margins) fit in what `root` has free;
/// else the one-line reason.
pub fn check(root: &Path, payload: u64, snapshot: bool) -> Result<(), String> {
    let margin = BASE_MARGIN + if snapshot { SNAPSHOT_MARGIN } else { 0 };
    let needed = payload.saturating_add(margin);
    let free = available(root)
        .map_err(|e| format!("{}: cannot read the free space: {e}", root.display()))?;
    if needed <= free {
        return Ok(());
    }
    Err(format!(
        "not enough free space on {} for the update: {} needed ({} for the packages, {} for {}), {} available; nothing was changed. Free some space, or cancel the update (system-update cancel --purge)",
        root.display(),
        human(needed),
        human(payload),
        human(margin),
        if snapshot { "the database and the snapshot's metadata" } else { "the database and logs" },
        human(free)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(10 << 30), "10.0 GiB");
    }

    #[test]
    fn too_large_names_both_figures() {
        let e = check(Path::new("/"), u64::MAX / 2, true).unwrap_err();
        assert!(
            e.starts_with("not enough free space on / for the update: "),
            "{e}"
        );
        assert!(e.contains(" available; nothing was changed"), "{e}");
        assert!(check(Path::new("/"), 0, false).is_ok());
    }
}
