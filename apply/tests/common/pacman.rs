//! pacman packages built here with bsdtar (.PKGINFO, .INSTALL, files) as
//! makepkg would pack them, and the real pacman on a scratch root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::gpg::Key;
use super::show;

/// Root (pacman chroots into the root for install scripts), pacman and
/// bsdtar.
pub fn ready() -> bool {
    super::root_or_skip("pacman chroots into the scratch root for install scripts")
        && super::tool_or_skip("pacman", "pacman-package-manager")
        && super::tool_or_skip("bsdtar", "libarchive-tools")
}

/// A package that installs /usr/share/NAME/version (holding VERSION).
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The whole .INSTALL file (functions such as `post_upgrade`).
    pub install: Option<&'a str>,
    pub depends: Vec<&'a str>,
    /// `any` unless set.
    pub arch: &'a str,
}

impl<'a> Pkg<'a> {
    pub fn new(name: &'a str, version: &'a str) -> Pkg<'a> {
        Pkg {
            name,
            version,
            install: None,
            depends: Vec::new(),
            arch: "any",
        }
    }

    pub fn install(mut self, script: &'a str) -> Self {
        self.install = Some(script);
        self
    }

    pub fn depends(mut self, what: &'a str) -> Self {
        self.depends.push(what);
        self
    }

    pub fn arch(mut self, arch: &'a str) -> Self {
        self.arch = arch;
        self
    }

    fn pkginfo(&self) -> String {
        let (n, v, a) = (self.name, self.version, self.arch);
        let mut info = format!(
            "pkgname = {n}\npkgbase = {n}\npkgver = {v}-1\npkgdesc = test\nbuilddate = 0\nsize = 4096\narch = {a}\n"
        );
        for dep in &self.depends {
            info += &format!("depend = {dep}\n");
        }
        info
    }

    /// Builds the package into `out` and returns its path.
    pub fn build(&self, out: &Path) -> PathBuf {
        let d = tempfile::tempdir().unwrap();
        let share = d.path().join(format!("usr/share/{}", self.name));
        fs::create_dir_all(&share).unwrap();
        fs::write(share.join("version"), format!("{}\n", self.version)).unwrap();
        fs::write(d.path().join(".PKGINFO"), self.pkginfo()).unwrap();
        let mut members = vec![".PKGINFO"];
        if let Some(script) = self.install {
            fs::write(d.path().join(".INSTALL"), script).unwrap();
            members.push(".INSTALL");
        }
        members.push("usr");
        let (n, v, a) = (self.name, self.version, self.arch);
        let file = out.join(format!("{n}-{v}-1-{a}.pkg.tar.zst"));
        let o = Command::new("bsdtar")
            .current_dir(d.path())
            .args(["--zstd", "-cf"])
            .arg(&file)
            .args(["--uid", "0", "--gid", "0"])
            .args(&members)
            .output()
            .unwrap();
        assert!(o.status.success(), "bsdtar: {}", show(&o));
        file
    }
}

/// pacman on `root` with the root's own database, log, cache, hooks and
/// keyring, and a configuration of its own (in the root's /etc, so that
/// a copied root keeps it) that is not the root's pacman.conf.
pub fn pacman(root: &Path) -> Command {
    let conf = root.join("etc/tests-pacman.conf");
    if !conf.exists() {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(&conf, "[options]\nArchitecture = auto\n").unwrap();
    }
    let mut c = Command::new("pacman");
    c.arg("--config").arg(conf).arg("--root").arg(root);
    for (opt, dir) in [
        ("--dbpath", "var/lib/pacman"),
        ("--logfile", "var/log/pacman.log"),
        ("--cachedir", "var/cache/pacman/pkg"),
        ("--hookdir", "etc/pacman.d/hooks"),
        ("--gpgdir", "etc/pacman.d/gnupg"),
    ] {
        c.arg(opt).arg(root.join(dir));
    }
    c
}

