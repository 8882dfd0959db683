use super::*;
use crate::caps;
use renderers::own_terminal_renderer;
use std::fs::File;
use std::os::fd::AsFd;

/// Records the step each frame showed; at most a frame per 300 ms, as
/// plymouth's renderer at most one per 2 s.
struct Recorder(Arc<Mutex<Vec<Option<String>>>>);

impl Renderer for Recorder {
    fn render(&mut self, model: &Model, _now: Instant) -> anyhow::Result<u64> {
        lock(&self.0).push(model.step.as_ref().map(|s| s.name.english.clone()));
        Ok(0)
    }
    fn tick(&self, _model: &Model) -> Option<Duration> {
        None
    }
    fn restore(&mut self) {}
    fn min_interval(&self) -> Duration {
        Duration::from_millis(300)
    }
}

#[test]
fn when_the_rate_limit_reopens_the_latest_step_is_shown_without_a_new_event() {
    let shared = Shared::new(
        UiOptions {
            mode: UiMode::None,
            output: Output::Stdout,
        },
        Tuning::default(),
    );
    let frames = Arc::new(Mutex::new(Vec::new()));
    let f = Arc::clone(&frames);
    spawn(
        &shared,
        "recorder".into(),
        Box::new(move || Ok(Box::new(Recorder(f)) as Box<dyn Renderer>)),
        None,
    );
    shared.send(Event::Started { title: "t".into() });
    std::thread::sleep(Duration::from_millis(50));
    // Three phases inside one rate-limit window, then silence.
    for (i, name) in ["Unpacking a", "Unpacking b", "Configuring b"]
        .iter()
        .enumerate()
    {
        shared.send(Event::step(
            i as u32 + 1,
            3,
            crate::event::Text::foreign(*name),
        ));
    }
    // No event follows: the renderer must come back by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = lock(&frames).clone();
        if seen.last().cloned().flatten().as_deref() == Some("Configuring b") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the latest step never shown: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.finish();
}

#[test]
fn the_budget_follows_the_line_speed() {
    assert_eq!(budget_for_speed(Some(9600)), 480.0);
    assert_eq!(budget_for_speed(Some(115_200)), 5760.0);
    assert_eq!(budget_for_speed(Some(38400)), 1920.0);
    // A slow line gets the floor, a very slow one all of itself.
    assert_eq!(budget_for_speed(Some(4800)), 240.0);
    assert_eq!(budget_for_speed(Some(1200)), 120.0);
    assert_eq!(budget_for_speed(None), CONSOLE_BUDGET);
    assert_eq!(budget_for_speed(Some(0)), CONSOLE_BUDGET);
}

#[test]
fn a_ptys_speed_is_read_from_termios() {
    use nix::sys::termios::{self, BaudRate, SetArg};
    let pty = nix::pty::openpty(None, None).expect("openpty");
    for (rate, bps) in [(BaudRate::B9600, 9600), (BaudRate::B115200, 115_200)] {
        let mut t = termios::tcgetattr(&pty.slave).expect("tcgetattr");
        termios::cfsetospeed(&mut t, rate).expect("cfsetospeed");
        termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
        assert_eq!(caps::line_speed(pty.slave.as_fd()), Some(bps));
    }
}

#[test]
fn the_own_terminal_gets_its_line_speeds_budget() {
    use nix::sys::termios::{self, BaudRate, SetArg};
    // Sized, so no cursor-position probe waits for an answer.
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let mut t = termios::tcgetattr(&pty.slave).expect("tcgetattr");
    termios::cfsetospeed(&mut t, BaudRate::B9600).expect("cfsetospeed");
    termios::tcsetattr(&pty.slave, SetArg::TCSANOW, &t).expect("tcsetattr");
    let file = File::from(pty.slave);
    let r = own_terminal_renderer(
        file,
        "xterm",
        UiMode::Fullscreen,
        "host".into(),
        crate::fullscreen::Branding::default(),
    )
    .expect("a full screen on the pty");
    // 9600 bit/s carry 960 B/s, half of it for the screen.
    assert!(r.budget() <= 960.0, "budget {} B/s", r.budget());
    assert_eq!(r.budget(), budget_for_speed(Some(9600)));
}

struct Panicky;

impl Renderer for Panicky {
    fn render(&mut self, model: &Model, _now: Instant) -> anyhow::Result<u64> {
        if model.version > 1 {
            panic!("renderer bug (expected by the test)");
        }
        Ok(0)
    }
    fn tick(&self, _model: &Model) -> Option<Duration> {
        None
    }
    fn restore(&mut self) {}
}

#[test]
fn a_panicking_renderer_does_not_take_the_update_down() {
    let shared = Shared::new(
        UiOptions {
            mode: UiMode::None,
            output: Output::Stdout,
        },
        Tuning::default(),
    );
    let fell_back = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&fell_back);
    spawn(
        &shared,
        "panicky".into(),
        Box::new(|| Ok(Box::new(Panicky) as Box<dyn Renderer>)),
        Some(Box::new(move |_| f.store(true, Ordering::SeqCst))),
    );
    for i in 0..50 {
        shared.send(Event::Progress { percent: i as f32 });
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    shared.finish();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(shared.model().percent, 49.0);
    assert!(fell_back.load(Ordering::SeqCst), "the failure was noticed");
}
