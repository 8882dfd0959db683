//! Shared test helpers: scratch roots where `dpkg --root` works (with a
//! shell for maintainer scripts) and small .deb packages built with
//! `dpkg-deb --build`.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_system-update");

/// Programs maintainer scripts in the tests may call (besides builtins).
const TOOLS: [&str; 2] = ["/bin/sh", "/usr/bin/sleep"];

pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub debs: PathBuf,
}

fn copy_into(root: &Path, host: &Path) {
    let real = fs::canonicalize(host).unwrap();
    let dest = root.join(host.strip_prefix("/").unwrap());
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(&real, &dest).unwrap();
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let debs = dir.path().join("debs");
        fs::create_dir_all(&debs).unwrap();
        for d in ["info", "updates", "triggers", "alternatives"] {
            fs::create_dir_all(root.join("var/lib/dpkg").join(d)).unwrap();
        }
        for f in ["status", "available"] {
            fs::write(root.join("var/lib/dpkg").join(f), b"").unwrap();
        }
        for d in ["etc", "tmp", "var/log"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        // dpkg chroots into the root for maintainer scripts: give it a shell
        // and the libraries it loads.
        for tool in TOOLS {
            copy_into(&root, Path::new(tool));
            let out = Command::new("ldd").arg(tool).output().unwrap();
            for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if word.starts_with('/') && Path::new(word).exists() {
                    copy_into(&root, Path::new(word));
                }
            }
        }
        Scratch { dir, root, debs }
    }

    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Runs system-update with `--root` on this scratch root.
    pub fn su(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .env_remove("SYSTEM_UPDATE_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    pub fn su_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `apply` without a UI: the tests must not write on the machine's
    /// consoles (Output::Consoles).
    pub fn apply(&self) -> Output {
        self.su(&["apply", "--ui", "none", "--no-reboot"])
    }

    /// Plain `dpkg -i` into the root, as an admin would.
    pub fn dpkg_install(&self, deb: &Path) {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", self.root.display()))
            .arg(format!(
                "--log={}",
                self.path("/var/log/dpkg.log").display()
            ))
            .arg("-i")
            .arg(deb)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg -i: {}", show(&out));
    }

    pub fn version(&self, pkg: &str) -> Option<String> {
        let out = Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                self.path("/var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Status}|${Version}", pkg])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        match s.split_once('|') {
            Some((st, v)) if st.ends_with(" installed") => Some(v.to_string()),
            _ => None,
        }
    }

    /// `dpkg --audit` output; empty when the database is consistent.
    pub fn audit(&self) -> String {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", self.root.display()))
            .arg("--audit")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn results(&self) -> serde_json::Value {
        let out = self.su(&["results", "--json"]);
        assert!(out.status.success(), "{}", show(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn link_exists(&self) -> bool {
        self.path("/system-update").symlink_metadata().is_ok()
    }

    pub fn update_dir(&self) -> PathBuf {
        self.path("/var/lib/system-update")
    }

    /// Prepares `debs` and triggers without rebooting.
    pub fn prepare_and_trigger(&self, debs: &[&Path]) {
        let mut args = vec!["prepare".to_string()];
        args.extend(debs.iter().map(|d| d.display().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.su(&a);
        assert!(out.status.success(), "prepare: {}", show(&out));
        let out = self.su(&["trigger", "--no-reboot"]);
        assert!(out.status.success(), "trigger: {}", show(&out));
        assert!(self.link_exists());
    }
}

pub struct Deb<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// (path inside the package, contents)
    pub files: Vec<(&'a str, &'a str)>,
    pub postinst: Option<&'a str>,
}

impl<'a> Deb<'a> {
    pub fn new(name: &'a str, version: &'a str) -> Deb<'a> {
        Deb {
            name,
            version,
            files: Vec::new(),
            postinst: None,
        }
    }

    pub fn file(mut self, path: &'a str, contents: &'a str) -> Self {
        self.files.push((path, contents));
        self
    }

    pub fn postinst(mut self, script: &'a str) -> Self {
        self.postinst = Some(script);
        self
    }

    /// Builds the package into `out_dir` and returns its path.
    pub fn build(&self, out_dir: &Path) -> PathBuf {
        let tree = out_dir.join(format!("tree-{}-{}", self.name, self.version));
        let _ = fs::remove_dir_all(&tree);
        fs::create_dir_all(tree.join("DEBIAN")).unwrap();
        fs::write(
            tree.join("DEBIAN/control"),
            format!(
                "Package: {}\nVersion: {}\nArchitecture: all\nMaintainer: Test <test@example.invalid>\nDescription: test package\n",
                self.name, self.version
            ),
        )
        .unwrap();
        if let Some(script) = self.postinst {
            let p = tree.join("DEBIAN/postinst");
            fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (path, contents) in &self.files {
            let p = tree.join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, contents).unwrap();
        }
        let deb = out_dir.join(format!("{}_{}_all.deb", self.name, self.version));
        let out = Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&tree)
            .arg(&deb)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg-deb: {}", show(&out));
        fs::remove_dir_all(&tree).unwrap();
        deb
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch root with `foo` 1 installed and `foo` 2 built.
pub fn with_foo_v1(v2_postinst: Option<&str>) -> (Scratch, PathBuf) {
    let s = Scratch::new();
    let v1 = Deb::new("foo", "1")
        .file("/opt/foo/version", "1\n")
        .build(&s.debs);
    s.dpkg_install(&v1);
    let mut v2 = Deb::new("foo", "2").file("/opt/foo/version", "2\n");
    if let Some(p) = v2_postinst {
        v2 = v2.postinst(p);
    }
    let v2 = v2.build(&s.debs);
    (s, v2)
}
