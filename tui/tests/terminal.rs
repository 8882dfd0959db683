//! The full-screen renderer in real terminals: tmux at 80x24, and a pty
//! that reports 0x0 and answers (or not) the cursor-position report. What
//! is checked is the screen a person would see, not the bytes.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::FakeTerminal;
use system_update_tui::Text;
use system_update_tui::{AfterAction, Event, Outcome, Output, Ui, UiMode, UiOptions};

fn play_until_half(ui: &Ui, title: &str) {
    ui.send(Event::Started {
        title: title.into(),
    });
    ui.send(Event::step(2, 3, Text::foreign("Installing hello 2.0")));
    ui.send(Event::message(Text::foreign(
        "Unpacking hello (2.0) over (1.0) ...",
    )));
    for i in 0..20 {
        ui.send(Event::Log {
            line: format!("log line {i}"),
        });
    }
    ui.send(Event::Progress { percent: 50.0 });
}

/// The full screen on an 80x24 terminal that answers the size probe,
/// drawn up to the update's half.
fn half_done(title: &str) -> (FakeTerminal, Ui) {
    let term = FakeTerminal::new((80, 24), Some((80, 24)));
    let ui = Ui::start(UiOptions {
        mode: UiMode::Fullscreen,
        output: Output::Devices(vec![term.slave_path.clone()]),
    });
    play_until_half(&ui, title);
    assert!(
        term.wait_for("50 %", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    (term, ui)
}

/// Writes `bytes` to the terminal as another program on it would (the
/// kernel, a driver).
fn scribble(term: &FakeTerminal, bytes: &[u8]) {
    use std::io::Write;
    let mut tty = std::fs::OpenOptions::new()
        .write(true)
        .open(&term.slave_path)
        .expect("open the pty");
    tty.write_all(bytes).expect("write");
}

fn finish_ok(ui: Ui) {
    ui.send(Event::Progress { percent: 100.0 });
    ui.send(Event::Finished {
        outcome: Outcome::Success,
        detail: None,
        log_path: Some(PathBuf::from("/var/log/system-update/x.log")),
    });
    ui.send(Event::Countdown {
        action: AfterAction::Reboot,
        remaining: Duration::from_secs(5),
    });
    ui.finish();
}

struct Tmux(String);

impl Tmux {
    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane once it shows every one of `texts` (a frame reaches the
    /// pane in pieces: one text alone may come before the rest), or as it
    /// is after 5 s.
    fn wait_for(&self, texts: &[&str]) -> String {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.capture();
            if texts.iter().all(|t| s.contains(t)) || Instant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn tmux_80x24_shows_progress_then_success() {
    let name = format!("su-tui-{}", std::process::id());
    let ok = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "80",
            "-y",
            "24",
            "sleep 300",
        ])
        .status()
        .expect("tmux is needed (tests/install-deps installs it)");
    assert!(ok.success(), "tmux new-session failed");
    let tmux = Tmux(name);
    let out = Command::new("tmux")
        .args(["display-message", "-p", "-t", &tmux.0, "#{pane_tty}"])
        .output()
        .expect("tmux display-message");
    let tty = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(tty.starts_with("/dev/pts"), "pane tty: {tty:?}");

    let ui = Ui::start(UiOptions {
        mode: UiMode::Fullscreen,
        output: Output::Devices(vec![tty]),
    });
    play_until_half(&ui, "Tmux test update");
    let s = tmux.wait_for(&["50 %", "log line 19", "Do not turn off the computer"]);
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[0].contains("System update: Tmux test update"), "{s}");
    assert!(s.contains("Step 2 of 3: Installing hello 2.0"), "{s}");
    assert!(s.contains("Unpacking hello (2.0) over (1.0) ..."), "{s}");
    assert!(s.contains("50 %"), "{s}");
    assert!(s.contains("log line 19"), "{s}");
    assert!(s.contains("Do not turn off the computer"), "{s}");
    // The whole 80 columns are used: the right border is in the last one.
    let border = lines.iter().find(|l| l.contains("Progress")).expect("box");
    assert_eq!(border.chars().count(), 80, "{s}");

    finish_ok(ui);
    let s = tmux.wait_for(&["UPDATE SUCCEEDED", "Restarting in 5 s."]);
    assert!(s.contains("UPDATE SUCCEEDED"), "{s}");
    assert!(s.contains("Full log: /var/log/system-update/x.log"), "{s}");
    assert!(s.contains("Restarting in 5 s."), "{s}");
    // After finish the final screen stays (no scrolling away of the title).
    assert!(
        s.lines().next().unwrap_or("").contains("Tmux test update"),
        "{s}"
    );
}

#[test]
fn pty_reporting_0x0_is_sized_by_the_cursor_position_report() {
    let term = FakeTerminal::new((100, 30), Some((100, 30)));
    let ui = Ui::start(UiOptions {
        mode: UiMode::Fullscreen,
        output: Output::Devices(vec![term.slave_path.clone()]),
    });
    play_until_half(&ui, "Serial update");
    assert!(
        term.wait_for("50 %", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    assert!(term.cpr_queries.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    let header = term.row(0);
    assert!(
        header.contains("System update: Serial update"),
        "{header:?}"
    );
    // The screen is 100 wide (the probe's answer, not 80): the header's host
    // name ends near column 100 and the boxes span 100 columns.
    let s = term.contents();
    let box_top = s
        .lines()
        .find(|l| l.contains("Progress"))
        .expect("progress box");
    assert_eq!(box_top.trim_end().chars().count(), 100, "{s}");
    // ... and 30 high: the footer is on row 28 (row 29 stays empty).
    assert!(term.row(28).contains("Do not turn off"), "{s}");
    finish_ok(ui);
    // The final screen arrives in more than one write: wait for its footer.
    assert!(term.wait_for("UPDATE SUCCEEDED", Duration::from_secs(5)));
    assert!(
        term.wait_for("The update is finished.", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    assert!(
        term.row(28).contains("The update is finished."),
        "{}",
        term.contents()
    );
}

#[test]
fn pty_that_never_answers_gets_80x24_in_bounded_time() {
    let term = FakeTerminal::new((80, 24), None);
    let t = Instant::now();
    let ui = Ui::start(UiOptions {
        mode: UiMode::Fullscreen,
        output: Output::Devices(vec![term.slave_path.clone()]),
    });
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "start must not wait"
    );
    play_until_half(&ui, "Silent serial");
    assert!(
        term.wait_for("50 %", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    assert!(
        term.row(22).contains("Do not turn off"),
        "{}",
        term.contents()
    );
    finish_ok(ui);
}

#[test]
fn plain_mode_on_a_pty_writes_no_escape_codes() {
    let term = FakeTerminal::new((80, 24), Some((80, 24)));
    let ui = Ui::start(UiOptions {
        mode: UiMode::Plain,
        output: Output::Devices(vec![term.slave_path.clone()]),
    });
    play_until_half(&ui, "Plain update");
    assert!(
        term.wait_for(" 50 %", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    finish_ok(ui);
    assert!(term.wait_for("Restarting in 5 s.", Duration::from_secs(5)));
    let s = term.contents();
    let raw = term.raw.lock().map(|r| r.clone()).unwrap_or_default();
    assert!(
        !raw.contains(&0x1b),
        "escape codes in plain output: {raw:?}"
    );
    assert!(s.contains("System update: Plain update"), "{s}");
    assert!(s.contains("[2/3] Installing hello 2.0"), "{s}");
    assert!(s.contains(" 50 %"), "{s}");
    assert!(s.contains("Update succeeded"), "{s}");
    assert_eq!(
        term.cpr_queries.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[test]
fn update_finishes_when_the_console_goes_away() {
    let mut term = FakeTerminal::new((80, 24), Some((80, 24)));
    let ui = Ui::start_with(
        UiOptions {
            mode: UiMode::Fullscreen,
            output: Output::Devices(vec![term.slave_path.clone()]),
        },
        system_update_tui::Tuning {
            finish_timeout: Duration::from_secs(2),
            ..Default::default()
        },
    );
    play_until_half(&ui, "Vanishing console");
    assert!(term.wait_for("50 %", Duration::from_secs(5)));
    // First nobody reads (the pty fills up and writes block), then the
    // terminal goes away altogether.
    term.stop_reading();
    let mut worst = Duration::ZERO;
    for i in 0..2000 {
        let t = Instant::now();
        ui.send(Event::Log {
            line: format!(
                "a rather long line of backend output number {i} {}",
                "x".repeat(60)
            ),
        });
        ui.send(Event::Progress {
            percent: 50.0 + i as f32 / 100.0,
        });
        worst = worst.max(t.elapsed());
        if i == 1000 {
            term.hang_up();
        }
    }
    assert!(worst < Duration::from_millis(50), "send took {worst:?}");
    let model = ui.model();
    assert_eq!(
        model.log.back().map(|l| l.contains("number 1999")),
        Some(true)
    );
    let t = Instant::now();
    ui.send(Event::Finished {
        outcome: Outcome::Success,
        detail: None,
        log_path: None,
    });
    ui.finish();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "finish took {:?}",
        t.elapsed()
    );
}

#[test]
fn final_screen_is_whole_after_others_scrolled_the_console() {
    let (term, ui) = half_done("Scrolled update");
    // What the kernel does on a console: a line at the bottom row, which
    // scrolls everything up under the renderer.
    scribble(&term, b"\x1b[24;1H[    8.123] powernow_k8: noise\r\n");
    assert!(term.wait_for("noise", Duration::from_secs(5)));
    finish_ok(ui);
    assert!(term.wait_for("UPDATE SUCCEEDED", Duration::from_secs(5)));
    let s = term.contents();
    assert!(
        term.row(0).contains("System update: Scrolled update"),
        "{s}"
    );
    assert!(!s.contains("noise"), "{s}");
    assert!(
        !s.contains("50 %"),
        "left over from the scrolled frame:\n{s}"
    );
    assert!(
        !s.contains("Unpacking"),
        "left over from the scrolled frame:\n{s}"
    );
}

/// A driver's message written across the progress (not scrolling it, as a
/// kernel line in mid-screen does) is painted over while the update runs,
/// though no cell under it changes.
#[test]
fn a_message_across_the_running_screen_is_painted_over() {
    let (term, ui) = half_done("Painted update");
    scribble(&term, b"\x1b[12;3H[   39.290751] TEST kernel message");
    assert!(term.wait_for("TEST kernel", Duration::from_secs(5)));
    // The whole repaint comes within its interval (5 s on this line).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while term.contents().contains("TEST kernel") {
        assert!(
            std::time::Instant::now() < deadline,
            "never painted over:\n{}",
            term.contents()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = term.contents();
    assert!(s.contains("50 %") && s.contains("Painted update"), "{s}");
    finish_ok(ui);
}

#[test]
fn a_key_on_a_terminal_with_a_keyboard_is_seen_on_the_final_screen() {
    let (term, ui) = half_done("Key test");
    // A key while the update runs is not a skip, now or later.
    term.type_keys(b"x");
    std::thread::sleep(Duration::from_millis(200));
    ui.send(Event::Progress { percent: 60.0 });
    assert!(
        term.wait_for("60 %", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    assert!(!ui.key_pressed());
    ui.send(Event::Finished {
        outcome: Outcome::Success,
        detail: None,
        log_path: None,
    });
    ui.send(Event::Countdown {
        action: AfterAction::Reboot,
        remaining: Duration::from_secs(9),
    });
    assert!(
        term.wait_for("Restarting in 9 s.", Duration::from_secs(5)),
        "{}",
        term.contents()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ui.key_pressed(), "the key typed during the update counted");
    term.type_keys(b" ");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ui.key_pressed() {
        assert!(Instant::now() < deadline, "the key was never seen");
        ui.send(Event::Countdown {
            action: AfterAction::Reboot,
            remaining: Duration::from_secs(8),
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    ui.finish();
}
