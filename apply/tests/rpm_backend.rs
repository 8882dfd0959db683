//! What only the rpm backend does, with the real rpm on scratch roots
//! (packages built with rpmbuild: common/rpm.rs): dnf, the database's
//! place, package signatures. The cases every backend passes alike are in
//! backends/. Needs root (rpm chroots into the root for scriptlets) and
//! rpm and rpmbuild (tests/install-deps installs them).

mod common;

use std::fs;
use std::path::Path;

use common::rpm::{self, Rpm};
use common::{code, show, Scratch};

const OK: i32 = 0;
const FAILURE: i32 = 1;

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
    rpm::dnf_finds_the_database(&s);
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

fn manifest_text(s: &Scratch) -> String {
    fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap()
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_gpgcheck_repository_needs_packages_signed_by_a_trusted_key() {
    if !(rpm::signing_ready() && rpm::dnf_ready()) {
        return;
    }
    let s = with_hello_1();
    let signer = rpm::Signer::new();
    let sign = |repo: &Path| signer.sign(&Rpm::new("hello", "2.0").build(repo));
    // A dnf5 system's way to say it (pkg_gpgcheck), which Debian's dnf 4
    // does not know: it downloads without checking, as dnf5's
    // --downloadonly does (dnf5 issue 1985).
    fs::create_dir_all(s.path("/etc/dnf")).unwrap();
    fs::write(s.path("/etc/dnf/dnf.conf"), "[main]\ngpgcheck=0\n").unwrap();
    rpm::dnf_repository(&s, sign, "pkg_gpgcheck=1");
    let out = s.su(&["prepare", "--backend", "rpm", "--upgrade"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hello-2.0-1.noarch.rpm: its signature does not verify")
            && err.contains("NOKEY"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());

    signer.trusted_by(&s.root);
    let out = s.su(&["prepare", "--backend", "rpm", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert!(manifest_text(&s).contains("signature = \"required\""));
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), OK);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(rpm::version(&s.root, "hello").as_deref(), Some("2.0-1"));
}
