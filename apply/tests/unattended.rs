//! Unattended updates (issue 22), the local part: `deferred` on battery in
//! the update boot, and `system-update auto` on scratch roots.

mod common;

use std::fs;

use common::{code, on_battery, show, with_foo_v1};

const DEFERRED: i32 = 7;

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
}
