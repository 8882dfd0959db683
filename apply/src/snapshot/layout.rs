//! Where the root subvolume sits and how the next boot finds it: what a
//! snapshot and a rollback must know before anything is changed.

use std::fs;
use std::path::{Path, PathBuf};

use super::btrfs;

/// Why a btrfs snapshot with rollback is not possible for this root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// The root subvolume and the filesystem it lives on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root directory as given (`/`, or `--root DIR`).
    pub root: PathBuf,
    /// Its subvolume id.
    pub root_id: u64,
    /// Its path below the top-level subvolume, e.g. `@` or `roots/debian`.
    pub rel_path: PathBuf,
    /// The block device the filesystem is mounted from.
    pub device: PathBuf,
}

impl Layout {
    /// The last component of the root subvolume's path.
    pub fn name(&self) -> &std::ffi::OsStr {
        self.rel_path.file_name().unwrap_or_default()
    }

    /// The directory, relative to the top level, that holds the root
    /// subvolume, its snapshots and the failed states.
    pub fn parent(&self) -> &Path {
        self.rel_path.parent().unwrap_or(Path::new(""))
    }
}

/// Looks at `root` and decides whether it can be snapshotted and rolled back.
/// `cmdline` is the kernel command line the next boot will use (empty when
/// `root` is not the running system).
pub fn inspect(root: &Path, cmdline: &str) -> Result<Result<Layout, Unsupported>, btrfs::Error> {
    let no = |why: String| Ok(Err(Unsupported(why)));
    if !btrfs::is_btrfs(root)? {
        return no(format!("{} is not on btrfs", root.display()));
    }
    if !btrfs::is_subvolume(root)? {
        return no(format!(
            "{} is a directory inside a btrfs subvolume, not a subvolume of its own",
            root.display()
        ));
    }
    let root_id = btrfs::subvolume_id(root)?;
    if root_id == btrfs::TOP_LEVEL_ID {
        return no(format!(
            "{} is the top-level subvolume of its filesystem: a rollback needs the root in a subvolume of its own",
            root.display()
        ));
    }
    // A package database must roll back with the files it describes.
    for db in crate::backend::state_dirs() {
        let admindir = root.join(db.trim_start_matches('/'));
        if admindir.is_dir() && btrfs::subvolume_id(&admindir)? != root_id {
            return no(format!(
                "{} is on another subvolume than {}: rolling back the root alone would leave the package database out of step",
                admindir.display(),
                root.display()
            ));
        }
    }
    if let Some(flags) = cmdline_rootflags(cmdline) {
        if flags.split(',').any(|o| o.starts_with("subvolid=")) {
            return no(format!(
                "the kernel command line selects the root by subvolid= ({flags}): a restored root gets a new id; use subvol= instead"
            ));
        }
    }
    let canonical = fs::canonicalize(root).map_err(|source| btrfs::Error::Io {
        path: root.to_owned(),
        op: "canonicalize",
        source,
    })?;
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|source| btrfs::Error::Io {
            path: "/proc/self/mountinfo".into(),
            op: "read",
            source,
        })?;
    let Some(device) = btrfs_device(&mountinfo, &canonical) else {
        return no(format!(
            "no btrfs mount holding {} in /proc/self/mountinfo",
            canonical.display()
        ));
    };
    let rel_path = btrfs::subvolume_path(root, root_id)?;
    Ok(Ok(Layout {
        root: root.to_owned(),
        root_id,
        rel_path,
        device,
    }))
}

/// The value of the last `rootflags=` on a kernel command line.
fn cmdline_rootflags(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("rootflags="))
        .next_back()
        .map(|v| v.trim_matches('"'))
}

