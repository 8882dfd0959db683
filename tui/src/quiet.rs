//! Keeping other writers off the system consoles while the full screen is
//! up. Kernel messages and systemd's status lines are written straight to
//! the console; a line at the bottom row scrolls the screen under the
//! renderer, which then draws its differences in the wrong places (seen on
//! ttyS0 in a real boot), and a driver's message lands across the progress
//! (seen on a VT). For the length of the update the kernel's console level
//! drops to alerts and emergencies only and systemd is asked to stop printing status
//! (SIGRTMIN+21, as plymouth does); both come back at the end: by the guard
//! when the UI ends, by `system-update restore-console` (the apply
//! service's ExecStopPost) from the state file when the process died.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const PRINTK: &str = "/proc/sys/kernel/printk";
/// Only KERN_EMERG and KERN_ALERT reach the console: a driver's error
/// (KERN_CRIT, as written to /dev/kmsg at `<2>`, or worse) goes to the
/// journal alone.
const QUIET_LEVEL: u32 = 2;
/// Where what to restore is kept (tmpfs, gone at the next boot).
pub const STATE_FILE: &str = "/run/system-update/console-quiet";
/// systemd 259's mute service: its socket, to say whether it is there.
const MUTE_CONSOLE_SOCKET: &str = "/run/systemd/io.systemd.MuteConsole";
/// A state file is two short lines; anything longer is not ours.
const STATE_MAX: u64 = 128;

/// What the quieting changed, hence what to put back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saved {
    /// The console log level before, when it was lowered.
    pub printk_level: Option<u32>,
    /// systemd's status output was turned off.
    pub systemd_status: bool,
}

impl Saved {
    fn to_text(self) -> String {
        let level = self.printk_level.map(|l| l.to_string());
        format!(
            "printk-level={}\nsystemd-status={}\n",
            level.as_deref().unwrap_or("unchanged"),
            if self.systemd_status {
                "off"
            } else {
                "unchanged"
            }
        )
    }

    /// The state file's text; a level outside 1..=15 or an unknown line
    /// is refused (the file is not ours, or damaged).
    pub fn parse(text: &str) -> Result<Saved, String> {
        let mut saved = Saved::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match line.trim().split_once('=') {
                Some(("printk-level", "unchanged")) => saved.printk_level = None,
                Some(("printk-level", v)) => match v.parse::<u32>() {
                    Ok(l) if (1..=15).contains(&l) => saved.printk_level = Some(l),
                    _ => return Err(format!("console level {v:?} is not 1 to 15")),
                },
                Some(("systemd-status", "off")) => saved.systemd_status = true,
                Some(("systemd-status", "unchanged")) => saved.systemd_status = false,
                _ => return Err(format!("unknown line {line:?}")),
            }
        }
        Ok(saved)
    }

    /// What a run that finds an earlier run's state restores: the earlier
    /// values (what was there before any quieting), else its own.
    fn merged(earlier: Option<Saved>, now: Saved) -> Saved {
        let Some(e) = earlier else { return now };
        Saved {
            printk_level: e.printk_level.or(now.printk_level),
            systemd_status: e.systemd_status || now.systemd_status,
        }
    }

    fn restore(self) {
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

/// Reads a state file: a regular file (never through a link), owned by
/// us, writable by nobody else, at most [`STATE_MAX`] bytes. None when
/// there is none.
pub fn read_state(path: &Path) -> std::io::Result<Option<Saved>> {
    let bad = |why: String| std::io::Error::other(format!("{}: {why}", path.display()));
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(format!("{e} (remove it)"))),
    };
    let md = f.metadata()?;
    if !md.is_file() || md.uid() != nix::unistd::geteuid().as_raw() || md.mode() & 0o022 != 0 {
        return Err(bad("not a file of ours (remove it)".into()));
    }
    let mut text = String::new();
    (&mut f).take(STATE_MAX + 1).read_to_string(&mut text)?;
    if text.len() as u64 > STATE_MAX {
        return Err(bad(format!("longer than {STATE_MAX} bytes (remove it)")));
    }
    Saved::parse(&text).map(Some).map_err(bad)
}

