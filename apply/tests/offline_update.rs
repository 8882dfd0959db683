//! The whole protocol with real dpkg on scratch roots (issue 3, "Must show"):
//! what the core does whatever the package manager (the trigger, the
//! manifest, the configuration, cancel, signals). The cases every package
//! manager passes alike are in backends/. Needs root (dpkg chroots into
//! the scratch root for maintainer scripts).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{code, show, with_foo_v1, Deb, Scratch};

const OK: i32 = 0;
const FAILURE: i32 = 1;
const USAGE: i32 = 2;
const VERIFICATION: i32 = 3;

fn assert_untouched(s: &Scratch) {
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn link_to_another_directory_is_not_ours() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert!(out.status.success());
    fs::create_dir_all(s.path("/var/lib/other-updater")).unwrap();
    std::os::unix::fs::symlink("/var/lib/other-updater", s.path("/system-update")).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_untouched(&s);
    // Not ours: left in place, no attempt counted, no result.
    assert_eq!(
        fs::read_link(s.path("/system-update")).unwrap(),
        Path::new("/var/lib/other-updater")
    );
    assert!(!s.update_dir().join("attempts.json").exists());
    assert!(s.results().is_null());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn dangling_link_is_not_ours() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, _) = with_foo_v1(None);
    std::os::unix::fs::symlink("/var/lib/system-update", s.path("/system-update")).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_untouched(&s);
    assert!(!s.update_dir().exists());
    assert!(s.results().is_null());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn etc_system_update_is_honoured() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert!(out.status.success());
    std::os::unix::fs::symlink("../var/lib/system-update", s.path("/etc/system-update")).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("2"));
    assert!(s.path("/etc/system-update").symlink_metadata().is_err());
}

/// Prepares and triggers v2, lets `spoil` break something, applies, and
/// checks the outcome: verification failed, nothing installed, no trigger.
fn bad_input(spoil: impl FnOnce(&Scratch), expect_in_error: &str) {
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    spoil(&s);
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "verification-failed", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(err.contains(expect_in_error), "{err}");
    assert_untouched(&s);
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn missing_manifest() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    bad_input(
        |s| fs::remove_file(s.update_dir().join("manifest.toml")).unwrap(),
        "no update is prepared",
    );
}

