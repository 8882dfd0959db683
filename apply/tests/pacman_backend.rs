//! What only the pacman backend does, with the real pacman on scratch roots
//! (packages packed with bsdtar as makepkg would: common/pacman.rs):
//! repositories, the database's place, signatures, a cut that lost the old
//! version. The cases every backend passes alike are in backends/. Needs
//! root (pacman chroots into the root for install scripts), pacman
//! and bsdtar (tests/install-deps installs them).

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::pacman::{self, Pkg};
use common::{code, show, Scratch};

const OK: i32 = 0;
const FAILURE: i32 = 1;
const INTERRUPTED: i32 = 5;

fn with_hello_1() -> Scratch {
    let s = Scratch::new();
    fs::create_dir_all(s.path("/var/lib/pacman")).unwrap();
    let v1 = Pkg::new("hello", "1.0").build(&s.debs);
    pacman::install(&s.root, &[&v1]);
    s
}

/// Starts apply, waits for the install script, kills apply and pacman
/// with SIGKILL as a power cut would: pacman's lock stays behind.
fn cut(s: &Scratch) {
    common::cut_when(s, "/in-script");
    assert!(
        s.path("/var/lib/pacman/db.lck").exists(),
        "pacman's lock stays"
    );
}

/// A cut after pacman removed the old version's files and entry and before
/// it extracted the new: nothing on disk says hello was there (the crash
/// campaign's pacman seed 20261213). At the limit, the versions kept from
/// before the first transaction do, and hello is installed again.
#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn at_the_limit_a_package_whose_old_version_went_is_installed_again() {
    if !pacman::ready() {
        return;
    }
    let s = with_hello_1();
    fs::write(s.path("/etc/system-update.toml"), "attempt-limit = 1\n").unwrap();
    let slow = "pre_upgrade() {\n  : > /in-script; sleep 60\n}\n";
    let v2 = Pkg::new("hello", "2.0").install(slow).build(&s.debs);
    s.prepare_and_trigger(&[&v2]);
    cut(&s);
    // What pacman had done when the cut came: hello's entry and files gone.
    for e in fs::read_dir(s.path("/var/lib/pacman/local")).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("hello-") {
            fs::remove_dir_all(e.path()).unwrap();
        }
    }
    fs::remove_dir_all(s.path("/usr/share/hello")).unwrap();
    assert_eq!(pacman::version(&s.root, "hello"), None);

    let out = s.apply();
    assert_eq!(code(&out), INTERRUPTED, "{}", show(&out));
    assert_eq!(
        pacman::version(&s.root, "hello").as_deref(),
        Some("2.0-1"),
        "{}",
        show(&out)
    );
    let r = s.results();
    let hello = &r["packages"][0];
    assert_eq!(hello["before"], "1.0-1", "{r}");
    assert_eq!(hello["after"], "2.0-1", "{r}");
    assert!(!s.link_exists(), "never a boot loop");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_repository_without_the_required_signature_is_refused() {
    if !pacman::repository_ready() {
        return;
    }
    let s = with_hello_1();
    let repo_pkgs = s.dir.path().join("repo-pkgs");
    fs::create_dir_all(&repo_pkgs).unwrap();
    let hello2 = Pkg::new("hello", "2.0").build(&repo_pkgs);
    pacman::repository(&s.root, &[hello2], "Required DatabaseRequired");
    let out = s.su(&["prepare", "--backend", "pacman", "--upgrade"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    // pacman names the signature file it could not get.
    assert!(
        err.contains("test.db.sig") && err.contains("pacman -Sy"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_database_is_found_where_the_roots_pacman_conf_says() {
    if !pacman::ready() {
        return;
    }
    let s = with_hello_1();
    fs::create_dir_all(s.path("/usr/lib")).unwrap();
    fs::rename(s.path("/var/lib/pacman"), s.path("/usr/lib/pacman-db")).unwrap();
    fs::write(
        s.path("/etc/pacman.conf"),
        "[options]\nArchitecture = auto\nDBPath = /usr/lib/pacman-db/\n",
    )
    .unwrap();
    let v2 = Pkg::new("hello", "2.0").build(&s.debs);
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["packages"][0]["before"], "1.0-1", "{r}");
    assert_eq!(r["packages"][0]["after"], "2.0-1", "{r}");
    assert!(s.path("/usr/lib/pacman-db/local/hello-2.0-1").is_dir());
}

fn manifest_text(s: &Scratch) -> String {
    fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap()
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn signed_packages_from_a_repository_keep_their_signatures() {
    if !(pacman::signing_ready() && common::tool_or_skip("repo-add", "pacman-package-manager")) {
        return;
    }
    let s = with_hello_1();
    let signer = pacman::Signer::new();
    signer.trusted_by(&s.root);
    let repo_pkgs = s.dir.path().join("repo-pkgs");
    fs::create_dir_all(&repo_pkgs).unwrap();
    let hello2 = Pkg::new("hello", "2.0").build(&repo_pkgs);
    signer.sign(&hello2);
    let repo = s.dir.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    for f in [
        hello2.clone(),
        PathBuf::from(format!("{}.sig", hello2.display())),
    ] {
        fs::copy(&f, repo.join(f.file_name().unwrap())).unwrap();
    }
    let o = Command::new("repo-add")
        .arg("-q")
        .arg(repo.join("test.db.tar.gz"))
        .arg(repo.join(hello2.file_name().unwrap()))
        .output()
        .unwrap();
    assert!(o.status.success(), "repo-add: {}", show(&o));
    pacman::conf(
        &s.root,
        &format!(
            "SigLevel = Required DatabaseOptional\nLocalFileSigLevel = Optional\n[test]\nServer = file://{}\n",
            repo.display()
        ),
    );
    let out = s.su(&["prepare", "--backend", "pacman", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let m = manifest_text(&s);
    assert!(m.contains("signature = \"required\""), "{m}");
    assert!(s
        .update_dir()
        .join("hello-2.0-1-any.pkg.tar.zst.sig")
        .is_file());
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), OK);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(pacman::version(&s.root, "hello").as_deref(), Some("2.0-1"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn pacman_itself_checks_at_boot_and_its_messages_name_the_files() {
    if !pacman::ready() {
        return;
    }
    let s = with_hello_1();
    let v2 = Pkg::new("hello", "2.0").build(&s.debs);
    s.prepare_and_trigger(&[&v2]);
    // The root requires signatures from now on; the update has none.
    pacman::conf(&s.root, "LocalFileSigLevel = Required\n");
    let out = s.apply();
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = s.results()["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("'hello-2.0-1-any.pkg.tar.zst': package missing required signature"),
        "{err}"
    );
    assert_eq!(pacman::version(&s.root, "hello").as_deref(), Some("1.0-1"));
}
