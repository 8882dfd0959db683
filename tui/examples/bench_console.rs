//! Benchmark (not a test): what the UI costs while an update emits an event
//! every 10 ms. The consoles are ptys whose master side we read: one with
//! a size (a VT-like console), one that reports 0x0 and never answers the
//! cursor-position report (a serial console under qemu), and two such
//! serial consoles whose termios says 9600 and 115200 baud (the UI sets
//! each one's byte budget from it). Prints the bytes written to each
//! console (whole run and steady state, the first 5 s left out), how long
//! after the end each one had its final screen, and the process's CPU time
//! (getrusage) against wall time.
//!
//! `cargo run --release -p system-update-tui --example bench_console [SECONDS]`

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use system_update_tui::Text;
use system_update_tui::{Event, Outcome, Output, Ui, UiMode, UiOptions};

struct Console {
    name: &'static str,
    path: std::path::PathBuf,
    bytes: Arc<AtomicU64>,
    /// When the final screen's banner went through.
    final_at: Arc<std::sync::Mutex<Option<Instant>>>,
    _slave: std::os::fd::OwnedFd,
}

fn console(
    name: &'static str,
    size: Option<(u16, u16)>,
    speed: Option<nix::sys::termios::BaudRate>,
    stop: Arc<AtomicBool>,
) -> Console {
    let ws = size.map(|(c, r)| nix::pty::Winsize {
        ws_row: r,
        ws_col: c,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty = match nix::pty::openpty(ws.as_ref(), None) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("openpty: {e}");
            std::process::exit(1);
        }
    };
    let path = match nix::unistd::ttyname(&pty.slave) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ttyname: {e}");
            std::process::exit(1);
        }
    };
    if let Some(rate) = speed {
        use nix::sys::termios;
        let set = termios::tcgetattr(&pty.slave).and_then(|mut t| {
            termios::cfsetospeed(&mut t, rate)?;
            termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &t)
        });
        if let Err(e) = set {
            eprintln!("setting the line speed: {e}");
            std::process::exit(1);
        }
    }
    let bytes = Arc::new(AtomicU64::new(0));
    let b = Arc::clone(&bytes);
    let final_at = Arc::new(std::sync::Mutex::new(None));
    let fa = Arc::clone(&final_at);
    let mut master = File::from(pty.master);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut tail: Vec<u8> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(_) => return,
            }
            match master.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    b.fetch_add(n as u64, Ordering::Relaxed);
                    tail.extend_from_slice(&buf[..n]);
                    if tail.windows(9).any(|w| w == b"SUCCEEDED") {
                        if let Ok(mut f) = fa.lock() {
                            f.get_or_insert_with(Instant::now);
                        }
                    }
                    let keep = tail.len().saturating_sub(16);
                    tail.drain(..keep);
                }
            }
        }
    });
    Console {
        name,
        path,
        bytes,
        final_at,
        _slave: pty.slave,
    }
}

