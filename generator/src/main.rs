//! Entry point: systemd calls `system-update-generator NORMAL EARLY LATE`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use system_update_generator::log::{Level, Logger};
use system_update_generator::{generate, TARGET_UNIT};

const IDENT: &str = "system-update-generator";

const USAGE: &str = "\
Usage: system-update-generator NORMAL-DIR [EARLY-DIR LATE-DIR]

A systemd generator (systemd.generator(7)): run by systemd at boot, it points
default.target at system-update.target when /system-update or
/etc/system-update exists, or a probation rollback is due, writing only to
the early directory. Not meant to be run by hand; see
system-update-generator(8).
";

/// --help and --version; any other leading dash is a mistake, never a
/// directory to write into. None: go on as a generator.
fn option(args: &[PathBuf], log: &mut Logger) -> Option<ExitCode> {
    let first = args.first()?.to_str()?;
    match first {
        "-h" | "--help" => print!("{USAGE}"),
        "--version" => println!("{IDENT} {}", env!("CARGO_PKG_VERSION")),
        _ if first.starts_with('-') => {
            log.log(
                Level::Err,
                format_args!("Unknown option {first}; see --help."),
            );
            return Some(ExitCode::FAILURE);
        }
        _ => return None,
    }
    Some(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Units we write must be world-readable whatever umask PID 1 passed on.
    // SAFETY: umask() cannot fail and touches only this process.
    unsafe { libc::umask(0o022) };

    let mut log = Logger::from_env(IDENT);
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if let Some(code) = option(&args, &mut log) {
        return code;
    }
    // One argument serves as all three directories, as for every systemd
    // generator; ours writes only to the early one.
    let early = match args.as_slice() {
        [all] => all,
        [_normal, early, _late] => early,
        _ => {
            log.log(
                Level::Err,
                format_args!("This program takes one or three arguments."),
            );
            return ExitCode::FAILURE;
        }
    };
    // For tests only, as zram-generator's ZRAM_GENERATOR_ROOT: the tree whose
    // triggers and /proc/cmdline are read.
    let root = std::env::var_os("SYSTEM_UPDATE_GENERATOR_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));

    match generate(Path::new(&root), early, TARGET_UNIT, &mut log) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log.log(Level::Err, format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}
