//! An update that fills the disk (issue 25): three dpkg packages, the
//! first of which fills the file system from its preinst (a runaway log)
//! before anything is unpacked. On small loop-mounted file systems: btrfs
//! with the root in the subvolume `@` (native snapshot, and snapper's), and
//! ext4 with no blocks reserved for root. The record must be written and
//! say why, the history must have it, the rollback must give the space back
//! and `status`/`results` must say what to do. Needs root (loop devices,
//! mounts, dpkg chroots).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{configure_snapper, show, Deb, Scratch};

const PACKAGES: [&str; 3] = ["alpha", "bravo", "charlie"];

/// Fills the file system with dash's builtins only (the scratch root has
/// no other programs): 1 MiB writes until one fails, then 4 KiB ones.
const FILL: &str = r#"s=0123456789abcdef; i=0
while [ $i -lt 16 ]; do s="$s$s"; i=$((i+1)); done
while printf %s "$s" >> /filler; do :; done
t=0123456789abcdef; i=0
while [ $i -lt 8 ]; do t="$t$t"; i=$((i+1)); done
while printf %s "$t" >> /filler; do :; done
exit 0"#;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Case {
    Btrfs,
    Snapper,
    Ext4,
}

/// The scratch root of `case` with the three packages at 1.0 and the
/// update to 2.0 prepared and triggered.
fn triggered(case: Case) -> Scratch {
    let s = match case {
        Case::Ext4 => Scratch::on_small_fs(false, 48),
        Case::Btrfs | Case::Snapper => Scratch::on_small_fs(true, 160),
    };
    if case != Case::Ext4 {
        fs::write(s.path("/etc/fstab"), "LABEL=root / btrfs subvol=@ 0 0\n").unwrap();
    }
    if case == Case::Snapper {
        configure_snapper(&s);
    }
    let mut update = Vec::new();
    for p in PACKAGES {
        let file = format!("/opt/{p}/version");
        s.dpkg_install(&Deb::new(p, "1.0").file(&file, "1.0\n").build(&s.debs));
        let mut v2 = Deb::new(p, "2.0").file(&file, "2.0\n");
        if p == PACKAGES[0] {
            v2 = v2.preinst(FILL);
        }
        update.push(v2.build(&s.debs));
    }
    let debs: Vec<&Path> = update.iter().map(|p| p.as_path()).collect();
    s.prepare_and_trigger(&debs);
    s
}

fn free_bytes(path: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(path).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

fn text(s: &Scratch, args: &[&str]) -> String {
    let out = s.su(args);
    assert!(out.status.success(), "{args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The update fails on the full disk; what every case must show.
fn fails_and_says_why(s: &Scratch) -> serde_json::Value {
    let out = s.apply();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "failure", "{r}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(error.contains("No space left on device"), "{r}");
    let id = r["id"].as_str().expect("the update's id").to_string();

    let h: serde_json::Value = serde_json::from_str(&text(s, &["history", "--json"])).unwrap();
    let updates = h["updates"].as_array().expect("history updates");
    assert!(
        updates
            .iter()
            .any(|u| u["id"] == id.as_str() && u["outcome"] == "failure"),
        "no history entry for {id}: {h}"
    );

    let results = text(s, &["results"]);
    assert!(results.contains("No space left on device"), "{results}");
    assert!(
        results.contains("to do:") && results.contains("prepare --force"),
        "{results}"
    );
    let status = text(s, &["status"]);
    assert!(status.contains("The disk was full"), "{status}");
    assert!(status.contains("prepare --force"), "{status}");

    // The trigger is gone: the next boot is a normal one, and an apply
    // there leaves the record alone.
    assert!(!s.link_exists());
    let out = s.apply();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(s.results(), r);
    assert!(
        !s.path("/var/lib/system-update-results/space-reserve.0")
            .exists(),
        "the reserve is given back"
    );
    r
}

/// btrfs and snapper: rolled back to 1.0, the failed state (and with it
/// the filler) gone, free space back.
fn rolled_back_with_room(case: Case) {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = triggered(case);
    let r = fails_and_says_why(&s);
    for p in PACKAGES {
        assert_eq!(s.version(p).as_deref(), Some("1.0"), "{p}: {r}");
    }
    assert_eq!(s.audit(), "");
    assert!(!s.path("/filler").exists(), "{r}");
    let snap = &r["snapshot"];
    assert_eq!(snap["rolled_back"], true, "{r}");
    assert!(snap["failed_state"].is_null(), "{r}");
    let id = r["id"].as_str().unwrap();
    assert!(!s.top().join(format!("@.failed-{id}")).exists());
    let log = r["log"].as_str().expect("log path");
    assert!(s.path(log).is_file(), "the log is kept: {log}");
    // btrfs frees a deleted subvolume's blocks in the background (and
    // goes on after a reboot): wait for that as the next boot would. A
    // commit wakes its cleaner; freed blocks count once committed.
    for args in [
        ["filesystem", "sync"],
        ["subvolume", "sync"],
        ["filesystem", "sync"],
    ] {
        let out = Command::new("btrfs")
            .args(args)
            .arg(s.top())
            .output()
            .unwrap();
        assert!(out.status.success(), "btrfs {args:?}: {}", show(&out));
    }
    let free = free_bytes(&s.root);
    eprintln!("full_disk {case:?}: {free} bytes free after the rollback");
    let usage = Command::new("btrfs")
        .args(["filesystem", "usage"])
        .arg(s.top())
        .output()
        .unwrap();
    assert!(
        free > 16 << 20,
        "{free} bytes free after the rollback: {r}\n{}",
        show(&usage)
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn full_btrfs_rolls_back_records_why_and_frees_the_space() {
    rolled_back_with_room(Case::Btrfs);
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn full_btrfs_with_snapper_rolls_back_records_why_and_frees_the_space() {
    rolled_back_with_room(Case::Snapper);
}

/// ext4 without root's reserve: no snapshot, so nothing to roll back, but
/// the record is written, true, and says what to do.
#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn full_ext4_without_reserve_records_why() {
    if !common::root_or_skip("loop devices, mounts and dpkg chroots") {
        return;
    }
    let s = triggered(Case::Ext4);
    let r = fails_and_says_why(&s);
    assert_eq!(r["snapshot"]["provider"], "none", "{r}");
}
