//! Carrying out a command line: a function per subcommand, each a few
//! lines over the library.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;

use super::terminal::{confirm, message, must_ask, print, stderr_for, stop_flag};
use super::{Cli, Cmd, PrepareArgs, TriggerArgs};
use crate::config::Config;
use crate::paths::Root;
use crate::{apply, cleanup, demo, exit, logging, power, prepare, status, summary, trigger};

/// The commands that act on no tree: `--root` means nothing to them, and
/// probation checks the boot that is running, whatever tree is named.
fn root_refused(cmd: &Cmd) -> Option<&'static str> {
    match cmd {
        Cmd::Demo(_) => Some("demo builds its own scratch root (use --workdir)"),
        Cmd::Completions { .. } => Some("completions read no tree"),
        Cmd::Probation => Some("probation checks the boot that is running, which is /"),
        Cmd::RestoreConsole => Some("restore-console acts on the running system's consoles"),
        _ => None,
    }
}

/// `--root` as every command, backend and child process gets it: absolute
/// and with no link in it, so that a tool joining it to a directory of its
/// own (apt does) or run from another directory finds the same tree.
fn resolve_root(given: Option<&Path>) -> Result<Root, String> {
    let Some(dir) = given else {
        return Ok(Root::new("/"));
    };
    let shown = dir.display();
    let abs = std::fs::canonicalize(dir).map_err(|e| format!("--root {shown}: {}", message(&e)))?;
    match std::fs::metadata(&abs) {
        Ok(md) if md.is_dir() => Ok(Root::new(abs)),
        Ok(_) => Err(format!("--root {shown}: not a directory")),
        Err(e) => Err(format!("--root {shown}: {}", message(&e))),
    }
}

/// The request `prepare` carries out for files, a command or the
/// repositories.
fn prepare_request(a: PrepareArgs) -> prepare::PrepareRequest {
    use crate::backend::Request;
    prepare::PrepareRequest {
        backend: a.backend,
        force: a.force,
        title: a.title,
        command: a.command,
        files: a.files,
        sign: a.sign,
        reinstall: a.reinstall,
        resolve: match (a.upgrade.as_deref(), a.install) {
            (Some(mode), _) => Some(Request::Upgrade {
                safe: mode == "safe",
            }),
            (None, Some(pkgs)) => Some(Request::Install(pkgs)),
            (None, None) => None,
        },
    }
}

/// Carries out one command line; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if let (Some(dir), Some(why)) = (&cli.root, root_refused(&cli.command)) {
        let dir = dir.display();
        eprintln!("system-update: --root {dir} does not apply here: {why}");
        return Ok(exit::USAGE);
    }
    // A root that is not there is a typo, not a tree to build.
    let root = match resolve_root(cli.root.as_deref()) {
        Ok(r) => r,
        Err(why) => {
            eprintln!("system-update: {why}");
            return Ok(exit::USAGE);
        }
    };
    logging::init(stderr_for(&cli.command, &root));
    match cli.command {
        Cmd::Completions { shell } => {
            print(&super::completion_script(shell));
            Ok(exit::OK)
        }
        Cmd::Demo(args) => demo::run(&args, &stop_flag()?),
        Cmd::RestoreConsole => restore_console(),
        // What happened needs no configuration: it must be readable when
        // the configuration is what went wrong.
        Cmd::Results(a) => printed(status::results(&root, a.json)),
        Cmd::History(a) => printed(status::history(&root, a.json)),
        Cmd::Log { id, json } => log(&root, id.as_deref(), json),
        cmd => with_config(&root, cmd),
    }
}

/// Puts back what the UI's quieting of the consoles changed, when the
/// apply that did it could not (it died): from the state file it keeps.
fn restore_console() -> anyhow::Result<i32> {
    let path = std::path::Path::new(system_update_tui::quiet::STATE_FILE);
    match system_update_tui::quiet::restore_saved(path) {
        Ok(Some(saved)) => {
            tracing::info!("console restored after the UI: {saved:?}");
            Ok(exit::OK)
        }
        Ok(None) => Ok(exit::OK),
        Err(e) => {
            eprintln!("system-update: {e}");
            Ok(exit::FAILURE)
        }
    }
}

/// What a reading command prints, or its error as `main` reports it.
fn printed(text: anyhow::Result<String>) -> anyhow::Result<i32> {
    print(&text?);
    Ok(exit::OK)
}

fn log(root: &Root, id: Option<&str>, json: bool) -> anyhow::Result<i32> {
    match status::log(root, id, json) {
        Ok(text) => {
            print(&text);
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("system-update: {}", message(e.as_ref()));
            Ok(exit::FAILURE)
        }
    }
}

