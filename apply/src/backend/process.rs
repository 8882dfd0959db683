//! Runs a backend's program: argv only, its own process group (a Ctrl-C on
//! the terminal must not cut a transaction), output and a progress
//! descriptor read line by line, within bounds whatever the program does:
//! lines are cut at LINE_MAX, at most CHANNEL lines wait for the consumer
//! (a program that floods blocks on its full pipe, our memory stays flat),
//! and a program silent for the stall timeout is killed.

use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The descriptor number the child finds its progress pipe on.
pub const PROGRESS_FD: i32 = 3;

/// Longest line handed on; the rest of a longer one is counted and dropped.
pub const LINE_MAX: usize = 8 * 1024;

/// Lines read but not yet consumed; past that the readers wait, and with
/// them the program, on its pipe. dpkg and maintainer scripts block on a
/// full pipe, they do not fail.
const CHANNEL: usize = 256;

/// How long to keep reading after the child exited: a daemon it started may
/// hold the pipes open forever.
const DRAIN: Duration = Duration::from_secs(2);

/// Between SIGTERM and SIGKILL for a stalled program's process group.
const KILL_GRACE: Duration = Duration::from_secs(10);

pub enum Line {
    Output(String),
    Progress(String),
}

/// Bounds on a backend program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Kill the program after this long without a line on either pipe;
    /// `None`: never.
    pub stall: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stall: Some(Duration::from_secs(3600)),
        }
    }
}

/// How the program ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    /// Killed after `.0` without output or progress.
    Stalled(Duration),
}

enum Msg {
    Line(Line),
    Eof,
    Exited(io::Result<ExitStatus>),
}

/// Splits a byte stream into lines of at most LINE_MAX bytes without ever
/// holding more than that: an over-long line keeps its head and says how
/// much was cut.
pub struct LineReader<R> {
    inner: BufReader<R>,
    line: Vec<u8>,
    cut: u64,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            line: Vec::with_capacity(256),
            cut: 0,
        }
    }

    fn take(&mut self) -> String {
        let mut s = String::from_utf8_lossy(&self.line).trim_end().to_string();
        if self.cut > 0 {
            s.push_str(&format!(" [… {} bytes cut]", self.cut));
        }
        self.line.clear();
        self.cut = 0;
        s
    }

    /// The next line, `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<String>> {
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok((!self.line.is_empty() || self.cut > 0).then(|| self.take()));
            }
            let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], Some(i)),
                None => (buf, None),
            };
            let room = LINE_MAX.saturating_sub(self.line.len());
            let keep = chunk.len().min(room);
            self.line.extend_from_slice(&chunk[..keep]);
            self.cut += (chunk.len() - keep) as u64;
            let used = newline.map_or(chunk.len(), |i| i + 1);
            self.inner.consume(used);
            if newline.is_some() {
                return Ok(Some(self.take()));
            }
        }
    }
}

fn reader(fd: OwnedFd, progress: bool, tx: mpsc::SyncSender<Msg>) {
    let mut r = LineReader::new(std::fs::File::from(fd));
    while let Ok(Some(s)) = r.next_line() {
        let l = if progress {
            Line::Progress(s)
        } else {
            Line::Output(s)
        };
        if tx.send(Msg::Line(l)).is_err() {
            return;
        }
    }
    let _ = tx.send(Msg::Eof);
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn signal_group(pgid: i32, sig: nix::sys::signal::Signal) {
    if let Err(e) = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), sig) {
        tracing::warn!("cannot send {sig} to process group {pgid}: {e}");
    }
}

