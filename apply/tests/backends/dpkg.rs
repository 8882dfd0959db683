//! dpkg's side of the shared cases: .deb packages, `dpkg --root`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, show, Deb, Scratch};
use crate::fixture::{Fixture, Pkg};

pub struct Dpkg;

impl Fixture for Dpkg {
    const NAME: &'static str = "dpkg";
    const DATABASE: &'static str = "var/lib/dpkg/status";
    const DATABASE_PATH: &'static str = "/var/lib/dpkg/status";
    const REPAIRED: &'static str = "dpkg --configure -a";

    fn ready() -> bool {
        common::root_or_skip("dpkg chroots into the scratch root")
    }

    fn root() -> Scratch {
        Scratch::new()
    }

    fn without_database() -> Scratch {
        let s = Scratch::new();
        fs::remove_file(s.path(Self::DATABASE_PATH)).unwrap();
        s
    }

    fn build(s: &Scratch, pkg: &Pkg) -> PathBuf {
        let (file, contents) = (pkg.file(), format!("{}\n", pkg.version));
        let mut deb = Deb::new(pkg.name, pkg.version).file(&file, &contents);
        if let Some(script) = pkg.script {
            deb = deb.postinst(script);
        }
        if let Some(what) = pkg.depends {
            deb = deb.field("Depends", what);
        }
        if let Some(arch) = pkg.arch {
            deb = deb.arch(arch);
        }
        deb.build(&s.debs)
    }

    fn install(s: &Scratch, files: &[&Path]) {
        for f in files {
            s.dpkg_install(f);
        }
    }

    fn version(s: &Scratch, name: &str) -> Option<String> {
        s.version(name)
    }

    fn spelled(version: &str) -> String {
        version.to_string()
    }

    fn complaints(s: &Scratch) -> String {
        s.audit()
    }

    fn script_failed(_pkg: &Pkg) -> String {
        "post-installation script subprocess returned error exit status 1".into()
    }

    fn unmet(needy: &Pkg, missing: &str) -> String {
        format!(
            "{} : Depends: {missing} but it is not installable",
            needy.name
        )
    }

    fn no_database() -> &'static [&'static str] {
        &["var/lib/dpkg/status: no dpkg database"]
    }

    fn foreign_arch(_s: &Scratch) -> (String, &'static str) {
        let out = Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .unwrap();
        let other = match String::from_utf8_lossy(&out.stdout).trim() {
            "arm64" => "amd64",
            _ => "arm64",
        };
        (other.into(), "all")
    }

    /// Once the root's dpkg takes that architecture, so does prepare.
    fn root_decides(s: &Scratch, arch: &str, refused: &Path) {
        let o = Command::new("dpkg")
            .arg(format!("--root={}", s.root.display()))
            .args(["--add-architecture", arch])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show(&o));
        let out = s.su(&["prepare", refused.to_str().unwrap()]);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("a package for"),
            "{}",
            show(&out)
        );
    }

    fn after_cut(s: &Scratch) {
        assert!(!s.audit().is_empty(), "dpkg --audit should complain");
    }

    fn after_success(s: &Scratch, _out: &Output) {
        let log = s.path(s.results()["log"].as_str().unwrap());
        let log = fs::read_to_string(log).unwrap();
        assert!(log.contains("Unpacking hello (2.0) over (1.0)"), "{log}");
    }
}
