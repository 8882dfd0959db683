//! Taking a terminal over and giving it back, whatever happens.
//!
//! A [`TermGuard`] saves the terminal's modes, turns echo off (key presses
//! would otherwise be drawn over the screen), hides the cursor and clears
//! the screen; `restore` (or drop, also while unwinding from a panic) puts
//! everything back. Each guard also registers its fd and restore bytes in a
//! fixed table that a signal handler can use without allocating or locking,
//! so SIGTERM/SIGINT/SIGHUP leave a usable terminal too.

use std::cell::UnsafeCell;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;

use anyhow::Context;
use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::blank;
use crate::caps::{write_all_fd, Caps};

pub struct TermGuard {
    fd: OwnedFd,
    saved: Option<termios::Termios>,
    restore_bytes: Vec<u8>,
    slot: Option<usize>,
    restored: bool,
}

impl TermGuard {
    /// Takes over the terminal on `fd` (a duplicate is kept, so the guard
    /// works whoever owns the original). `rows` is where the cursor is left
    /// at the end, below the last screen, which stays visible.
    pub fn take(
        fd: BorrowedFd<'_>,
        caps: &Caps,
        alternate_screen: bool,
        rows: u16,
    ) -> anyhow::Result<TermGuard> {
        let fd = fd.try_clone_to_owned().context("terminal")?;
        let saved = termios::tcgetattr(&fd).ok();
        if let Some(saved) = &saved {
            let mut t = saved.clone();
            // Echo off so typing does not scribble on the screen; signals
            // (Ctrl-C in the demo) and output processing stay as they are.
            t.local_flags.remove(LocalFlags::ECHO | LocalFlags::ICANON);
            if let Err(e) = termios::tcsetattr(&fd, SetArg::TCSANOW, &t) {
                tracing::debug!("tcsetattr: {e}");
            }
        }
        let mut setup = Vec::new();
        let mut restore = Vec::new();
        if alternate_screen {
            setup.extend_from_slice(b"\x1b[?1049h");
        }
        // Reset attributes, no autowrap (the bottom-right cell must not
        // scroll a vt100-like terminal), hide the cursor, clear.
        setup.extend_from_slice(b"\x1b[0m\x1b[?7l\x1b[?25l\x1b[H\x1b[2J");
        if caps.linux_vt {
            setup.extend_from_slice(&blank::disable_sequence());
            restore.extend_from_slice(&blank::restore_sequence());
        }
        restore.extend_from_slice(b"\x1b[0m\x1b[?7h\x1b[?25h");
        if alternate_screen {
            restore.extend_from_slice(b"\x1b[?1049l");
        } else {
            // Leave the last screen in place, the cursor on its empty last
            // row: later console output starts there.
            restore.extend_from_slice(format!("\x1b[{};1H", rows.max(1)).as_bytes());
        }
        let slot = register(fd.as_raw_fd(), saved.as_ref(), &restore);
        let guard = TermGuard {
            fd,
            saved,
            restore_bytes: restore,
            slot,
            restored: false,
        };
        write_all_fd(
            // SAFETY-free: borrow of our own OwnedFd.
            std::os::fd::AsFd::as_fd(&guard.fd),
            &setup,
        )
        .map_err(std::io::Error::from)
        .context("terminal")?;
        Ok(guard)
    }

    /// Gives the terminal back. Idempotent; errors (a terminal that went
    /// away) are ignored: there is nothing left to restore then.
    pub fn restore(&mut self) {
        if self.restored {
            return;
        }
        self.restored = true;
        if let Some(slot) = self.slot.take() {
            unregister(slot);
        }
        let fd = std::os::fd::AsFd::as_fd(&self.fd);
        let _ = write_all_fd(fd, &self.restore_bytes);
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(fd, SetArg::TCSADRAIN, saved);
        }
    }
}

impl Drop for TermGuard {
    fn drop(&mut self) {
        self.restore();
    }
}

// The signal-safe table. A slot is FREE, being WRITTEN, or READY; the
// handler only reads READY slots, and a slot is freed before its fd closes.
const SLOTS: usize = 16;
const FREE: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;
const MAX_BYTES: usize = 96;

struct Slot {
    state: AtomicU8,
    fd: AtomicI32,
    has_termios: AtomicU8,
    len: AtomicUsize,
    termios: UnsafeCell<std::mem::MaybeUninit<libc::termios>>,
    bytes: UnsafeCell<[u8; MAX_BYTES]>,
}

// SAFETY: the UnsafeCells are written only by the thread that moved the
// slot from FREE to WRITING, and read only once it is READY.
unsafe impl Sync for Slot {}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    state: AtomicU8::new(FREE),
    fd: AtomicI32::new(-1),
    has_termios: AtomicU8::new(0),
    len: AtomicUsize::new(0),
    termios: UnsafeCell::new(std::mem::MaybeUninit::uninit()),
    bytes: UnsafeCell::new([0; MAX_BYTES]),
};
static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];

