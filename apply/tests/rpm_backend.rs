//! What only the rpm backend does, with the real rpm on scratch roots
//! (packages built with rpmbuild: common/rpm.rs): dnf, the database's
//! place, package signatures. The cases every backend passes alike are in
//! backends/. Needs root (rpm chroots into the root for scriptlets) and
//! rpm and rpmbuild (tests/install-deps installs them).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::gpg::Key;
use common::rpm::{self, Rpm};
use common::{code, show, Scratch};

const OK: i32 = 0;
const FAILURE: i32 = 1;
const VERIFICATION: i32 = 3;

/// An rpm root with hello 1.0 installed.
fn with_hello_1() -> Scratch {
    let s = Scratch::new();
    rpm::init(&s);
    let v1 = Rpm::new("hello", "1.0").build(&s.debs);
    rpm::install(&s.root, &[&v1]);
    s
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn packages_of_two_package_managers_are_refused() {
    if !rpm::ready() {
        return;
    }
    let s = with_hello_1();
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    let deb = common::Deb::new("foo", "1").build(&s.debs);
    let out = s.su(&["prepare", deb.to_str().unwrap(), v2.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("one package manager"), "{err}");
}

fn dnf_ready() -> bool {
    rpm::ready()
        && common::tool_or_skip("dnf", "dnf")
        && common::tool_or_skip("createrepo_c", "createrepo-c")
}

/// Debian's dnf looks for the rpm database under the root's ~/.rpmdb:
/// point that at the real one.
fn dnf_finds_the_database(s: &Scratch) {
    fs::create_dir_all(s.path("/root")).unwrap();
    std::os::unix::fs::symlink("../var/lib/rpm", s.path("/root/.rpmdb")).unwrap();
}

/// What a safe upgrade must not do: hello 2 brings a new package.
fn hello_2_needs_libhello(repo: &Path) {
    Rpm::new("hello", "2.0").requires("libhello").build(repo);
    Rpm::new("libhello", "2.0").build(repo);
}

/// The root's dnf with one repository, `test`, of the packages `fill`
/// builds into its directory; `options` as the admin set them.
fn dnf_repository(s: &Scratch, fill: impl FnOnce(&Path), options: &str) {
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

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_roots_own_dnf_runs_the_transaction() {
    if !(rpm::ready() && common::tool_or_skip("dnf", "dnf")) {
        return;
    }
    let s = with_hello_1();
    // A root whose distribution uses dnf.
    fs::create_dir_all(s.path("/usr/bin")).unwrap();
    fs::copy("/usr/bin/true", s.path("/usr/bin/dnf")).unwrap();
    dnf_finds_the_database(&s);
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    s.prepare_and_trigger(&[&v2]);
    let out = s.su(&["apply", "--ui", "plain", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    let log = fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("Complete!"), "dnf ran: {log}");
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("2.0-1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_upgrade_from_a_dnf_repository_installs_what_dnf_planned() {
    if !dnf_ready() {
        return;
    }
    let s = with_hello_1();
    dnf_repository(&s, hello_2_needs_libhello, "gpgcheck=0");
    let out = s.su(&["prepare", "--backend", "rpm", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let st = s.su(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let changes = st["prepared"]["changes"].as_array().unwrap();
    let action = |n: &str| {
        changes
            .iter()
            .find(|c| c["name"] == n)
            .map(|c| c["action"].clone())
    };
    assert_eq!(action("hello"), Some("upgrade".into()), "{st}");
    assert_eq!(action("libhello"), Some("install".into()), "{st}");
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), OK);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("2.0-1"));
    assert_eq!(rpm::version(&s.root, "libhello").as_deref(), Some("2.0-1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_database_is_found_where_the_roots_rpm_keeps_it() {
    if !rpm::ready() {
        return;
    }
    // An empty /usr/lib/sysimage/rpm (what newer filesystem packages ship)
    // beside the real database in /var/lib/rpm.
    let s = with_hello_1();
    fs::create_dir_all(s.path("/usr/lib/sysimage/rpm")).unwrap();
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["packages"][0]["before"], "1.0-1", "{r}");
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("2.0-1"));

    // The root's macros put it elsewhere.
    let s = with_hello_1();
    fs::rename(s.path("/var/lib/rpm"), s.path("/var/lib/rpm-here")).unwrap();
    fs::create_dir_all(s.path("/etc/rpm")).unwrap();
    fs::write(
        s.path("/etc/rpm/macros.dbpath"),
        "%_dbpath %{_var}/lib/rpm-here\n",
    )
    .unwrap();
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["packages"][0]["before"], "1.0-1", "{r}");
    assert_eq!(r["packages"][0]["after"], "2.0-1", "{r}");
    assert!(!s.path("/var/lib/rpm").exists(), "no second database");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn upgrade_safe_is_refused_as_dnf_has_no_such_mode() {
    if !dnf_ready() {
        return;
    }
    // What a safe upgrade must not do: hello 2 brings a new package.
    let s = with_hello_1();
    dnf_repository(&s, hello_2_needs_libhello, "gpgcheck=0");
    let out = s.su(&["prepare", "--backend", "rpm", "--upgrade=safe"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--upgrade safe: dnf has no mode"), "{err}");
    assert!(err.contains("use --upgrade"), "{err}");
    assert!(!s.update_dir().join("manifest.toml").exists());
}

/// A key that signs packages as a distribution's build service would.
struct Signer(Key);

impl Signer {
    fn new() -> Signer {
        Signer(Key::new("Test Signer <signer@example.invalid>", "rsa2048"))
    }

    /// Signs `file` in place.
    fn sign(&self, file: &Path) {
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
    fn trusted_by(&self, s: &Scratch) {
        let key = self.0.home().join("key.asc");
        self.0.export(&key, true);
        let o = rpm::rpm(&s.root)
            .arg("--import")
            .arg(&key)
            .output()
            .unwrap();
        assert!(o.status.success(), "rpm --import: {}", show(&o));
    }
}

/// The root trusts no key any more.
fn distrust_all(s: &Scratch) {
    let o = rpm::rpm(&s.root)
        .args(["-e", "--allmatches", "gpg-pubkey"])
        .output()
        .unwrap();
    assert!(o.status.success(), "rpm -e gpg-pubkey: {}", show(&o));
}

fn signing_ready() -> bool {
    rpm::ready() && common::tool_or_skip("gpg", "gpg") && common::tool_or_skip("rpmsign", "rpm")
}

/// The root's rpm requires a signature of every package it installs.
fn require_signatures(s: &Scratch) {
    fs::create_dir_all(s.path("/etc/rpm")).unwrap();
    fs::write(
        s.path("/etc/rpm/macros.verify"),
        "%_pkgverify_level signature\n",
    )
    .unwrap();
}

fn manifest_text(s: &Scratch) -> String {
    fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap()
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_required_signature_is_checked_at_prepare_and_again_at_boot() {
    if !signing_ready() {
        return;
    }
    let s = with_hello_1();
    require_signatures(&s);
    let signer = Signer::new();
    signer.trusted_by(&s);
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    signer.sign(&v2);
    s.prepare_and_trigger(&[&v2]);
    let m = manifest_text(&s);
    assert!(
        m.contains("signature = \"required\"") && m.contains("schema = 4"),
        "{m}"
    );

    // The key is no longer trusted when the update boots.
    distrust_all(&s);
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "verification-failed", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.starts_with("hello-2.0-1.noarch.rpm: ") && err.contains("NOKEY"),
        "names the file and what rpmkeys said: {err}"
    );
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("1.0-1"));

    // Trusted again: the same update installs.
    signer.trusted_by(&s);
    s.prepare_again_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("2.0-1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn local_packages_follow_the_roots_pkgverify_level() {
    if !signing_ready() {
        return;
    }
    let s = with_hello_1();
    let unsigned = Rpm::new("hello", "2.0").build(&s.debs);
    let untrusted = s.debs.join("untrusted").join("hello-2.0-1.noarch.rpm");
    fs::create_dir_all(untrusted.parent().unwrap()).unwrap();
    fs::copy(&unsigned, &untrusted).unwrap();
    Signer::new().sign(&untrusted);
    let refused = |file: &Path, says: &str| {
        let out = s.su(&["prepare", "--force", file.to_str().unwrap()]);
        assert_eq!(code(&out), FAILURE, "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(file.to_str().unwrap()) && err.contains(says),
            "{says}: {err}"
        );
        assert!(!s.update_dir().join("manifest.toml").exists());
    };

    // rpm's default level (digest): unsigned is fine, and nothing is
    // required at boot, so older versions still read the manifest.
    let out = s.su(&["prepare", unsigned.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let m = manifest_text(&s);
    assert!(!m.contains("signature") && m.contains("schema = 3"), "{m}");
    assert_eq!(code(&s.su(&["cancel", "--purge"])), OK);
    // A signature that is there must verify, whatever the level.
    refused(&untrusted, "NOKEY");

    require_signatures(&s);
    refused(&unsigned, "not signed");
    refused(&untrusted, "NOKEY");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_tampered_signed_package_is_refused_at_prepare() {
    if !signing_ready() {
        return;
    }
    let s = with_hello_1();
    let signer = Signer::new();
    signer.trusted_by(&s);
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    signer.sign(&v2);
    let mut bytes = fs::read(&v2).unwrap();
    let last = bytes.len() - 100;
    bytes[last] ^= 0xff;
    fs::write(&v2, bytes).unwrap();
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hello-2.0-1.noarch.rpm: the package does not verify") && err.contains("BAD"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_gpgcheck_repository_needs_packages_signed_by_a_trusted_key() {
    if !(signing_ready() && dnf_ready()) {
        return;
    }
    let s = with_hello_1();
    let signer = Signer::new();
    let sign = |repo: &Path| signer.sign(&Rpm::new("hello", "2.0").build(repo));
    // A dnf5 system's way to say it (pkg_gpgcheck), which Debian's dnf 4
    // does not know: it downloads without checking, as dnf5's
    // --downloadonly does (dnf5 issue 1985).
    fs::create_dir_all(s.path("/etc/dnf")).unwrap();
    fs::write(s.path("/etc/dnf/dnf.conf"), "[main]\ngpgcheck=0\n").unwrap();
    dnf_repository(&s, sign, "pkg_gpgcheck=1");
    let out = s.su(&["prepare", "--backend", "rpm", "--upgrade"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hello-2.0-1.noarch.rpm: its signature does not verify")
            && err.contains("NOKEY"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());

    signer.trusted_by(&s);
    let out = s.su(&["prepare", "--backend", "rpm", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert!(manifest_text(&s).contains("signature = \"required\""));
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), OK);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("2.0-1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_imported_update_is_checked_against_this_roots_keys() {
    if !signing_ready() {
        return;
    }
    let s = with_hello_1();
    require_signatures(&s);
    let signer = Signer::new();
    signer.trusted_by(&s);
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    signer.sign(&v2);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    // The update on removable media, for a machine without the key.
    let media = s.dir.path().join("media");
    fs::create_dir_all(&media).unwrap();
    for name in ["manifest.toml", "hello-2.0-1.noarch.rpm"] {
        fs::copy(s.update_dir().join(name), media.join(name)).unwrap();
    }
    assert_eq!(code(&s.su(&["cancel", "--purge"])), OK);
    distrust_all(&s);
    let out = s.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hello-2.0-1.noarch.rpm: ") && err.contains("NOKEY"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
    assert!(!s.update_dir().join("hello-2.0-1.noarch.rpm").exists());

    signer.trusted_by(&s);
    let out = s.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn trigger_refuses_a_required_signature_the_root_no_longer_trusts() {
    if !signing_ready() {
        return;
    }
    let s = with_hello_1();
    require_signatures(&s);
    let signer = Signer::new();
    signer.trusted_by(&s);
    let v2 = Rpm::new("hello", "2.0").build(&s.debs);
    signer.sign(&v2);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    distrust_all(&s);
    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hello-2.0-1.noarch.rpm: ") && err.contains("NOKEY"),
        "{err}"
    );
    assert!(!s.link_exists(), "not armed");
}