/// The commands that read the configuration first.
fn with_config(root: &Root, cmd: Cmd) -> anyhow::Result<i32> {
    let config = match Config::load(root) {
        Ok(c) => c,
        Err(e) => return config_failed(root, &cmd, &e),
    };
    match cmd {
        Cmd::Prepare(a) => prepare_cmd(root, &config, a),
        Cmd::Trigger(a) => trigger_cmd(root, &config, &a),
        Cmd::Status(a) => printed(status::status(root, &config, a.json)),
        Cmd::Cancel { purge, json } => {
            let done = prepare::cancel(root, &config, purge)?;
            print(&summary::cancelled(&done, &config.update_dir, json));
            Ok(exit::OK)
        }
        Cmd::Apply(a) => apply_cmd(root, &config, &a),
        Cmd::Probation => {
            let stop = stop_flag()?;
            let code = crate::probation::check_boot(root, &config, &stop);
            // The verdict, or that there was none, for the monitoring.
            crate::metrics::refresh(root, &config);
            Ok(code)
        }
        Cmd::Cleanup { boot } => cleanup_cmd(root, &config, boot),
        Cmd::Fleet { action } => fleet_cmd(root, &config, &action),
        Cmd::Auto(a) => auto_cmd(root, &config, &a),
        // Carried out before the configuration is read.
        Cmd::Results(_) | Cmd::History(_) | Cmd::Log { .. } => Ok(exit::OK),
        Cmd::Demo(_) | Cmd::Completions { .. } | Cmd::RestoreConsole => Ok(exit::OK),
    }
}

/// A configuration that cannot be read: apply still records the boot's
/// outcome and probation still checks the boot; the rest stop.
fn config_failed(root: &Root, cmd: &Cmd, e: &anyhow::Error) -> anyhow::Result<i32> {
    eprintln!("system-update: {}", message(e.as_ref()));
    match cmd {
        Cmd::Apply(_) => Ok(apply::config_failed(root, e)),
        // Leniently: defaults name no must-run unit, and a broken file
        // must not roll back.
        Cmd::Probation => {
            let stop = stop_flag()?;
            Ok(crate::probation::check_boot(
                root,
                &Config::default(),
                &stop,
            ))
        }
        _ => Ok(exit::USAGE),
    }
}

fn prepare_cmd(root: &Root, config: &Config, a: PrepareArgs) -> anyhow::Result<i32> {
    let (json, just_signed) = (a.json, a.sign.is_some());
    let prepared = match &a.from {
        Some(from) => {
            let how = prepare::Import {
                force: a.force,
                allow_older: a.allow_older,
            };
            prepare::import(root, config, from, &how).map(|(m, v)| (m, Some(v)))
        }
        None => prepare::prepare(root, config, prepare_request(a)).map(|m| (m, None)),
    };
    let (m, verified) = match prepared {
        Ok(p) => p,
        Err(e @ prepare::PrepareError::NothingToDo) => {
            print(&format!("{e}\n"));
            return Ok(exit::OK);
        }
        Err(e) => {
            eprintln!("system-update: {}", message(&e));
            return Ok(match e {
                prepare::PrepareError::Verify(_)
                | prepare::PrepareError::Replay(_)
                | prepare::PrepareError::PackageSignature(_) => exit::VERIFICATION,
                _ => exit::FAILURE,
            });
        }
    };
    let dir = &config.update_dir;
    print(&summary::prepared(
        &m,
        dir,
        verified.as_ref(),
        just_signed,
        json,
    ));
    Ok(exit::OK)
}

fn trigger_cmd(root: &Root, config: &Config, a: &TriggerArgs) -> anyhow::Result<i32> {
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if must_ask(a, root.is_live(), interactive) && !confirm("Reboot now to apply the update?")? {
        eprintln!("system-update: not triggered; nothing was changed");
        return Ok(exit::FAILURE);
    }
    let mode = a.reboot_mode.unwrap_or(config.reboot_mode);
    let req = trigger::Arm {
        after: a.after_action(),
        reboot_mode: mode,
        replace_foreign: a.replace_foreign,
    };
    let (m, verified) = match trigger::arm(root, config, &req) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("system-update: {}", message(&e));
            return Ok(trigger_status(&e));
        }
    };
    // pending 1 for the monitoring before the machine goes away.
    crate::metrics::refresh(root, config);
    let way = (!a.no_reboot && root.is_live()).then(|| trigger::way_in(mode));
    let now = match &way {
        None => "none",
        Some((power::Action::SoftReboot, _)) => "soft-reboot",
        Some(_) => "reboot",
    };
    let t = summary::Triggered {
        manifest: &m,
        verified: &verified,
        after: a.after_action(),
        reboot_mode: mode,
        now,
    };
    print(&summary::triggered(&t, a.json));
    reboot_into_the_update(way, a)
}

