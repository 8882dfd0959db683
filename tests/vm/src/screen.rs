//! Pictures of the guest's VGA screen as a person at the kiosk sees it:
//! qemu's `screendump` through its monitor socket every half second while
//! a boot runs, PNG copies kept in the logs, and what OCR (tesseract)
//! reads from them.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{err, io_err, Result};

/// Time between two screendumps.
pub const SHOT_EVERY: Duration = Duration::from_millis(500);
/// Shots of one boot at most (a boot that hangs stops filling the disk).
const MAX_SHOTS: usize = 600;
/// How long qemu may take to open its monitor socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Takes a screendump every [`SHOT_EVERY`] into `dir/PREFIX.shot-NNN.ppm`
/// until qemu closes its monitor (the boot ended).
pub fn start_shooting(monitor: PathBuf, dir: PathBuf, prefix: String) -> JoinHandle<()> {
    thread::spawn(move || {
        if let Err(e) = shoot(&monitor, &dir, &prefix) {
            eprintln!("vm: screendumps of {prefix}: {e}");
        }
    })
}

fn connect(monitor: &Path) -> Result<UnixStream> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match UnixStream::connect(monitor) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(io_err(monitor.display(), e)),
        }
    }
}

fn shoot(monitor: &Path, dir: &Path, prefix: &str) -> Result<()> {
    let mut sock = connect(monitor)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| io_err(monitor.display(), e))?;
    let mut buf = [0u8; 4096];
    for k in 0..MAX_SHOTS {
        let path = dir.join(format!("{prefix}.shot-{k:03}.ppm"));
        if writeln!(sock, "screendump {}", path.display()).is_err() {
            return Ok(());
        }
        // The monitor echoes the command and prompts again: drain it.
        loop {
            match sock.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        thread::sleep(SHOT_EVERY);
    }
    Ok(())
}

/// The screendumps a boot whose serial log is `log` took, in order.
pub fn shots(log: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let prefix = format!("{}.shot-", name.trim_end_matches(".serial.log"));
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n.starts_with(&prefix) && n.ends_with(".ppm")
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Runs `program args...` with stdout into `out`.
fn run_into(program: &str, args: &[&Path], out: &Path) -> Result<()> {
    let file = std::fs::File::create(out).map_err(|e| io_err(out.display(), e))?;
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::from(file))
        .stderr(Stdio::null())
        .status()
        .map_err(|e| io_err(program, e))?;
    if status.success() {
        Ok(())
    } else {
        Err(err(format!("{program} {args:?}: {status}")))
    }
}

/// A PNG copy of `ppm` beside it (netpbm's pnmtopng); its path.
pub fn to_png(ppm: &Path) -> Result<PathBuf> {
    let png = ppm.with_extension("png");
    run_into("pnmtopng", &[ppm], &png)?;
    Ok(png)
}

/// What tesseract reads in `ppm` (language `lang`: eng, deu). The picture
/// is scaled up twice first: the VGA font's 16 pixels are small for it.
pub fn ocr(ppm: &Path, lang: &str) -> Result<String> {
    let big = ppm.with_extension("x2.pnm");
    run_into("pamscale", &[Path::new("2"), ppm], &big)?;
    let out = Command::new("tesseract")
        .arg(&big)
        .args(["stdout", "-l", lang, "--psm", "6"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| io_err("tesseract", e));
    let _ = std::fs::remove_file(&big);
    let out = out?;
    if !out.status.success() {
        return Err(err(format!("tesseract {}: {}", ppm.display(), out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
