//! Small .deb packages built with `dpkg-deb --build`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::show;

pub struct Deb<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// (path inside the package, contents)
    pub files: Vec<(&'a str, &'a str)>,
    pub postinst: Option<&'a str>,
    pub preinst: Option<&'a str>,
    /// Installed-Size in KiB, claimed in the control file.
    pub installed_size: Option<u64>,
    /// More control fields (Depends, Conflicts, Replaces, ...).
    pub fields: Vec<(&'a str, &'a str)>,
    /// Its Architecture field, `all` unless set.
    pub arch: &'a str,
}

impl<'a> Deb<'a> {
    pub fn new(name: &'a str, version: &'a str) -> Deb<'a> {
        Deb {
            name,
            version,
            files: Vec::new(),
            postinst: None,
            preinst: None,
            installed_size: None,
            fields: Vec::new(),
            arch: "all",
        }
    }

    pub fn arch(mut self, arch: &'a str) -> Self {
        self.arch = arch;
        self
    }

    pub fn field(mut self, name: &'a str, value: &'a str) -> Self {
        self.fields.push((name, value));
        self
    }

    pub fn file(mut self, path: &'a str, contents: &'a str) -> Self {
        self.files.push((path, contents));
        self
    }

    pub fn installed_size(mut self, kib: u64) -> Self {
        self.installed_size = Some(kib);
        self
    }

    pub fn postinst(mut self, script: &'a str) -> Self {
        self.postinst = Some(script);
        self
    }

    pub fn preinst(mut self, script: &'a str) -> Self {
        self.preinst = Some(script);
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
                "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <test@example.invalid>\n{}{}Description: test package\n",
                self.name,
                self.version,
                self.arch,
                self.installed_size
                    .map(|k| format!("Installed-Size: {k}\n"))
                    .unwrap_or_default(),
                self.fields
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}\n"))
                    .collect::<String>()
            ),
        )
        .unwrap();
        for (name, script) in [("postinst", self.postinst), ("preinst", self.preinst)] {
            let Some(script) = script else { continue };
            let p = tree.join("DEBIAN").join(name);
            fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        for (path, contents) in &self.files {
            let p = tree.join(path.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, contents).unwrap();
        }
        let deb = out_dir.join(format!("{}_{}_{}.deb", self.name, self.version, self.arch));
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
