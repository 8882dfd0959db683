//! The update directory is a trust boundary (issue 10): what apply and
//! trigger refuse, and what prepare and cancel never touch. Each test is a
//! case that was reproduced against the tool. Needs root (files owned by
//! root and by nobody, dpkg into scratch roots).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{code, show, with_foo_v1, Scratch};

const VERIFICATION: i32 = 3;

fn root_only() -> bool {
    common::root_or_skip("files owned by root and by nobody")
}

/// Links /system-update to the update directory by hand, for manifests
/// that trigger (rightly) refuses to arm.
fn arm_by_hand(s: &Scratch) {
    let _ = fs::remove_file(s.path("/system-update"));
    std::os::unix::fs::symlink("/var/lib/system-update", s.path("/system-update")).unwrap();
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_manifest_id_that_climbs_out_is_refused_everywhere() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    let m = s.update_dir().join("manifest.toml");
    let text = fs::read_to_string(&m).unwrap();
    let id_line = text.lines().find(|l| l.starts_with("id = ")).unwrap();
    let escaped = s.dir.path().join("escaped");
    let bad = format!("id = \"../../../../../../../../..{}\"", escaped.display());
    fs::write(&m, text.replace(id_line, &bad)).unwrap();

    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    arm_by_hand(&s);
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "verification-failed", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("is not 1 to 64"),
        "{r}"
    );
    assert!(!s.link_exists(), "no loop: the trigger is gone");
    assert!(
        !s.dir.path().join("escaped.log").exists(),
        "nothing written outside the root"
    );
    assert_eq!(s.version("foo").as_deref(), Some("1"));
}

