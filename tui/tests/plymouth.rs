//! Plymouth, for real: Debian's plymouthd runs outside a boot if given a
//! terminal (`--tty=` a pty) and `--debug`, which makes it log every request
//! it gets on that terminal. We check that our messages and progress reach
//! it, in the right order and rate-limited, and that the console UI takes
//! over when plymouthd dies mid-update.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::FakeTerminal;
use system_update_tui::Text;
use system_update_tui::{Event, Outcome, Output, Tuning, Ui, UiMode, UiOptions};

fn ping() -> bool {
    Command::new("plymouth")
        .arg("--ping")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn without_plymouth_the_console_ui_is_used() {
    // The documented fallback: plymouth mode asked, no plymouth answers
    // (here: no such program) -> the full-screen UI on the consoles.
    let term = FakeTerminal::new((80, 24), Some((80, 24)));
    let ui = Ui::start_with(
        UiOptions {
            mode: UiMode::Plymouth,
            output: Output::Devices(vec![term.slave_path.clone()]),
        },
        Tuning {
            plymouth: "/nonexistent/plymouth".into(),
            ..Default::default()
        },
    );
    ui.send(Event::Started {
        title: "No plymouth".into(),
    });
    ui.send(Event::Progress { percent: 20.0 });
    assert!(
        term.wait_for("System update: No plymouth", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    ui.finish();
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn real_plymouthd_gets_messages_and_progress_then_dies() {
    if !common::root_or_skip("plymouthd opens the terminal and its socket") {
        return;
    }
    if Command::new("plymouthd").arg("--help").output().is_err() {
        panic!("plymouthd is not installed: tests/install-deps installs plymouth");
    }
    // Another plymouthd (a real boot splash) owns the one socket; we must
    // not talk to it, and a pass here would claim what was not tested.
    assert!(
        !ping(),
        "a plymouthd is already running on this machine: stop it (plymouth quit) to run this test"
    );
    let ply_tty = FakeTerminal::new((200, 50), None);
    let console = FakeTerminal::new((80, 24), Some((80, 24)));
    let child = Command::new("plymouthd")
        .arg("--no-daemon")
        .arg("--debug")
        .arg(format!("--tty={}", ply_tty.slave_path.display()))
        .arg("--kernel-command-line=splash plymouth.debug")
        .arg("--no-boot-log")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn plymouthd");
    let mut daemon = Daemon(child);
    let end = Instant::now() + Duration::from_secs(5);
    while !ping() {
        assert!(
            Instant::now() < end,
            "plymouthd did not start outside a boot here; the real-boot test \
             (tests/vm) covers plymouth"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // As plymouth-start.service does at boot (else messages are dropped
    // "as no splash").
    let shown = Command::new("plymouth").arg("show-splash").status();
    assert!(shown.is_ok_and(|s| s.success()), "plymouth show-splash");

    let ui = Ui::start(UiOptions {
        mode: UiMode::Plymouth,
        output: Output::Devices(vec![console.slave_path.clone()]),
    });
    ui.send(Event::Started {
        title: "Plymouth test".into(),
    });
    ui.send(Event::step(1, 2, Text::foreign("Installing hello 2.0")));
    // A fast update: 200 progress events in about a second.
    for i in 0..200 {
        ui.send(Event::Progress {
            percent: i as f32 / 4.0,
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    let log = || {
        let raw = ply_tty.raw.lock().map(|r| r.clone()).unwrap_or_default();
        String::from_utf8_lossy(&raw).into_owned()
    };
    let wait = |what: &str| {
        let end = Instant::now() + Duration::from_secs(8);
        while Instant::now() < end {
            if log().contains(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    assert!(wait("setting system update to '4"), "{}", log());
    let l = log();
    let msg = l
        .find("displaying message Plymouth test: Installing hello 2.0 (1/2)")
        .expect("our message reached plymouthd");
    let mode = l.find("updating mode to 'updates'").expect("mode change");
    assert!(msg < mode, "the first message must precede the mode change");
    assert!(l.contains("setting system update to '0'"), "{l}");
    // Rate limit: one round (message, mode/progress) every 2 s at most.
    let calls = l.matches("connection is from pid").count();
    assert!(calls <= 12, "{calls} plymouth calls for 200 events:\n{l}");
    // Plymouth owns the consoles: nothing was drawn on ours.
    assert_eq!(console.bytes.load(Ordering::SeqCst), 0);

    // plymouthd goes away mid-update: the console UI takes over.
    let _ = daemon.0.kill();
    let _ = daemon.0.wait();
    ui.send(Event::Progress { percent: 75.0 });
    ui.send(Event::message(Text::foreign("after plymouth")));
    assert!(
        console.wait_for("System update: Plymouth test", Duration::from_secs(10)),
        "no console fallback:\n{}",
        console.contents()
    );
    assert!(console.wait_for("75 %", Duration::from_secs(5)));
    ui.send(Event::Finished {
        outcome: Outcome::Success,
        detail: None,
        log_path: None,
    });
    ui.finish();
    assert!(console.wait_for("UPDATE SUCCEEDED", Duration::from_secs(5)));
}
