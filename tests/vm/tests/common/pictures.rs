//! What the guest's VGA screen showed, read back by OCR from the boot's
//! screendumps: each turned into a PNG (kept in the logs), identical ones
//! read once, and what was read written beside them (`.ocr.txt`).

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use system_update_vm_tests::{screen, Boot};

/// One picture and what OCR read in it.
pub struct Read {
    pub png: PathBuf,
    pub text: String,
}

/// Every distinct screendump of `boot` that shows the UI's header, as PNG
/// with its OCR text in `lang`; the PPMs are removed (a 1280x800 one is
/// 3 MB), the boot's other pictures with them.
pub fn read_all(boot: &Boot, lang: &str) -> Vec<Read> {
    let mut seen = HashSet::new();
    let mut reads = Vec::new();
    for ppm in boot.shots() {
        let Ok(bytes) = std::fs::read(&ppm) else {
            continue;
        };
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        if !screen::shows_ui_header(&bytes) || !seen.insert(h.finish()) {
            let _ = std::fs::remove_file(&ppm);
            continue;
        }
        let png = screen::to_png(&ppm).unwrap_or_else(|e| panic!("PNG of {}: {e}", ppm.display()));
        let text = screen::ocr(&ppm, lang).unwrap_or_else(|e| panic!("OCR: {e}"));
        let _ = std::fs::remove_file(&ppm);
        reads.push(Read { png, text });
    }
    let note: String = reads
        .iter()
        .map(|r| format!("==> {}\n{}\n", r.png.display(), r.text.trim_end()))
        .collect();
    let out = boot.log.with_extension("").with_extension("ocr.txt");
    let _ = std::fs::write(&out, note);
    eprintln!(
        "vm: {} pictures of boot {}, OCR in {}",
        reads.len(),
        boot.label,
        out.display()
    );
    reads
}

/// Copies `png` to the run's `screenshots/NAME.png` (for `make screenshots`).
pub fn keep(boot: &Boot, png: &Path, name: &str) {
    let Some(logs) = boot.log.parent().and_then(Path::parent) else {
        return;
    };
    let dir = logs.join("screenshots");
    let _ = std::fs::create_dir_all(&dir);
    let dest = dir.join(format!("{name}.png"));
    if std::fs::copy(png, &dest).is_ok() {
        eprintln!("vm: screenshot {} -> {}", png.display(), dest.display());
    }
}

/// One message plymouth showed, as the screen showed it.
pub struct Message {
    /// The whole picture it first appeared in.
    pub png: PathBuf,
    /// What OCR read in the top band, where the message is.
    pub band: String,
    /// What OCR read in the whole picture.
    pub text: String,
}

/// plymouth's messages as a person saw them: the top `rows` pixel rows of
/// every screendump of `boot` that shows the theme's background (a
/// coloured top-left pixel: the text console's is black), each distinct
/// band read once (two-step themes draw display-message text at the top
/// left; the animation below changes every frame, the message only when
/// another comes), with the whole picture it first appeared in, kept as
/// PNG and read too. The PPMs are removed.
pub fn plymouth_messages(boot: &Boot, lang: &str, rows: usize) -> Vec<Message> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for ppm in boot.shots() {
        let bytes = std::fs::read(&ppm).unwrap_or_default();
        let themed = screen::pixel(&bytes, 0, 0).is_some_and(|p| p != [0, 0, 0]);
        let band = screen::top_band(&bytes, rows).filter(|_| themed);
        let fresh = band.as_ref().is_some_and(|b| {
            let mut h = DefaultHasher::new();
            b.hash(&mut h);
            seen.insert(h.finish())
        });
        if let (true, Some(band)) = (fresh, band) {
            out.push(read_message(&ppm, &band, lang));
        }
        let _ = std::fs::remove_file(&ppm);
    }
    let note: String = out
        .iter()
        .map(|m| {
            format!(
                "==> {}\n{}\n--- the whole picture:\n{}\n",
                m.png.display(),
                m.band.trim_end(),
                m.text.trim_end()
            )
        })
        .collect();
    let _ = std::fs::write(boot.log.with_extension("").with_extension("ocr.txt"), note);
    eprintln!(
        "vm: {} messages of plymouth in boot {}",
        out.len(),
        boot.label
    );
    out
}

/// OCR of the picture `ppm` and of its top band `band`, and its PNG.
fn read_message(ppm: &Path, band: &[u8], lang: &str) -> Message {
    let band_ppm = ppm.with_extension("band.ppm");
    let read = std::fs::write(&band_ppm, band)
        .map_err(|e| format!("{}: {e}", band_ppm.display()))
        .and_then(|()| screen::ocr(&band_ppm, lang).map_err(|e| e.to_string()));
    let _ = std::fs::remove_file(&band_ppm);
    let band = read.unwrap_or_else(|e| panic!("OCR of the band: {e}"));
    let text = screen::ocr(ppm, lang).unwrap_or_else(|e| panic!("OCR: {e}"));
    let png = screen::to_png(ppm).unwrap_or_else(|e| panic!("PNG: {e}"));
    Message { png, band, text }
}
