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

/// The newest screendump of `boot` whose OCR text (in `lang`) satisfies
/// `wanted`; read newest first, at most `limit` distinct ones, each kept
/// as PNG. The PPMs are removed.
pub fn newest_with(
    boot: &Boot,
    lang: &str,
    limit: usize,
    wanted: impl Fn(&str) -> bool,
) -> Option<Read> {
    let mut found = None;
    let mut seen = HashSet::new();
    for ppm in boot.shots().into_iter().rev() {
        let fresh = std::fs::read(&ppm).is_ok_and(|b| {
            let mut h = DefaultHasher::new();
            b.hash(&mut h);
            seen.insert(h.finish())
        });
        if found.is_none() && fresh && seen.len() <= limit {
            let png = screen::to_png(&ppm).unwrap_or_else(|e| panic!("PNG: {e}"));
            let text = screen::ocr(&ppm, lang).unwrap_or_else(|e| panic!("OCR: {e}"));
            if wanted(&text) {
                let note = format!("==> {}\n{}\n", png.display(), text.trim_end());
                let _ = std::fs::write(boot.log.with_extension("").with_extension("ocr.txt"), note);
                found = Some(Read { png, text });
            }
        }
        let _ = std::fs::remove_file(&ppm);
    }
    found
}
