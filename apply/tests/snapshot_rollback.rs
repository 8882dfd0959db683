//! Snapshots before the transaction and rollback after a failure, on real
//! btrfs filesystems in loop-mounted images (issue 6). Needs root (mount,
//! losetup) and btrfs-progs, used here only to make and inspect the
//! filesystems: the code under test talks to the kernel directly.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{configure_snapper, foo_v1_in, show, Deb, Scratch};

const FAILING: &str = "echo 'postinst: exploding on purpose' >&2\nexit 1";

fn btrfs(args: &[&str], path: &Path) -> String {
    let out = Command::new("btrfs").args(args).arg(path).output().unwrap();
    assert!(out.status.success(), "btrfs {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn subvolume_id(path: &Path) -> u64 {
    let text = btrfs(&["subvolume", "show"], path);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Subvolume ID:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no subvolume id in {text}"))
}

fn update_id(s: &Scratch) -> String {
    let m = fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix("id = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("id in the manifest")
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn failure_rolls_back_a_named_root_subvolume() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("roots/debian", false);
    fs::write(
        s.path("/etc/fstab"),
        "LABEL=root / btrfs subvol=roots/debian 0 0\n",
    )
    .unwrap();
    fs::write(s.path("/etc/motd"), "before\n").unwrap();
    let (s, v2) = foo_v1_in(s, Some(FAILING));
    let old_id = subvolume_id(&s.root);
    s.prepare_and_trigger(&[&v2]);
    let id = update_id(&s);

    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    // s.root is the path of the root subvolume: the restored one now, as
    // the next boot (mounting subvol=roots/debian) will find it.
    assert_ne!(subvolume_id(&s.root), old_id);
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n",
        "the file the failed package had unpacked is back"
    );
    assert_eq!(fs::read_to_string(s.path("/etc/motd")).unwrap(), "before\n");
    assert!(
        !s.link_exists(),
        "the restored root must not boot into the update again"
    );
    assert_eq!(s.audit(), "");

    let r = s.results();
    assert_eq!(r["outcome"], "failure", "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("post-installation script"),
        "{r}"
    );
    // The versions say what the system runs now: the rollback undid 2.
    assert_eq!(r["packages"][0]["before"], "1", "{r}");
    assert_eq!(r["packages"][0]["after"], "1", "{r}");
    let snap = &r["snapshot"];
    assert_eq!(snap["provider"], "btrfs", "{r}");
    assert_eq!(snap["name"], format!("roots/debian.before-{id}"), "{r}");
    assert_eq!(snap["rolled_back"], true, "{r}");
    let failed = format!("roots/debian.failed-{id}");
    assert_eq!(snap["failed_state"], failed.as_str(), "{r}");
    // The log of the failed attempt came along into the restored root.
    let log = r["log"].as_str().expect("log path");
    assert!(s.path(log).is_file(), "{log}");

    // The failed state is kept for inspection: foo 2 unpacked, half-configured.
    let kept = s.top().join(&failed);
    assert_eq!(subvolume_id(&kept), old_id);
    assert_eq!(
        fs::read_to_string(kept.join("opt/foo/version")).unwrap(),
        "2\n"
    );
    // The pre-update snapshot is read-only.
    let before = s.top().join(format!("roots/debian.before-{id}"));
    assert!(btrfs(&["property", "get", "-ts"], &before).contains("ro=true"));

    let text = String::from_utf8_lossy(&s.su(&["results"]).stdout).into_owned();
    assert!(
        text.contains(&format!(
            "rolled back, the failed state is kept as {failed}"
        )),
        "{text}"
    );

    // Cleanup by hand removes the failed state and keeps one snapshot.
    let out = s.su(&["cleanup"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&failed),
        "{}",
        show(&out)
    );
    assert!(!kept.exists());
    assert!(before.exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn failure_rolls_back_the_default_subvolume_and_a_subvolid_fstab() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", true);
    let (s, v2) = foo_v1_in(s, Some(FAILING));
    let old_id = subvolume_id(&s.root);
    fs::write(
        s.path("/etc/fstab"),
        format!("LABEL=root / btrfs defaults,subvolid={old_id} 0 0\n"),
    )
    .unwrap();
    s.prepare_and_trigger(&[&v2]);

    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));

    let new_id = subvolume_id(&s.root);
    assert_ne!(new_id, old_id);
    assert!(
        btrfs(&["subvolume", "get-default"], &s.top()).contains(&format!("ID {new_id} ")),
        "the default subvolume follows the restored root"
    );
    assert_eq!(
        fs::read_to_string(s.path("/etc/fstab")).unwrap(),
        format!("LABEL=root\t/\tbtrfs\tdefaults,subvolid={new_id}\t0\t0\n")
    );
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(s.results()["snapshot"]["rolled_back"], true);
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn success_keeps_the_snapshot_and_retention_prunes_old_ones() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    let (s, v2) = foo_v1_in(s, None);
    // Without probation the cleanup is due at once (with it, once the
    // boot is confirmed: probation_rolls_back_an_unhealthy_boot).
    fs::write(s.path("/etc/system-update.toml"), "probation = false\n").unwrap();
    s.prepare_and_trigger(&[&v2]);
    let first = update_id(&s);
    let out = s.apply();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("2"));
    let r = s.results();
    assert_eq!(r["snapshot"]["name"], format!("@.before-{first}"), "{r}");
    assert_eq!(r["snapshot"]["rolled_back"], false, "{r}");
    assert!(r["probation"].is_null(), "{r}");
    let pending = s.path("/var/lib/system-update-results/cleanup-pending");
    assert!(pending.exists(), "the next normal boot prunes");

    // A second update, then the cleanup a normal boot runs: keep-snapshots
    // (default 1) leaves the newest.
    let v3 = Deb::new("foo", "3")
        .file("/opt/foo/version", "3\n")
        .build(&s.debs);
    s.prepare_again_and_trigger(&[&v3]);
    let second = update_id(&s);
    assert_eq!(s.apply().status.code(), Some(0));
    assert!(s.top().join(format!("@.before-{first}")).exists());
    let out = s.su(&["cleanup", "--boot"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!s.top().join(format!("@.before-{first}")).exists());
    assert!(s.top().join(format!("@.before-{second}")).exists());
    assert!(!pending.exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn explicit_btrfs_on_another_filesystem_fails_before_any_change() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let (s, v2) = common::with_foo_v1(None);
    fs::write(s.path("/etc/system-update.toml"), "snapshot = \"btrfs\"\n").unwrap();
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    let r = s.results();
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("snapshot = btrfs") && e.contains("is not on btrfs"),
        "{e}"
    );
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn not_enough_space_fails_before_any_change() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_tmpfs(48);
    let (s, _) = foo_v1_in(s, None);
    // Claims 10 GiB installed: more than the 48 MiB filesystem has. prepare
    // refuses it already, writing nothing.
    let big = Deb::new("foo", "2")
        .file("/opt/foo/version", "2\n")
        .installed_size(10 << 20)
        .build(&s.debs);
    let out = s.su(&["prepare", big.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not enough free space") && err.contains("10.0 GiB to install them"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());

    // 20 MiB fits at prepare; then the disk fills up before the boot.
    let mid = Deb::new("foo", "2")
        .file("/opt/foo/version", "2\n")
        .installed_size(20 << 10)
        .build(&s.debs);
    s.prepare_and_trigger(&[&mid]);
    fs::write(s.path("/filler"), vec![0u8; 24 << 20]).unwrap();
    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n"
    );
    let r = s.results();
    let e = r["error"].as_str().unwrap();
    assert!(e.contains("not enough free space"), "{e}");
    assert!(e.contains("20.0 MiB for the packages"), "{e}");
    assert!(e.contains(" available; nothing was changed"), "{e}");
    assert_eq!(
        r["snapshot"],
        serde_json::Value::Null,
        "no snapshot was taken: {r}"
    );
    assert!(!s.link_exists());
    assert_eq!(s.audit(), "");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn interrupted_at_the_attempt_limit_rolls_back() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    let (s, v2) = foo_v1_in(s, Some(common::SLOW_ONCE));
    fs::write(s.path("/etc/system-update.toml"), "attempt-limit = 1\n").unwrap();
    s.prepare_and_trigger(&[&v2]);
    common::kill_mid_transaction(&s);

    // The next boot: at the limit, no second try, but the half-done
    // transaction is undone instead of left for the admin.
    let out = s.apply();
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert_eq!(s.audit(), "", "the restored database is consistent");
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n"
    );
    assert!(!s.link_exists());
    let r = s.results();
    assert_eq!(r["outcome"], "interrupted", "{r}");
    assert_eq!(r["snapshot"]["rolled_back"], true, "{r}");
}

