//! What a person reads on their own terminal when they run `apply --root`
//! there: a real update in a tmux pane, the pane read after the process
//! has exited.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{show, with_foo_v1, Scratch};

/// A tmux server of the test's own (its own socket, no configuration):
/// the command runs in its only pane, which stays after the command ends.
struct Pane {
    socket: String,
    rc: PathBuf,
}

impl Pane {
    /// Runs `argv` (our binary's arguments) in a 100x30 pane and waits
    /// until it has exited.
    fn run(s: &Scratch, name: &str, argv: &[&str]) -> Pane {
        let socket = format!("su-{name}-{}", std::process::id());
        let rc = s.dir.path().join(format!("{name}.rc"));
        let cmd = format!(
            "{} --root {} {}; echo $? > {}; exec sleep 600",
            common::BIN,
            s.root.display(),
            argv.join(" "),
            rc.display()
        );
        let ok = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "100", "-y", "30", &cmd])
            .env_remove("SYSTEM_UPDATE_LOG")
            .status()
            .expect("tmux is needed (tests/install-deps installs it)");
        assert!(ok.success(), "tmux new-session failed");
        let pane = Pane { socket, rc };
        pane.wait_for_exit();
        pane
    }

    fn wait_for_exit(&self) {
        let end = Instant::now() + Duration::from_secs(120);
        while !self.rc.exists() {
            assert!(Instant::now() < end, "no exit: {}", self.capture(true));
            std::thread::sleep(Duration::from_millis(100));
        }
        // The pane's output may trail the exit by a moment.
        std::thread::sleep(Duration::from_millis(300));
    }

    fn status(&self) -> String {
        std::fs::read_to_string(&self.rc)
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The screen as it is now, or with `history` everything that
    /// scrolled off too.
    fn capture(&self, history: bool) -> String {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket, "capture-pane", "-p", "-J"]);
        if history {
            c.args(["-S", "-"]);
        }
        let out = c.output().expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn triggered(postinst: Option<&str>) -> (Scratch, PathBuf) {
    let (s, v2) = with_foo_v1(postinst);
    let out = s.su(&["prepare", v2.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", show(&out));
    let out = s.su(&["trigger", "--no-reboot"]);
    assert!(out.status.success(), "{}", show(&out));
    (s, v2)
}

fn log_dir(s: &Scratch) -> PathBuf {
    s.path("/var/log/system-update")
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_outcome_of_a_full_screen_update_stays_on_the_terminal() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, _) = triggered(Some("exit 1"));
    let pane = Pane::run(&s, "full", &["apply", "--ui", "fullscreen", "--no-reboot"]);
    assert_eq!(pane.status(), "1", "{}", pane.capture(true));
    let screen = pane.capture(false);
    assert!(screen.contains("UPDATE FAILED"), "{screen}");
    assert!(screen.contains("foo"), "why it failed: {screen}");
    let log = log_dir(&s);
    assert!(
        screen.contains(&format!("Full log: {}", log.display())),
        "where the log is: {screen}"
    );
}

/// The step lines as they appear, in order (the text after "[i/n] ").
fn steps(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let at = l.find('[')?;
            let rest = &l[at..];
            let close = rest.find("] ")?;
            let inner = &rest[1..close];
            let (i, n) = inner.split_once('/')?;
            (i.parse::<u32>().is_ok() && n.parse::<u32>().is_ok()).then(|| rest.to_string())
        })
        .collect()
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn plain_lines_on_a_terminal_say_each_step_once_in_order() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, _) = triggered(None);
    let pane = Pane::run(&s, "plain", &["apply", "--ui", "plain", "--no-reboot"]);
    let text = pane.capture(true);
    assert_eq!(pane.status(), "0", "{text}");
    let seen = steps(&text);
    assert!(seen.len() >= 2, "too few steps: {text}");
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(seen.len(), unique.len(), "a step twice:\n{text}");
    let index = |l: &String| {
        l[1..]
            .split_once('/')
            .and_then(|(i, _)| i.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let order: Vec<u32> = seen.iter().map(index).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "steps out of order:\n{text}");
    assert!(!text.contains("INFO"), "log lines on the terminal:\n{text}");
    // dpkg's backend says what it installs before its first step (when a
    // later message has not replaced it before a frame showed it).
    if let Some(said) = text.find("Installing 1 package(s) with dpkg") {
        let first = text.find("[1/").unwrap_or(0);
        assert!(said < first, "message after the steps:\n{text}");
    }
    assert!(Path::new(&log_dir(&s)).is_dir());
}

/// `auto` and the other commands answer on stdout; without a journal
/// their info lines went to the same terminal and said it twice (`auto`'s
/// answer, then " INFO" with the same words).
#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_command_on_a_terminal_answers_once() {
    if !common::root_or_skip("dpkg reads the scratch root's database") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let out = s.su(&["prepare", v2.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", show(&out));
    let config = "window = [\"Sat,Sun 02:00-05:00\"]\nauto-prepare = \"none\"\n";
    std::fs::write(s.path("/etc/system-update.toml"), config).unwrap();
    // A Monday noon: outside the window.
    let pane = Pane::run(&s, "auto", &["auto", "--now", "2026-12-07T12:00:00Z"]);
    let text = pane.capture(true);
    assert_eq!(pane.status(), "0", "{text}");
    assert_eq!(
        text.matches("outside the maintenance windows").count(),
        1,
        "the answer once:\n{text}"
    );
    assert!(!text.contains("INFO"), "log lines on the terminal:\n{text}");
}
