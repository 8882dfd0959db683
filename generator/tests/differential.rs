//! Our generator beside systemd's own on the same scratch roots: identical
//! output directories and exit status, except where we follow newer systemd
//! on purpose (stated below, per systemd version). systemd's generator reads
//! the real /, so it is run chrooted into the scratch root with the libraries
//! ldd lists. Needs root and systemd installed; without them this test
//! fails, never passes.
//!
//! Besides the host's systemd (Debian 12: 252), every systemd in the root
//! file systems named by SYSTEM_UPDATE_SYSTEMD_ROOTS (colon-separated, e.g.
//! the Debian 13 base of the real boots, systemd 257:
//! `SYSTEM_UPDATE_SYSTEMD_ROOTS=$(tests/vm/build-base tests/vm/work trixie)/rootfs`,
//! as tests/check does) runs too: its version, ldd closure and files come
//! from that root.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Where systemd keeps the generator: merged /usr first, then the split-/usr
/// path of Debian 12's systemd.
const SYSTEMD_GENERATOR: [&str; 2] = [
    "/usr/lib/systemd/system-generators/systemd-system-update-generator",
    "/lib/systemd/system-generators/systemd-system-update-generator",
];

const ROOTS_VAR: &str = "SYSTEM_UPDATE_SYSTEMD_ROOTS";