/// The source device of the btrfs mount with the longest mount point that
/// holds `path`.
fn btrfs_device(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    let mut best: Option<(usize, PathBuf)> = None;
    for line in mountinfo.lines() {
        // A line we cannot read says nothing about the others.
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(point) = left.split(' ').nth(4) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(point));
        let mut r = right.split(' ');
        let (Some(fstype), Some(source)) = (r.next(), r.next()) else {
            continue;
        };
        if fstype != "btrfs" || !path.starts_with(&mount_point) {
            continue;
        }
        let depth = mount_point.components().count();
        // Later lines stack on earlier ones at the same point.
        if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
            best = Some((depth, PathBuf::from(unescape(source))));
        }
    }
    best.map(|(_, d)| d)
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // The kernel writes \ooo for a byte, so the first digit is 0-3;
        // \4xx-\7xx would not fit a byte (and overflowed one): literal.
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Rewrites `subvolid=OLD` to `subvolid=NEW` in the options of the `/`
/// entries of an fstab; None when nothing needed changing.
pub fn fstab_with_new_root_id(fstab: &str, old: u64, new: u64) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(fstab.len());
    for line in fstab.split_inclusive('\n') {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_root =
            !line.trim_start().starts_with('#') && fields.get(1) == Some(&"/") && fields.len() >= 4;
        let old_opt = format!("subvolid={old}");
        if is_root && fields[3].split(',').any(|o| o == old_opt) {
            let opts: Vec<String> = fields[3]
                .split(',')
                .map(|o| {
                    if o == old_opt {
                        format!("subvolid={new}")
                    } else {
                        o.to_owned()
                    }
                })
                .collect();
            let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
            f[3] = opts.join(",");
            out.push_str(&f.join("\t"));
            out.push('\n');
            changed = true;
        } else {
            out.push_str(line);
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_device_of_the_deepest_btrfs_mount() {
        let mi = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 7:0 / /tmp/x/mnt rw,relatime shared:2 - btrfs /dev/loop0 rw,space_cache=v2,subvolid=5,subvol=/
31 30 7:1 / /tmp/x/mnt/inner rw - btrfs /dev/loop1 rw
32 22 0:5 / /tmp/with\\040space rw - btrfs /dev/loop2 rw
";
        assert_eq!(
            btrfs_device(mi, Path::new("/tmp/x/mnt/roots/a")),
            Some("/dev/loop0".into())
        );
        assert_eq!(
            btrfs_device(mi, Path::new("/tmp/x/mnt/inner/a")),
            Some("/dev/loop1".into())
        );
        assert_eq!(
            btrfs_device(mi, Path::new("/tmp/with space/a")),
            Some("/dev/loop2".into())
        );
        assert_eq!(btrfs_device(mi, Path::new("/tmp/x/mntz")), None);
        assert_eq!(btrfs_device(mi, Path::new("/")), None);
    }

    #[test]
    fn rootflags() {
        assert_eq!(
            cmdline_rootflags("root=/dev/vda rootflags=subvol=@ ro"),
            Some("subvol=@")
        );
        assert_eq!(
            cmdline_rootflags("rootflags=a rootflags=\"subvolid=256,x\""),
            Some("subvolid=256,x")
        );
        assert_eq!(cmdline_rootflags("root=/dev/vda"), None);
    }

    #[test]
    fn fstab_rewrite() {
        let f = "# / was on /dev/vda\nUUID=x / btrfs defaults,subvolid=256,compress 0 0\nUUID=x /home btrfs subvolid=256 0 0\n";
        let n = fstab_with_new_root_id(f, 256, 300).expect("changed");
        assert!(
            n.contains("/\tbtrfs\tdefaults,subvolid=300,compress\t0\t0\n"),
            "{n}"
        );
        assert!(n.contains("/home btrfs subvolid=256 0 0"), "{n}");
        assert!(n.starts_with("# / was on /dev/vda\n"));
        assert_eq!(
            fstab_with_new_root_id("UUID=x / btrfs subvol=@ 0 0\n", 256, 300),
            None
        );
        assert_eq!(
            fstab_with_new_root_id("UUID=x / btrfs subvolid=2560 0 0\n", 256, 300),
            None
        );
    }
}

#[cfg(test)]
mod regressions {
    use super::*;

    #[test]
    fn found_by_the_properties() {
        // \4xx-\7xx overflowed a byte (a panic in a debug build).
        assert_eq!(unescape("a\\400b"), "a\\400b");
        assert_eq!(unescape("a\\040b"), "a b");
        // A line without " - " made the whole search give up.
        let mi = "garbage\n99 1 0:40 / / rw - btrfs /dev/vdz rw\n";
        assert_eq!(
            btrfs_device(mi, Path::new("/")),
            Some(PathBuf::from("/dev/vdz"))
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn mountinfo_line() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            (
                "[/a-z\\\\0-7]{1,12}",
                prop_oneof![Just("btrfs"), Just("ext4")],
                "/dev/[a-z0-9\\\\]{1,6}"
            )
                .prop_map(|(mp, fs, dev)| format!(
                    "36 25 0:32 / {mp} rw,relatime shared:1 - {fs} {dev} rw,subvol=/@"
                )),
        ]
    }

    proptest! {
        #[test]
        fn unescape_never_panics(s in "[\\\\0-9a-z ]{0,16}") {
            let _ = unescape(&s);
        }

        #[test]
        fn unescape_decodes_every_byte_escape(b in any::<u8>()) {
            let s = format!("a\\{:03o}b", b);
            let want = String::from_utf8_lossy(&[b'a', b, b'b']).into_owned();
            prop_assert_eq!(unescape(&s), want);
        }

        #[test]
        fn mountinfo_never_panics_and_a_bad_line_hides_nothing(
            lines in proptest::collection::vec(mountinfo_line(), 0..6),
        ) {
            let mut text = lines.join("\n");
            let _ = btrfs_device(&text, Path::new("/x"));
            // A valid btrfs mount of / after whatever came before is found.
            text += "\n99 1 0:40 / / rw - btrfs /dev/vdz rw\n";
            prop_assert!(btrfs_device(&text, Path::new("/")).is_some(), "{:?}", text);
        }

        #[test]
        fn rootflags_never_panics(s in any::<String>()) {
            let _ = cmdline_rootflags(&s);
        }

        #[test]
        fn rootflags_takes_the_last(a in "[a-z=,@/]{0,12}", b in "[a-z=,@/]{0,12}") {
            let line = format!("ro rootflags={a} quiet rootflags=\"{b}\"");
            prop_assert_eq!(cmdline_rootflags(&line), Some(b.as_str()));
        }

        #[test]
        fn fstab_rewrite_changes_only_the_root_subvolid(
            other in "[a-z/ ]{0,20}",
            old in 1u64..1000,
            new in 1000u64..2000,
        ) {
            let fstab = format!("# {other}\nUUID=x / btrfs rw,subvolid={old},noatime 0 0\nUUID=y /home btrfs subvolid={old} 0 0\n");
            let out = fstab_with_new_root_id(&fstab, old, new).unwrap();
            prop_assert!(out.contains(&format!("subvolid={new},noatime")), "{}", out);
            prop_assert!(out.contains(&format!("/home btrfs subvolid={old}")), "{}", out);
            let comment = format!("# {other}\n");
            prop_assert!(out.starts_with(&comment));
            // Rewriting back restores the entry (tabs for blanks aside).
            let back = fstab_with_new_root_id(&out, new, old).unwrap();
            let restored = format!("subvolid={old},noatime");
            prop_assert!(back.contains(&restored));
            prop_assert_eq!(fstab_with_new_root_id(&fstab, new + 1, new), None);
        }

        #[test]
        fn fstab_never_panics(s in any::<String>(), old in any::<u64>(), new in any::<u64>()) {
            let _ = fstab_with_new_root_id(&s, old, new);
        }
    }
}
