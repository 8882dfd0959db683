//! The Unicode map of a Linux VT's console font (the `GIO_UNIMAP` ioctl):
//! the code points the font in use can show. Only the call lives here; what
//! to draw with them is `glyphs`.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `GIO_UNIMAP` from <linux/kd.h>.
const GIO_UNIMAP: u32 = 0x4B66;

/// `struct unipair`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UniPair {
    unicode: u16,
    // Filled by the kernel; which glyph it is does not matter here.
    #[allow(dead_code)]
    fontpos: u16,
}

/// `struct unimapdesc`.
#[repr(C)]
struct UniMapDesc {
    entry_ct: u16,
    entries: *mut UniPair,
}

fn get_unimap(fd: BorrowedFd<'_>, desc: &mut UniMapDesc) -> Result<(), i32> {
    // SAFETY: GIO_UNIMAP reads `desc` and writes at most `entry_ct` pairs
    // to `entries` (none when it is 0) and the total count to `entry_ct`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), GIO_UNIMAP as _, desc as *mut UniMapDesc) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    }
}

/// The code points the VT on `fd` maps to its font; None when `fd` is no
/// VT, the call fails or the map is empty (then nothing is known of it).
/// The kernel's count is 16 bits: at most 65535 pairs (256 KiB) are read.
pub fn read(fd: BorrowedFd<'_>) -> Option<BTreeSet<u32>> {
    // Asked for 0 pairs, the kernel says how many there are (ENOMEM).
    let mut desc = UniMapDesc {
        entry_ct: 0,
        entries: std::ptr::null_mut(),
    };
    match get_unimap(fd, &mut desc) {
        Ok(()) | Err(libc::ENOMEM) => {}
        Err(e) => {
            tracing::debug!("no console font map (errno {e})");
            return None;
        }
    }
    let n = desc.entry_ct;
    if n == 0 {
        return None;
    }
    let mut pairs = vec![UniPair::default(); usize::from(n)];
    desc.entry_ct = n;
    desc.entries = pairs.as_mut_ptr();
    // A font loaded in between may have grown the map (ENOMEM): unknown.
    if let Err(e) = get_unimap(fd, &mut desc) {
        tracing::debug!("console font map of {n} entries not read (errno {e})");
        return None;
    }
    let got = usize::from(desc.entry_ct.min(n));
    Some(pairs[..got].iter().map(|p| u32::from(p.unicode)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_pty_has_no_font_map() {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        assert_eq!(read(pty.slave.as_fd()), None);
    }

    #[test]
    fn a_file_has_no_font_map() {
        let f = tempfile::tempfile().expect("tempfile");
        assert_eq!(read(f.as_fd()), None);
    }
}
