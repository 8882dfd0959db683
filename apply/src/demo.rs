//! `demo`: a whole offline update on a scratch root, watchable in a
//! terminal: build two versions of a few packages, install the first,
//! prepare and trigger the second, run the generator, apply with the UI,
//! print the result.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use system_update_tui::Output;

use crate::apply::{self, ApplyOptions};
use crate::config::{AfterAction, Config, UiChoice};
use crate::paths::Root;
use crate::prepare::{self, PrepareRequest};
use crate::{status, trigger};

/// `demo`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Where to build the packages and the scratch root (default: a new
    /// directory under $TMPDIR, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The progress UI (default auto: full screen on a capable terminal,
    /// plain lines on a dumb one or when the output is not a terminal).
    #[arg(long, value_enum)]
    pub ui: Option<UiChoice>,
}

const PACKAGES: [&str; 4] = ["demo-base", "demo-tools", "demo-data", "demo-docs"];

fn say(s: &str) {
    println!("==> {s}");
}

/// Writes a package tree and builds it with dpkg-deb.
fn build_deb(work: &Path, name: &str, version: &str) -> anyhow::Result<PathBuf> {
    let tree = work.join(format!("src/{name}-{version}"));
    let debian = tree.join("DEBIAN");
    std::fs::create_dir_all(&debian).with_context(|| debian.display().to_string())?;
    std::fs::write(
        debian.join("control"),
        format!("Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: system-update demo <demo@example.invalid>\nDescription: system-update demo package\n"),
    )?;
    // Maintainer scripts run outside the root (--force-script-chrootless):
    // they only sleep, so a person can follow the progress.
    for (script, pause) in [("preinst", "0.6"), ("postinst", "1.2")] {
        let p = debian.join(script);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho \"{name} {version}: {script} $1\"\nsleep {pause}\n"),
        )?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
    }
    let share = tree.join(format!("usr/share/{name}"));
    std::fs::create_dir_all(&share)?;
    std::fs::write(share.join("VERSION"), format!("{version}\n"))?;
    let deb = work.join(format!("debs/{name}_{version}_all.deb"));
    std::fs::create_dir_all(work.join("debs"))?;
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&deb)
        .output()
        .context("running dpkg-deb (install dpkg-dev? dpkg-deb is in dpkg)")?;
    if !out.status.success() {
        bail!(
            "dpkg-deb --build {}: {}",
            tree.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(deb)
}

fn scratch_root(root: &Path) -> anyhow::Result<()> {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
        "var/log",
        "etc",
    ] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).with_context(|| p.display().to_string())?;
    }
    for f in ["status", "available"] {
        std::fs::write(root.join("var/lib/dpkg").join(f), b"")?;
    }
    Ok(())
}

fn dpkg_args(root: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        format!("--root={}", root.display()).into(),
        format!("--log={}", root.join("var/log/dpkg.log").display()).into(),
    ];
    v.extend(extra_dpkg_args().into_iter().map(OsString::from));
    v
}

/// The demo root has no shell of its own, and may belong to a normal user.
fn extra_dpkg_args() -> Vec<String> {
    let mut v = vec!["--force-script-chrootless".to_string()];
    if !nix::unistd::geteuid().is_root() {
        v.push("--force-not-root".into());
    }
    v
}

