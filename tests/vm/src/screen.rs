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

/// What tesseract reads in `ppm` (language `lang`: eng, deu), read twice
/// and joined: in grey (all text, the kernel's grey lines included) and with
/// only bright pixels kept (white text on a coloured banner, which the grey
/// picture's binarisation loses). Scaled up twice first: the console font's
/// 16 pixels are small for tesseract.
pub fn ocr(ppm: &Path, lang: &str) -> Result<String> {
    let grey = ppm.with_extension("grey.pgm");
    let bright = ppm.with_extension("bright.pam");
    let big = ppm.with_extension("x2.pnm");
    let mut text = String::new();
    let r = (|| {
        run_into("ppmtopgm", &[ppm], &grey)?;
        run_into(
            "pamthreshold",
            &[Path::new("-simple"), Path::new("-threshold=0.8"), &grey],
            &bright,
        )?;
        // The bright picture is sparse: read as scattered text (psm 11),
        // which also reads the VGA font's "%" that a block of text misses.
        for (picture, psm) in [(&grey, "6"), (&bright, "11")] {
            run_into("pamscale", &[Path::new("2"), picture], &big)?;
            text.push_str(&tesseract(&big, lang, psm)?);
        }
        Ok(())
    })();
    for f in [&grey, &bright, &big] {
        let _ = std::fs::remove_file(f);
    }
    r.map(|()| text)
}

fn tesseract(picture: &Path, lang: &str, psm: &str) -> Result<String> {
    let out = Command::new("tesseract")
        .arg(picture)
        .args(["stdout", "-l", lang, "--psm", psm])
        // One thread: the machines booting beside use the other cores.
        .env("OMP_THREAD_LIMIT", "1")
        .stderr(Stdio::null())
        .output()
        .map_err(|e| io_err("tesseract", e))?;
    if !out.status.success() {
        return Err(err(format!(
            "tesseract {}: {}",
            picture.display(),
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a screendump (binary PPM) shows the full-screen UI: its header
/// bar, the VGA palette's blue, across most of the top row of cells.
pub fn shows_ui_header(ppm: &[u8]) -> bool {
    let Some((width, data)) = ppm_pixels(ppm) else {
        return false;
    };
    // The middle of the first cell row (8 of 16 pixel rows).
    let row = 8 * width * 3;
    let Some(line) = data.get(row..row + width * 3) else {
        return false;
    };
    let blue = line
        .chunks(3)
        .filter(|p| p[2] > 120 && p[0] < 60 && p[1] < 60)
        .count();
    blue * 2 > width
}

/// The top `rows` pixel rows of a binary PPM, as a PPM of their own.
pub fn top_band(ppm: &[u8], rows: usize) -> Option<Vec<u8>> {
    let (width, data) = ppm_pixels(ppm)?;
    let height = rows.min(data.len() / (width * 3).max(1));
    let mut band = format!("P6\n{width} {height}\n255\n").into_bytes();
    band.extend_from_slice(data.get(..width * 3 * height)?);
    Some(band)
}

/// The colour of the pixel at `x`, `y` of a binary PPM.
pub fn pixel(ppm: &[u8], x: usize, y: usize) -> Option<[u8; 3]> {
    let (width, data) = ppm_pixels(ppm)?;
    if x >= width {
        return None;
    }
    let at = (y * width + x) * 3;
    data.get(at..at + 3).map(|p| [p[0], p[1], p[2]])
}

/// The width and pixel bytes of a binary PPM (`P6 W H 255`).
fn ppm_pixels(ppm: &[u8]) -> Option<(usize, &[u8])> {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while ppm.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !ppm.get(i)?.is_ascii_whitespace() {
            i += 1;
        }
        fields.push(std::str::from_utf8(&ppm[start..i]).ok()?);
    }
    if fields[0] != "P6" || fields[3] != "255" {
        return None;
    }
    let width: usize = fields[1].parse().ok()?;
    Some((width, ppm.get(i + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ppm(width: usize, top: [u8; 3]) -> Vec<u8> {
        let mut v = format!("P6\n{width} 32\n255\n").into_bytes();
        for y in 0..32 {
            for _ in 0..width {
                v.extend_from_slice(if y < 16 { &top } else { &[0, 0, 0] });
            }
        }
        v
    }

    #[test]
    fn the_header_bar_is_told_from_boot_messages() {
        assert!(shows_ui_header(&ppm(64, [0, 0, 170])));
        assert!(!shows_ui_header(&ppm(64, [170, 170, 170])));
        assert!(!shows_ui_header(b"P6\n64 32\n255\n"));
        assert!(!shows_ui_header(b"P5 garbage"));
    }

    #[test]
    fn a_band_is_the_top_rows_and_a_pixel_its_colour() {
        let picture = ppm(4, [0, 115, 179]);
        let band = top_band(&picture, 16).unwrap();
        assert!(band.starts_with(b"P6\n4 16\n255\n"));
        assert_eq!(band.len(), b"P6\n4 16\n255\n".len() + 4 * 16 * 3);
        assert_eq!(pixel(&band, 3, 15), Some([0, 115, 179]));
        assert_eq!(pixel(&picture, 0, 16), Some([0, 0, 0]));
        assert_eq!(pixel(&picture, 4, 0), None);
        assert_eq!(pixel(&picture, 0, 32), None);
        let all = top_band(&picture, 100).unwrap();
        assert!(all.starts_with(b"P6\n4 32\n255\n"));
        assert_eq!(top_band(b"P5 garbage", 2), None);
    }
}
