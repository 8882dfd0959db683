use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn scratch() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    let root = Root::new(d.path().join("root"));
    fs::create_dir_all(d.path().join("root/var")).unwrap();
    (d, root)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn write_replaces_and_leaves_no_temp() {
    let (_d, root) = scratch();
    let dir = open_dir(&root, Path::new("/var")).unwrap();
    dir.write(OsStr::new("f"), b"one", 0o644, None).unwrap();
    dir.write(OsStr::new("f"), b"two", 0o600, None).unwrap();
    let f = root.host(Path::new("/var/f"));
    assert_eq!(fs::read(&f).unwrap(), b"two");
    assert_eq!(
        fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(names(&root.host(Path::new("/var"))), ["f"]);
}

struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("the source broke"));
        }
        self.0 -= 1;
        buf[0] = b'x';
        Ok(1)
    }
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temp() {
    let (_d, root) = scratch();
    let dir = open_dir(&root, Path::new("/var")).unwrap();
    dir.write(OsStr::new("f"), b"old", 0o644, None).unwrap();
    let err = dir
        .copy_reader(&mut Failing(3), OsStr::new("f"), 0o644)
        .unwrap_err();
    assert!(err.to_string().contains("the source broke"), "{err}");
    assert_eq!(fs::read(root.host(Path::new("/var/f"))).unwrap(), b"old");
    assert_eq!(names(&root.host(Path::new("/var"))), ["f"]);
}

