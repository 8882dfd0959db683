//! The ioctl layer and layout detection on a real btrfs filesystem in a
//! loop-mounted image (needs root; btrfs-progs only make and inspect it).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{btrfs, layout};

struct Fs {
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Fs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.mnt).status();
    }
}

fn root_or_skip() -> bool {
    system_update_test_support::root_or_skip("loop devices, mounts")
}

fn run(cmd: &str, args: &[&OsStr]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn btrfs_fs() -> Fs {
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("fs.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(256 << 20))
        .expect("image");
    run("mkfs.btrfs", &["-q".as_ref(), img.as_os_str()]);
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mkdir");
    run(
        "mount",
        &[
            "-o".as_ref(),
            "loop".as_ref(),
            img.as_os_str(),
            mnt.as_os_str(),
        ],
    );
    Fs { _dir: dir, mnt }
}

fn subvol_create(p: &Path) {
    run(
        "btrfs",
        &[
            "-q".as_ref(),
            "subvolume".as_ref(),
            "create".as_ref(),
            p.as_os_str(),
        ],
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn ioctls() {
    if !root_or_skip() {
        return;
    }
    let fs = btrfs_fs();
    let m = &fs.mnt;
    assert!(btrfs::is_btrfs(m).unwrap());
    assert!(!btrfs::is_btrfs(Path::new("/proc")).unwrap());
    assert!(btrfs::is_subvolume(m).unwrap());
    assert!(!btrfs::is_subvolume(&m.join("missing")).unwrap());
    assert_eq!(btrfs::subvolume_id(m).unwrap(), btrfs::TOP_LEVEL_ID);
    assert_eq!(btrfs::default_id(m).unwrap(), btrfs::TOP_LEVEL_ID);

    std::fs::create_dir(m.join("roots")).unwrap();
    let root = m.join("roots/debian");
    subvol_create(&root);
    std::fs::write(root.join("file"), "v1").unwrap();
    assert!(btrfs::is_subvolume(&root).unwrap());
    assert!(!btrfs::is_subvolume(&m.join("roots")).unwrap());
    let id = btrfs::subvolume_id(&root).unwrap();
    assert!(id >= 256, "{id}");
    assert_eq!(
        btrfs::subvolume_path(m, id).unwrap(),
        Path::new("roots/debian")
    );

    btrfs::snapshot(&root, &m.join("roots"), "debian.pre".as_ref(), true).unwrap();
    let snap = m.join("roots/debian.pre");
    assert!(btrfs::is_read_only(&snap).unwrap());
    assert!(!btrfs::is_read_only(&root).unwrap());
    assert!(std::fs::write(snap.join("file"), "x").is_err());
    assert_eq!(std::fs::read_to_string(snap.join("file")).unwrap(), "v1");

    // A subvolume nested in a directory of another subvolume.
    std::fs::create_dir(root.join("var")).unwrap();
    subvol_create(&root.join("var/nested"));
    let nid = btrfs::subvolume_id(&root.join("var/nested")).unwrap();
    assert_eq!(
        btrfs::subvolume_path(m, nid).unwrap(),
        Path::new("roots/debian/var/nested")
    );

    btrfs::set_default(m, id).unwrap();
    assert_eq!(btrfs::default_id(m).unwrap(), id);
    let out = Command::new("btrfs")
        .args(["subvolume", "get-default"])
        .arg(m)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("ID {id} ")),
        "{out:?}"
    );

    btrfs::delete(&m.join("roots"), "debian.pre".as_ref()).unwrap();
    assert!(!snap.exists());
    assert!(matches!(
        btrfs::delete(m, "roots".as_ref()),
        Err(btrfs::Error::NotSubvolume(_))
    ));
    assert!(matches!(
        btrfs::snapshot(&root, m, "a/b".as_ref(), true),
        Err(btrfs::Error::BadName(_))
    ));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn layouts_that_cannot_roll_back_say_why() {
    if !root_or_skip() {
        return;
    }
    let fs = btrfs_fs();
    let m = &fs.mnt;
    let why = |p: &Path, cmdline: &str| layout::inspect(p, cmdline).unwrap().unwrap_err().0;
    assert!(why(m, "").contains("top-level subvolume"));
    std::fs::create_dir(m.join("plain")).unwrap();
    assert!(why(&m.join("plain"), "").contains("not a subvolume of its own"));
    let tmp = tempfile::tempdir().unwrap();
    if !btrfs::is_btrfs(tmp.path()).unwrap() {
        assert!(why(tmp.path(), "").contains("is not on btrfs"));
    }
    subvol_create(&m.join("@"));
    std::fs::create_dir_all(m.join("@/var/lib")).unwrap();
    subvol_create(&m.join("@/var/lib/dpkg"));
    assert!(why(&m.join("@"), "").contains("package database"));

    subvol_create(&m.join("@2"));
    assert!(why(&m.join("@2"), "root=/dev/vda rootflags=subvolid=258").contains("subvolid="));
    let l = layout::inspect(&m.join("@2"), "root=/dev/vda rootflags=subvol=@2")
        .unwrap()
        .unwrap();
    assert_eq!(l.rel_path, Path::new("@2"));
    assert!(
        l.device.to_string_lossy().starts_with("/dev/loop"),
        "{:?}",
        l.device
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn children_listed_past_one_search_buffer_and_names_exchanged() {
    if !root_or_skip() {
        return;
    }
    let fs = btrfs_fs();
    let m = &fs.mnt;
    let root = m.join("@");
    subvol_create(&root);
    let id = btrfs::subvolume_id(&root).unwrap();
    assert!(btrfs::child_subvolumes(m, id).unwrap().is_empty());
    // Enough children that their references fill more than one 4 KiB
    // search buffer (each is about 60 bytes).
    std::fs::create_dir_all(root.join("var/lib/store")).unwrap();
    let mut want = vec![std::path::PathBuf::from(".snapshots")];
    subvol_create(&root.join(".snapshots"));
    for i in 0..120 {
        let rel = format!("var/lib/store/layer-{i:03}");
        subvol_create(&root.join(&rel));
        want.push(rel.into());
    }
    // A grandchild is its child's, not the root's.
    subvol_create(&root.join(".snapshots/1"));
    let mut got = btrfs::child_subvolumes(m, id).unwrap();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    subvol_create(&m.join("@new"));
    std::fs::write(root.join("which"), "old").unwrap();
    std::fs::write(m.join("@new/which"), "new").unwrap();
    btrfs::exchange(m, "@".as_ref(), "@new".as_ref()).unwrap();
    assert_eq!(std::fs::read_to_string(m.join("@/which")).unwrap(), "new");
    assert_eq!(
        std::fs::read_to_string(m.join("@new/which")).unwrap(),
        "old"
    );
    assert_eq!(btrfs::subvolume_id(&m.join("@new")).unwrap(), id);
    assert!(matches!(
        btrfs::exchange(m, "@".as_ref(), "missing".as_ref()),
        Err(btrfs::Error::Io { .. })
    ));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn rollback_after_a_cut_rollback_keeps_both_failed_states_and_nested_subvolumes() {
    if !root_or_skip() {
        return;
    }
    use super::rollback;
    let fs = btrfs_fs();
    let m = &fs.mnt;
    let root = m.join("@");
    subvol_create(&root);
    std::fs::write(root.join("state"), "before").unwrap();
    btrfs::snapshot(&root, m, "@.before-U".as_ref(), true).unwrap();
    std::fs::write(root.join("state"), "failed").unwrap();
    std::fs::create_dir(root.join("var")).unwrap();
    subvol_create(&root.join("var/store"));
    std::fs::write(root.join("var/store/data"), "kept").unwrap();
    // What a power cut right after an earlier rollback's swap leaves.
    subvol_create(&m.join("@.restoring-U"));
    std::fs::write(m.join("@.restoring-U/state"), "cut").unwrap();

    let l = layout::inspect(&root, "").unwrap().unwrap();
    let run = tempfile::tempdir().unwrap();
    let restored =
        rollback::roll_back(&l, "U", Path::new("@.before-U"), run.path(), &mut || false).unwrap();
    assert_eq!(restored.failed, Path::new("@.failed-U.2"));
    restored.finish().unwrap();

    let read = |p: &str| std::fs::read_to_string(m.join(p)).unwrap();
    assert_eq!(read("@/state"), "before");
    assert_eq!(read("@.failed-U/state"), "cut");
    assert_eq!(read("@.failed-U.2/state"), "failed");
    assert!(!m.join("@.restoring-U").exists());
    assert_eq!(read("@/var/store/data"), "kept");
    assert!(btrfs::is_subvolume(&m.join("@/var/store")).unwrap());
    assert!(!m.join("@.failed-U.2/var/store").exists());
    // Nothing nested is left in the failed state, so it can be deleted.
    btrfs::delete(m, "@.failed-U.2".as_ref()).unwrap();
}