fn cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let t = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
    };
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let stop = Arc::new(AtomicBool::new(false));
    use nix::sys::termios::BaudRate;
    let consoles = [
        console("vt-like 100x30", Some((100, 30)), None, Arc::clone(&stop)),
        console("serial 0x0, silent", None, None, Arc::clone(&stop)),
        console(
            "serial 9600 baud",
            None,
            Some(BaudRate::B9600),
            Arc::clone(&stop),
        ),
        console(
            "serial 115200 baud",
            None,
            Some(BaudRate::B115200),
            Arc::clone(&stop),
        ),
    ];
    let ui = Ui::start(UiOptions {
        mode: UiMode::Fullscreen,
        output: Output::Devices(consoles.iter().map(|c| c.path.clone()).collect()),
    });
    let ticks = secs * 100;
    let t0 = Instant::now();
    let cpu0 = cpu();
    let warmup = Duration::from_secs(5.min(secs / 2));
    let mut steady: Option<(Instant, Duration, Vec<u64>)> = None;
    let mut events = 0u64;
    ui.send(Event::Started {
        title: "Benchmark update".into(),
    });
    for k in 0..ticks {
        if k % 500 == 0 {
            ui.send(Event::step(
                (k / 500 + 1) as u32,
                (ticks / 500 + 1) as u32,
                Text::foreign(format!("Installing package-{} 2.0", k / 500)),
            ));
            events += 1;
        }
        let ev = match k % 10 {
            0 => Event::message(Text::foreign(format!(
                "Unpacking package-{} ({k}) ...",
                k / 500
            ))),
            1 | 5 => Event::Progress {
                percent: k as f32 * 100.0 / ticks as f32,
            },
            _ => Event::Log {
                line: format!(
                    "Preparing to unpack .../package-{}_2.0_amd64.deb ({k}) ...",
                    k / 500
                ),
            },
        };
        ui.send(ev);
        events += 1;
        if steady.is_none() && t0.elapsed() >= warmup {
            let b = consoles
                .iter()
                .map(|c| c.bytes.load(Ordering::Relaxed))
                .collect();
            steady = Some((Instant::now(), cpu(), b));
        }
        // Every 10 ms, on a schedule that does not drift.
        let next = t0 + Duration::from_millis(10 * (k + 1));
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let wall = t0.elapsed();
    let cpu_all = cpu().saturating_sub(cpu0);
    let end_bytes: Vec<u64> = consoles
        .iter()
        .map(|c| c.bytes.load(Ordering::Relaxed))
        .collect();
    let (ts, cs, bs) = steady.unwrap_or((t0, cpu0, vec![0; consoles.len()]));
    let steady_wall = ts.elapsed();
    let steady_cpu = cpu().saturating_sub(cs);
    let threads = thread_cpu();
    let finished = Instant::now();
    ui.send(Event::Finished {
        outcome: Outcome::Success,
        detail: None,
        log_path: None,
    });
    ui.finish();
    // The readers may still be draining what was written.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);

    println!(
        "{events} events in {:.1} s ({:.0} events/s)",
        wall.as_secs_f64(),
        events as f64 / wall.as_secs_f64()
    );
    for (i, c) in consoles.iter().enumerate() {
        println!(
            "{:<20} {:>8} bytes, {:>6.0} B/s overall, {:>6.0} B/s steady state (after {} s)",
            c.name,
            end_bytes[i],
            end_bytes[i] as f64 / wall.as_secs_f64(),
            (end_bytes[i] - bs[i]) as f64 / steady_wall.as_secs_f64(),
            warmup.as_secs()
        );
        match c.final_at.lock().ok().and_then(|f| *f) {
            Some(t) => println!(
                "{:<20} final screen {:.2} s after the end",
                "",
                t.saturating_duration_since(finished).as_secs_f64()
            ),
            None => println!("{:<20} final screen NOT seen", ""),
        }
    }
    println!(
        "CPU (whole process: event source, UI, pty readers): {:.3} s of {:.1} s = {:.2} % of one core overall, {:.2} % steady state",
        cpu_all.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * cpu_all.as_secs_f64() / wall.as_secs_f64(),
        100.0 * steady_cpu.as_secs_f64() / steady_wall.as_secs_f64()
    );
    for (name, t) in threads {
        println!(
            "  thread {name:<16} {:.2} s = {:.2} % of one core",
            t.as_secs_f64(),
            100.0 * t.as_secs_f64() / wall.as_secs_f64()
        );
    }
}

/// CPU time of each thread (from /proc, in clock ticks of 10 ms).
fn thread_cpu() -> Vec<(String, Duration)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ... utime is field 14, stime 15 (1-based).
        let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[a + 1..b].to_string();
        let f: Vec<&str> = stat[b + 2..].split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        out.push((comm, Duration::from_millis(ticks * 10)));
    }
    out
}