fn run_generator(work: &Path, root: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating this program")?;
    let gen = exe.with_file_name("system-update-generator");
    if !gen.is_file() {
        say(&format!(
            "No generator beside {} (build it: cargo build --release); skipping step 3",
            exe.display()
        ));
        return Ok(());
    }
    let dirs: Vec<PathBuf> = ["normal", "early", "late"]
        .iter()
        .map(|d| work.join("generator").join(d))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let out = Command::new(&gen)
        .args(&dirs)
        .env("SYSTEM_UPDATE_GENERATOR_ROOT", root)
        .output()
        .with_context(|| format!("running {}", gen.display()))?;
    let link = dirs[1].join("default.target");
    match std::fs::read_link(&link) {
        Ok(t) => say(&format!(
            "Generator: default.target -> {} (this boot goes to the update)",
            t.display()
        )),
        Err(_) => say(&format!(
            "Generator did not redirect default.target (status {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
    Ok(())
}

pub fn run(args: &DemoArgs, stop: &Arc<AtomicBool>) -> anyhow::Result<i32> {
    let (work, remove_after) = work_dir(args)?;
    let root_dir = work.join("root");
    let _ = std::fs::remove_dir_all(&root_dir);
    scratch_root(&root_dir)?;
    let root = Root::new(&root_dir);
    say(&format!("Scratch root: {}", root_dir.display()));
    let v2 = install_version_1(&work, &root_dir)?;
    let config = Config {
        after_action: AfterAction::None,
        ..Config::default()
    };
    prepare_and_trigger(&root, &config, v2)?;
    say("3. Reboot: the generator sees the link");
    run_generator(&work, &root_dir)?;
    say("4. system-update apply (what system-update-apply.service runs)");
    if std::io::stdout().is_terminal() {
        std::thread::sleep(Duration::from_secs(2));
    }
    // The same choice as apply's: auto draws full screen on a capable
    // terminal, plain lines on a dumb one or when the output is no terminal.
    let opts = ApplyOptions {
        no_reboot: true,
        ui: Some(args.ui.unwrap_or(UiChoice::Auto)),
        output: Output::Stdout,
        backend_args: extra_dpkg_args(),
        limits: config.backend_limits(),
    };
    let code = apply::run(&root, &config, &opts, stop)?;
    say("5. The result, as system-update results shows it at the next boot:");
    print!("{}", status::results(&root, false)?);
    if remove_after {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        say(&format!("Kept {}", work.display()));
    }
    Ok(code)
}

/// Where the demo works, and whether it is ours to remove afterwards.
fn work_dir(args: &DemoArgs) -> anyhow::Result<(PathBuf, bool)> {
    Ok(match &args.workdir {
        // Absolute, as --root is: dpkg and the generator run elsewhere.
        Some(w) => (
            std::path::absolute(w).with_context(|| format!("--workdir {}", w.display()))?,
            false,
        ),
        None => (
            std::env::temp_dir().join(format!("system-update-demo-{}", std::process::id())),
            true,
        ),
    })
}

/// Both versions of the demo packages built, the first installed as an
/// admin would; returns the second's files.
fn install_version_1(work: &Path, root_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    say("Building version 1.0 and 2.0 of the demo packages (dpkg-deb --build)");
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for p in PACKAGES {
        v1.push(build_deb(work, p, "1.0")?);
        v2.push(build_deb(work, p, "2.0")?);
    }
    say("Installing version 1.0 (dpkg -i)");
    let out = Command::new("dpkg")
        .args(dpkg_args(root_dir))
        .arg("--install")
        .args(&v1)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .output()
        .context("running dpkg")?;
    if !out.status.success() {
        bail!("dpkg -i: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(v2)
}

/// Steps 1 and 2 of the protocol, as `prepare` and `trigger` take them.
fn prepare_and_trigger(root: &Root, config: &Config, v2: Vec<PathBuf>) -> anyhow::Result<()> {
    say("1. system-update prepare: payload and manifest into /var/lib/system-update");
    let request = PrepareRequest {
        resolve: None,
        backend: None,
        force: true,
        title: Some("Demo update to 2.0".into()),
        command: None,
        files: v2,
        sign: None,
        reinstall: false,
    };
    let m = prepare::prepare(root, config, request)?;
    let n = system_update_events::text::count(m.files.len(), "package", "packages");
    say(&format!("   manifest {} ({n})", m.id));
    say("2. system-update trigger --no-reboot: /system-update -> /var/lib/system-update");
    let arm = trigger::Arm {
        after: Some(AfterAction::None),
        reboot_mode: config.reboot_mode,
        replace_foreign: false,
    };
    trigger::arm(root, config, &arm)?;
    Ok(())
}
