//! rpm's side of the shared cases: packages built with rpmbuild, `rpm
//! --root`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::rpm::{self, Rpm as Package};
use crate::common::{show, Scratch};
use crate::fixture::{Fixture, Pkg};
use crate::signed::Signing;
use crate::upgrade::Upgrading;

pub struct Rpm;

impl Fixture for Rpm {
    const NAME: &'static str = "rpm";
    const DATABASE: &'static str = "rpm database";
    const DATABASE_PATH: &'static str = "/var/lib/rpm";
    const REPAIRED: &'static str = "rpm --rebuilddb";

    fn ready() -> bool {
        rpm::ready()
    }

    fn root() -> Scratch {
        let s = Scratch::new();
        rpm::init(&s);
        s
    }

    fn build(s: &Scratch, pkg: &Pkg) -> PathBuf {
        let mut p = Package::new(pkg.name, pkg.version);
        if let Some(script) = pkg.script {
            p = p.post(script);
        }
        if let Some(what) = pkg.depends {
            p = p.requires(what);
        }
        if let Some(arch) = pkg.arch {
            p = p.arch(arch);
        }
        p.build(&s.debs)
    }

    fn install(s: &Scratch, files: &[&Path]) {
        rpm::install(&s.root, files);
    }

    fn version(s: &Scratch, name: &str) -> Option<String> {
        rpm::version(&s.root, name)
    }

    fn spelled(version: &str) -> String {
        format!("{version}-1")
    }

    /// `rpm -Va`: every installed file as the database says it should be.
    fn complaints(s: &Scratch) -> String {
        let o = rpm::rpm(&s.root).arg("-Va").output().unwrap();
        if o.status.success() && o.stdout.is_empty() && o.stderr.is_empty() {
            String::new()
        } else {
            format!("rpm -Va: {}", show(&o))
        }
    }

    fn script_failed(pkg: &Pkg) -> String {
        format!(
            "%post({}-{}-1.noarch) scriptlet failed",
            pkg.name, pkg.version
        )
    }

    fn unmet(needy: &Pkg, missing: &str) -> String {
        format!(
            "{missing} is needed by {}-{}-1.noarch",
            needy.name, needy.version
        )
    }

    fn no_database() -> &'static [&'static str] {
        &["no rpm database", "/usr/lib/sysimage/rpm", "/var/lib/rpm"]
    }

    fn foreign_arch(_s: &Scratch) -> (String, &'static str) {
        let other = if std::env::consts::ARCH == "aarch64" {
            "x86_64"
        } else {
            "aarch64"
        };
        (other.into(), "noarch")
    }

    fn after_success(_s: &Scratch, out: &Output) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Installing hello-2.0-1"), "{text}");
    }
}

impl Signing for Rpm {
    type Signer = rpm::Signer;
    const TAMPERED: (&'static str, &'static str) = ("the package does not verify", "BAD");

    fn signing_ready() -> bool {
        rpm::signing_ready()
    }

    fn signer() -> rpm::Signer {
        rpm::Signer::new()
    }

    fn sign(signer: &rpm::Signer, file: &Path) {
        signer.sign(file);
    }

    fn trust(signer: &rpm::Signer, s: &Scratch) {
        signer.trusted_by(&s.root);
    }

    fn distrust(_signer: &rpm::Signer, s: &Scratch) {
        rpm::distrust_all(&s.root);
    }

    fn require_signatures(s: &Scratch) {
        rpm::require_signatures(s);
    }

    /// The signature is in the package.
    fn payload(file: &Path) -> Vec<PathBuf> {
        vec![file.to_path_buf()]
    }

    /// A byte of the signed payload changed.
    fn tamper(_s: &Scratch, _pkg: &Pkg, file: &Path) {
        let mut bytes = fs::read(file).unwrap();
        let last = bytes.len() - 100;
        bytes[last] ^= 0xff;
        fs::write(file, bytes).unwrap();
    }
}

impl Upgrading for Rpm {
    const PLANNER: &'static str = "dnf";

    fn upgrade_ready() -> bool {
        rpm::dnf_ready()
    }

    fn hello_2_needs_libhello(s: &Scratch) {
        let fill = |repo: &Path| {
            Package::new("hello", "2.0")
                .requires("libhello")
                .build(repo);
            Package::new("libhello", "2.0").build(repo);
        };
        rpm::dnf_repository(s, fill, "gpgcheck=0");
    }
}