fn register(fd: RawFd, saved: Option<&termios::Termios>, bytes: &[u8]) -> Option<usize> {
    install_hooks();
    if bytes.len() > MAX_BYTES {
        return None;
    }
    for (i, slot) in TABLE.iter().enumerate() {
        if slot
            .state
            .compare_exchange(FREE, WRITING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: we own the slot in state WRITING.
            unsafe {
                let b = &mut *slot.bytes.get();
                b[..bytes.len()].copy_from_slice(bytes);
                if let Some(t) = saved {
                    let raw: libc::termios = t.clone().into();
                    (*slot.termios.get()).write(raw);
                }
            }
            slot.has_termios
                .store(u8::from(saved.is_some()), Ordering::Relaxed);
            slot.len.store(bytes.len(), Ordering::Relaxed);
            slot.fd.store(fd, Ordering::Relaxed);
            slot.state.store(READY, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// Frees the slot `register` gave us. Only READY -> FREE: while a
/// handler holds the slot (WRITING, restoring it), we wait for it to put
/// it back, so when this returns no handler is using the fd, which the
/// caller may then close, and no handler can later mark a freed (or
/// reused) slot READY again.
fn unregister(i: usize) {
    if let Some(slot) = TABLE.get(i) {
        free_slot(slot);
    }
}

fn free_slot(slot: &Slot) {
    loop {
        match slot
            .state
            .compare_exchange(READY, FREE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => break,
            // A handler on another thread is restoring it: a write and a
            // tcsetattr, then READY again. (On this thread it would have
            // finished before we resumed.)
            Err(WRITING) => std::hint::spin_loop(),
            // Not ours to free (never READY through us): leave it.
            Err(_) => return,
        }
    }
    slot.fd.store(-1, Ordering::Relaxed);
}

/// Restores every registered terminal. Only async-signal-safe calls
/// (write, tcsetattr); used from the signal handler and the panic hook.
fn restore_all_raw() {
    for slot in TABLE.iter() {
        restore_slot(slot);
    }
}

/// Restores one slot if it is READY, holding it (WRITING) meanwhile.
fn restore_slot(slot: &Slot) {
    if slot
        .state
        .compare_exchange(READY, WRITING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let fd = slot.fd.load(Ordering::Relaxed);
    let len = slot.len.load(Ordering::Relaxed).min(MAX_BYTES);
    // SAFETY: the slot is ours (WRITING) and was filled before READY; the
    // fd stays open while registered: free_slot waits for WRITING to end
    // and the owner closes the fd only after that.
    unsafe {
        let b = &*slot.bytes.get();
        libc::write(fd, b.as_ptr().cast(), len);
        if slot.has_termios.load(Ordering::Relaxed) == 1 {
            libc::tcsetattr(fd, libc::TCSANOW, (*slot.termios.get()).as_ptr());
        }
    }
    slot.state.store(READY, Ordering::Release);
}

/// Restores every terminal the UI holds, e.g. from the caller's own signal
/// handling before it exits. Safe to call from a signal handler.
pub fn restore_terminals() {
    restore_all_raw();
}

const SIGNALS: [libc::c_int; 4] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT];

extern "C" fn on_signal(sig: libc::c_int) {
    // Act only while we are still the installed handler: if the program
    // installed its own later and chains to us, it handles the signal (and
    // will finish the UI); dying here would defeat it.
    // SAFETY: sigaction and raise are async-signal-safe.
    unsafe {
        let mut cur: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut cur) != 0 {
            return;
        }
        if cur.sa_sigaction != on_signal as *const () as libc::sighandler_t {
            return;
        }
        restore_all_raw();
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
        libc::raise(sig);
    }
}

fn install_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in SIGNALS {
            // Only where nobody handles the signal: a program with its own
            // handler (or one that ignores it) keeps it.
            // SAFETY: plain sigaction calls with zeroed, then filled structs.
            unsafe {
                let mut cur: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut cur) != 0
                    || cur.sa_sigaction != libc::SIG_DFL
                {
                    continue;
                }
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic in the main thread usually ends the program: give the
            // terminals back before the message is printed. A panic in a
            // UI thread is handled by that thread's guard while unwinding.
            if std::thread::current().name() == Some("main") {
                restore_all_raw();
            }
            prev(info);
        }));
    });
}

/// Takes a raw fd we do not own as borrowed, for tests and callers with
/// raw descriptors. Returns None for negative numbers.
#[allow(dead_code)]
pub(crate) fn owned_dup(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: dup returns a new descriptor that we then own.
    let n = unsafe { libc::dup(fd) };
    if n < 0 {
        None
    } else {
        // SAFETY: n is a fresh descriptor owned by nobody else.
        Some(unsafe { OwnedFd::from_raw_fd(n) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    /// A handler restoring the slot on another thread while its owner
    /// frees it: once free_slot returns the slot is FREE and stays so (no
    /// restore in flight marks it READY again, which would have a later
    /// signal write to a closed or reused fd). Bounded: 20000 rounds or two
    /// seconds.
    #[test]
    fn freeing_a_slot_never_races_a_restore() {
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("/dev/null");
        let slot = EMPTY;
        // SAFETY: nobody else sees this slot yet.
        unsafe { (*slot.bytes.get())[0] = b'x' };
        slot.len.store(1, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(2);
        for round in 0..20_000 {
            if Instant::now() > deadline {
                break;
            }
            slot.fd.store(null.as_raw_fd(), Ordering::Relaxed);
            slot.state.store(READY, Ordering::Release);
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        restore_slot(&slot);
                    }
                });
                for _ in 0..(round % 64) * 16 {
                    std::hint::spin_loop();
                }
                free_slot(&slot);
                stop.store(true, Ordering::Relaxed);
            });
            assert_eq!(
                slot.state.load(Ordering::Acquire),
                FREE,
                "round {round}: a restore marked a freed slot READY again"
            );
        }
    }
}
