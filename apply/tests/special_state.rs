//! State files that are not what we write (a FIFO, a link to /dev/zero)
//! are refused by the one bounded reader: every command that reads them
//! ends at once, neither hanging on the FIFO nor reading the device.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{show, BIN};

/// How long a command may take before it counts as hung.
const HUNG: Duration = Duration::from_secs(20);

/// Runs system-update on `root` and kills it if it has not ended within
/// HUNG. Its address space is capped, so a program that reads a device to
/// its end dies of it quickly instead of filling the machine's memory.
fn run_bounded(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("SYSTEM_UPDATE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &cap);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn system-update");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > HUNG {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("system-update {args:?} hung: {}", show(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// The two special files each state file is tried with.
const SPECIALS: [&str; 2] = ["fifo", "zero"];

fn plant(path: &Path, kind: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let _ = std::fs::remove_file(path);
    match kind {
        "fifo" => nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo"),
        _ => std::os::unix::fs::symlink("/dev/zero", path).expect("link"),
    }
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_special_last_result_is_refused() {
    for kind in SPECIALS {
        let d = tempfile::tempdir().expect("tempdir");
        let last = d.path().join("var/lib/system-update-results/last.json");
        plant(&last, kind);
        let out = run_bounded(d.path(), &["results"]);
        let text = said(&out);
        assert!(!out.status.success(), "{kind}: {}", show(&out));
        assert!(
            text.contains("last.json") && text.contains("not a regular file"),
            "{kind}: {}",
            show(&out)
        );
    }
}

const RECORD: &str = r#"{"format":2,"id":"u1","title":"t","backend":"dpkg","outcome":"success","stop_requested":false,"packages":[],"started":"2026-01-01T00:00:00Z","finished":null,"attempts":1,"error":null,"log":"/var/log/system-update/u1.log"}"#;

#[test]
fn a_special_log_is_refused() {
    for kind in SPECIALS {
        let d = tempfile::tempdir().expect("tempdir");
        let rec = d
            .path()
            .join("var/lib/system-update-results/history/u1.json");
        std::fs::create_dir_all(rec.parent().expect("parent")).expect("mkdir");
        std::fs::write(&rec, RECORD).expect("record");
        plant(&d.path().join("var/log/system-update/u1.log"), kind);
        let out = run_bounded(d.path(), &["log", "u1"]);
        assert!(!out.status.success(), "{kind}: {}", show(&out));
        assert!(
            said(&out).contains("u1.log") && said(&out).contains("not a regular file"),
            "{kind}: {}",
            show(&out)
        );
    }
}

#[test]
fn special_history_records_are_skipped() {
    for kind in SPECIALS {
        let d = tempfile::tempdir().expect("tempdir");
        let dir = d.path().join("var/lib/system-update-results/history");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("u1.json"), RECORD).expect("record");
        plant(&dir.join("u2.json"), kind);
        let out = run_bounded(d.path(), &["history"]);
        assert!(out.status.success(), "{kind}: {}", show(&out));
        assert!(said(&out).contains("u1"), "{kind}: {}", show(&out));
    }
}

#[test]
fn special_attempt_counter_and_local_state_end_status_at_once() {
    for name in ["attempts.json", "local.json"] {
        for kind in SPECIALS {
            let d = tempfile::tempdir().expect("tempdir");
            plant(&d.path().join("var/lib/system-update").join(name), kind);
            let out = run_bounded(d.path(), &["status"]);
            assert!(out.status.success(), "{name} {kind}: {}", show(&out));
        }
    }
}
