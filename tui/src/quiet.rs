//! Keeping other writers off the system consoles while the full screen is
//! up. Kernel messages and systemd's status lines are written straight to
//! the console; a line at the bottom row scrolls the screen under the
//! renderer, which then draws its differences in the wrong places (seen on
//! ttyS0 in a real boot). For the length of the update the kernel's console
//! level drops to what `quiet` gives (errors and worse) and systemd is asked
//! to stop printing status (SIGRTMIN+21, as plymouth does); both come back
//! at the end.

use std::path::Path;

const PRINTK: &str = "/proc/sys/kernel/printk";
/// What the kernel's `quiet` sets: only KERN_ERR and more severe.
const QUIET_LEVEL: u32 = 4;

/// Undoes what `engage` did when dropped.
pub struct ConsoleQuiet {
    printk_level: Option<u32>,
    systemd_status: bool,
}

/// Whether systemd is PID 1 (sd_booted()'s test).
fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn current_level() -> Option<u32> {
    std::fs::read_to_string(PRINTK)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn set_level(level: u32) -> std::io::Result<()> {
    // Writing one number sets the console level and leaves the rest.
    std::fs::write(PRINTK, format!("{level}\n"))
}

fn signal_pid1(offset: i32) -> bool {
    let sig = libc::SIGRTMIN() + offset;
    // SAFETY: kill() with a valid signal number has no memory effects.
    unsafe { libc::kill(1, sig) == 0 }
}

impl ConsoleQuiet {
    /// Quiets the consoles; what cannot be changed is left as it is.
    pub fn engage() -> ConsoleQuiet {
        let printk_level = match current_level() {
            Some(l) if l > QUIET_LEVEL => match set_level(QUIET_LEVEL) {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::debug!("{PRINTK}: {e}; kernel messages stay on the console");
                    None
                }
            },
            _ => None,
        };
        let systemd_status = systemd_booted() && std::process::id() != 1 && signal_pid1(21);
        ConsoleQuiet {
            printk_level,
            systemd_status,
        }
    }
}

impl Drop for ConsoleQuiet {
    fn drop(&mut self) {
        if let Some(l) = self.printk_level {
            if let Err(e) = set_level(l) {
                tracing::warn!("{PRINTK}: restoring console level {l}: {e}");
            }
        }
        // The shutdown that follows the update shows its progress again.
        if self.systemd_status && !signal_pid1(20) {
            tracing::warn!("could not turn systemd's status output back on");
        }
    }
}
