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
pub fn run(cmd: Command, limits: Limits, on_line: &mut dyn FnMut(Line)) -> io::Result<Ended> {
    let (rx, readers, pgid) = start(cmd)?;
    let mut w = Watch::new(limits, pgid);
    while w.open > 0 || w.status.is_none() {
        match w.next(&rx) {
            Next::Heard(Msg::Line(l)) => {
                w.last_heard = Instant::now();
                on_line(l);
            }
            Next::Heard(Msg::Eof) => w.open -= 1,
            Next::Heard(Msg::Exited(s)) => {
                w.status = Some(s);
                w.drain_until = Some(Instant::now() + DRAIN);
            }
            Next::Silence if w.status.is_some() => break,
            Next::Silence => w.on_silence(),
            Next::Gone => break,
        }
    }
    w.end(readers)
}

/// Spawns `cmd` leading a process group of its own, its output and progress
/// read by two threads and its exit waited for by a third, all into one
/// channel; returns the channel, the readers and the group.
fn start(
    mut cmd: Command,
) -> io::Result<(mpsc::Receiver<Msg>, [std::thread::JoinHandle<()>; 2], i32)> {
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
    let read = |fd: OwnedFd, progress: bool| {
        let tx = tx.clone();
        std::thread::spawn(move || reader(fd, progress, tx))
    };
    let readers = [read(out_r, false), read(prog_r, true)];
    std::thread::spawn(move || {
        let _ = tx.send(Msg::Exited(child.wait()));
    });
    Ok((rx, readers, pgid))
}

enum Next {
    Heard(Msg),
    /// Nothing came before the next deadline.
    Silence,
    /// Every sender is gone.
    Gone,
}

/// What `run` knows of its child: open streams, the exit status once it
/// came, and the stall watch.
struct Watch {
    limits: Limits,
    pgid: i32,
    open: u32,
    status: Option<io::Result<ExitStatus>>,
    drain_until: Option<Instant>,
    last_heard: Instant,
    /// Set once the group got SIGTERM for stalling: (when, how long it was
    /// silent).
    stalled: Option<(Instant, Duration)>,
    killed: bool,
}

impl Watch {
    fn new(limits: Limits, pgid: i32) -> Watch {
        Watch {
            limits,
            pgid,
            open: 2,
            status: None,
            drain_until: None,
            last_heard: Instant::now(),
            stalled: None,
            killed: false,
        }
    }

    /// When to stop waiting for the next message: the end of the drain
    /// after the exit, or the next step of the stall watch.
    fn wake(&self) -> Option<Instant> {
        let mut wake = self.drain_until;
        if self.status.is_none() {
            let stall_at = match (self.stalled, self.limits.stall) {
                (Some((at, _)), _) if !self.killed => Some(at + KILL_GRACE),
                (None, Some(limit)) => Some(self.last_heard + limit),
                _ => None,
            };
            wake = match (wake, stall_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        wake
    }

    fn next(&self, rx: &mpsc::Receiver<Msg>) -> Next {
        match self.wake() {
            Some(w) => match rx.recv_timeout(w.saturating_duration_since(Instant::now())) {
                Ok(m) => Next::Heard(m),
                Err(mpsc::RecvTimeoutError::Timeout) => Next::Silence,
                Err(mpsc::RecvTimeoutError::Disconnected) => Next::Gone,
            },
            None => rx.recv().map_or(Next::Gone, Next::Heard),
        }
    }

    /// A silent child: SIGTERM to its group at the stall limit, SIGKILL a
    /// grace period later.
    fn on_silence(&mut self) {
        match (self.stalled, self.limits.stall) {
            (None, Some(limit)) if self.last_heard.elapsed() >= limit => {
                tracing::error!(
                    "the backend wrote nothing for {}; killing its process group {}",
                    human(limit),
                    self.pgid
                );
                signal_group(self.pgid, nix::sys::signal::Signal::SIGTERM);
                self.stalled = Some((Instant::now(), limit));
            }
            (Some((at, _)), _) if !self.killed && at.elapsed() >= KILL_GRACE => {
                signal_group(self.pgid, nix::sys::signal::Signal::SIGKILL);
                self.killed = true;
            }
            _ => {}
        }
    }

    fn end(self, readers: [std::thread::JoinHandle<()>; 2]) -> io::Result<Ended> {
        if self.stalled.is_some() {
            // Whatever is left of the group goes with it.
            signal_group(self.pgid, nix::sys::signal::Signal::SIGKILL);
        }
        if self.open == 0 {
            for r in readers {
                let _ = r.join();
            }
        }
        if let Some((_, limit)) = self.stalled {
            return Ok(Ended::Stalled(limit));
        }
        self.status
            .unwrap_or_else(|| Err(io::Error::other("lost track of the child process")))
            .map(Ended::Exited)
    }
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
