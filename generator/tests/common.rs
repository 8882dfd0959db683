//! Scratch roots and runs of the generator binary, shared by the tests.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
#[allow(unused_imports)]
pub use system_update_test_support::root_or_skip;

pub const OURS: &str = env!("CARGO_BIN_EXE_system-update-generator");

/// A state of the root the generator looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Nothing,
    LinkToDir,
    Dangling,
    RegularFile,
    Directory,
    EtcOnly,
    Both,
    EtcIsFile,
}

pub const ALL_STATES: [State; 8] = [
    State::Nothing,
    State::LinkToDir,
    State::Dangling,
    State::RegularFile,
    State::Directory,
    State::EtcOnly,
    State::Both,
    State::EtcIsFile,
];

/// Puts `root` in `state`.
pub fn make_state(root: &Path, state: State) {
    fs::create_dir_all(root.join("var/lib/system-update")).expect("mkdir update dir");
    // A booted system always has a command line; tests that care overwrite it.
    fs::create_dir_all(root.join("proc")).expect("mkdir proc");
    fs::write(root.join("proc/cmdline"), "root=/dev/vda ro quiet\n").expect("write cmdline");
    match state {
        State::Nothing => fs::create_dir_all(root.join("etc")).expect("mkdir etc"),
        State::LinkToDir => {
            symlink("/var/lib/system-update", root.join("system-update")).expect("symlink")
        }
        State::Dangling => {
            symlink("/var/lib/nowhere", root.join("system-update")).expect("symlink")
        }
        State::RegularFile => fs::write(root.join("system-update"), b"").expect("write"),
        State::Directory => fs::create_dir(root.join("system-update")).expect("mkdir"),
        State::EtcOnly => {
            fs::create_dir_all(root.join("etc")).expect("mkdir etc");
            symlink("/var/lib/system-update", root.join("etc/system-update")).expect("symlink")
        }
        State::Both => {
            fs::create_dir_all(root.join("etc")).expect("mkdir etc");
            symlink("/var/lib/system-update", root.join("etc/system-update")).expect("symlink");
            symlink("/var/lib/system-update", root.join("system-update")).expect("symlink")
        }
        // Checking /etc/system-update then fails with ENOTDIR.
        State::EtcIsFile => fs::write(root.join("etc"), b"not a directory").expect("write"),
    }
}

/// What a generator left in its output directory: (name, link target or
/// kind), sorted.
pub fn listing(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(dir)
        .expect("read output dir")
        .map(|e| {
            let e = e.expect("dir entry");
            let p = e.path();
            let what = match fs::read_link(&p) {
                Ok(t) => format!("-> {}", t.display()),
                Err(_) if p.is_dir() => "dir".into(),
                Err(_) => "file".into(),
            };
            (e.file_name().to_string_lossy().into_owned(), what)
        })
        .collect();
    out.sort();
    out
}

/// Runs our generator on `root` with the given arguments, logging to stderr.
pub fn run_ours(root: &Path, args: &[&Path], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(OURS);
    cmd.args(args)
        .env_clear()
        .env("SYSTEM_UPDATE_GENERATOR_ROOT", root)
        .env("SYSTEMD_LOG_TARGET", "console");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run system-update-generator")
}

/// A scratch root with an empty output directory `out` inside it.
pub fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    fs::create_dir(&out).expect("mkdir out");
    (dir, out)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
