//! The operator's command line as admins meet it: flags, where the UI draws,
//! what reaches a redirected log. Needs root (dpkg into scratch roots).

mod common;

use common::{show, with_foo_v1};

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn trigger_poweroff_without_rebooting_now() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
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

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn apply_on_another_root_draws_on_the_invoking_output() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
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

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn logs_redirected_to_a_file_carry_no_escapes() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
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

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn trigger_with_nothing_prepared_is_not_a_verification_failure() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
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

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn history_keeps_the_newest_records_and_log_shows_each_update() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, v2) = with_foo_v1(Some("printf 'secret \\033]0;HACKED\\007done\\n'"));
    let out = s.su(&["history"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No update has been applied yet"));

    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert!(out.status.success(), "{}", show(&out));
    let first = s.results()["id"].as_str().unwrap().to_string();
    // The maintainer script's title escape is in the log file, not on the
    // terminal that reads it.
    let raw =
        std::fs::read_to_string(s.path(&format!("/var/log/system-update/{first}.log"))).unwrap();
    assert!(raw.contains("\x1b]0;HACKED"), "{raw:?}");
    let out = s.su(&["log", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret: Vec<&str> = l["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .filter(|x| x.contains("secret"))
        .collect();
    assert_eq!(secret.len(), 1, "{l}");
    assert!(
        secret[0].contains("done") && !secret[0].contains('\x1b') && !secret[0].contains('\x07'),
        "{secret:?}"
    );

    // A second update (foo 3), with the history cut to one record.
    std::fs::write(s.path("/etc/system-update.toml"), "keep-results = 1\n").unwrap();
    let v3 = common::Deb::new("foo", "3")
        .file("/opt/foo/version", "3\n")
        .build(&s.debs);
    s.prepare_again_and_trigger(&[&v3]);
    // Two records until an apply prunes: both listed, newest first.
    let out = s.su(&["apply", "--ui", "none", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    let second = s.results()["id"].as_str().unwrap().to_string();
    assert_ne!(first, second);

    let out = s.su(&["history", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<_> = h["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![second.clone()], "keep-results = 1: {h}");

    // The newest update's log by default, any kept one by id; escapes out.
    let out = s.su(&["log"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&second) && text.contains("success"), "{text}");
    let out = s.su(&["log", &first]);
    assert_eq!(out.status.code(), Some(1), "pruned: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("system-update history lists them"),
        "{}",
        show(&out)
    );
    let out = s.su(&["log", &second, "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l["id"], second.as_str());
    let lines: Vec<&str> = l["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(lines.iter().any(|x| x.contains("foo")), "{l}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn status_lists_every_planned_change() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let bar = common::Deb::new("bar", "1.5").build(&s.debs);
    s.prepare_and_trigger(&[&v2, &bar]);
    let out = s.su(&["status"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("  foo 1 -> 2\n"), "{text}");
    assert!(text.contains("  bar (not installed) -> 1.5\n"), "{text}");
    let out = s.su(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let changes = &st["prepared"]["changes"];
    assert_eq!(changes[0]["name"], "foo", "{st}");
    assert_eq!(changes[0]["before"], "1");
    assert_eq!(changes[0]["after"], "2");
    assert_eq!(changes[1]["before"], serde_json::Value::Null);
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_error_is_printed_once() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, _) = with_foo_v1(None);
    let results = s.path("/var/lib/system-update-results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(results.join("last.json"), "{ not json").unwrap();
    let out = s.su(&["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("last.json"), "{stderr}");
    // serde's message, once.
    let serde_msg = "key must be a string";
    assert_eq!(stderr.matches(serde_msg).count(), 1, "{stderr}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn permission_denied_says_to_run_as_root() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(common::BIN)
        .arg("--root")
        .arg(&s.root)
        .args(["prepare", &v2.display().to_string()])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Permission denied") && stderr.trim_end().ends_with("(run as root)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_successful_update_leaves_nothing_prepared() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert!(out.status.success(), "{}", show(&out));
    assert!(!s.update_dir().exists(), "the applied payload is gone");
    let out = s.su(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Prepared: nothing (system-update results shows the last update)"),
        "{text}"
    );
    // The next update needs no --force, and keep-update keeps its files.
    std::fs::write(s.path("/etc/system-update.toml"), "keep-update = true\n").unwrap();
    let v3 = common::Deb::new("foo", "3").build(&s.debs);
    s.prepare_and_trigger(&[&v3]);
    let out = s.apply();
    assert!(out.status.success(), "{}", show(&out));
    assert!(s.update_dir().join("foo_3_all.deb").is_file());
    assert!(s.update_dir().join("manifest.toml").is_file());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_missing_file_is_no_such_file() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, _) = with_foo_v1(None);
    let out = s.su(&["prepare", "/nonexistent/hello_2.0_all.deb"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("/nonexistent/hello_2.0_all.deb: no such file"),
        "{e}"
    );
    let dir = s.dir.path().join("a-directory.deb");
    std::fs::create_dir(&dir).unwrap();
    let out = s.su(&["prepare", dir.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("a-directory.deb: not a regular file"), "{e}");
}

/// The script `system-update completions SHELL` prints, in a file.
fn completion_script(dir: &std::path::Path, shell: &str) -> std::path::PathBuf {
    let out = std::process::Command::new(common::BIN)
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let path = dir.join(format!("system-update.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// What bash's completion offers for the command line `words`, the last
/// one being completed, with the function the script registers.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(script).unwrap();
    let function = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("complete -F "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the script registers a completion function");
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source \"$0\"; COMP_WORDS=({words}); COMP_CWORD={cword}; \
         {function} system-update '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        cur = words[cword],
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &program])
        .arg(script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_a_subcommands_flags_and_values() {
    if !common::tool_or_skip("bash", "bash") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = completion_script(dir.path(), "bash");
    let offered = bash_completes(&script, &["system-update", "status", "--"]);
    assert!(offered.iter().any(|w| w == "--json"), "{offered:?}");
    let offered = bash_completes(&script, &["system-update", "apply", "--ui", ""]);
    assert!(offered.iter().any(|w| w == "plain"), "{offered:?}");
    let offered = bash_completes(&script, &["system-update", "st"]);
    assert_eq!(offered, ["status"]);
}

#[test]
fn zsh_and_fish_scripts_parse() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["zsh", "fish"] {
        if !common::tool_or_skip(shell, shell) {
            continue;
        }
        let script = completion_script(dir.path(), shell);
        let out = std::process::Command::new(shell)
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell} -n: {}", show(&out));
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn records_unreadable_to_the_user_are_not_said_to_be_absent() {
    if !common::root_or_skip("dpkg chroots into the scratch root, files of root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    assert!(s.apply().status.success());
    // The scratch tree is readable on the way; the records are root's 0600.
    for dir in [s.dir.path(), s.root.as_path()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for cmd in ["history", "log", "results", "status"] {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(common::BIN)
            .arg("--root")
            .arg(&s.root)
            .arg(cmd)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0), "{cmd}: {}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Permission denied") && stderr.contains("(run as root)"),
            "{cmd}: {stderr}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("No update"),
            "{cmd}: {}",
            show(&out)
        );
    }
}