/// `argv` run chrooted into `root` ("/" for the host): its stdout, or why not.
fn in_root(root: &Path, argv: &[&str]) -> Result<String, String> {
    let out = Command::new("/usr/sbin/chroot")
        .arg(root)
        .args(argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .map_err(|e| format!("chroot {} {argv:?}: {e}", root.display()))?;
    if !out.status.success() {
        return Err(format!(
            "chroot {} {argv:?}: {}: {}",
            root.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One systemd whose generator runs beside ours.
struct Systemd {
    /// The root file system it is installed in: "/" for the host's.
    root: PathBuf,
    version: u32,
    /// The generator, as a path inside `root`.
    generator: String,
    /// What its generator links default.target to:
    /// SYSTEM_DATA_UNIT_DIR/system-update.target (Debian 12: /lib/systemd/
    /// system, Debian 13: /usr/lib/systemd/system).
    target: String,
    /// The generator and every file the dynamic loader needs for it: each
    /// as ldd names it, and the file it is inside `root`.
    files: Vec<(String, PathBuf)>,
}

impl Systemd {
    fn in_root(root: &Path) -> Systemd {
        let must = |argv: &[&str]| {
            in_root(root, argv).unwrap_or_else(|e| {
                panic!(
                    "systemd in {}: {e} (systemd installed there?)",
                    root.display()
                )
            })
        };
        let generator = SYSTEMD_GENERATOR
            .iter()
            .find(|g| in_root(root, &["test", "-x", g]).is_ok())
            .unwrap_or_else(|| {
                panic!(
                    "no systemd generator in {} ({SYSTEMD_GENERATOR:?}): apt-get install systemd",
                    root.display()
                )
            })
            .to_string();
        let text = must(&["systemctl", "--version"]);
        let version = text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("cannot read systemd's version from {text:?}"));
        let unit_dir = must(&["systemd-path", "systemd-system-unit"]);
        let target = format!("{}/system-update.target", unit_dir.trim());

        // "libx.so => /lib/libx.so (0x..)" or "/lib64/ld-linux-x86-64.so.2 (0x..)"
        let mut names: Vec<String> = must(&["ldd", &generator])
            .lines()
            .filter_map(|l| {
                let path = l.split("=>").last()?.split_whitespace().next()?;
                path.starts_with('/').then(|| path.to_string())
            })
            .collect();
        names.push(generator.clone());
        // Links are resolved inside the root: an absolute one would lead to
        // the host's file.
        let mut argv = vec!["realpath", "-e"];
        argv.extend(names.iter().map(String::as_str));
        let real = must(&argv);
        let real: Vec<&str> = real.lines().collect();
        assert_eq!(real.len(), names.len(), "realpath of {names:?}: {real:?}");
        let files = names
            .into_iter()
            .zip(real)
            .map(|(name, real)| (name, root.join(real.trim_start_matches('/'))))
            .collect();
        Systemd {
            root: root.to_path_buf(),
            version,
            generator,
            target,
            files,
        }
    }

    fn label(&self) -> String {
        format!("systemd {} in {}", self.version, self.root.display())
    }

    /// Copies the generator and its libraries into the scratch root.
    fn install(&self, scratch: &Path) {
        for (name, file) in &self.files {
            let dest = scratch.join(name.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir in chroot");
            fs::copy(file, &dest)
                .unwrap_or_else(|e| panic!("copy {} into chroot: {e}", file.display()));
        }
    }

    fn run(&self, scratch: &Path, out: &str) -> Output {
        Command::new("/usr/sbin/chroot")
            .arg(scratch)
            .arg(&self.generator)
            .arg(out)
            .env_clear()
            .env("SYSTEMD_LOG_TARGET", "console")
            .output()
            .expect("chroot into the scratch root (needs root)")
    }
}

/// The root file systems of SYSTEM_UPDATE_SYSTEMD_ROOTS. Without that
/// variable their systemds are skipped with a message, and under tests/check
/// (SYSTEM_UPDATE_TEST_ALL) that is a failure.
fn other_roots() -> Vec<PathBuf> {
    let roots = std::env::var_os(ROOTS_VAR).filter(|v| !v.is_empty());
    let Some(roots) = roots else {
        let how = format!(
            "{ROOTS_VAR} names no root file system with another systemd: set it to e.g. \
             the Debian 13 base of the real boots (systemd 257), \
             {ROOTS_VAR}=$(tests/vm/build-base tests/vm/work trixie)/rootfs, as tests/check does"
        );
        assert!(
            std::env::var_os("SYSTEM_UPDATE_TEST_ALL").is_none(),
            "tests/check compares every systemd, but {how}"
        );
        eprintln!("skipped: systemd 257 and any other: {how}");
        return Vec::new();
    };
    let roots: Vec<PathBuf> = std::env::split_paths(&roots).collect();
    for root in &roots {
        assert!(
            root.join("etc").is_dir(),
            "{ROOTS_VAR}: {} is not a root file system",
            root.display()
        );
    }
    roots
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    State(State),
    /// `/system-update` exists and default.target is already a link to
    /// system-update.target (both generators installed).
    AlreadyLinked,
    /// `/system-update` exists, but this is the initrd (/etc/initrd-release).
    Initrd,
}

/// Where systemd `version` and we differ on purpose, and how. Measured with
/// 252 (Debian 12) and 257 (Debian 13); a threshold is the version where
/// systemd changed, where known, else the first measured with the change.
fn expected_difference(case: Case, version: u32) -> Option<&'static str> {
    match case {
        // systemd checks /etc/system-update from 254 on.
        Case::State(State::EtcOnly) if version < 254 => Some("systemd ignores /etc/system-update"),
        // 252 and 257 both fail with EEXIST ("Failed to create symlink
        // .../default.target: File exists", exit 1); we accept a link to
        // system-update.target.
        Case::AlreadyLinked => Some("systemd fails on an existing default.target"),
        // 252 does not look for the initrd and redirects it too; 257 skips
        // the initrd ("Skipping generator, running in the initrd.") as we do.
        // Between them nothing was measured: 257 is the first version known
        // to skip.
        Case::Initrd if version < 257 => Some("systemd redirects the initrd too"),
        _ => None,
    }
}

/// What we do in every case of an expected difference: redirect and succeed,
/// except in the initrd, where we do nothing.
fn ours_expected(case: Case, target: &str) -> (Option<i32>, Vec<(String, String)>) {
    match case {
        Case::Initrd => (Some(0), vec![]),
        _ => (
            Some(0),
            vec![("default.target".to_string(), format!("-> {target}"))],
        ),
    }
}

/// Our listing as if we were built for `systemd`: our link names the unit
/// directory we were built for (system_update_generator::TARGET_UNIT, the
/// host's systemd's), systemd's its own. On the host both are the same and
/// nothing changes; Debian 13's systemd links /usr/lib/systemd/system/…
/// where a build on Debian 12 links /lib/systemd/system/….
fn as_built_for(listing: Vec<(String, String)>, systemd: &Systemd) -> Vec<(String, String)> {
    let ours = format!("-> {}", system_update_generator::TARGET_UNIT);
    listing
        .into_iter()
        .map(|(name, what)| {
            if what == ours {
                (name, format!("-> {}", systemd.target))
            } else {
                (name, what)
            }
        })
        .collect()
}

/// Runs every case with `systemd`'s generator and ours; returns how many
/// cases had the same result.
fn compare(systemd: &Systemd) -> usize {
    let label = systemd.label();
    let version = systemd.version;
    let mut cases: Vec<Case> = ALL_STATES.iter().map(|s| Case::State(*s)).collect();
    cases.extend([Case::AlreadyLinked, Case::Initrd]);
    let mut compared = 0;
    for case in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let state = match case {
            Case::State(s) => s,
            Case::AlreadyLinked | Case::Initrd => State::LinkToDir,
        };
        systemd.install(root);
        make_state(root, state);
        if case == Case::Initrd {
            fs::create_dir_all(root.join("etc")).expect("mkdir etc");
            fs::write(root.join("etc/initrd-release"), "NAME=initrd\n").expect("write");
        }
        let (theirs_dir, ours_dir) = (root.join("out-systemd"), root.join("out-ours"));
        fs::create_dir(&theirs_dir).expect("mkdir");
        fs::create_dir(&ours_dir).expect("mkdir");
        if case == Case::AlreadyLinked {
            for d in [&theirs_dir, &ours_dir] {
                symlink(&systemd.target, d.join("default.target")).expect("symlink");
            }
        }

        let theirs = systemd.run(root, "/out-systemd");
        let ours = run_ours(root, &[&ours_dir], &[]);
        let (t, o) = (
            (theirs.status.code(), listing(&theirs_dir)),
            (
                ours.status.code(),
                as_built_for(listing(&ours_dir), systemd),
            ),
        );

        match expected_difference(case, version) {
            None => {
                assert_eq!(
                    o,
                    t,
                    "{case:?}: ours (left) differs from {label}'s (right); systemd said {:?}",
                    String::from_utf8_lossy(&theirs.stderr)
                );
                compared += 1;
            }
            Some(why) => {
                assert_ne!(
                    o, t,
                    "{case:?}: expected a difference with {label} ({why}) but both did the same"
                );
                assert_eq!(
                    o,
                    ours_expected(case, &systemd.target),
                    "{case:?}: {}",
                    stderr(&ours)
                );
            }
        }
    }
    compared
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn same_output_as_systemds_generator() {
    if !root_or_skip("the differential test chroots into scratch roots") {
        return;
    }
    assert!(
        nix_is_root(),
        "the differential test chroots into scratch roots: run it as root"
    );
    let host = Systemd::in_root(Path::new("/"));
    assert_eq!(
        system_update_generator::TARGET_UNIT,
        host.target,
        "ours is built for the host's systemd's unit directory"
    );
    // The host's first: it is compared whatever the variable says.
    check(&host);
    for root in other_roots() {
        check(&Systemd::in_root(&root));
    }
}

fn check(systemd: &Systemd) {
    let compared = compare(systemd);
    // Guards against a loop that silently compared nothing.
    assert!(
        compared >= 7,
        "{}: only {compared} cases compared",
        systemd.label()
    );
    eprintln!(
        "{}: {compared} cases the same, the rest differ as expected",
        systemd.label()
    );
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