fn edit_manifest(s: &Scratch, from: &str, to: &str) {
    let p = s.update_dir().join("manifest.toml");
    let text = fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{text}");
    fs::write(&p, text.replace(from, to)).unwrap();
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn unknown_manifest_version() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    bad_input(|s| edit_manifest(s, "schema = 3", "schema = 7"), "schema 7");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn manifest_path_outside_update_dir() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    bad_input(
        |s| {
            // A real file outside, so only the path check can refuse it.
            fs::copy(
                s.update_dir().join("foo_2_all.deb"),
                s.path("/var/lib/foo_2_all.deb"),
            )
            .unwrap();
            edit_manifest(s, "\"foo_2_all.deb\"", "\"../foo_2_all.deb\"")
        },
        "outside the update directory",
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn config_with_unknown_key() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    fs::write(s.path("/etc/system-update.toml"), "atempt-limit = 3\n").unwrap();
    let out = s.apply();
    assert_eq!(code(&out), USAGE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("atempt-limit"), "{err}");
    assert!(err.contains("etc/system-update.toml"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_untouched(&s);
    // Never a boot loop: the trigger goes, and the reason is recorded.
    assert!(!s.link_exists());
    let raw = fs::read(s.path("/var/lib/system-update-results/last.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(r["outcome"], "failure");
    assert!(r["error"].as_str().unwrap().contains("atempt-limit"));
    // Every subcommand refuses the same way.
    let out = s.su(&["status"]);
    assert_eq!(code(&out), USAGE);
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn two_applies_at_once_exactly_one_acts() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(Some("sleep 2"));
    s.prepare_and_trigger(&[&v2]);
    let a = s.su_spawn(&["apply", "--ui", "none", "--no-reboot"]);
    let b = s.su_spawn(&["apply", "--ui", "none", "--no-reboot"]);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(code(&a), OK, "{}", show(&a));
    assert_eq!(code(&b), OK, "{}", show(&b));
    let r = s.results();
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["attempts"], 1);
    let log = fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap();
    assert_eq!(log.matches("== ").count(), 1, "one attempt only: {log}");
    let dpkg_log = fs::read_to_string(s.path("/var/log/dpkg.log")).unwrap();
    assert_eq!(
        dpkg_log.matches("upgrade foo:all 1 2").count(),
        1,
        "{dpkg_log}"
    );
}

#[test]
fn command_backend_reports_progress_and_decides_outcome() {
    let s = Scratch::new();
    let script = s.dir.path().join("update.sh");
    fs::write(
        &script,
        "#!/bin/sh\necho \"step 1 2 Copying\" >&$SYSTEM_UPDATE_PROGRESS_FD\necho \"progress 50\" >&3\necho working in \"$SYSTEM_UPDATE_ROOT\"\n: > \"$SYSTEM_UPDATE_ROOT/done-$SYSTEM_UPDATE_ATTEMPT\"\nexit \"${1:-0}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let run = |arg: &str| {
        let out = s.su(&[
            "prepare",
            "--force",
            "--command",
            script.to_str().unwrap(),
            arg,
        ]);
        assert!(out.status.success(), "{}", show(&out));
        let out = s.su(&["trigger", "--no-reboot"]);
        assert!(out.status.success(), "{}", show(&out));
        s.apply()
    };
    // A relative path is copied into the payload; use it through the cwd.
    let out = Command::new(common::BIN)
        .current_dir(s.dir.path())
        .arg("--root")
        .arg(&s.root)
        .args(["prepare", "--command", "./update.sh", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(s.update_dir().join("update.sh").is_file());
    assert!(s.su(&["trigger", "--no-reboot"]).status.success());
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert!(s.path("/done-1").exists());
    let r = s.results();
    assert_eq!(r["outcome"], "success");
    let log = fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("working in"), "{log}");

    let out = run("3");
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "failure");
    assert!(r["error"].as_str().unwrap().contains("status 3"), "{r}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn prepare_refuses_a_second_update_unless_forced() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    assert!(s.su(&["prepare", v2.to_str().unwrap()]).status.success());
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(s
        .su(&["prepare", "--force", v2.to_str().unwrap()])
        .status
        .success());
}

#[test]
fn prepare_refuses_unknown_files() {
    let s = Scratch::new();
    let f = s.dir.path().join("notes.txt");
    fs::write(&f, "x").unwrap();
    let out = s.su(&["prepare", f.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend"));
    let fake = s.dir.path().join("fake.deb");
    fs::write(&fake, "not a deb").unwrap();
    let out = s.su(&["prepare", fake.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid .deb"));
    assert!(!s.update_dir().join("manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn cancel_removes_trigger_and_purge_the_update() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    assert_eq!(code(&s.su(&["cancel"])), OK);
    assert!(!s.link_exists());
    assert!(s.update_dir().join("manifest.toml").exists());
    assert_eq!(code(&s.su(&["cancel", "--purge"])), OK);
    assert!(!s.update_dir().exists());
    assert_eq!(code(&s.apply()), OK);
    assert_untouched(&s);
}

#[test]
fn usage_error_is_2() {
    let s = Scratch::new();
    assert_eq!(code(&s.su(&["frobnicate"])), USAGE);
    assert_eq!(code(&s.su(&["trigger", "--reboot", "--poweroff"])), USAGE);
}

/// The log, the events and the error name the package files, never the
/// descriptors dpkg runs them from.
#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn messages_name_the_package_files_not_descriptors() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    let out = s.su(&["apply", "--ui", "plain", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    let log = fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("Preparing to unpack foo_2_all.deb"), "{log}");
    let said = format!("{log}{}", show(&out));
    assert!(!said.contains("/proc/self/fd/"), "{said}");

    // A file another package owns: dpkg refuses the archive by its path.
    let bar = Deb::new("bar", "1")
        .file("/opt/bar/version", "1\n")
        .build(&s.debs);
    s.dpkg_install(&bar);
    let clash = Deb::new("foo", "3")
        .file("/opt/bar/version", "3\n")
        .build(&s.debs);
    s.prepare_and_trigger(&[&clash]);
    let out = s.su(&["apply", "--ui", "plain", "--no-reboot"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let r = s.results();
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("foo_3_all.deb"), "{err}");
    let log = fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap();
    let said = format!("{log}{err}{}", show(&out));
    assert!(!said.contains("/proc/self/fd/"), "{said}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_update_imported_into_a_root_without_its_database_is_refused() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (a, v2) = with_foo_v1(None);
    let out = a.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let media = a.dir.path().join("media");
    fs::create_dir(&media).unwrap();
    for e in fs::read_dir(a.update_dir()).unwrap().flatten() {
        fs::copy(e.path(), media.join(e.file_name())).unwrap();
    }
    let b = Scratch::new();
    fs::remove_file(b.path("/var/lib/dpkg/status")).unwrap();
    let out = b.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("var/lib/dpkg/status: no dpkg database"),
        "{err}"
    );
}

#[test]
fn a_relative_root_works_for_the_command_backend() {
    let s = Scratch::new();
    let script = s.dir.path().join("update.sh");
    fs::write(&script, "#!/bin/sh\n: > \"$SYSTEM_UPDATE_ROOT/done\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let r = s.cycle_with_relative_root(&["prepare", "--command", script.to_str().unwrap()]);
    assert_eq!(r["outcome"], "success", "{r}");
    assert!(s.path("/done").exists());
}

#[test]
fn root_is_refused_where_it_does_not_apply() {
    let s = Scratch::new();
    for cmd in [&["demo"][..], &["completions", "bash"], &["probation"]] {
        let out = s.su(cmd);
        assert_eq!(code(&out), USAGE, "{cmd:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not apply"), "{cmd:?}: {err}");
    }
    let out = s.su_relative(&["status"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn prepare_force_disarms_the_trigger_of_what_it_replaces() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    assert!(s.su(&["prepare", v2.to_str().unwrap()]).status.success());
    let out = s.su(&["trigger", "--poweroff", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let other = Deb::new("other", "1.0").build(&s.debs);
    let out = s.su(&["prepare", "--force", other.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));

    assert!(
        !s.link_exists(),
        "the replaced update's trigger must be gone"
    );
    let status = || -> serde_json::Value {
        serde_json::from_slice(&s.su(&["status", "--json"]).stdout).unwrap()
    };
    let st = status();
    assert_eq!(st["triggered"], false, "{st}");
    assert_eq!(st["prepared"]["files"][0], "other_1.0_all.deb", "{st}");
    let text = String::from_utf8_lossy(&s.su(&["status"]).stdout).into_owned();
    assert!(text.contains(", backend dpkg, 1 file,"), "{text}");
    // Nobody triggered the replacement: the next boot installs nothing.
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(s.version("other"), None);
    // Triggered on its own, it installs, with its own after-action.
    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let st = status();
    assert_eq!(st["triggered"], true, "{st}");
    assert_ne!(st["after_action"], "poweroff", "{st}");
    assert_eq!(code(&s.apply()), OK);
    assert_eq!(s.version("other").as_deref(), Some("1.0"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn trigger_leaves_another_tools_trigger_alone_unless_told() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    assert!(s.su(&["prepare", v2.to_str().unwrap()]).status.success());
    let pk = s.path("/var/lib/PackageKit");
    fs::create_dir_all(&pk).unwrap();
    fs::write(pk.join("prepared-update"), "hello\n").unwrap();
    std::os::unix::fs::symlink(
        "/var/lib/PackageKit/prepared-update",
        s.path("/system-update"),
    )
    .unwrap();
    let theirs = || fs::read_link(s.path("/system-update")).ok();

    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/var/lib/PackageKit/prepared-update"), "{err}");
    assert!(err.contains("PackageKit"), "{err}");
    assert!(err.contains("--replace-foreign"), "{err}");
    assert_eq!(
        theirs().unwrap(),
        Path::new("/var/lib/PackageKit/prepared-update")
    );
    // cancel has nothing of ours to remove, and leaves theirs.
    let out = s.su(&["cancel"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Nothing to cancel"));
    assert!(theirs().is_some());

    let out = s.su(&["trigger", "--no-reboot", "--replace-foreign"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(theirs().unwrap(), Path::new("/var/lib/system-update"));

    // What is not a link arms the boot too, and is never ours to remove.
    assert!(s.su(&["cancel"]).status.success());
    fs::write(s.path("/etc/system-update"), "").unwrap();
    let out = s.su(&["trigger", "--no-reboot", "--replace-foreign"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a symbolic link"));
    assert!(s.path("/etc/system-update").is_file());
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn status_after_a_failed_update_says_so_and_what_next() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(Some("exit 1"));
    s.prepare_and_trigger(&[&v2]);
    assert_eq!(code(&s.apply()), FAILURE);
    let text = String::from_utf8_lossy(&s.su(&["status"]).stdout).into_owned();
    assert!(text.contains("ended in failure: "), "{text}");
    assert!(
        text.contains("foo: was 1, now 2 (half-configured)"),
        "{text}"
    );
    assert!(text.contains("prepare --force"), "{text}");
    assert!(text.contains("cancel --purge"), "{text}");
    // Not the plan read against the changed database.
    assert!(!text.contains("foo 2 -> 2"), "{text}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_boot_files_are_fingerprinted_before_the_transaction() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(Some("exit 1"));
    fs::create_dir_all(s.path("/boot")).unwrap();
    s.prepare_and_trigger(&[&v2]);
    assert_eq!(code(&s.apply()), FAILURE);
    // The failed update is kept, with its attempt's state: the fingerprint
    // the way out compares with (boottree).
    let state = fs::read_to_string(s.update_dir().join("attempts.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let tree = state["boot_tree"].as_str().unwrap_or_default();
    assert_eq!(tree.len(), 64, "{state}");
}
