//! Updates resolved from a Debian repository, and the preflight of every
//! dpkg update: real apt against local file:// repositories made here
//! (dpkg-scanpackages, apt-ftparchive, a Release signed with a throwaway
//! gpg key), on scratch roots. Needs root (dpkg chroots into the root),
//! apt-ftparchive (apt-utils) and gpg.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::gpg::Key;
use common::{code, show, Deb, Scratch};

const OK: i32 = 0;
const FAILURE: i32 = 1;
const STALE: i32 = 4;

fn ready() -> bool {
    common::root_or_skip("dpkg chroots into the scratch root")
        && common::tool_or_skip("apt-ftparchive", "apt-utils")
        && common::tool_or_skip("gpg", "gpg")
}

/// The key that signs the test repositories' Release files.
fn repo_key() -> Key {
    Key::new("Test Repository <repo@example.invalid>", "ed25519")
}

/// A flat repository (`deb file:DIR ./`) of `debs`, its Release signed by
/// `key`.
fn repository(dir: &Path, debs: &[PathBuf], key: &Key) {
    let pool = dir.join("pool");
    fs::create_dir_all(&pool).unwrap();
    for d in debs {
        fs::copy(d, pool.join(d.file_name().unwrap())).unwrap();
    }
    let sh = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {}", show(&o));
    };
    sh("dpkg-scanpackages -m pool /dev/null > Packages 2>/dev/null && gzip -kf Packages");
    sh("apt-ftparchive release . > ../Release.tmp && mv ../Release.tmp Release");
    let o = key
        .gpg()
        .args(["--yes", "--clearsign", "-o"])
        .arg(dir.join("InRelease"))
        .arg(dir.join("Release"))
        .output()
        .unwrap();
    assert!(o.status.success(), "gpg --clearsign: {}", show(&o));
}

/// Points the root's apt at `repo`, trusting `trusted`'s key for it.
fn use_repository(s: &Scratch, repo: &Path, trusted: &Key) {
    for d in [
        "/etc/apt/sources.list.d",
        "/etc/apt/apt.conf.d",
        "/etc/apt/preferences.d",
        "/etc/apt/trusted.gpg.d",
        "/var/lib/apt/lists/partial",
        "/var/cache/apt/archives/partial",
    ] {
        fs::create_dir_all(s.path(d)).unwrap();
    }
    let keyring = s.path("/etc/apt/keyrings/test.gpg");
    trusted.export(&keyring, false);
    // As an admin writes it: the keyring's path inside the root.
    fs::write(
        s.path("/etc/apt/sources.list.d/test.list"),
        format!(
            "deb [signed-by=/etc/apt/keyrings/test.gpg] file:{} ./\n",
            repo.display()
        ),
    )
    .unwrap();
}

fn deb_version(s: &Scratch, name: &str) -> Option<String> {
    s.version(name)
}

