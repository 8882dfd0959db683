//! What only a boot loads: the paths and packages a soft-reboot would not reload.

use super::*;

/// Where what only a full reboot loads lives: the kernel and its modules,
/// the initrd and what builds it, boot loaders, firmware and microcode.
pub const BOOT_PATHS: [&str; 19] = [
    "/boot/",
    "/efi/",
    "/lib/modules/",
    "/usr/lib/modules/",
    "/lib/firmware/",
    "/usr/lib/firmware/",
    "/usr/lib/kernel/",
    "/etc/kernel/",
    "/usr/lib/grub/",
    "/usr/lib/shim/",
    "/usr/lib/systemd/boot/",
    "/etc/initramfs-tools/",
    "/usr/share/initramfs-tools/",
    "/etc/dracut.conf.d/",
    "/usr/lib/dracut/",
    "/etc/mkinitcpio.d/",
    "/usr/lib/initcpio/",
    "/etc/default/grub.d/",
    "/etc/default/grub",
];

/// Whether a file a package installs is one a soft-reboot would not load.
pub fn is_boot_path(path: &str) -> bool {
    BOOT_PATHS.iter().any(|p| match p.strip_suffix('/') {
        // Below the directory, not the directory itself: packages list the
        // directories their files are in.
        Some(_) => path.len() > p.len() && path.starts_with(p),
        None => path == *p,
    })
}

/// Names of packages that are the kernel, boot loader, initrd generator or
/// firmware whatever their file lists say (a removed package has none).
pub fn is_boot_package(name: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "linux-image",
        "linux-firmware",
        "kernel",
        "grub",
        "shim",
        "systemd-boot",
        "initramfs-tools",
        "dracut",
        "mkinitcpio",
        "firmware-",
    ];
    name == "linux"
        || name.starts_with("linux-lts")
        || name.starts_with("linux-zen")
        || name.ends_with("-microcode")
        || name.ends_with("-ucode")
        || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The boot-relevant reason among `changes`, given each changed package's
/// file list (`None`: the package is gone, so its name decides).
pub fn first_boot_file<F, I>(changes: &[PackageChange], mut files_of: F) -> Option<String>
where
    F: FnMut(&PackageChange) -> Option<I>,
    I: IntoIterator<Item = String>,
{
    for c in changes.iter().filter(|c| c.before != c.after) {
        if is_boot_package(&c.name) {
            return Some(format!(
                "{} is a kernel, boot loader or firmware package",
                c.name
            ));
        }
        match files_of(c) {
            Some(files) => {
                if let Some(path) = files.into_iter().find(|p| is_boot_path(p)) {
                    return Some(format!("{} installs {path}", c.name));
                }
            }
            // Fail closed: what cannot be read may be a kernel.
            None if c.after.is_some() => {
                return Some(format!("the file list of {} could not be read", c.name))
            }
            // Removed: its list is gone with it; the boot trees' comparison
            // (boottree) sees what it took away.
            None => {}
        }
    }
    None
}

/// A file list of at most `FILE_LIST_MAX` bytes, one path per line, read
/// as every untrusted file is (a regular file, never through a link); a
/// longer or unreadable one gives `None`, which first_boot_file counts as
/// touching boot.
pub const FILE_LIST_MAX: u64 = 32 << 20;

pub fn read_file_list(root: &Root, inside: &Path) -> Option<Vec<String>> {
    crate::untrusted::read_text_in(root, inside, FILE_LIST_MAX, false)
        .ok()
        .map(|text| text.lines().map(str::to_string).collect())
}