/// Runs `cmd` (stdin /dev/null, stdout and stderr into one pipe, a progress
/// pipe on descriptor 3) and hands every line to `on_line`.
pub fn run(mut cmd: Command, limits: Limits, on_line: &mut dyn FnMut(Line)) -> io::Result<Ended> {
    let (out_r, out_w) = pipe()?;
    let (prog_r, prog_w) = pipe()?;
    let err_w = out_w.try_clone()?;
    let prog_raw = prog_w.as_raw_fd();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .process_group(0);
    // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if prog_raw == PROGRESS_FD {
                if libc::fcntl(prog_raw, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(prog_raw, PROGRESS_FD) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // The child leads its own process group (process_group(0)).
    let pgid = i32::try_from(child.id()).unwrap_or(0);
    // Our copies of the write ends must go, or the readers never see EOF.
    drop(cmd);
    drop(prog_w);

    let (tx, rx) = mpsc::sync_channel(CHANNEL);
    let t1 = {
        let tx = tx.clone();
        std::thread::spawn(move || reader(out_r, false, tx))
    };
    let t2 = {
        let tx = tx.clone();
        std::thread::spawn(move || reader(prog_r, true, tx))
    };
    std::thread::spawn(move || {
        let _ = tx.send(Msg::Exited(child.wait()));
    });

    let mut open = 2;
    let mut status = None;
    let mut drain_until: Option<Instant> = None;
    let mut last_heard = Instant::now();
    // Set once the group got SIGTERM for stalling: (when, how long it was silent).
    let mut stalled: Option<(Instant, Duration)> = None;
    let mut killed = false;
    while open > 0 || status.is_none() {
        let now = Instant::now();
        let mut wake = drain_until;
        if status.is_none() {
            let stall_at = match (stalled, limits.stall) {
                (Some((at, _)), _) if !killed => Some(at + KILL_GRACE),
                (None, Some(limit)) => Some(last_heard + limit),
                _ => None,
            };
            wake = match (wake, stall_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let msg = match wake {
            Some(w) => match rx.recv_timeout(w.saturating_duration_since(now)) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        match msg {
            Some(Msg::Line(l)) => {
                last_heard = Instant::now();
                on_line(l);
            }
            Some(Msg::Eof) => open -= 1,
            Some(Msg::Exited(s)) => {
                status = Some(s);
                drain_until = Some(Instant::now() + DRAIN);
            }
            None if status.is_some() => break,
            None => match (stalled, limits.stall) {
                (None, Some(limit)) if last_heard.elapsed() >= limit => {
                    tracing::error!(
                        "the backend wrote nothing for {}; killing its process group {pgid}",
                        human(limit)
                    );
                    signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
                    stalled = Some((Instant::now(), limit));
                }
                (Some((at, _)), _) if !killed && at.elapsed() >= KILL_GRACE => {
                    signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
                    killed = true;
                }
                _ => {}
            },
        }
    }
    if let Some((_, limit)) = stalled {
        // Whatever is left of the group goes with it.
        signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        if open == 0 {
            let _ = t1.join();
            let _ = t2.join();
        }
        return Ok(Ended::Stalled(limit));
    }
    if open == 0 {
        let _ = t1.join();
        let _ = t2.join();
    }
    status
        .unwrap_or_else(|| Err(io::Error::other("lost track of the child process")))
        .map(Ended::Exited)
}

/// 3600 s -> "60 min", 90 s -> "90 s".
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn lines_are_split_and_trimmed() {
        assert_eq!(lines(b"a\nb\r\n\nc"), vec!["a", "b", "", "c"]);
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn an_over_long_line_keeps_its_head_and_says_what_was_cut() {
        let mut input = vec![b'x'; LINE_MAX + 1000];
        input.extend_from_slice(b"\nnext\n");
        let l = lines(&input);
        assert_eq!(l.len(), 2);
        assert!(l[0].starts_with(&"x".repeat(LINE_MAX)), "{}", l[0].len());
        assert!(
            l[0].ends_with(" [… 1000 bytes cut]"),
            "{}",
            &l[0][LINE_MAX..]
        );
        assert_eq!(l[1], "next");
    }

    #[test]
    fn a_long_line_without_newline_at_the_end_is_cut_too() {
        let l = lines(&vec![b'y'; 3 * LINE_MAX]);
        assert_eq!(l.len(), 1);
        assert!(l[0].ends_with(&format!(" [… {} bytes cut]", 2 * LINE_MAX)));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(3600)), "60 min");
        assert_eq!(human(Duration::from_secs(90)), "90 s");
        assert_eq!(human(Duration::from_secs(2)), "2 s");
    }
}