/// Writes the state file whole (a new file renamed over), mode 0600.
fn write_state(path: &Path, saved: Saved) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        match std::fs::DirBuilder::new().mode(0o755).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, saved.to_text().as_bytes())?;
    std::fs::rename(&tmp, path)
}

/// Restores what a run that died left in `path` and removes it (what the
/// apply service's ExecStopPost runs). Ok(None) when nothing was left.
pub fn restore_saved(path: &Path) -> std::io::Result<Option<Saved>> {
    let Some(saved) = read_state(path)? else {
        return Ok(None);
    };
    saved.restore();
    std::fs::remove_file(path)?;
    Ok(Some(saved))
}

/// Undoes what `engage` did when dropped.
pub struct ConsoleQuiet {
    saved: Saved,
    state: Option<PathBuf>,
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

fn lower_level() -> Option<u32> {
    match current_level() {
        Some(l) if l > QUIET_LEVEL => match set_level(QUIET_LEVEL) {
            Ok(()) => Some(l),
            Err(e) => {
                tracing::debug!("{PRINTK}: {e}; kernel messages stay on the console");
                None
            }
        },
        _ => None,
    }
}

impl ConsoleQuiet {
    /// Quiets the consoles; what cannot be changed is left as it is.
    pub fn engage() -> ConsoleQuiet {
        if Path::new(MUTE_CONSOLE_SOCKET).exists() {
            // Its varlink interface is new (259); the level and the signal
            // do the same on every systemd, this one included.
            tracing::info!(
                "systemd's MuteConsole is there; muting by console level and status signal"
            );
        }
        let state = Path::new(STATE_FILE);
        let earlier = read_state(state).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            None
        });
        let now = Saved {
            printk_level: lower_level(),
            systemd_status: systemd_booted() && std::process::id() != 1 && signal_pid1(21),
        };
        let saved = Saved::merged(earlier, now);
        let state = match write_state(state, saved) {
            Ok(()) => Some(state.to_path_buf()),
            Err(e) => {
                tracing::warn!("{STATE_FILE}: {e}; a crash would leave the console quiet");
                None
            }
        };
        ConsoleQuiet { saved, state }
    }
}

impl Drop for ConsoleQuiet {
    fn drop(&mut self) {
        self.saved.restore();
        if let Some(p) = &self.state {
            if let Err(e) = std::fs::remove_file(p) {
                tracing::debug!("{}: {e}", p.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_state_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sub/console-quiet");
        for saved in [
            Saved::default(),
            Saved {
                printk_level: Some(7),
                systemd_status: true,
            },
        ] {
            write_state(&p, saved).expect("write");
            assert_eq!(read_state(&p).expect("read"), Some(saved));
        }
        assert_eq!(read_state(&dir.path().join("none")).expect("read"), None);
    }

    #[test]
    fn a_bad_state_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("console-quiet");
        for text in [
            "printk-level=0\n",
            "printk-level=99\n",
            "rm -rf /\n",
            &"x".repeat(200),
        ] {
            std::fs::write(&p, text).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            let e = read_state(&p).expect_err(text);
            assert!(e.to_string().contains("console-quiet"), "{e}");
        }
        std::fs::write(&p, "printk-level=7\n").expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(read_state(&p).is_err(), "writable by others");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).expect("symlink");
        assert!(read_state(&link).is_err(), "followed a link");
    }

    #[test]
    fn restoring_a_saved_state_removes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("console-quiet");
        assert_eq!(restore_saved(&p).expect("nothing there"), None);
        // Nothing to put back, so the test changes nothing of the host.
        write_state(&p, Saved::default()).expect("write");
        assert_eq!(restore_saved(&p).expect("restore"), Some(Saved::default()));
        assert!(!p.exists(), "the state file stays after restoring");
    }

    #[test]
    fn an_earlier_runs_state_wins_over_the_quiet_values_now_in_force() {
        let earlier = Saved {
            printk_level: Some(7),
            systemd_status: true,
        };
        // The dead run left the level at 1: lowering finds nothing to do.
        let now = Saved {
            printk_level: None,
            systemd_status: true,
        };
        assert_eq!(Saved::merged(Some(earlier), now), earlier);
        assert_eq!(Saved::merged(None, now), now);
    }
}
