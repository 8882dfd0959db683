//! The operator's command line as admins meet it: flags, where the UI draws,
//! what reaches a redirected log. Needs root (dpkg into scratch roots).

mod common;

use common::{show, with_foo_v1};

#[test]
fn trigger_poweroff_without_rebooting_now() {
    let (s, v2) = with_foo_v1(None);
    let out = s.su(&["prepare", &v2.display().to_string()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = s.su(&["trigger", "--poweroff", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(s.link_exists());
    let out = s.su(&["status", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains("\"poweroff\""),
        "the after-action is recorded: {status}"
    );
    // --reboot and --poweroff still exclude each other.
    let out = s.su(&["trigger", "--reboot", "--poweroff", "--no-reboot"]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
}

#[test]
fn apply_on_another_root_draws_on_the_invoking_output() {
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    // No --ui: the configured default (auto). With --root the UI belongs on
    // this command's own output, a pipe here, so plain lines; on / it would
    // take the machine's consoles.
    let out = s.su(&["apply", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("System update: ") && stdout.contains("Update succeeded"),
        "the progress is on stdout: {}",
        show(&out)
    );
    assert_eq!(s.version("foo").as_deref(), Some("2"));
}

#[test]
fn logs_redirected_to_a_file_carry_no_escapes() {
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    let out = s.su(&["apply", "--ui", "none", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    // This machine has no journal socket, so the logs went to stderr (a
    // pipe): they must be there, and without colour.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("update success"), "{}", show(&out));
    assert!(
        !stderr.contains('\x1b'),
        "escapes in a redirected log: {stderr:?}"
    );
}

#[test]
fn trigger_with_nothing_prepared_is_not_a_verification_failure() {
    let (s, _) = with_foo_v1(None);
    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no update is prepared") && stderr.contains("system-update prepare"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!s.link_exists());
}
