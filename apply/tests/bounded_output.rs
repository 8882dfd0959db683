//! A backend's output is bounded whatever it prints (issue 10): over-long
//! lines are cut, a flood leaves a log of head and tail, and a backend that
//! goes silent is killed after the stall timeout. The memory bound is a
//! benchmark (apply/benches/flood.sh), not a test. Needs root (scratch
//! roots owned by root, as the apply service sees them).

mod common;

use std::path::Path;

use common::{show, Scratch};

fn command_update(s: &Scratch, script: &str) -> serde_json::Value {
    let out = s.su(&["prepare", "--command", "/bin/sh", "-c", script]);
    assert!(out.status.success(), "prepare: {}", show(&out));
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "trigger: {}", show(&out));
    let out = s.apply();
    let r = s.results();
    assert!(!s.link_exists(), "the trigger is gone: {}", show(&out));
    r
}

fn log_of(s: &Scratch, r: &serde_json::Value) -> String {
    let log = r["log"].as_str().expect("log path");
    let bytes = std::fs::read(s.path(log)).unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_line_without_end_is_cut_and_the_update_goes_on() {
    let s = Scratch::new();
    // 10 MB of x and no newline, then a normal line on stderr.
    let r = command_update(
        &s,
        "head -c 10000000 /dev/zero | tr '\\0' x; echo; echo done >&2",
    );
    assert_eq!(r["outcome"], "success", "{r}");
    let log = log_of(&s, &r);
    let cut = log
        .lines()
        .find(|l| l.starts_with("xxx"))
        .expect("the long line's head");
    assert!(
        cut.ends_with(" [… 9991808 bytes cut]"),
        "{}",
        &cut[cut.len().saturating_sub(60)..]
    );
    assert_eq!(cut.len(), 8192 + " [… 9991808 bytes cut]".len());
    assert!(log.lines().any(|l| l == "done"), "the next line follows");
}

#[test]
fn a_flood_leaves_the_head_and_the_tail_of_the_log() {
    let s = Scratch::new();
    // 1..2000000: about 15 MB of lines.
    let r = command_update(&s, "seq 1 2000000");
    assert_eq!(r["outcome"], "success", "{r}");
    let log = log_of(&s, &r);
    let size = log.len();
    assert!(
        size <= (4 << 20) + (1 << 20) + 4096,
        "the log is bounded: {size} bytes"
    );
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.contains(&"1"), "the first line is kept");
    assert_eq!(lines.last(), Some(&"2000000"), "the last line is kept");
    let gap = lines
        .iter()
        .find(|l| l.contains("lines (") && l.contains("left out here"))
        .expect("the omission is said");
    assert!(gap.starts_with("[… "), "{gap}");
}

#[test]
fn a_silent_backend_is_killed_after_the_stall_timeout() {
    let s = Scratch::new();
    std::fs::write(s.path("/etc/system-update.toml"), "stall-timeout = 2\n").unwrap();
    let pidfile = s.dir.path().join("grandchild.pid");
    let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
    let t = std::time::Instant::now();
    let r = command_update(&s, &script);
    assert_eq!(r["outcome"], "failure", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.contains("wrote nothing for 2 s") && err.contains("stall-timeout"),
        "{err}"
    );
    // A generous bound, only to tell "killed" from "waited for sleep 1000".
    assert!(t.elapsed().as_secs() < 200, "{:?}", t.elapsed());
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let proc = Path::new("/proc").join(pid.trim());
    // The grandchild went with its process group (give the kernel a moment
    // to reap it: it is a zombie until its parent, init here, waits).
    let mut alive = true;
    for _ in 0..50 {
        let state = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
        alive = !state.is_empty() && !state.contains(") Z ");
        if !alive {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!alive, "the grandchild {} still runs", pid.trim());
}
