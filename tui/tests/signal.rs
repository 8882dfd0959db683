//! A SIGTERM in the middle of an update leaves a usable terminal: echo and
//! canonical mode back on, cursor shown, autowrap back. The child is this
//! test binary run again with an environment variable.

mod common;

use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use common::FakeTerminal;
use nix::sys::termios::{tcgetattr, LocalFlags};
use system_update_tui::{Event, Output, Ui, UiMode, UiOptions};

const CHILD: &str = "SU_TUI_SIGNAL_CHILD_TTY";

#[test]
fn sigterm_restores_the_terminal() {
    if let Ok(tty) = std::env::var(CHILD) {
        // The child: draw on the pty, then wait to be killed.
        let ui = Ui::start(UiOptions {
            mode: UiMode::Fullscreen,
            output: Output::Devices(vec![tty.into()]),
        });
        ui.send(Event::Started {
            title: "Signal test".into(),
        });
        ui.send(Event::Progress { percent: 33.0 });
        std::thread::sleep(Duration::from_secs(30));
        ui.finish();
        return;
    }
    let term = FakeTerminal::new((80, 24), Some((80, 24)));
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "sigterm_restores_the_terminal", "--nocapture"])
        .env(CHILD, &term.slave_path)
        .spawn()
        .expect("spawn child");
    let drawn = term.wait_for("33 %", Duration::from_secs(10));
    let slave = term.slave.as_ref().expect("slave").as_fd();
    let during = tcgetattr(slave).expect("tcgetattr");
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait child");
    assert!(drawn, "child never drew:\n{}", term.contents());
    assert!(
        !during.local_flags.contains(LocalFlags::ECHO),
        "echo off while drawing"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGTERM), "died of the signal");
    std::thread::sleep(Duration::from_millis(200));
    let after = tcgetattr(slave).expect("tcgetattr");
    assert!(after
        .local_flags
        .contains(LocalFlags::ECHO | LocalFlags::ICANON));
    let raw = term.raw.lock().map(|r| r.clone()).unwrap_or_default();
    let tail = String::from_utf8_lossy(&raw[raw.len().saturating_sub(64)..]).into_owned();
    assert!(
        tail.contains("\x1b[?25h") && tail.contains("\x1b[?7h"),
        "{tail:?}"
    );
    assert!(term.contents().contains("System update: Signal test"));
}