#[test]
fn a_link_at_the_name_is_replaced_never_written_through() {
    let (d, root) = scratch();
    let victim = d.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let at = root.host(Path::new("/var/last.json"));
    std::os::unix::fs::symlink(&victim, &at).unwrap();
    write(&root, Path::new("/var/last.json"), b"new", 0o644).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert!(fs::symlink_metadata(&at).unwrap().is_file());
    assert_eq!(fs::read(&at).unwrap(), b"new");
    // Removing a link removes the link, not its target.
    fs::remove_file(&at).unwrap();
    std::os::unix::fs::symlink(&victim, &at).unwrap();
    remove(&root, Path::new("/var/last.json")).unwrap();
    assert!(fs::symlink_metadata(&at).is_err());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_fifo_at_the_name_is_replaced_never_opened() {
    let (_d, root) = scratch();
    let at = root.host(Path::new("/var/attempts.json"));
    nix::unistd::mkfifo(&at, Mode::from_bits_truncate(0o600)).unwrap();
    // Opening a FIFO for writing with no reader would block: a hang
    // becomes a failure here.
    let (tx, rx) = std::sync::mpsc::channel();
    let r = root.clone();
    std::thread::spawn(move || {
        let _ = tx.send(write(&r, Path::new("/var/attempts.json"), b"{}", 0o644).is_ok());
    });
    let done = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(done, Ok(true), "the write hung on the FIFO or failed");
    assert!(fs::symlink_metadata(&at).unwrap().is_file());
}

#[test]
fn an_images_absolute_link_is_followed_inside_it() {
    let (d, root) = scratch();
    fs::create_dir_all(root.host(Path::new("/persist/log"))).unwrap();
    std::os::unix::fs::symlink("/persist/log", root.host(Path::new("/var/log"))).unwrap();
    let dir = create_dir_all(&root, Path::new("/var/log/system-update"), 0o750).unwrap();
    dir.write(OsStr::new("u1.log"), b"log", 0o640, None)
        .unwrap();
    let landed = root.host(Path::new("/persist/log/system-update"));
    assert_eq!(fs::read(landed.join("u1.log")).unwrap(), b"log");
    assert_eq!(
        fs::metadata(&landed).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    // A link leading out (up past the root, or to a host path) stays in.
    let host = d.path().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::remove_file(root.host(Path::new("/var/log"))).unwrap();
    for target in ["../../../../../../../../host", host.to_str().unwrap()] {
        let _ = fs::remove_file(root.host(Path::new("/var/log")));
        std::os::unix::fs::symlink(target, root.host(Path::new("/var/log"))).unwrap();
        let made = create_dir_all(&root, Path::new("/var/log/system-update"), 0o755);
        assert!(
            made.is_err(),
            "{target}: the link's target is not in the root"
        );
        let r = write(&root, Path::new("/var/log/x"), b"x", 0o644);
        assert!(r.is_err(), "{target}");
        assert!(names(&host).is_empty(), "{target}: written on the host");
    }
}

#[test]
fn a_directory_swapped_for_a_link_after_opening_keeps_the_writes() {
    let (d, root) = scratch();
    let results = root.host(Path::new("/var/results"));
    fs::create_dir_all(&results).unwrap();
    let dir = open_dir(&root, Path::new("/var/results")).unwrap();
    let host = d.path().join("host");
    fs::create_dir_all(&host).unwrap();
    fs::rename(&results, root.host(Path::new("/var/moved"))).unwrap();
    std::os::unix::fs::symlink(&host, &results).unwrap();
    dir.write(OsStr::new("last.json"), b"{}", 0o644, None)
        .unwrap();
    assert!(names(&host).is_empty());
    assert_eq!(names(&root.host(Path::new("/var/moved"))), ["last.json"]);
}

#[test]
fn symlink_replaces_and_names_must_be_plain() {
    let (_d, root) = scratch();
    symlink(&root, Path::new("/a"), Path::new("/var/l")).unwrap();
    symlink(&root, Path::new("/b"), Path::new("/var/l")).unwrap();
    let l = root.host(Path::new("/var/l"));
    assert_eq!(fs::read_link(&l).unwrap(), Path::new("/b"));
    let dir = open_dir(&root, Path::new("/var")).unwrap();
    for bad in ["..", ".", "a/b", ""] {
        assert!(
            dir.write(OsStr::new(bad), b"x", 0o644, None).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn write_over_moves_the_spare_into_place() {
    let (_d, root) = scratch();
    let var = open_dir(&root, Path::new("/var")).unwrap();
    let sub = create_dir_all(&root, Path::new("/var/history"), 0o755).unwrap();
    fs::write(root.host(Path::new("/var/spare")), vec![0u8; 4096]).unwrap();
    sub.write_over(
        OsStr::new("r.json"),
        (&var, OsStr::new("spare")),
        b"rec",
        0o600,
        None,
    )
    .unwrap();
    assert_eq!(
        fs::read(root.host(Path::new("/var/history/r.json"))).unwrap(),
        b"rec"
    );
    assert!(fs::symlink_metadata(root.host(Path::new("/var/spare"))).is_err());
}

#[test]
fn modes_do_not_depend_on_the_umask() {
    // Modes the usual umask (022) would cut come out whole.
    let (_d, root) = scratch();
    let dir = create_dir_all(&root, Path::new("/var/a/b"), 0o775).unwrap();
    dir.write(OsStr::new("f"), b"x", 0o666, None).unwrap();
    let mode = |p: &str| {
        fs::metadata(root.host(Path::new(p)))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("/var/a"), 0o775);
    assert_eq!(mode("/var/a/b"), 0o775);
    assert_eq!(mode("/var/a/b/f"), 0o666);
}

#[test]
fn without_openat2_a_link_on_the_way_is_refused_in_an_image() {
    let (_d, root) = scratch();
    fs::create_dir_all(root.host(Path::new("/persist/log"))).unwrap();
    assert!(open_dir_by_walk(&root, Path::new("/persist/log")).is_ok());
    std::os::unix::fs::symlink("/persist/log", root.host(Path::new("/var/log"))).unwrap();
    for at in ["/var/log", "/var/log/system-update"] {
        let e = open_dir_by_walk(&root, Path::new(at)).unwrap_err();
        // The walk names the link; O_NOFOLLOW|O_DIRECTORY on it: ENOTDIR.
        assert!(
            e.to_string().contains("symbolic link") || e.raw_os_error() == Some(libc::ENOTDIR),
            "{at}: {e}"
        );
    }
}
