//! rpm packages built here with rpmbuild, and the real rpm on a scratch
//! root (`--root`, the database in /var/lib/rpm).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::gpg::Key;
use super::{show, Scratch};

/// Root (rpm chroots into the root for scriptlets) and rpmbuild.
pub fn ready() -> bool {
    super::root_or_skip("rpm chroots into the scratch root for scriptlets")
        && super::tool_or_skip("rpmbuild", "rpm")
}

/// A package that installs /usr/share/NAME/version (holding VERSION).
pub struct Rpm<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub post: Option<&'a str>,
    pub requires: Option<&'a str>,
    pub provides: Option<&'a str>,
    /// `noarch` unless set.
    pub arch: &'a str,
}

impl<'a> Rpm<'a> {
    pub fn new(name: &'a str, version: &'a str) -> Rpm<'a> {
        Rpm {
            name,
            version,
            post: None,
            requires: None,
            provides: None,
            arch: "noarch",
        }
    }

    pub fn arch(mut self, arch: &'a str) -> Self {
        self.arch = arch;
        self
    }

    pub fn post(mut self, script: &'a str) -> Self {
        self.post = Some(script);
        self
    }

    pub fn requires(mut self, what: &'a str) -> Self {
        self.requires = Some(what);
        self
    }

    pub fn provides(mut self, what: &'a str) -> Self {
        self.provides = Some(what);
        self
    }

    fn spec(&self) -> String {
        let (n, v) = (self.name, self.version);
        let mut spec =
            format!("Name: {n}\nVersion: {v}\nRelease: 1\nSummary: test\nLicense: MIT\n");
        if self.arch == "noarch" {
            spec += "BuildArch: noarch\n";
        }
        if let Some(r) = self.requires {
            spec += &format!("Requires: {r}\n");
        }
        if let Some(p) = self.provides {
            spec += &format!("Provides: {p}\n");
        }
        spec += &format!(
            "%description\ntest\n%install\nmkdir -p %{{buildroot}}/usr/share/{n}\necho {v} > %{{buildroot}}/usr/share/{n}/version\n"
        );
        if let Some(p) = self.post {
            spec += &format!("%post\n{p}\n");
        }
        spec + &format!("%files\n/usr/share/{n}/version\n")
    }

    /// Builds the package into `out` and returns its path.
    pub fn build(&self, out: &Path) -> PathBuf {
        let top = tempfile::tempdir().unwrap();
        let path = top.path().join("p.spec");
        fs::write(&path, self.spec()).unwrap();
        let o = Command::new("rpmbuild")
            .env("HOME", top.path())
            .args(["-bb", "--quiet", "--nodeps", "--define"])
            .arg(format!("_topdir {}", top.path().display()))
            .args(["--define", "_build_id_links none"])
            .args(["--define", "debug_package %{nil}"])
            .args(["--define", "__os_install_post %{nil}"])
            .args(["--target", self.arch])
            .arg(&path)
            .output()
            .unwrap();
        assert!(o.status.success(), "rpmbuild: {}", show(&o));
        let (n, v, a) = (self.name, self.version, self.arch);
        let built = top.path().join(format!("RPMS/{a}/{n}-{v}-1.{a}.rpm"));
        let dest = out.join(format!("{n}-{v}-1.{a}.rpm"));
        fs::copy(built, &dest).unwrap();
        dest
    }
}

/// rpm on `root`, its database in /var/lib/rpm.
pub fn rpm(root: &Path) -> Command {
    let mut c = Command::new("rpm");
    c.arg("--root").arg(root).args(["--dbpath", "/var/lib/rpm"]);
    c
}

/// Plain `rpm -U` into the root, as an admin would.
pub fn install(root: &Path, files: &[&Path]) {
    let o = rpm(root)
        .args(["-U", "--force-debian"])
        .args(files)
        .output()
        .unwrap();
    assert!(o.status.success(), "rpm -U: {}", show(&o));
}

