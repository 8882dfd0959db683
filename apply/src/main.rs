//! system-update: prepare, trigger and apply offline system updates. The
//! work is in the library; this only parses the command line.

use std::process::ExitCode;

use clap::Parser;

use system_update::cli::{self, Cli};
use system_update::exit;

fn main() -> ExitCode {
    let code = match cli::run(Cli::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("system-update: {}", cli::message(e.as_ref()));
            exit::FAILURE
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