/// Our snapshots in snapper's history: (number, type, pre-number, userdata).
fn snapper_list(s: &Scratch) -> Vec<serde_json::Value> {
    let out = Command::new("snapper")
        .args(["--no-dbus", "--root"])
        .arg(&s.root)
        .args(["-c", "root", "--jsonout", "list", "--columns"])
        .arg("number,type,pre-number,description,userdata")
        .output()
        .unwrap();
    assert!(out.status.success(), "snapper list: {}", show(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["root"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["number"] != 0)
        .cloned()
        .collect()
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn failure_with_snapper_rolls_back_from_its_pre_snapshot_and_keeps_the_pair() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    fs::write(s.path("/etc/fstab"), "LABEL=root / btrfs subvol=@ 0 0\n").unwrap();
    configure_snapper(&s);
    // A nested subvolume is outside any snapshot of the root: it must stay
    // in the running system, not go with the failed state.
    fs::create_dir_all(s.path("/var/lib")).unwrap();
    btrfs(&["-q", "subvolume", "create"], &s.path("/var/lib/machines"));
    fs::write(s.path("/var/lib/machines/guest"), "kept\n").unwrap();
    let (s, v2) = foo_v1_in(s, Some(FAILING));
    s.prepare_and_trigger(&[&v2]);
    let id = update_id(&s);

    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n"
    );
    assert!(!s.link_exists());
    assert_eq!(s.audit(), "");

    let r = s.results();
    let snap = &r["snapshot"];
    assert_eq!(snap["provider"], "snapper", "{r}");
    assert_eq!(snap["rolled_back"], true, "{r}");
    let pre = snap["snapper_pre"].as_u64().expect("snapper-pre");
    let post = snap["snapper_post"].as_u64().expect("snapper-post");
    assert_eq!(snap["name"], format!("@/.snapshots/{pre}/snapshot"), "{r}");
    let failed = format!("@.failed-{id}");
    assert_eq!(snap["failed_state"], failed.as_str(), "{r}");

    // snapper's history came along into the restored root, with the pair.
    let list = snapper_list(&s);
    let desc = format!("system-update {id}");
    assert!(
        list.iter().any(|x| x["number"] == pre
            && x["type"] == "pre"
            && x["description"] == desc.as_str()
            && x["userdata"]["system-update"] == id.as_str()),
        "{list:?}"
    );
    assert!(
        list.iter().any(|x| x["number"] == post
            && x["type"] == "post"
            && x["pre-number"] == pre
            && x["userdata"]["outcome"] == "failure"),
        "{list:?}"
    );
    // The post snapshot holds what the failed update left.
    assert_eq!(
        fs::read_to_string(s.path(&format!("/.snapshots/{post}/snapshot/opt/foo/version")))
            .unwrap(),
        "2\n"
    );
    assert_eq!(
        fs::read_to_string(s.path("/var/lib/machines/guest")).unwrap(),
        "kept\n"
    );
    assert!(btrfs(&["subvolume", "show"], &s.path("/var/lib/machines")).contains("Name:"));

    let text = String::from_utf8_lossy(&s.su(&["results"]).stdout).into_owned();
    assert!(
        text.contains(&format!(
            "snapper:  pre {pre}, post {post} (snapper status {pre}..{post})"
        )),
        "{text}"
    );

    // With its nested subvolumes carried out, the failed state can go.
    let out = s.su(&["cleanup"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(!s.top().join(&failed).exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn success_with_snapper_closes_the_pair_and_retention_keeps_the_newest() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    configure_snapper(&s);
    let (s, v2) = foo_v1_in(s, None);
    s.prepare_and_trigger(&[&v2]);
    let first = update_id(&s);
    let out = s.apply();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("2"));
    let r = s.results();
    assert_eq!(r["snapshot"]["provider"], "snapper", "{r}");
    assert_eq!(r["snapshot"]["rolled_back"], false, "{r}");
    let list = snapper_list(&s);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[1]["userdata"]["outcome"], "success", "{list:?}");
    assert!(
        !s.top().join(format!("@.before-{first}")).exists(),
        "snapper's snapshot replaces the native one"
    );

    let v3 = Deb::new("foo", "3")
        .file("/opt/foo/version", "3\n")
        .build(&s.debs);
    s.prepare_again_and_trigger(&[&v3]);
    let second = update_id(&s);
    assert_eq!(s.apply().status.code(), Some(0));
    assert_eq!(snapper_list(&s).len(), 4);

    let out = s.su(&["cleanup", "--boot"]);
    assert!(out.status.success(), "{}", show(&out));
    let list = snapper_list(&s);
    assert_eq!(list.len(), 2, "keep-snapshots = 1 keeps one pair: {list:?}");
    assert!(
        list.iter()
            .all(|x| x["userdata"]["system-update"] == second.as_str()),
        "{list:?}"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn explicit_snapper_without_a_configuration_fails_before_any_change() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    let (s, v2) = foo_v1_in(s, None);
    fs::write(
        s.path("/etc/system-update.toml"),
        "snapshot = \"snapper\"\n",
    )
    .unwrap();
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    let r = s.results();
    let e = r["error"].as_str().unwrap();
    assert!(
        e.contains("snapshot = snapper") && e.contains("no configuration for /"),
        "{e}"
    );
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn auto_falls_back_to_a_native_snapshot_when_snapper_is_broken() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    configure_snapper(&s);
    // snapper cannot list its configurations without this file.
    fs::remove_file(s.path("/etc/default/snapper")).unwrap();
    let (s, v2) = foo_v1_in(s, Some(FAILING));
    s.prepare_and_trigger(&[&v2]);
    let id = update_id(&s);
    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("snapper unusable"),
        "{}",
        show(&out)
    );
    let r = s.results();
    assert_eq!(r["snapshot"]["provider"], "btrfs", "{r}");
    assert_eq!(r["snapshot"]["name"], format!("@.before-{id}"), "{r}");
    assert_eq!(r["snapshot"]["rolled_back"], true, "{r}");
    assert_eq!(s.version("foo").as_deref(), Some("1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn interrupted_at_the_limit_with_snapper_closes_the_pair_and_rolls_back() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    configure_snapper(&s);
    let (s, v2) = foo_v1_in(s, Some(common::SLOW_ONCE));
    fs::write(s.path("/etc/system-update.toml"), "attempt-limit = 1\n").unwrap();
    s.prepare_and_trigger(&[&v2]);
    common::kill_mid_transaction(&s);

    let out = s.apply();
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    assert_eq!(s.audit(), "");
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert!(!s.link_exists());
    let r = s.results();
    assert_eq!(r["outcome"], "interrupted", "{r}");
    assert_eq!(r["snapshot"]["provider"], "snapper", "{r}");
    assert_eq!(r["snapshot"]["rolled_back"], true, "{r}");
    let list = snapper_list(&s);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[1]["userdata"]["outcome"], "interrupted", "{list:?}");
}

const PROBATION: &str = "/var/lib/system-update-results/probation.json";
const DUE: &str = "/var/lib/system-update-results/probation-due";

/// What `system-update probation` leaves when a boot was not confirmed
/// (probation.rs; its checks of the units run against a real systemd in
/// the real-boot scenarios s15 and s16).
fn boot_not_confirmed(s: &Scratch, why: &str) {
    let p = s.path(PROBATION);
    let mut state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
    state["boots"] = 1.into();
    state["reason"] = why.into();
    fs::write(&p, serde_json::to_vec(&state).unwrap()).unwrap();
    fs::write(s.path(DUE), b"").unwrap();
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn probation_rolls_back_an_unhealthy_boot() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = Scratch::on_btrfs("@", false);
    let (s, v2) = foo_v1_in(s, None);
    s.prepare_and_trigger(&[&v2]);
    let id = update_id(&s);
    let out = s.apply();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let r = s.results();
    assert_eq!(r["probation"]["verdict"], "pending", "{r}");
    assert!(s.path(PROBATION).exists(), "the next boot is on probation");
    assert!(
        !s.path("/var/lib/system-update-results/cleanup-pending")
            .exists(),
        "the snapshot stays until the boot is confirmed"
    );
    let status = s.su(&["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&format!("Update {id} is on probation")),
        "{}",
        show(&status)
    );

    // The probation boot failed; the next boot (diverted by the generator)
    // rolls back.
    boot_not_confirmed(&s, "app.service (must-run) failed (exit-code)");
    let out = s.apply();
    assert_eq!(out.status.code(), Some(6), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n"
    );
    assert_eq!(s.audit(), "");
    let r = s.results();
    assert_eq!(r["outcome"], "rolled-back-after-boot", "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("app.service")),
        "{r}"
    );
    assert_eq!(r["probation"]["verdict"], "rolled-back", "{r}");
    assert_eq!(r["snapshot"]["rolled_back"], true, "{r}");
    assert_eq!(r["legs"]["leave"], "reboot", "{r}");
    assert!(s.top().join(format!("@.failed-{id}")).exists());
    assert!(!s.path(DUE).exists() && !s.path(PROBATION).exists());
    let text = String::from_utf8_lossy(&s.su(&["results"]).stdout).into_owned();
    assert!(text.contains("outcome:  rolled-back-after-boot"), "{text}");

    // Once only: the next boot is a normal one and apply has nothing to do.
    let out = s.apply();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_due_rollback_without_a_snapshot_ends_the_probation_and_keeps_the_system() {
    if !common::root_or_skip("dpkg chroots") {
        return;
    }
    // Not btrfs: nothing to roll back to, which is reported, never retried.
    let (s, v2) = common::with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    assert_eq!(s.apply().status.code(), Some(0));
    let r = s.results();
    assert!(
        r["probation"]["reason"]
            .as_str()
            .is_some_and(|w| w.contains("never rolled back")),
        "{r}"
    );
    boot_not_confirmed(&s, "x.service (must-run) failed (exit-code)");
    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("2"), "the update stays");
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["probation"]["verdict"], "failed", "{r}");
    assert!(
        r["error"]
            .as_str()
            .is_some_and(|e| e.contains("no snapshot to roll back to")),
        "{r}"
    );
    assert!(!s.path(DUE).exists() && !s.path(PROBATION).exists());
    assert_eq!(s.apply().status.code(), Some(0), "no loop");
}