/// The installed VERSION-RELEASE of `name`.
pub fn version(root: &Path, name: &str) -> Option<String> {
    let o = rpm(root)
        .args(["-q", "--qf", "%{VERSION}-%{RELEASE}", name])
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Makes `s` an rpm root: an empty database in which /bin/sh is recorded
/// as provided (as the distribution's shell package would), its package
/// built into `s.debs`.
pub fn init(s: &Scratch) {
    fs::create_dir_all(s.path("/var/lib/rpm")).unwrap();
    let o = rpm(&s.root).arg("--initdb").output().unwrap();
    assert!(o.status.success(), "rpm --initdb: {}", show(&o));
    let sh = Rpm::new("shell", "1").provides("/bin/sh").build(&s.debs);
    install(&s.root, &[&sh]);
}

/// A key that signs packages as a distribution's build service would.
pub struct Signer(Key);

impl Signer {
    pub fn new() -> Signer {
        Signer(Key::new("Test Signer <signer@example.invalid>", "rsa2048"))
    }

    /// Signs `file` in place.
    pub fn sign(&self, file: &Path) {
        let o = Command::new("rpmsign")
            .env("GNUPGHOME", self.0.home())
            .arg("--addsign")
            .arg("--define")
            .arg(format!("_gpg_name {}", self.0.name()))
            .args(["--define", "__gpg /usr/bin/gpg"])
            .arg(file)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(o.status.success(), "rpmsign: {}", show(&o));
    }

    /// Imports the public key into the root's rpm database: the root
    /// trusts it.
    pub fn trusted_by(&self, root: &Path) {
        let key = self.0.home().join("key.asc");
        self.0.export(&key, true);
        let o = rpm(root).arg("--import").arg(&key).output().unwrap();
        assert!(o.status.success(), "rpm --import: {}", show(&o));
    }
}

/// The root trusts no key any more.
pub fn distrust_all(root: &Path) {
    let o = rpm(root)
        .args(["-e", "--allmatches", "gpg-pubkey"])
        .output()
        .unwrap();
    assert!(o.status.success(), "rpm -e gpg-pubkey: {}", show(&o));
}

/// As `ready`, and gpg and rpmsign to sign packages.
pub fn signing_ready() -> bool {
    ready() && super::tool_or_skip("gpg", "gpg") && super::tool_or_skip("rpmsign", "rpm")
}

/// The root's rpm requires a signature of every package it installs.
pub fn require_signatures(s: &Scratch) {
    fs::create_dir_all(s.path("/etc/rpm")).unwrap();
    fs::write(
        s.path("/etc/rpm/macros.verify"),
        "%_pkgverify_level signature\n",
    )
    .unwrap();
}

/// As `ready`, and dnf and createrepo_c for repositories.
pub fn dnf_ready() -> bool {
    ready()
        && super::tool_or_skip("dnf", "dnf")
        && super::tool_or_skip("createrepo_c", "createrepo-c")
}

/// Debian's dnf looks for the rpm database under the root's ~/.rpmdb:
/// point that at the real one.
pub fn dnf_finds_the_database(s: &Scratch) {
    fs::create_dir_all(s.path("/root")).unwrap();
    std::os::unix::fs::symlink("../var/lib/rpm", s.path("/root/.rpmdb")).unwrap();
}

/// The root's dnf with one repository, `test`, of the packages `fill`
/// builds into its directory; `options` as the admin set them.
pub fn dnf_repository(s: &Scratch, fill: impl FnOnce(&Path), options: &str) {
    dnf_finds_the_database(s);
    let repo = s.dir.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    fill(&repo);
    let o = Command::new("createrepo_c")
        .arg("-q")
        .arg(&repo)
        .output()
        .unwrap();
    assert!(o.status.success(), "createrepo_c: {}", show(&o));
    fs::create_dir_all(s.path("/etc/yum.repos.d")).unwrap();
    let repo = repo.display();
    fs::write(
        s.path("/etc/yum.repos.d/test.repo"),
        format!("[test]\nname=test\nbaseurl=file://{repo}\n{options}\n"),
    )
    .unwrap();
}
