//! Unattended updates in a fleet (issue 22): six machines (scratch roots
//! with their own machine ids) with a prepared dpkg update run
//! `system-update auto` against one real etcd on 127.0.0.1 with two
//! slots. At most two are armed at once; a slot comes back once the
//! machine's update has ended well; a failed update halts the group until
//! `fleet resume`; etcd gone arms nothing and says why.

mod common;
mod etcd;

use std::fs;

use common::{code, show, with_foo_v1, Scratch};
use etcd::Etcd;

/// A Saturday, 02:30 UTC, inside the window below.
const NOW: &str = "2026-12-05T02:30:00Z";

fn ready() -> bool {
    common::root_or_skip("dpkg chroots into the scratch roots")
        && common::tool_or_skip("etcd", "etcd-server")
}

/// Machine `n` of the fleet: foo 1 installed, foo 2 prepared (its postinst
/// failing on the machine that is to fail).
fn machine(n: usize, etcd: &Etcd, failing: bool) -> Scratch {
    let (s, v2) = with_foo_v1(failing.then_some("#!/bin/sh\nexit 1\n"));
    fs::write(s.path("/etc/machine-id"), format!("{:032x}\n", 0xabc0 + n)).unwrap();
    fs::write(
        s.path("/etc/system-update.toml"),
        format!(
            "window = [\"Sat 02:00-05:00\"]\nauto-prepare = \"none\"\nprobation = false\n\
             fleet-endpoints = [{:?}]\nfleet-group = \"kiosks\"\nfleet-slots = 2\n",
            etcd.url
        ),
    )
    .unwrap();
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "prepare: {}", show(&out));
    s
}

#[track_caller]
fn auto(s: &Scratch) -> serde_json::Value {
    s.auto(NOW)
}

/// One auto pass over the fleet, in order; never more than two armed at
/// any moment. The machines armed by this pass.
#[track_caller]
fn pass(fleet: &[Scratch]) -> Vec<usize> {
    let mut armed = Vec::new();
    for (n, s) in fleet.iter().enumerate() {
        let a = auto(s);
        if a["action"] == "armed" {
            armed.push(n);
        }
        let now = fleet.iter().filter(|s| s.link_exists()).count();
        assert!(now <= 2, "{now} machines armed after machine {n}: {a}");
    }
    armed
}

fn apply(s: &Scratch, ok: bool) {
    let out = s.apply();
    assert_eq!(code(&out) == 0, ok, "{}", show(&out));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_fleet_updates_two_at_a_time_and_one_failure_halts_it() {
    if !ready() {
        return;
    }
    let mut etcd = Etcd::start();
    let fleet: Vec<Scratch> = (0..6).map(|n| machine(n, &etcd, n == 2)).collect();

    assert_eq!(pass(&fleet), [0, 1]);
    let waiting = auto(&fleet[3]);
    assert_eq!(waiting["action"], "waiting", "{waiting}");
    let why = waiting["reason"].as_str().unwrap();
    assert!(why.contains("fleet") && why.contains("2"), "{why}");

    // 0 and 1 install; their next pass gives their slots back, and 2 and 3
    // take them in the same pass.
    apply(&fleet[0], true);
    apply(&fleet[1], true);
    assert_eq!(pass(&fleet), [2, 3]);

    // 2's update fails: its next pass halts the group.
    apply(&fleet[2], false);
    apply(&fleet[3], true);
    assert_eq!(pass(&fleet), Vec::<usize>::new());
    let a = auto(&fleet[4]);
    assert_eq!(a["action"], "waiting", "{a}");
    let why = a["reason"].as_str().unwrap();
    assert!(why.contains("halted") && why.contains("update"), "{why}");
    let st = fleet[0].su(&["fleet", "status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(
        st["halted"]["machine"].as_str().unwrap().ends_with("abc2"),
        "{st}"
    );

    // The admin looked at it: the rest go on.
    let out = fleet[0].su(&["fleet", "resume"]);
    assert!(out.status.success(), "resume: {}", show(&out));
    assert_eq!(pass(&fleet), [4, 5]);
    let a = auto(&fleet[2]);
    assert_eq!(
        a["action"], "nothing",
        "the failed update is not tried again: {a}"
    );
    apply(&fleet[4], true);
    apply(&fleet[5], true);
    assert_eq!(pass(&fleet), Vec::<usize>::new());
    for (n, s) in fleet.iter().enumerate().filter(|(n, _)| *n != 2) {
        assert_eq!(s.version("foo").as_deref(), Some("2"), "machine {n}");
    }

    // etcd gone: nothing is armed, and the answer says why.
    etcd.stop();
    let s = &fleet[0];
    let v3 = common::Deb::new("foo", "3")
        .file("/opt/foo/version", "3\n")
        .build(&s.debs);
    let out = s.su(&["prepare", "--force", &v3.display().to_string()]);
    assert!(out.status.success(), "prepare: {}", show(&out));
    let a = auto(s);
    assert_eq!(a["action"], "waiting", "{a}");
    assert!(a["reason"].as_str().unwrap().contains("unreachable"), "{a}");
    assert!(!s.link_exists());
}