/// trigger's exit status for why it refused.
fn trigger_status(e: &trigger::TriggerError) -> i32 {
    use crate::manifest::ManifestError;
    use trigger::TriggerError;
    match e {
        // Nothing to verify is not a verification failure.
        TriggerError::Manifest(ManifestError::Missing(_)) => exit::FAILURE,
        TriggerError::Manifest(_) | TriggerError::Replay(_) | TriggerError::PackageSignature(_) => {
            exit::VERIFICATION
        }
        TriggerError::Stale(_) => exit::STALE,
        _ => exit::FAILURE,
    }
}

fn reboot_into_the_update(
    way: Option<(power::Action, Option<String>)>,
    a: &TriggerArgs,
) -> anyhow::Result<i32> {
    let Some((way, said)) = way else {
        if !a.no_reboot && !a.json {
            print("Not rebooting: --root is not /.\n");
        }
        return Ok(exit::OK);
    };
    if let (Some(said), false) = (said, a.json) {
        print(&said);
    }
    power::request(way).context("rebooting into the update")?;
    Ok(exit::OK)
}

fn apply_cmd(root: &Root, config: &Config, a: &super::ApplyArgs) -> anyhow::Result<i32> {
    let stop = stop_flag()?;
    let opts = apply::ApplyOptions {
        no_reboot: a.no_reboot,
        ui: a.ui,
        // Another tree (an image, a scratch root) is not this machine's
        // update: its consoles are not ours to take.
        output: if root.is_live() {
            system_update_tui::Output::Consoles
        } else {
            system_update_tui::Output::Stdout
        },
        backend_args: Vec::new(),
        limits: config.backend_limits(),
    };
    apply::run(root, config, &opts, &stop)
}

fn auto_cmd(root: &Root, config: &Config, a: &super::AutoArgs) -> anyhow::Result<i32> {
    let pass = crate::auto::Pass {
        now: a.now.unwrap_or_else(jiff::Timestamp::now),
        no_reboot: a.no_reboot,
    };
    let ran = crate::auto::run(root, config, &pass);
    crate::metrics::refresh(root, config);
    match ran {
        Ok(answer) => {
            tracing::info!("auto: {}: {}", answer.action, answer.reason);
            print(&answer.render(a.json));
            Ok(exit::OK)
        }
        Err(e) => {
            tracing::error!("auto: {e:#}");
            eprintln!("system-update: auto: {e:#}");
            Ok(exit::FAILURE)
        }
    }
}

fn cleanup_cmd(root: &Root, config: &Config, boot: bool) -> anyhow::Result<i32> {
    match cleanup::cleanup(root, config, boot)? {
        cleanup::Cleaned::Nothing(why) => print(&format!("No snapshots to clean up: {why}.\n")),
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

/// `fleet status|unlock|resume`: the only command line that reaches the
/// network code (with `auto`).
fn fleet_cmd(root: &Root, config: &Config, action: &super::FleetCmd) -> anyhow::Result<i32> {
    use crate::fleet::FleetError;
    let mut halted = None;
    let done = crate::fleet::FleetConfig::from_config(config)
        .and_then(|cfg| fleet_action(root, &cfg, action, &mut halted));
    crate::metrics::refresh_knowing(root, config, halted);
    match done {
        Ok(text) => {
            print(&text);
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("system-update: fleet: {e}");
            Ok(match e {
                FleetError::NotConfigured | FleetError::BadId(_) => exit::USAGE,
                _ => exit::FAILURE,
            })
        }
    }
}

/// One fleet command's text; `halted` is set when etcd said it.
fn fleet_action(
    root: &Root,
    cfg: &crate::fleet::FleetConfig,
    action: &super::FleetCmd,
    halted: &mut Option<bool>,
) -> Result<String, crate::fleet::FleetError> {
    use super::FleetCmd;
    use crate::fleet::{self, report};
    Ok(match action {
        FleetCmd::Status(a) => {
            let st = fleet::status(cfg)?;
            *halted = Some(st.halted.is_some());
            let me = fleet::machine::machine_id(root).ok();
            report::status(cfg, &st, me.as_deref(), a.json)
        }
        FleetCmd::Unlock { id, json } => report::unlocked(cfg, id, fleet::unlock(cfg, id)?, *json),
        FleetCmd::Resume(a) => {
            let was = fleet::resume(cfg)?;
            *halted = Some(false);
            report::resumed(cfg, was.as_ref(), a.json)
        }
    })
}
