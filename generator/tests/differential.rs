//! Our generator beside systemd's own on the same scratch roots: identical
//! output directories and exit status, except where we follow newer systemd
//! on purpose (stated below). systemd's generator reads the real /, so it is
//! run chrooted into the scratch root with the libraries ldd lists. Needs
//! root and systemd installed; without them this test fails, never passes.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const SYSTEMD_GENERATOR: [&str; 2] = [
    "/usr/lib/systemd/system-generators/systemd-system-update-generator",
    "/lib/systemd/system-generators/systemd-system-update-generator",
];

fn systemd_generator() -> PathBuf {
    SYSTEMD_GENERATOR
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!("systemd's generator is not installed ({SYSTEMD_GENERATOR:?}): apt-get install systemd")
        })
}

fn systemd_version() -> u32 {
    let out = Command::new("systemctl")
        .arg("--version")
        .output()
        .expect("systemctl --version (apt-get install systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read systemd's version from {text:?}"))
}

/// The binary and every file the dynamic loader needs for it.
fn closure(binary: &Path) -> BTreeSet<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("run ldd");
    assert!(out.status.success(), "ldd {}: {:?}", binary.display(), out);
    let mut files: BTreeSet<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "libx.so => /lib/libx.so (0x..)" or "/lib64/ld-linux-x86-64.so.2 (0x..)"
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    files.insert(binary.to_path_buf());
    files
}

fn install_closure(root: &Path, files: &BTreeSet<PathBuf>) {
    for f in files {
        let dest = root.join(f.strip_prefix("/").expect("absolute"));
        fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir in chroot");
        fs::copy(f, &dest).unwrap_or_else(|e| panic!("copy {} into chroot: {e}", f.display()));
    }
}

fn run_systemd(root: &Path, generator: &Path, out: &str) -> Output {
    Command::new("/usr/sbin/chroot")
        .arg(root)
        .arg(generator)
        .arg(out)
        .env_clear()
        .env("SYSTEMD_LOG_TARGET", "console")
        .output()
        .expect("chroot into the scratch root (needs root)")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    State(State),
    /// `/system-update` exists and default.target is already a link to
    /// system-update.target (both generators installed).
    AlreadyLinked,
}

/// Where systemd `version` and we differ on purpose, and how.
fn expected_difference(case: Case, version: u32) -> Option<&'static str> {
    match case {
        // systemd checks /etc/system-update from 254 on.
        Case::State(State::EtcOnly) if version < 254 => Some("systemd ignores /etc/system-update"),
        // systemd fails with EEXIST; we accept a link to the same target.
        Case::AlreadyLinked => Some("systemd fails on an existing default.target"),
        _ => None,
    }
}

#[test]
fn same_output_as_systemds_generator() {
    if !root_or_skip("the differential test chroots into scratch roots") {
        return;
    }
    assert!(
        nix_is_root(),
        "the differential test chroots into scratch roots: run it as root"
    );
    let generator = systemd_generator();
    let version = systemd_version();
    let files = closure(&generator);

    let mut cases: Vec<Case> = ALL_STATES.iter().map(|s| Case::State(*s)).collect();
    cases.push(Case::AlreadyLinked);
    let mut compared = 0;
    for case in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let state = match case {
            Case::State(s) => s,
            Case::AlreadyLinked => State::LinkToDir,
        };
        install_closure(root, &files);
        make_state(root, state);
        let (theirs_dir, ours_dir) = (root.join("out-systemd"), root.join("out-ours"));
        fs::create_dir(&theirs_dir).expect("mkdir");
        fs::create_dir(&ours_dir).expect("mkdir");
        if case == Case::AlreadyLinked {
            for d in [&theirs_dir, &ours_dir] {
                symlink(
                    system_update_generator::TARGET_UNIT,
                    d.join("default.target"),
                )
                .expect("symlink");
            }
        }

        let theirs = run_systemd(root, &generator, "/out-systemd");
        let ours = run_ours(root, &[&ours_dir], &[]);
        let (t, o) = (
            (theirs.status.code(), listing(&theirs_dir)),
            (ours.status.code(), listing(&ours_dir)),
        );

        match expected_difference(case, version) {
            None => {
                assert_eq!(
                    o, t,
                    "{case:?}: ours (left) differs from systemd {version}'s (right); systemd said {:?}",
                    String::from_utf8_lossy(&theirs.stderr)
                );
                compared += 1;
            }
            Some(why) => {
                assert_ne!(
                    o, t,
                    "{case:?}: expected a difference ({why}) but both did the same"
                );
                // Whatever systemd does there, ours redirects the boot and succeeds.
                assert_eq!(o.0, Some(0), "{case:?}: {}", stderr(&ours));
                assert_eq!(
                    o.1,
                    [(
                        "default.target".to_string(),
                        format!("-> {}", system_update_generator::TARGET_UNIT)
                    )],
                    "{case:?}"
                );
            }
        }
    }
    // Guards against a loop that silently compared nothing.
    assert!(compared >= 7, "only {compared} cases compared");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