fn config(s: &Scratch, text: &str) {
    fs::write(s.path("/etc/system-update.toml"), text).unwrap();
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn system_directories_are_never_the_update_directory() {
    if !root_only() {
        return;
    }
    let (s, _) = with_foo_v1(None);
    for dir in [
        "/var/..",
        "/var/lib",
        "/etc",
        "/",
        "/usr/share",
        "/var/lib/dpkg/../dpkg",
    ] {
        config(&s, &format!("update-dir = {dir:?}\n"));
        for args in [
            &["prepare", "--command", "/bin/true"][..],
            &["cancel", "--purge"][..],
        ] {
            let out = s.su(args);
            assert_eq!(code(&out), 2, "{dir} {args:?}: {}", show(&out));
            let e = String::from_utf8_lossy(&out.stderr);
            assert!(e.contains("cannot be the update directory"), "{e}");
        }
    }
    // Nothing went: the dpkg database and /etc are whole.
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert!(s.path("/etc/system-update.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn prepare_refuses_a_directory_that_holds_anything_else() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    config(&s, "update-dir = \"/srv/data\"\n");
    fs::create_dir_all(s.path("/srv/data/photos")).unwrap();
    fs::write(s.path("/srv/data/thesis.tex"), "precious").unwrap();
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("photos, thesis.tex") && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(s.path("/srv/data/thesis.tex")).unwrap(),
        "precious"
    );
    assert!(s.path("/srv/data/photos").is_dir());
    assert!(!s.path("/srv/data/manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn cancel_purge_removes_only_the_prepared_update() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    // Something of the admin's lands in the directory after prepare.
    fs::write(s.update_dir().join("notes.txt"), "mine").unwrap();
    let out = s.su(&["cancel", "--purge"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!s.link_exists());
    assert_eq!(
        fs::read_to_string(s.update_dir().join("notes.txt")).unwrap(),
        "mine"
    );
    for gone in [
        "manifest.toml",
        "foo_2_all.deb",
        "attempts.json",
        "local.json",
    ] {
        assert!(!s.update_dir().join(gone).exists(), "{gone}: {stdout}");
    }
    assert!(stdout.contains("notes.txt"), "says what it left: {stdout}");
    // With nothing else in it, the directory goes too.
    fs::remove_file(s.update_dir().join("notes.txt")).unwrap();
    s.prepare_and_trigger(&[&v2]);
    let out = s.su(&["cancel", "--purge"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!s.update_dir().exists());
    // And a second purge has nothing to say it removed.
    let out = s.su(&["cancel", "--purge"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("Removed"),
        "{}",
        show(&out)
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_manifest_others_can_write_never_runs() {
    if !root_only() {
        return;
    }
    let s = Scratch::new();
    let marker = s.dir.path().join("ran-as-root");
    let out = s.su(&["prepare", "--command", "/bin/true"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    // A careless chmod, and somebody else rewrites the command.
    let ud = s.update_dir();
    fs::set_permissions(&ud, fs::Permissions::from_mode(0o777)).unwrap();
    let m = ud.join("manifest.toml");
    let evil = fs::read_to_string(&m).unwrap().replace(
        "\"/bin/true\"",
        &format!("\"/bin/sh\", \"-c\", \"id > {}\"", marker.display()),
    );
    fs::remove_file(&m).unwrap();
    let st = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .args(["sh", "-c", "cat > \"$0\""])
        .arg(&m)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(evil.as_bytes())?;
            c.wait()
        })
        .unwrap();
    assert!(st.success(), "nobody wrote the manifest");

    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("mode 0777"),
        "names the directory and its mode: {e}"
    );
    arm_by_hand(&s);
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    assert_eq!(s.results()["outcome"], "verification-failed");
    assert!(
        !marker.exists(),
        "the command of another user never runs as root"
    );
    assert!(!s.link_exists());

    // The directory fixed, the manifest still belongs to nobody.
    fs::set_permissions(&ud, fs::Permissions::from_mode(0o755)).unwrap();
    arm_by_hand(&s);
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let err = s.results()["error"].as_str().unwrap().to_string();
    assert!(err.contains("manifest.toml: owned by uid 65534"), "{err}");
    assert!(!marker.exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn special_files_are_refused_not_followed() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    // A config that is a device, then a FIFO: an error at once, no hang.
    std::os::unix::fs::symlink("/dev/zero", s.path("/etc/system-update.toml")).unwrap();
    let out = s.su(&["status"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    fs::remove_file(s.path("/etc/system-update.toml")).unwrap();
    nix::unistd::mkfifo(
        &s.path("/etc/system-update.toml"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = s.su(&["status"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a FIFO"));
    fs::remove_file(s.path("/etc/system-update.toml")).unwrap();

    // A payload swapped for a link to /dev/zero: refused, not read forever.
    s.prepare_and_trigger(&[&v2]);
    let deb = s.update_dir().join("foo_2_all.deb");
    fs::remove_file(&deb).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &deb).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_config_broken_after_trigger_cannot_loop() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    config(&s, "update-dir = \"/var/lib/my-updates\"\n");
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(s.link_exists());
    // The admin edits the configuration and misspells a key.
    config(
        &s,
        "update-dir = \"/var/lib/my-updates\"\natempt-limit = 3\n",
    );
    let out = s.apply();
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        !s.link_exists(),
        "the next boot is a normal one: {}",
        show(&out)
    );
    let r = s.results();
    assert_eq!(r["outcome"], "failure", "{r}");
    assert!(r["error"].as_str().unwrap().contains("atempt-limit"), "{r}");
    // A second boot into the update environment (another tool's update, or
    // by hand) finds nothing of ours: exit 0, no reboot forced.
    let out = s.apply();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    // Another tool's link is left alone.
    fs::create_dir_all(s.path("/var/lib/other-tool")).unwrap();
    std::os::unix::fs::symlink("/var/lib/other-tool", s.path("/system-update")).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(s.link_exists(), "another updater's trigger stays");
}

fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

/// Runs system-update under umask 000, as a careless admin's shell would.
fn su_umask0(s: &Scratch, args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .args(["-c", "umask 000; exec \"$@\"", "sh", common::BIN, "--root"])
        .arg(&s.root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn modes_are_explicit_and_logs_private_whatever_the_umask() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(Some("echo 'token=s3cr3t'"));
    let out = su_umask0(&s, &["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = su_umask0(&s, &["trigger", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    // The update directory goes once the update succeeded: look now.
    assert_eq!(mode_of(&s.path("/var/lib/system-update")), 0o755);
    let out = su_umask0(&s, &["apply", "--ui", "none", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    let id = s.results()["id"].as_str().unwrap().to_string();
    for d in ["/var/lib/system-update-results", "/var/log/system-update"] {
        assert_eq!(mode_of(&s.path(d)), 0o755, "{d}");
    }
    // No adm group in this root: the log and the records are root's alone.
    let log = s.path(&format!("/var/log/system-update/{id}.log"));
    assert!(fs::read_to_string(&log).unwrap().contains("token=s3cr3t"));
    assert_eq!(mode_of(&log), 0o600);
    assert_eq!(
        mode_of(&s.path("/var/lib/system-update-results/last.json")),
        0o600
    );
    assert_eq!(
        mode_of(&s.path("/var/lib/system-update-results/lock")),
        0o600
    );
    // With adm, its members may read them.
    fs::write(s.path("/etc/group"), "root:x:0:\nadm:x:4:syslog\n").unwrap();
    let v3 = common::Deb::new("foo", "3").build(&s.debs);
    s.prepare_again_and_trigger(&[&v3]);
    let out = s.apply();
    assert!(out.status.success(), "{}", show(&out));
    let id = s.results()["id"].as_str().unwrap().to_string();
    let log = s.path(&format!("/var/log/system-update/{id}.log"));
    assert_eq!(mode_of(&log), 0o640);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&log).unwrap().gid(), 4);
    assert_eq!(
        mode_of(&s.path("/var/lib/system-update-results/last.json")),
        0o640
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn planted_links_are_never_written_through() {
    if !root_only() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "{}", show(&out));
    let victim = s.dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    // The next few hundred PIDs' temporary names, all links to the victim.
    let me = std::process::id();
    for pid in me..me + 400 {
        for name in [
            format!(".attempts.json.tmp-{pid}"),
            format!(".attempts.json.tmp-{pid}-0"),
        ] {
            let _ = std::os::unix::fs::symlink(&victim, s.update_dir().join(name));
        }
    }
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // The lock file is not opened through a link either.
    let lock = s.path("/var/lib/system-update-results/lock");
    fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let out = s.su(&["cancel"]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(mode_of(&victim), 0o600);
}

#[test]
fn a_root_that_does_not_exist_is_an_error_and_builds_nothing() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("no-such-root");
    for args in [
        &["prepare", "--command", "/bin/true"][..],
        &["status"][..],
        &["trigger", "--no-reboot"][..],
    ] {
        let out = Command::new(common::BIN)
            .arg("--root")
            .arg(&missing)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            e.contains("no-such-root") && e.contains("No such file or directory"),
            "{e}"
        );
        assert!(!missing.exists(), "{args:?} built a tree");
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn results_print_no_escape_sequences() {
    if !root_only() {
        return;
    }
    // A payload whose file name carries a terminal title change, then a
    // corrupted payload: the error names the file, escape and all.
    let (s, v2) = with_foo_v1(None);
    let evil = s.debs.join("foo\x1b]0;HACKED\x07.deb");
    fs::rename(&v2, &evil).unwrap();
    s.prepare_and_trigger(&[&evil]);
    let payload = fs::read_dir(s.update_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("HACKED"))
        .unwrap();
    let mut bytes = fs::read(&payload).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    fs::write(&payload, bytes).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    assert!(
        s.results()["error"].as_str().unwrap().contains('\x1b'),
        "the record keeps it"
    );
    for args in [&["results"][..], &["status"][..], &["history"][..]] {
        let out = s.su(args);
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("verification-failed"), "{args:?}: {text}");
        assert!(
            !text.contains('\x1b') && !text.contains('\x07'),
            "{args:?}: {text:?}"
        );
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn what_is_verified_is_what_runs() {
    if !root_only() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let s = Scratch::new();
    let marker = s.dir.path().join("ran");
    let script = |word: &str| format!("#!/bin/sh\necho {word} >> {}\n", marker.display());
    let prog = s.dir.path().join("update.sh");
    fs::write(&prog, script("good")).unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    let mut swaps = 0u64;
    let mut ran_checked = 0;
    for round in 0..20 {
        // A relative program travels with the payload (update.sh in the
        // update directory, checksummed).
        let out = Command::new(common::BIN)
            .arg("--root")
            .arg(&s.root)
            .args(["prepare", "--force", "--command", "./update.sh"])
            .current_dir(s.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let out = s.su(&["trigger", "--no-reboot"]);
        assert!(out.status.success(), "{}", show(&out));
        // While apply runs, the payload is replaced by rename, again and
        // again, with a program that must never run.
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let stop = Arc::clone(&stop);
            let target = s.update_dir().join("update.sh");
            let stage = s.dir.path().join("stage");
            // Good and bad in turn: the good one passes the checksum, the
            // bad one may land between the check and the run.
            let versions = [script("good"), script("bad")];
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    fs::write(&stage, &versions[(n % 2) as usize]).unwrap();
                    fs::set_permissions(&stage, fs::Permissions::from_mode(0o755)).unwrap();
                    if fs::rename(&stage, &target).is_ok() {
                        n += 1;
                    }
                    // Give the checksum a chance to read a whole file.
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                n
            })
        };
        let out = s.apply();
        stop.store(true, Ordering::SeqCst);
        swaps += swapper.join().unwrap();
        // The swapper may have put its file back after apply cleared the
        // applied update: not ours, so the next prepare would refuse it.
        let _ = fs::remove_file(s.update_dir().join("update.sh"));
        // Either the check saw the swapped file (refused) or it ran the
        // file it checked.
        assert!(
            matches!(code(&out), 0 | VERIFICATION),
            "round {round}: {}",
            show(&out)
        );
        if code(&out) == 0 {
            ran_checked += 1;
        }
        let _ = round;
    }
    assert!(swaps > 20, "the swapper ran: {swaps}");
    assert!(ran_checked > 0, "some rounds got past the check");
    let ran = fs::read_to_string(&marker).unwrap_or_default();
    assert!(!ran.contains("bad"), "a swapped program ran: {ran}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn links_in_an_image_never_lead_out_of_it() {
    if !root_only() {
        return;
    }
    // An image whose /var/log and /etc point at the host's own: with --root
    // nothing may be read or written through them.
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    let outside = s.dir.path().join("host-log");
    fs::create_dir_all(&outside).unwrap();
    let log = s.path("/var/log");
    let _ = fs::remove_dir_all(s.path("/var/log/system-update"));
    for entry in fs::read_dir(&log).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            fs::remove_dir_all(&p).unwrap();
        } else {
            fs::remove_file(&p).unwrap();
        }
    }
    fs::remove_dir(&log).unwrap();
    std::os::unix::fs::symlink(&outside, &log).unwrap();
    let out = s.apply();
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written through the link: {}",
        show(&out)
    );
    // /etc as a link to this machine's directory: the configuration there
    // is not read. The link is resolved inside the image (as its boot
    // would), where nothing is: the defaults, never the host's file.
    let out = Command::new(common::BIN)
        .arg("--root")
        .arg(&s.root)
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let host_etc = s.dir.path().join("etc-real");
    fs::rename(s.path("/etc"), &host_etc).unwrap();
    fs::write(
        host_etc.join("system-update.toml"),
        "update-dir = \"/srv/host-updates\"\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&host_etc, s.path("/etc")).unwrap();
    let out = s.su(&["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("host-updates"),
        "the host's configuration was read: {}",
        show(&out)
    );
}

/// A record that says where it came from.
fn record(title: &str, log: &str) -> String {
    format!(
        r#"{{"format":2,"id":"u1","title":"{title}","backend":"dpkg","outcome":"success","stop_requested":false,"packages":[],"started":"2026-12-01T00:00:00Z","finished":"2026-12-01T00:01:00Z","attempts":1,"error":null,"log":"{log}"}}"#
    )
}

#[test]
fn an_images_links_never_lead_its_records_and_logs_to_the_hosts() {
    // Reads only: no root needed.
    let s = Scratch::new();
    // What the host has, where an image's absolute links point.
    let host = tempfile::tempdir().unwrap();
    let results = host.path().join("results");
    fs::create_dir_all(results.join("history")).unwrap();
    fs::write(
        results.join("last.json"),
        record("HOST RECORD", "/var/log/system-update/u1.log"),
    )
    .unwrap();
    fs::write(
        results.join("history/u1.json"),
        record("HOST RECORD", "/var/log/system-update/u1.log"),
    )
    .unwrap();
    let logs = host.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    fs::write(logs.join("u1.log"), "HOST LOG\n").unwrap();

    fs::create_dir_all(s.path("/var/lib")).unwrap();
    std::os::unix::fs::symlink(&results, s.path("/var/lib/system-update-results")).unwrap();
    for cmd in [&["results"][..], &["history"], &["status"]] {
        let out = s.su(cmd);
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("HOST RECORD"),
            "{cmd:?} read the host's record: {}",
            show(&out)
        );
    }

    // The image's own record, its log directory a link to the host's.
    fs::remove_file(s.path("/var/lib/system-update-results")).unwrap();
    fs::create_dir_all(s.path("/var/lib/system-update-results/history")).unwrap();
    fs::write(
        s.path("/var/lib/system-update-results/history/u1.json"),
        record("image", "/var/log/system-update/u1.log"),
    )
    .unwrap();
    fs::create_dir_all(s.path("/var/log")).unwrap();
    std::os::unix::fs::symlink(&logs, s.path("/var/log/system-update")).unwrap();
    let out = s.su(&["log", "u1"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("HOST LOG"),
        "log read the host's file: {}",
        show(&out)
    );
    assert_ne!(code(&out), 0, "{}", show(&out));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn status_never_reads_an_update_directory_through_an_images_link() {
    if !root_only() {
        return;
    }
    // A prepared update on "the host", and an image whose update
    // directory is an absolute link to it.
    let (host, v2) = with_foo_v1(None);
    assert_eq!(code(&host.su(&["prepare", v2.to_str().unwrap()])), 0);
    let s = Scratch::new();
    fs::create_dir_all(s.path("/var/lib")).unwrap();
    std::os::unix::fs::symlink(host.update_dir(), s.path("/var/lib/system-update")).unwrap();
    let out = s.su(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("foo_2_all.deb") && !text.contains("Update of foo"),
        "{}",
        show(&out)
    );
    assert!(text.contains("symbolic link"), "{}", show(&out));
}
