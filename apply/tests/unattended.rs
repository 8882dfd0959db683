//! Unattended updates (issue 22), the local part: `deferred` on battery in
//! the update boot, and `system-update auto` on scratch roots.

mod common;

use std::fs;

use common::{code, on_battery, show, with_foo_v1};

const DEFERRED: i32 = 7;

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn too_little_power_defers_the_update_without_counting_it() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    on_battery(&s, 12);

    let out = s.apply();
    assert_eq!(code(&out), DEFERRED, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "deferred", "{r}");
    assert_eq!(r["attempts"], 0, "{r}");
    let why = r["error"].as_str().unwrap();
    assert!(
        why.contains("on battery at 12%, below min-battery 30%"),
        "{why}"
    );
    assert!(!s.link_exists(), "the trigger must be gone");
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    // Kept prepared: status says so, and a trigger needs no new prepare.
    let st = s.su(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(st["prepared"]["id"].is_string(), "{st}");

    // Plugged in: the same update installs, as its first attempt.
    fs::write(
        s.path("/sys/devices/platform/power_supply/AC/online"),
        "1\n",
    )
    .unwrap();
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "trigger: {}", show(&out));
    let out = s.apply();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
    assert_eq!(s.version("foo").as_deref(), Some("2"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_battery_at_min_battery_is_enough() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    on_battery(&s, 30);
    let out = s.apply();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(s.results()["outcome"], "success");
    assert_eq!(s.version("foo").as_deref(), Some("2"));
}

/// The root's config with these lines, as an admin writes it.
fn config(s: &common::Scratch, text: &str) {
    let p = s.path("/etc/system-update.toml");
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
}

/// A Saturday, 02:30 UTC (a scratch root has no /etc/localtime: UTC).
const IN_WINDOW: &str = "2026-12-05T02:30:00Z";
/// The Monday after, noon.
const OUTSIDE: &str = "2026-12-07T12:00:00Z";
const WINDOWS: &str = "window = [\"Sat,Sun 02:00-05:00\"]\nauto-prepare = \"none\"\n";

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn auto_arms_an_admins_prepared_update_inside_a_window() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    config(&s, WINDOWS);
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "prepare: {}", show(&out));

    let a = s.auto(IN_WINDOW);
    assert_eq!(a["action"], "armed", "{a}");
    assert_eq!(a["reboot"], "none", "--root never reboots: {a}");
    assert_eq!(a["window_closes"], "2026-12-05T05:00:00Z", "{a}");
    assert!(a["power"].as_str().unwrap().contains("on mains"), "{a}");
    assert!(s.link_exists());
    let out = s.apply();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("2"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn auto_never_stacks_on_a_pending_update() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    config(&s, WINDOWS);
    s.prepare_and_trigger(&[&v2]);
    let before = fs::read_dir(s.update_dir()).unwrap().count();
    let a = s.auto(IN_WINDOW);
    assert_eq!(a["action"], "nothing", "{a}");
    assert!(
        a["reason"].as_str().unwrap().contains("already triggered"),
        "{a}"
    );
    assert_eq!(fs::read_dir(s.update_dir()).unwrap().count(), before);
    // The text says it too.
    let out = s.su(&["auto", "--now", IN_WINDOW]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("auto: nothing: an update is already triggered"),
        "{text}"
    );
    // Nor on a rollback armed for the next boot.
    let out = s.su(&["cancel"]);
    assert!(out.status.success(), "cancel: {}", show(&out));
    let due = s.path("/var/lib/system-update-results/probation-due");
    fs::create_dir_all(due.parent().unwrap()).unwrap();
    fs::write(&due, "").unwrap();
    let a = s.auto(IN_WINDOW);
    assert_eq!(a["action"], "nothing", "{a}");
    assert_eq!(a["reason"], "a rollback is armed for the next boot");
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn auto_outside_a_window_arms_nothing_and_says_when() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    config(&s, WINDOWS);
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "prepare: {}", show(&out));
    let a = s.auto(OUTSIDE);
    assert_eq!(a["action"], "waiting", "{a}");
    assert_eq!(a["reason"], "outside the maintenance windows");
    assert_eq!(a["next_window"], "2026-12-12T02:00:00Z", "{a}");
    assert!(!s.link_exists());
    // No window at all: nothing is ever armed.
    config(&s, "auto-prepare = \"none\"\n");
    let a = s.auto(IN_WINDOW);
    assert_eq!(a["action"], "waiting", "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("no maintenance window"),
        "{a}"
    );
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn auto_on_battery_waits_and_nothing_prepared_is_nothing() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    config(&s, WINDOWS);
    let a = s.auto(IN_WINDOW);
    assert_eq!(a["action"], "nothing", "{a}");
    assert_eq!(a["reason"], "nothing is prepared (auto-prepare is none)");
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "prepare: {}", show(&out));
    on_battery(&s, 20);
    let a = s.auto(IN_WINDOW);
    assert_eq!(a["action"], "waiting", "{a}");
    assert!(
        a["reason"]
            .as_str()
            .unwrap()
            .contains("below min-battery 30%"),
        "{a}"
    );
    assert!(!s.link_exists());
}
