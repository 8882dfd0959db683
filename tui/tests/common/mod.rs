//! A pseudo-terminal whose master side plays the terminal: it turns what
//! the UI writes into a screen (vt100) and can answer the cursor-position
//! report with a chosen size, like a real serial terminal would.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
#[allow(unused_imports)]
pub use system_update_test_support::root_or_skip;

pub struct FakeTerminal {
    pub slave_path: PathBuf,
    /// Held so the pty stays up while the UI reopens it by path.
    pub slave: Option<OwnedFd>,
    pub screen: Arc<Mutex<vt100::Parser>>,
    pub bytes: Arc<AtomicU64>,
    /// Everything written, escape codes included.
    pub raw: Arc<Mutex<Vec<u8>>>,
    pub cpr_queries: Arc<AtomicU64>,
    pub stop: Arc<AtomicBool>,
    master: Option<Arc<File>>,
    reader: Option<JoinHandle<()>>,
}

impl FakeTerminal {
    /// A pty that reports 0x0 (as a serial console does) and, if
    /// `answer` is Some((cols, rows)), answers `ESC [ 6 n` with it.
    pub fn new(screen_size: (u16, u16), answer: Option<(u16, u16)>) -> FakeTerminal {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave_path = nix::unistd::ttyname(&pty.slave).expect("ttyname");
        let master = Arc::new(File::from(pty.master));
        let rows = NonZeroU16::new(screen_size.1).expect("rows");
        let cols = NonZeroU16::new(screen_size.0).expect("cols");
        let screen = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let bytes = Arc::new(AtomicU64::new(0));
        let cpr = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let rw = Arc::clone(&raw);
        let (m, s, b, q, st) = (
            Arc::clone(&master),
            Arc::clone(&screen),
            Arc::clone(&bytes),
            Arc::clone(&cpr),
            Arc::clone(&stop),
        );
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut tail: Vec<u8> = Vec::new();
            loop {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                // Poll so that a stop request is seen within 50 ms.
                let mut fds = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&*m),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u16)) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return,
                }
                let n = match (&*m).read(&mut buf) {
                    Ok(0) | Err(_) => return, // EIO: every slave closed
                    Ok(n) => n,
                };
                b.fetch_add(n as u64, Ordering::Relaxed);
                if let Ok(mut r) = rw.lock() {
                    // Bounded: the benchmark writes for a minute.
                    if r.len() < 1 << 20 {
                        r.extend_from_slice(&buf[..n]);
                    }
                }
                if let Ok(mut p) = s.lock() {
                    p.process(&buf[..n]);
                }
                tail.extend_from_slice(&buf[..n]);
                while let Some(i) = tail.windows(4).position(|w| w == b"\x1b[6n") {
                    q.fetch_add(1, Ordering::SeqCst);
                    if let Some((c, r)) = answer {
                        let _ = (&*m).write_all(format!("\x1b[{r};{c}R").as_bytes());
                    }
                    tail.drain(..i + 4);
                }
                let keep = tail.len().saturating_sub(3);
                tail.drain(..keep);
            }
        });
        FakeTerminal {
            slave_path,
            slave: Some(pty.slave),
            screen,
            bytes,
            raw,
            cpr_queries: cpr,
            stop,
            master: Some(master),
            reader: Some(reader),
        }
    }

    pub fn contents(&self) -> String {
        self.screen
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    pub fn row(&self, r: u16) -> String {
        self.screen
            .lock()
            .ok()
            .and_then(|p| {
                let w = p.screen().size().1.get();
                p.screen().rows(0, w).nth(usize::from(r))
            })
            .unwrap_or_default()
    }

    /// Waits until the screen contains `text`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.contents().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The terminal goes away: the reader stops and the master side is
    /// closed, a hangup for the slave (writes fail with EIO).
    pub fn hang_up(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.master.take();
        self.slave.take();
    }

    /// Types `keys` on the terminal's keyboard (the master side).
    pub fn type_keys(&self, keys: &[u8]) {
        if let Some(m) = &self.master {
            let _ = (&**m).write_all(keys);
        }
    }

    /// Stops reading the master: the pty's buffer fills and writes to the
    /// slave block, as on a serial line held by flow control.
    pub fn stop_reading(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for FakeTerminal {
    fn drop(&mut self) {
        self.slave.take();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}
