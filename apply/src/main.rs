//! system-update: prepare, trigger and apply offline system updates.

mod apply;
mod atomic;
mod attempts;
mod backend;
mod cleanup;
mod cli;
mod config;
mod demo;
mod exit;
mod lock;
mod logging;
mod manifest;
mod paths;
mod power;
mod prepare;
mod result;
mod snapshot;
mod space;
mod status;
mod timefmt;
mod trigger;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

use cli::{Cli, Cmd};
use config::Config;
use paths::Root;

/// SIGTERM, SIGINT and SIGHUP only raise a flag: the transaction finishes.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .context("installing signal handlers")?;
    }
    Ok(flag)
}

fn print(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    let root = Root::new(&cli.root);
    logging::init(match &cli.command {
        Cmd::Demo(_) if std::io::stdout().is_terminal() => logging::Stderr::Off,
        Cmd::Demo(_) => logging::Stderr::Warnings,
        _ => logging::Stderr::Full,
    });

    if let Cmd::Demo(args) = &cli.command {
        let stop = stop_flag()?;
        return demo::run(args, &stop);
    }

    let config = match Config::load(&root) {
        Ok(c) => c,
        Err(e) => {
            if matches!(cli.command, Cmd::Apply(_)) {
                apply::config_failed(&root, &e);
            }
            eprintln!("system-update: {e}");
            return Ok(exit::USAGE);
        }
    };

    match cli.command {
        Cmd::Prepare(a) => {
            let m = prepare::prepare(
                &root,
                &config,
                prepare::PrepareRequest {
                    backend: a.backend,
                    force: a.force,
                    title: a.title,
                    command: a.command,
                    files: a.files,
                },
            )?;
            print(&format!(
                "Prepared {} ({}): {} file(s) in {}. Run system-update trigger to apply it at the next boot.\n",
                m.title,
                m.id,
                m.files.len(),
                config.update_dir.display()
            ));
            Ok(exit::OK)
        }
        Cmd::Trigger(a) => {
            let m = match trigger::arm(&root, &config, a.after_action()) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("system-update: {e}");
                    return Ok(match e {
                        trigger::TriggerError::Manifest(_) => exit::VERIFICATION,
                        trigger::TriggerError::Stale(_) => exit::STALE,
                        _ => exit::FAILURE,
                    });
                }
            };
            print(&format!(
                "Triggered {}: it is applied at the next boot.\n",
                m.title
            ));
            if a.no_reboot {
                return Ok(exit::OK);
            }
            if !root.is_live() {
                print("Not rebooting: --root is not /.\n");
                return Ok(exit::OK);
            }
            // Into the update: the after-action is for when it is over.
            power::request(power::Action::Reboot).context("rebooting into the update")?;
            Ok(exit::OK)
        }
        Cmd::Status(a) => {
            print(&status::status(&root, &config, a.json)?);
            Ok(exit::OK)
        }
        Cmd::Results(a) => {
            print(&status::results(&root, a.json)?);
            Ok(exit::OK)
        }
        Cmd::Cancel { purge } => {
            let removed = prepare::cancel(&root, &config, purge)?;
            for r in removed {
                print(&format!("Removed {}\n", r.display()));
            }
            if purge {
                print(&format!("Removed {}\n", config.update_dir.display()));
            }
            Ok(exit::OK)
        }
        Cmd::Apply(a) => {
            let stop = stop_flag()?;
            let opts = apply::ApplyOptions {
                no_reboot: a.no_reboot,
                ui: a.ui,
                output: system_update_tui::Output::Consoles,
                dpkg_extra_args: Vec::new(),
            };
            Ok(apply::run(&root, &config, &opts, &stop)?)
        }
        Cmd::Cleanup { boot } => {
            match cleanup::cleanup(&root, &config, boot)? {
                cleanup::Cleaned::Nothing(why) => {
                    print(&format!("No snapshots to clean up: {why}.\n"))
                }
                cleanup::Cleaned::Removed(r) if r.is_empty() => {
                    print("No snapshots or failed states beyond what is kept.\n")
                }
                cleanup::Cleaned::Removed(r) => {
                    for p in r {
                        print(&format!("Removed {}\n", p.display()));
                    }
                }
            }
            Ok(exit::OK)
        }
        // Handled before the configuration is read.
        Cmd::Demo(_) => Ok(exit::OK),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("system-update: {e:#}");
            exit::FAILURE
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