/// Plain `pacman -U` into the root, as an admin would.
pub fn install(root: &Path, files: &[&Path]) {
    let o = pacman(root)
        .args(["--noconfirm", "--noprogressbar", "-U"])
        .args(files)
        .output()
        .unwrap();
    assert!(o.status.success(), "pacman -U: {}", show(&o));
}

/// The installed PKGVER-PKGREL of `name`.
pub fn version(root: &Path, name: &str) -> Option<String> {
    let o = pacman(root).args(["-Q", name]).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    o.status
        .success()
        .then(|| text.split_whitespace().nth(1).unwrap_or("").to_string())
}

/// A key that signs packages as a packager would (detached `FILE.sig`).
pub struct Signer(Key);

impl Signer {
    pub fn new() -> Signer {
        Signer(Key::new("Pkg Signer <pkg@example.invalid>", "rsa2048"))
    }

    pub fn sign(&self, file: &Path) {
        let o = self
            .0
            .gpg()
            .args(["--yes", "--detach-sign", "--no-armor"])
            .arg(file)
            .output()
            .unwrap();
        assert!(o.status.success(), "gpg --detach-sign: {}", show(&o));
    }

    pub fn fingerprint(&self) -> String {
        self.0.fingerprint()
    }

    /// Adds the key to the root's keyring and signs it locally: pacman
    /// trusts it.
    pub fn trusted_by(&self, root: &Path) {
        let file = self.0.home().join("key.asc");
        self.0.export(&file, true);
        key(root, &["--add", file.to_str().unwrap()]);
        key(root, &["--lsign-key", &self.fingerprint()]);
    }
}

/// pacman-key on the root's keyring, made first if it is not there.
pub fn key(root: &Path, args: &[&str]) {
    let gpgdir = root.join("etc/pacman.d/gnupg");
    if !gpgdir.join("pubring.gpg").exists() && !gpgdir.join("pubring.kbx").exists() {
        let o = Command::new("pacman-key")
            .arg("--gpgdir")
            .arg(&gpgdir)
            .arg("--init")
            .output()
            .unwrap();
        assert!(o.status.success(), "pacman-key --init: {}", show(&o));
    }
    let o = Command::new("pacman-key")
        .arg("--gpgdir")
        .arg(&gpgdir)
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "pacman-key {args:?}: {}", show(&o));
}

/// As `ready`, and gpg and pacman-key to sign packages.
pub fn signing_ready() -> bool {
    ready()
        && super::tool_or_skip("gpg", "gpg")
        && super::tool_or_skip("pacman-key", "pacman-package-manager")
}

/// The root's own pacman.conf, with `options` in [options].
pub fn conf(root: &Path, options: &str) {
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/pacman.conf"),
        format!("[options]\nArchitecture = auto\n{options}"),
    )
    .unwrap();
}

/// The root's pacman.conf with one repository, `test`, made with repo-add
/// from `pkgs` (beside the root); `siglevel` as the admin set it.
pub fn repository(root: &Path, pkgs: &[PathBuf], siglevel: &str) {
    let repo = root.with_file_name("repo");
    fs::create_dir_all(&repo).unwrap();
    let mut args = vec![repo.join("test.db.tar.gz")];
    for p in pkgs {
        let dest = repo.join(p.file_name().unwrap());
        fs::copy(p, &dest).unwrap();
        args.push(dest);
    }
    let o = Command::new("repo-add")
        .arg("-q")
        .args(&args)
        .output()
        .unwrap();
    assert!(o.status.success(), "repo-add: {}", show(&o));
    fs::write(
        root.join("etc/pacman.conf"),
        format!(
            "[options]\nArchitecture = auto\nSigLevel = {siglevel}\nLocalFileSigLevel = Optional\n[test]\nServer = file://{}\n",
            repo.display()
        ),
    )
    .unwrap();
}

/// As `ready`, and repo-add for repositories.
pub fn repository_ready() -> bool {
    ready() && super::tool_or_skip("repo-add", "pacman-package-manager")
}
