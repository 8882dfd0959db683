//! Runs a backend's program: argv only, its own process group (a Ctrl-C on
//! the terminal must not cut a transaction), output and a progress
//! descriptor read line by line.

use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The descriptor number the child finds its progress pipe on.
pub const PROGRESS_FD: i32 = 3;

/// How long to keep reading after the child exited: a daemon it started may
/// hold the pipes open forever.
const DRAIN: Duration = Duration::from_secs(2);

pub enum Line {
    Output(String),
    Progress(String),
}

enum Msg {
    Line(Line),
    Eof,
    Exited(io::Result<ExitStatus>),
}

fn reader(fd: OwnedFd, progress: bool, tx: mpsc::Sender<Msg>) {
    let mut r = BufReader::new(std::fs::File::from(fd));
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let s = String::from_utf8_lossy(&buf).trim_end().to_string();
                let l = if progress {
                    Line::Progress(s)
                } else {
                    Line::Output(s)
                };
                if tx.send(Msg::Line(l)).is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx.send(Msg::Eof);
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Runs `cmd` (stdin /dev/null, stdout and stderr into one pipe, a progress
/// pipe on descriptor 3) and hands every line to `on_line`.
pub fn run(mut cmd: Command, on_line: &mut dyn FnMut(Line)) -> io::Result<ExitStatus> {
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
    // Our copies of the write ends must go, or the readers never see EOF.
    drop(cmd);
    drop(prog_w);

    let (tx, rx) = mpsc::channel();
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
    let mut deadline: Option<Instant> = None;
    while open > 0 || status.is_none() {
        let msg = match deadline {
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(m) => m,
                Err(_) => break,
            },
            None => match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            },
        };
        match msg {
            Msg::Line(l) => on_line(l),
            Msg::Eof => open -= 1,
            Msg::Exited(s) => {
                status = Some(s);
                deadline = Some(Instant::now() + DRAIN);
            }
        }
    }
    if open == 0 {
        let _ = t1.join();
        let _ = t2.join();
    }
    status.unwrap_or_else(|| Err(io::Error::other("lost track of the child process")))
}
