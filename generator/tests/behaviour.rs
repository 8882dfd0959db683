//! The generator's behaviour on scratch roots: arguments, triggers, an
//! existing link, the initrd, the kernel command line and log levels.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use system_update_generator::TARGET_UNIT;

fn redirected(out: &Path) -> bool {
    listing(out) == [("default.target".to_string(), format!("-> {TARGET_UNIT}"))]
}

#[test]
fn argument_count() {
    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    for args in [vec![], vec![&*out, &*out], vec![&*out, &*out, &*out, &*out]] {
        let o = run_ours(root.path(), &args, &[]);
        assert_eq!(o.status.code(), Some(1), "{} arguments", args.len());
        assert_eq!(
            stderr(&o),
            "This program takes one or three arguments.\n",
            "{} arguments",
            args.len()
        );
        assert!(listing(&out).is_empty());
    }
}

#[test]
fn help_version_and_unknown_options() {
    let (root, _out) = scratch();
    make_state(root.path(), State::LinkToDir);
    for flag in ["--help", "-h"] {
        let o = run_ours(root.path(), &[Path::new(flag)], &[]);
        assert!(o.status.success(), "{flag}: {}", stderr(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.starts_with("Usage: system-update-generator"),
            "{flag}: {text}"
        );
        assert!(
            text.contains("system-update-generator(8)"),
            "{flag}: {text}"
        );
    }
    let o = run_ours(root.path(), &[Path::new("--version")], &[]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("system-update-generator 0."));
    let o = run_ours(root.path(), &[Path::new("--frobnicate")], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Unknown option --frobnicate; see --help.\n");
    // None of them is taken for a directory to write into (the child
    // runs in our working directory).
    for flag in ["--help", "-h", "--version", "--frobnicate"] {
        assert!(
            !Path::new(flag).exists(),
            "{flag} was written as a directory"
        );
    }
}

#[test]
fn one_argument_serves_as_all_three() {
    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    let o = run_ours(root.path(), &[&out], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(redirected(&out));
}

#[test]
fn three_arguments_write_to_the_early_directory() {
    let (root, _) = scratch();
    make_state(root.path(), State::LinkToDir);
    let dirs: Vec<_> = ["normal", "early", "late"]
        .iter()
        .map(|d| {
            let p = root.path().join(d);
            fs::create_dir(&p).expect("mkdir");
            p
        })
        .collect();
    let o = run_ours(root.path(), &[&dirs[0], &dirs[1], &dirs[2]], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(listing(&dirs[0]).is_empty());
    assert!(redirected(&dirs[1]));
    assert!(listing(&dirs[2]).is_empty());
}

#[test]
fn every_trigger_state() {
    for state in ALL_STATES {
        let (root, out) = scratch();
        make_state(root.path(), state);
        let o = run_ours(root.path(), &[&out], &[]);
        assert!(o.status.success(), "{state:?}: {}", stderr(&o));
        let expect = !matches!(state, State::Nothing | State::EtcIsFile);
        assert_eq!(redirected(&out), expect, "{state:?}: {:?}", listing(&out));
        if !expect {
            assert!(listing(&out).is_empty(), "{state:?}");
        }
    }
}

#[test]
fn check_errors_are_logged_and_ignored() {
    let (root, out) = scratch();
    make_state(root.path(), State::EtcIsFile);
    let o = run_ours(root.path(), &[&out], &[]);
    assert!(o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("Failed to check if /etc/system-update exists, ignoring: Not a directory"),
        "{err}"
    );
}

#[test]
fn existing_link_to_system_update_target_is_fine() {
    // systemd's own generator may have run first, with its own unit path.
    for existing in [TARGET_UNIT, "/usr/lib/systemd/system/system-update.target"] {
        let (root, out) = scratch();
        make_state(root.path(), State::LinkToDir);
        symlink(existing, out.join("default.target")).expect("symlink");
        let o = run_ours(root.path(), &[&out], &[]);
        assert!(o.status.success(), "{existing}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "quietly");
        assert_eq!(
            fs::read_link(out.join("default.target")).expect("link"),
            Path::new(existing)
        );
    }
}

#[test]
fn existing_link_elsewhere_is_an_error() {
    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    symlink(
        "/lib/systemd/system/rescue.target",
        out.join("default.target"),
    )
    .expect("symlink");
    let o = run_ours(root.path(), &[&out], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "default.target already exists and is a link to /lib/systemd/system/rescue.target"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    fs::write(out.join("default.target"), b"[Unit]\n").expect("write");
    let o = run_ours(root.path(), &[&out], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a symlink"), "{}", stderr(&o));
}

#[test]
fn failing_to_link_names_the_path() {
    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    let missing = out.join("missing");
    let o = run_ours(root.path(), &[&missing], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err,
        format!(
            "Failed to create symlink {}/default.target: No such file or directory (os error 2)\n",
            missing.display()
        )
    );
}

#[test]
fn nothing_in_the_initrd() {
    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    fs::create_dir_all(root.path().join("etc")).expect("mkdir etc");
    fs::write(root.path().join("etc/initrd-release"), b"NAME=initrd\n").expect("write");
    let o = run_ours(root.path(), &[&out], &[("SYSTEMD_LOG_LEVEL", "debug")]);
    assert!(o.status.success());
    assert!(listing(&out).is_empty());
    assert!(
        stderr(&o).contains("running in the initrd"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn kernel_command_line_overrides_are_warned_about() {
    let cases = [
        (
            "root=/dev/vda systemd.unit=rescue.target",
            "systemd.unit= setting",
        ),
        ("root=/dev/vda ro single", "runlevel \"single\""),
        ("root=/dev/vda 3", "runlevel \"3\""),
    ];
    for (line, warning) in cases {
        let (root, out) = scratch();
        make_state(root.path(), State::LinkToDir);
        fs::write(root.path().join("proc/cmdline"), format!("{line}\n")).expect("write");
        let o = run_ours(root.path(), &[&out], &[]);
        assert!(o.status.success());
        // The link is still made: the command line wins over it anyway, and
        // systemd's generator does the same.
        assert!(redirected(&out));
        let err = stderr(&o);
        assert!(
            err.contains("Offline system update overridden by"),
            "{line}: {err}"
        );
        assert!(err.contains(warning), "{line}: {err}");
    }
}

#[test]
fn log_levels() {
    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    fs::write(root.path().join("proc/cmdline"), "quiet 1\n").expect("write");

    // info (the default): the redirection and the warning.
    let o = run_ours(root.path(), &[&out], &[]);
    let err = stderr(&o);
    assert!(err.contains("booting into system-update.target"), "{err}");
    assert!(err.contains("overridden"), "{err}");

    // warning: only the warning.
    for level in ["warning", "4"] {
        let (root2, out2) = scratch();
        make_state(root2.path(), State::LinkToDir);
        fs::write(root2.path().join("proc/cmdline"), "quiet 1\n").expect("write");
        let o = run_ours(root2.path(), &[&out2], &[("SYSTEMD_LOG_LEVEL", level)]);
        let err = stderr(&o);
        assert!(!err.contains("booting into"), "{level}: {err}");
        assert!(err.contains("overridden"), "{level}: {err}");
    }

    // err: silent on success.
    let (root3, out3) = scratch();
    make_state(root3.path(), State::Nothing);
    let o = run_ours(root3.path(), &[&out3], &[("SYSTEMD_LOG_LEVEL", "err")]);
    assert_eq!(stderr(&o), "");

    // debug: says why nothing was done.
    let o = run_ours(root3.path(), &[&out3], &[("SYSTEMD_LOG_LEVEL", "debug")]);
    assert!(stderr(&o).contains("nothing to do"), "{}", stderr(&o));

    // A level systemd would not accept is ignored: the default applies.
    let o = run_ours(root3.path(), &[&out3], &[("SYSTEMD_LOG_LEVEL", "loud")]);
    assert_eq!(stderr(&o), "");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn logs_to_the_kernel_log_with_a_priority() {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    use std::process::Command;

    if !root_or_skip("reading /dev/kmsg") {
        return;
    }
    let mut kmsg = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .expect("open /dev/kmsg for reading (run the tests as root)");
    kmsg.seek(SeekFrom::End(0))
        .expect("seek to the end of the kernel log");

    let (root, out) = scratch();
    make_state(root.path(), State::LinkToDir);
    fs::write(root.path().join("proc/cmdline"), "emergency\n").expect("write");
    let child = Command::new(OURS)
        .arg(&out)
        .env_clear()
        .env("SYSTEM_UPDATE_GENERATOR_ROOT", root.path())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let status = child.wait_with_output().expect("wait").status;
    assert!(status.success());

    // One record per read(); EAGAIN once we have read them all.
    let mut records = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = kmsg.read(&mut buf) {
        records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let ours: Vec<_> = records
        .iter()
        .filter(|r| r.contains(&format!("system-update-generator[{pid}]: ")))
        .collect();
    // "PRIORITY,SEQ,TS,FLAGS;TEXT": LOG_DAEMON|LOG_INFO = 30, |LOG_WARNING = 28.
    assert!(
        ours.iter()
            .any(|r| r.starts_with("30,") && r.contains("booting into system-update.target")),
        "{ours:?}"
    );
    assert!(
        ours.iter()
            .any(|r| r.starts_with("28,") && r.contains("runlevel \"emergency\"")),
        "{ours:?}"
    );
}

#[test]
fn a_probation_marker_that_is_no_regular_file_is_ignored() {
    for make in ["dir", "fifo", "link"] {
        let (root, out) = scratch();
        let due = root.path().join(system_update_generator::PROBATION_DUE);
        fs::create_dir_all(due.parent().expect("parent")).expect("mkdir");
        match make {
            "dir" => fs::create_dir(&due).expect("dir"),
            "fifo" => {
                let c = std::ffi::CString::new(due.as_os_str().as_encoded_bytes()).expect("path");
                // SAFETY: a valid NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            }
            _ => std::os::unix::fs::symlink("/dev/null", &due).expect("link"),
        }
        let o = run_ours(root.path(), &[&out], &[("SYSTEMD_LOG_LEVEL", "info")]);
        assert!(o.status.success(), "{make}: {}", stderr(&o));
        assert!(listing(&out).is_empty(), "{make}: {:?}", listing(&out));
        assert!(
            stderr(&o).contains("probation-due is not a regular file, ignoring it; remove it"),
            "{make}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_due_probation_rollback_redirects_the_boot() {
    let (root, out) = scratch();
    let due = root.path().join(system_update_generator::PROBATION_DUE);
    fs::create_dir_all(due.parent().expect("parent")).expect("mkdir");
    fs::write(&due, b"").expect("marker");
    let o = run_ours(root.path(), &[&out], &[("SYSTEMD_LOG_LEVEL", "info")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(redirected(&out), "{:?}", listing(&out));
    assert!(
        stderr(&o).contains("probation-due exists: the last update's first boot was not confirmed"),
        "{}",
        stderr(&o)
    );
    // Gone again: the boot is a normal one.
    fs::remove_file(&due).expect("rm");
    let (_keep, out2) = scratch();
    let o = run_ours(root.path(), &[&out2], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(listing(&out2).is_empty());
}
