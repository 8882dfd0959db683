//! The probation's rollback marker, whatever state and configuration lie
//! beside it: consumed before anything else, never a loop, and never a
//! rewritten record for an update that is not on probation.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{show, BIN};

const RESULTS: &str = "var/lib/system-update-results";

fn apply(root: &Path) -> Output {
    Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(["apply", "--ui", "none", "--no-reboot"])
        .env_remove("SYSTEM_UPDATE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run system-update")
}

fn record(outcome: &str) -> String {
    format!(
        r#"{{"format":2,"id":"u1","title":"t","backend":"dpkg","outcome":"{outcome}","stop_requested":false,"packages":[],"started":"2026-01-01T00:00:00Z","finished":null,"attempts":1,"error":"it broke","log":null}}"#
    )
}

const STATE: &str =
    r#"{"id":"u1","can_roll_back":true,"boots":2,"limit":2,"since":"2026-01-01T00:00:00Z"}"#;

/// A root with the last record (`outcome`), optionally the probation's
/// state, and the marker as a regular file.
fn root_with(outcome: &str, state: bool) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    let results = d.path().join(RESULTS);
    std::fs::create_dir_all(&results).expect("mkdir");
    std::fs::write(results.join("last.json"), record(outcome)).expect("record");
    if state {
        std::fs::write(results.join("probation.json"), STATE).expect("state");
    }
    std::fs::write(results.join("probation-due"), b"").expect("marker");
    d
}

fn last(root: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(root.join(RESULTS).join("last.json")).expect("last.json");
    serde_json::from_str(&text).expect("json")
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_broken_config_still_consumes_a_due_rollback_and_records_it() {
    let d = root_with("success", true);
    std::fs::create_dir_all(d.path().join("etc")).expect("etc");
    std::fs::write(
        d.path().join("etc/system-update.toml"),
        "stall-timeout = yes\n",
    )
    .expect("config");
    let out = apply(d.path());
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let results = d.path().join(RESULTS);
    assert!(!results.join("probation-due").exists(), "{}", show(&out));
    assert!(!results.join("probation.json").exists(), "{}", show(&out));
    let r = last(d.path());
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["probation"]["verdict"], "failed", "{r}");
    let error = r["error"].as_str().unwrap_or_default();
    assert!(error.contains("configuration could not be read"), "{r}");
    assert!(said(&out).contains("stall-timeout"), "{}", show(&out));
    // The next boot: nothing left to send it back.
    let again = apply(d.path());
    assert_eq!(again.status.code(), Some(0), "{}", show(&again));
}

#[test]
fn a_stray_marker_never_rewrites_a_failed_record() {
    let d = root_with("failure", false);
    let before = last(d.path());
    let out = apply(d.path());
    // It brought the boot here and is gone: a failure status reboots.
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        !d.path().join(RESULTS).join("probation-due").exists(),
        "{}",
        show(&out)
    );
    assert_eq!(last(d.path()), before, "the record is untouched");
    let err = said(&out);
    assert!(
        err.contains("probation-due without") && err.contains("no record changed"),
        "{err}"
    );
}

#[test]
fn a_marker_that_is_a_directory_is_reported_and_never_acted_on() {
    let d = root_with("failure", true);
    let due = d.path().join(RESULTS).join("probation-due");
    std::fs::remove_file(&due).expect("rm");
    std::fs::create_dir(&due).expect("dir");
    let before = last(d.path());
    for _ in 0..2 {
        let out = apply(d.path());
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let err = said(&out);
        assert!(
            err.contains("probation-due: not a regular file") && err.contains("rm -r"),
            "{err}"
        );
        assert_eq!(last(d.path()), before, "the record is untouched");
    }
}
