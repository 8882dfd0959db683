//! What reaches a terminal from records, manifests and file names goes
//! through the one cleaner: no escape sequence, no control character and
//! no bidirectional control (U+202E makes "gpl\u{202e}txt.exe" read as
//! "gplexe.txt").

mod common;

use std::path::Path;
use std::process::Output;

use common::show;

/// Escapes and controls that must never reach a terminal, and the visible
/// text around them.
const HOSTILE: &str = "ok\u{1b}]0;HACKED\u{7}\u{202e}gpl\u{2066}txt\u{200f}.exe\u{1b}[2J";

fn su(root: &Path, args: &[&str]) -> Output {
    common::su_at(root, args)
}

fn assert_clean(out: &Output, what: &str) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
            })
            .collect();
        assert!(bad.is_empty(), "{what}: {name} has {bad:?}: {}", show(out));
    }
}

fn record() -> String {
    let title = serde_json::to_string(HOSTILE).expect("json");
    format!(
        r#"{{"format":2,"id":"u1","title":{title},"backend":"dpkg","outcome":"failure","stop_requested":false,"packages":[{{"name":{title},"before":"1","after":"2"}}],"started":"2026-01-01T00:00:00Z","finished":null,"attempts":1,"error":{title},"log":null}}"#
    )
}

#[test]
fn records_reach_the_terminal_cleaned() {
    let d = tempfile::tempdir().expect("tempdir");
    let results = d.path().join("var/lib/system-update-results");
    std::fs::create_dir_all(results.join("history")).expect("mkdir");
    std::fs::write(results.join("last.json"), record()).expect("last");
    std::fs::write(results.join("history/u1.json"), record()).expect("history");
    for args in [&["results"][..], &["history"], &["status"]] {
        let out = su(d.path(), args);
        assert!(out.status.success(), "{args:?}: {}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("okgpltxt.exe"),
            "{args:?}: {}",
            show(&out)
        );
        assert_clean(&out, &format!("{args:?}"));
    }
}

#[test]
fn a_probation_id_with_escapes_never_reaches_status() {
    let d = tempfile::tempdir().expect("tempdir");
    let results = d.path().join("var/lib/system-update-results");
    std::fs::create_dir_all(&results).expect("mkdir");
    let id = serde_json::to_string(HOSTILE).expect("json");
    std::fs::write(
        results.join("probation.json"),
        format!(r#"{{"id":{id},"can_roll_back":true,"boots":0,"limit":2,"since":"x"}}"#),
    )
    .expect("state");
    let out = su(d.path(), &["status"]);
    assert_clean(&out, "status");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("okgpl"),
        "an invalid id is not shown: {}",
        show(&out)
    );
}

#[test]
fn a_payload_name_in_an_error_is_cleaned() {
    let d = tempfile::tempdir().expect("tempdir");
    let payload = d.path().join(format!("{HOSTILE}.deb"));
    std::fs::write(&payload, b"not a package").expect("payload");
    let root = d.path().join("root");
    // A dpkg database, so that the payload is what is refused.
    std::fs::create_dir_all(root.join("var/lib/dpkg")).expect("root");
    std::fs::write(root.join("var/lib/dpkg/status"), b"").expect("status");
    let out = su(&root, &["prepare", payload.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gpltxt.exe"),
        "{}",
        show(&out)
    );
    assert_clean(&out, "prepare");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_title_at_prepare_and_trigger_is_cleaned() {
    if !common::root_or_skip("dpkg chroots") {
        return;
    }
    let (s, v2) = common::with_foo_v1(None);
    let v2 = v2.display().to_string();
    let out = s.su(&["prepare", "--title", HOSTILE, &v2]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("okgpltxt.exe"),
        "{}",
        show(&out)
    );
    assert_clean(&out, "prepare");
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_clean(&out, "trigger");
}