/// Installed: hello 1.0 (needs oldlib) and oldlib 1.0. The repository:
/// hello 2.0, which needs the new libhello and replaces oldlib.
fn upgrade_case() -> (Scratch, Key, PathBuf) {
    let s = Scratch::new();
    let oldlib = Deb::new("oldlib", "1.0")
        .file("/usr/share/oldlib/v", "1.0\n")
        .build(&s.debs);
    let hello1 = Deb::new("hello", "1.0")
        .field("Depends", "oldlib")
        .file("/usr/share/hello/v", "1.0\n")
        .build(&s.debs);
    s.dpkg_install(&oldlib);
    s.dpkg_install(&hello1);
    let repo_debs = s.dir.path().join("repo-debs");
    fs::create_dir_all(&repo_debs).unwrap();
    let hello2 = Deb::new("hello", "2.0")
        .field("Depends", "libhello (>= 2.0)")
        .field("Conflicts", "oldlib")
        .field("Replaces", "oldlib")
        .file("/usr/share/hello/v", "2.0\n")
        .build(&repo_debs);
    let libhello = Deb::new("libhello", "2.0")
        .file("/usr/share/libhello/v", "2.0\n")
        .build(&repo_debs);
    let key = repo_key();
    let repo = s.dir.path().join("repo");
    repository(&repo, &[hello2, libhello], &key);
    use_repository(&s, &repo, &key);
    (s, key, repo)
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_upgrade_from_the_repository_pulls_in_a_dependency_and_removes_the_obsolete() {
    if !ready() {
        return;
    }
    let (s, _key, _repo) = upgrade_case();
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));

    let st = s.su(&["status", "--json"]);
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let changes = st["prepared"]["changes"].as_array().unwrap();
    let find = |n: &str| changes.iter().find(|c| c["name"] == n).cloned();
    assert_eq!(find("hello").unwrap()["action"], "upgrade", "{st}");
    assert_eq!(find("libhello").unwrap()["action"], "install", "{st}");
    assert_eq!(find("oldlib").unwrap()["action"], "remove", "{st}");
    let text = String::from_utf8_lossy(&s.su(&["status"]).stdout).into_owned();
    assert!(text.contains("oldlib 1.0 -> (removed)"), "{text}");
    let manifest = fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap();
    assert!(manifest.contains("resolved-by = \"apt-get"), "{manifest}");

    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let out = s.su(&["apply", "--ui", "plain", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(deb_version(&s, "hello").as_deref(), Some("2.0"));
    assert_eq!(deb_version(&s, "libhello").as_deref(), Some("2.0"));
    assert_eq!(deb_version(&s, "oldlib"), None);
    let pkgs = r["packages"].as_array().unwrap();
    let oldlib = pkgs.iter().find(|p| p["name"] == "oldlib").unwrap();
    assert_eq!(oldlib["state"], "removed", "{r}");
    assert_eq!(oldlib["after"], serde_json::Value::Null, "{r}");
    // Nothing was fetched at boot: the log shows apt working from the
    // update's own files.
    let log = fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap();
    assert!(!log.contains("Get:"), "{log}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_unsatisfiable_install_is_refused_at_prepare() {
    if !ready() {
        return;
    }
    let (s, _key, repo) = upgrade_case();
    let needy = Deb::new("needy", "1")
        .field("Depends", "libmissing")
        .build(&s.debs);
    let key = repo_key();
    repository(&repo, &[needy], &key);
    use_repository(&s, &repo, &key);
    let out = s.su(&["prepare", "--install", "needy"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needy : Depends: libmissing but it is not installable")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_repository_whose_signature_does_not_verify_is_refused() {
    if !ready() {
        return;
    }
    let (s, _key, repo) = upgrade_case();
    // The admin trusts another key than the one that signed the Release.
    use_repository(&s, &repo, &repo_key());
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("apt-get update") && err.contains("NO_PUBKEY"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_plan_made_stale_by_another_install_is_refused_at_boot() {
    if !ready() {
        return;
    }
    let (s, _key, _repo) = upgrade_case();
    assert_eq!(code(&s.su(&["prepare", "--upgrade"])), OK);
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), OK);
    let other = Deb::new("other", "1").build(&s.debs);
    s.dpkg_install(&other);
    let out = s.apply();
    assert_eq!(code(&out), STALE, "{}", show(&out));
    assert_eq!(deb_version(&s, "hello").as_deref(), Some("1.0"));
    assert_eq!(deb_version(&s, "oldlib").as_deref(), Some("1.0"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_up_to_date_system_has_nothing_to_prepare() {
    if !ready() {
        return;
    }
    let s = up_to_date();
    nothing_to_do(&s);
    assert!(!s.update_dir().join("manifest.toml").exists());
}

/// hello 1.0 installed, and the repository has nothing newer.
fn up_to_date() -> Scratch {
    let s = Scratch::new();
    let key = repo_key();
    let repo = s.dir.path().join("repo");
    let hello = Deb::new("hello", "1.0").build(&s.debs);
    s.dpkg_install(&hello);
    repository(&repo, &[hello], &key);
    use_repository(&s, &repo, &key);
    s
}

/// `prepare --upgrade` asked the repository and found nothing newer.
fn nothing_to_do(s: &Scratch) {
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to do"),
        "{}",
        show(&out)
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_hand_given_deb_with_a_missing_dependency_is_refused() {
    if !ready() {
        return;
    }
    let (s, _key, _repo) = upgrade_case();
    let hello2 = s.dir.path().join("repo-debs/hello_2.0_all.deb");
    let out = s.su(&["prepare", hello2.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hello : Depends: libhello (>= 2.0)"), "{err}");
    assert!(!s.update_dir().join("manifest.toml").exists());
    // With its dependency it goes through, the obsolete package named as
    // a removal it would make: refused too, since nobody asked for it.
    let lib = s.dir.path().join("repo-debs/libhello_2.0_all.deb");
    let out = s.su(&["prepare", hello2.to_str().unwrap(), lib.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    assert!(err.contains("it would remove oldlib"), "{err}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn after_a_failure_the_result_says_the_real_state() {
    if !ready() {
        return;
    }
    let (s, v2) = common::with_foo_v1(Some("exit 1"));
    s.prepare_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["packages"][0]["name"], "foo");
    assert_eq!(r["packages"][0]["state"], "half-configured", "{r}");
    let text = String::from_utf8_lossy(&s.su(&["results"]).stdout).into_owned();
    assert!(text.contains("foo 1 -> 2 (half-configured)"), "{text}");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_root_without_a_repository_is_told_so() {
    if !ready() {
        return;
    }
    let s = Scratch::new();
    fs::create_dir_all(s.path("/etc/apt/sources.list.d")).unwrap();
    fs::write(
        s.path("/etc/apt/sources.list"),
        "# deb http://example.invalid/ x main\n",
    )
    .unwrap();
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "no repository configured in {}{{,.d}}",
            s.path("/etc/apt/sources.list").display()
        )),
        "{err}"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn apt_reads_the_roots_configuration_not_the_hosts() {
    if !ready() {
        return;
    }
    // The keyring is the root's (use_repository: signed-by=/etc/apt/...,
    // which exists only inside the root), and so is apt.conf.d: a broken
    // file there stops apt.
    let (s, _key, _repo) = upgrade_case();
    fs::write(
        s.path("/etc/apt/apt.conf.d/99broken"),
        "APT::Broken \"x\"\n",
    )
    .unwrap();
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99broken"), "{err}");
    fs::remove_file(s.path("/etc/apt/apt.conf.d/99broken")).unwrap();
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_unsigned_repository_is_not_said_to_be_signed() {
    if !ready() {
        return;
    }
    let (s, _key, repo) = upgrade_case();
    fs::remove_file(repo.join("InRelease")).unwrap();
    fs::write(
        s.path("/etc/apt/sources.list.d/test.list"),
        format!("deb [trusted=yes] file:{} ./\n", repo.display()),
    )
    .unwrap();
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let manifest = fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap();
    let by = manifest
        .lines()
        .find(|l| l.starts_with("resolved-by"))
        .unwrap_or_default();
    assert!(!by.contains("signed Release"), "{by}");
    assert!(
        by.contains("/etc/apt/sources.list.d/test.list marks a repository trusted=yes"),
        "{by}"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn apts_methods_keep_their_sandbox_user() {
    if !ready() {
        return;
    }
    let (s, _key, _repo) = upgrade_case();
    // Where the sandbox user can reach the root and the repository, apt
    // hands the downloads to its methods running as _apt, which own the
    // partial directories they write into.
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(s.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let out = s.su(&["prepare", "--upgrade"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let o = Command::new("stat")
        .args(["-c", "%U"])
        .arg(s.path("/var/lib/apt/lists/partial"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "_apt",
        "{}",
        show(&o)
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_repository_of_another_distribution_is_refused() {
    if !ready() {
        return;
    }
    let (s, key, _repo) = upgrade_case();
    // A repository whose Release says trixie, listed as bookworm: apt
    // warns "Conflicting distribution" and goes on.
    let repo = s.dir.path().join("dists-repo");
    let hello2 = s.dir.path().join("repo-debs/hello_2.0_all.deb");
    let pool = repo.join("pool");
    fs::create_dir_all(&pool).unwrap();
    fs::copy(&hello2, pool.join("hello_2.0_all.deb")).unwrap();
    let lib = s.dir.path().join("repo-debs/libhello_2.0_all.deb");
    fs::copy(&lib, pool.join("libhello_2.0_all.deb")).unwrap();
    let sh = |script: &str| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(o.status.success(), "{script}: {}", show(&o));
    };
    sh("for a in amd64 arm64 all; do mkdir -p dists/bookworm/main/binary-$a; dpkg-scanpackages -m pool /dev/null > dists/bookworm/main/binary-$a/Packages 2>/dev/null; done");
    sh("apt-ftparchive -o APT::FTPArchive::Release::Codename=trixie -o APT::FTPArchive::Release::Suite=trixie -o 'APT::FTPArchive::Release::Architectures=amd64 arm64 all' -o APT::FTPArchive::Release::Components=main release dists/bookworm > Release.tmp && mv Release.tmp dists/bookworm/Release");
    let o = key
        .gpg()
        .args(["--yes", "--clearsign", "-o"])
        .arg(repo.join("dists/bookworm/InRelease"))
        .arg(repo.join("dists/bookworm/Release"))
        .output()
        .unwrap();
    assert!(o.status.success(), "gpg: {}", show(&o));
    fs::write(
        s.path("/etc/apt/sources.list.d/test.list"),
        format!(
            "deb [signed-by=/etc/apt/keyrings/test.gpg] file:{} bookworm main\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = s.su(&["prepare", "--install", "libhello"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("W: Conflicting distribution"), "{err}");
    assert!(!s.update_dir().join("manifest.toml").exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_relative_root_replays_the_repository_plan() {
    if !ready() {
        return;
    }
    let (s, _key, _repo) = upgrade_case();
    let r = s.cycle_with_relative_root(&["prepare", "--upgrade"]);
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(deb_version(&s, "hello").as_deref(), Some("2.0"));
    assert_eq!(deb_version(&s, "oldlib"), None);
}

/// `auto` with auto-prepare = "upgrade" (issue 22): outside the window it
/// prepares from the repository and arms nothing; an install meanwhile
/// makes that plan stale, and inside the window it is prepared again and
/// armed, and installs.
#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn auto_prepares_from_the_repository_and_prepares_a_stale_plan_again() {
    if !ready() {
        return;
    }
    let (s, _key, _repo) = upgrade_case();
    let conf = s.path("/etc/system-update.toml");
    fs::write(&conf, "window = [\"Sat 02:00-05:00\"]\n").unwrap();
    let auto = |now: &str| -> serde_json::Value {
        let out = s.su(&["auto", "--json", "--now", now]);
        assert_eq!(code(&out), OK, "{}", show(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let a = auto("2026-12-07T12:00:00Z");
    assert_eq!(a["action"], "waiting", "{a}");
    let first = a["prepared"].as_str().unwrap().to_string();
    assert!(!s.link_exists());
    let other = Deb::new("other", "1").build(&s.debs);
    s.dpkg_install(&other);
    let a = auto("2026-12-12T03:00:00Z");
    assert_eq!(a["action"], "armed", "{a}");
    assert_ne!(a["prepared"].as_str().unwrap(), first, "{a}");
    assert!(s.link_exists());
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(deb_version(&s, "hello").as_deref(), Some("2.0"));
    assert_eq!(deb_version(&s, "other").as_deref(), Some("1"));
}

/// An image whose apt directories are absolute links to places inside it
/// (`/etc/apt/sources.list.d -> /srv/apt/sources`): its sources and the
/// keyring they name are read inside the image. Before, the link was
/// followed on the host, which has no such directory, and the image was
/// told it had no repository.
#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_images_linked_apt_directories_are_read_inside_it() {
    if !ready() {
        return;
    }
    let s = up_to_date();
    fs::create_dir_all(s.path("/srv/apt")).unwrap();
    for (dir, moved) in [
        ("/etc/apt/sources.list.d", "/srv/apt/sources"),
        ("/etc/apt/keyrings", "/srv/apt/keyrings"),
    ] {
        fs::rename(s.path(dir), s.path(moved)).unwrap();
        std::os::unix::fs::symlink(moved, s.path(dir)).unwrap();
    }
    assert!(!Path::new("/srv/apt/sources").exists(), "the host has it");
    nothing_to_do(&s);
}
