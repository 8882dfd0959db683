//! pacman's side of the shared cases: packages packed with bsdtar,
//! `pacman --root`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::pacman::{self, Pkg as Package};
use crate::common::{code, show, Scratch};
use crate::fixture::{Fixture, Pkg};
use crate::signed::Signing;
use crate::upgrade::Upgrading;

pub struct Pacman;

impl Fixture for Pacman {
    const NAME: &'static str = "pacman";
    const DATABASE: &'static str = "pacman database";
    const DATABASE_PATH: &'static str = "/var/lib/pacman";
    const REPAIRED: &'static str = "db.lck";

    fn ready() -> bool {
        pacman::ready()
    }

    /// An empty database: pacman's `local` directory, as pacman makes it
    /// on its first install.
    fn root() -> Scratch {
        let s = Scratch::new();
        fs::create_dir_all(s.path("/var/lib/pacman/local")).unwrap();
        s
    }

    fn build(s: &Scratch, pkg: &Pkg) -> PathBuf {
        let install = pkg
            .script
            .map(|body| format!("post_upgrade() {{\n{body}\n}}\n"));
        let mut p = Package::new(pkg.name, pkg.version);
        if let Some(script) = &install {
            p = p.install(script);
        }
        if let Some(what) = pkg.depends {
            p = p.depends(what);
        }
        if let Some(arch) = pkg.arch {
            p = p.arch(arch);
        }
        p.build(&s.debs)
    }

    fn install(s: &Scratch, files: &[&Path]) {
        pacman::install(&s.root, files);
    }

    fn version(s: &Scratch, name: &str) -> Option<String> {
        pacman::version(&s.root, name)
    }

    fn spelled(version: &str) -> String {
        format!("{version}-1")
    }

    /// No lock left behind, and `pacman -Dk` content.
    fn complaints(s: &Scratch) -> String {
        let mut said = String::new();
        if s.path("/var/lib/pacman/db.lck").exists() {
            said += "db.lck is still there\n";
        }
        let o = pacman::pacman(&s.root).arg("-Dk").output().unwrap();
        if !o.status.success() {
            said += &format!("pacman -Dk: {}", show(&o));
        }
        said
    }

    fn script_failed(pkg: &Pkg) -> String {
        format!("{}: its install script failed", pkg.name)
    }

    fn unmet(needy: &Pkg, missing: &str) -> String {
        format!(
            "unable to satisfy dependency '{missing}' required by {}",
            needy.name
        )
    }

    fn no_database() -> &'static [&'static str] {
        &["var/lib/pacman/local: no pacman database"]
    }

    /// The root's pacman.conf names its architecture.
    fn foreign_arch(s: &Scratch) -> (String, &'static str) {
        fs::write(
            s.path("/etc/pacman.conf"),
            "[options]\nArchitecture = x86_64\n",
        )
        .unwrap();
        ("aarch64".into(), "any, x86_64")
    }

    /// The root's Architecture decides, not this machine's.
    fn root_decides(s: &Scratch, _arch: &str, _refused: &Path) {
        let native = Self::build(s, &Pkg::new("hello", "6.0").arch("x86_64"));
        let out = s.su(&["prepare", native.to_str().unwrap()]);
        assert_eq!(code(&out), 0, "{}", show(&out));
    }

    fn after_cut(s: &Scratch) {
        assert!(
            s.path("/var/lib/pacman/db.lck").exists(),
            "pacman's lock stays"
        );
    }

    /// The host's pacman was kept out: the root's own log has the
    /// transaction.
    fn after_success(s: &Scratch, out: &Output) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Upgrading hello"), "{text}");
        let log = fs::read_to_string(s.path("/var/log/pacman.log")).unwrap();
        assert!(log.contains("upgraded hello (1.0-1 -> 2.0-1)"), "{log}");
    }
}

impl Signing for Pacman {
    type Signer = pacman::Signer;
    const TAMPERED: (&'static str, &'static str) =
        ("its signature does not verify", "BAD signature");

    fn signing_ready() -> bool {
        pacman::signing_ready()
    }

    fn signer() -> pacman::Signer {
        pacman::Signer::new()
    }

    fn sign(signer: &pacman::Signer, file: &Path) {
        signer.sign(file);
    }

    fn trust(signer: &pacman::Signer, s: &Scratch) {
        signer.trusted_by(&s.root);
    }

    fn distrust(signer: &pacman::Signer, s: &Scratch) {
        pacman::key(&s.root, &["--delete", &signer.fingerprint()]);
    }

    fn require_signatures(s: &Scratch) {
        pacman::conf(
            &s.root,
            "SigLevel = Optional\nLocalFileSigLevel = Required\n",
        );
    }

    /// The detached signature travels beside the package.
    fn payload(file: &Path) -> Vec<PathBuf> {
        let sig = format!("{}.sig", file.display());
        vec![file.to_path_buf(), PathBuf::from(sig)]
    }

    /// Replaced after signing by a package of the same name, its .sig
    /// kept.
    fn tamper(_s: &Scratch, pkg: &Pkg, file: &Path) {
        Package::new(pkg.name, pkg.version)
            .install("post_upgrade() {\n  :\n}\n")
            .build(file.parent().unwrap());
    }
}

impl Upgrading for Pacman {
    const PLANNER: &'static str = "pacman";

    fn upgrade_ready() -> bool {
        pacman::repository_ready()
    }

    fn hello_2_needs_libhello(s: &Scratch) {
        let repo_pkgs = s.dir.path().join("repo-pkgs");
        fs::create_dir_all(&repo_pkgs).unwrap();
        let hello2 = Package::new("hello", "2.0")
            .depends("libhello")
            .build(&repo_pkgs);
        let lib = Package::new("libhello", "2.0").build(&repo_pkgs);
        pacman::repository(&s.root, &[hello2, lib], "Optional TrustAll");
    }
}
