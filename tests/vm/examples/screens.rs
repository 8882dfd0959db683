//! Shows what a serial log looked like on an 80x24 terminal, for debugging the
//! real-boot UI checks:
//!   cargo run -p system-update-vm-tests --example screens -- LOG [NEEDLE]
//! prints the last screen containing NEEDLE (default "System update").

#[path = "../tests/common/screen.rs"]
mod screen;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: screens SERIAL-LOG [NEEDLE]");
        std::process::exit(2);
    };
    let needle = args.get(2).map(String::as_str).unwrap_or("System update");
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let screens = screen::screens(&bytes);
    let hits: Vec<&String> = screens.iter().filter(|s| s.contains(needle)).collect();
    println!(
        "{} screens, {} with {needle:?}, {} of those with a percentage",
        screens.len(),
        hits.len(),
        hits.iter().filter(|s| screen::has_percent(s)).count()
    );
    if let Some(last) = hits.last() {
        println!("{last}");
    }
}
