//! Signed updates (issue 10): minisign signatures over the manifest, with
//! real keys made by Debian's `minisign` tool and real dpkg on scratch
//! roots. Needs root (dpkg chroots, key files owned by root) and minisign
//! (tests/install-deps).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, show, with_foo_v1, Deb, Scratch};

const OK: i32 = 0;
const VERIFICATION: i32 = 3;

fn is_root() -> bool {
    common::root_or_skip("dpkg chroots into the scratch root, keys owned by root")
}

/// A minisign key pair made by `minisign -G -W` (no password).
struct Key {
    public: PathBuf,
    secret: PathBuf,
    /// minisign's key id, as it prints it.
    id: String,
}

fn keypair(dir: &Path, name: &str) -> Key {
    let public = dir.join(format!("{name}.pub"));
    let secret = dir.join(format!("{name}.key"));
    let out = Command::new("minisign")
        .arg("-G")
        .arg("-W")
        .arg("-p")
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .output()
        .expect("minisign: install it (tests/install-deps)");
    assert!(out.status.success(), "minisign -G: {}", show(&out));
    let text = fs::read_to_string(&public).unwrap();
    let id = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("untrusted comment: minisign public key "))
        .unwrap()
        .trim()
        .to_string();
    Key { public, secret, id }
}

fn key_dir(s: &Scratch) -> PathBuf {
    s.path("/etc/system-update-keys")
}

/// Installs `k`'s public key as the admin would: root-owned, 0644 in 0755.
fn trust(s: &Scratch, k: &Key) {
    let dir = key_dir(s);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let dest = dir.join(k.public.file_name().unwrap());
    fs::copy(&k.public, &dest).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o644)).unwrap();
}

fn require_signature(s: &Scratch) {
    fs::write(
        s.path("/etc/system-update.toml"),
        "require-signature = true\n",
    )
    .unwrap();
}

fn prepare_signed(s: &Scratch, k: &Key, deb: &Path) {
    let out = s.su(&[
        "prepare",
        "--sign",
        k.secret.to_str().unwrap(),
        deb.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), OK, "{}", show(&out));
}

fn manifest(s: &Scratch) -> PathBuf {
    s.update_dir().join("manifest.toml")
}

fn assert_untouched(s: &Scratch) {
    assert_eq!(s.version("foo").as_deref(), Some("1"));
    assert_eq!(
        fs::read_to_string(s.path("/opt/foo/version")).unwrap(),
        "1\n"
    );
}

/// apply refuses: verification failed, nothing installed, trigger gone.
/// Returns the recorded error.
fn apply_refuses(s: &Scratch) -> String {
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "verification-failed", "{r}");
    assert_untouched(s);
    assert!(!s.link_exists(), "the trigger must be removed");
    r["error"].as_str().unwrap().to_string()
}

fn trigger(s: &Scratch) -> std::process::Output {
    s.su(&["trigger", "--no-reboot"])
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn signed_update_end_to_end() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let k = keypair(s.dir.path(), "admin");
    trust(&s, &k);
    require_signature(&s);
    prepare_signed(&s, &k, &v2);
    let sig = fs::read_to_string(s.update_dir().join("manifest.toml.minisig")).unwrap();
    assert!(
        sig.contains("trusted comment: system-update manifest "),
        "{sig}"
    );
    let before = fs::read(manifest(&s)).unwrap();

    // minisign itself agrees with what we wrote.
    let out = Command::new("minisign")
        .arg("-V")
        .arg("-p")
        .arg(&k.public)
        .arg("-m")
        .arg(manifest(&s))
        .output()
        .unwrap();
    assert!(out.status.success(), "minisign -V: {}", show(&out));

    // Not --no-reboot: under --root nothing reboots anyway.
    let out = s.su(&["trigger", "--poweroff"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("signed by trusted key {}", k.id)),
        "{text}"
    );
    // The after-action goes to the local state; the signed manifest stays as signed.
    assert_eq!(fs::read(manifest(&s)).unwrap(), before);
    let local: serde_json::Value =
        serde_json::from_slice(&fs::read(s.update_dir().join("local.json")).unwrap()).unwrap();
    assert_eq!(local["after-action"], "poweroff", "{local}");
    assert!(local["db-fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(s.results()["outcome"], "success");
    assert_eq!(s.version("foo").as_deref(), Some("2"));
    assert!(!s.link_exists());
    // /etc/system-update is a trigger path: nothing of ours goes there.
    assert!(s.path("/etc/system-update").symlink_metadata().is_err());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn local_state_lost_after_trigger_is_stale_at_apply() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    s.prepare_and_trigger(&[&v2]);
    // Without this machine's fingerprint nothing says the plan still fits.
    fs::remove_file(s.update_dir().join("local.json")).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), 4, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "stale", "{r}");
    assert!(r["error"].as_str().unwrap().contains("local.json"), "{r}");
    assert_untouched(&s);
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn unsigned_refused_under_require_signature() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let k = keypair(s.dir.path(), "admin");
    trust(&s, &k);
    // Accepted while not required...
    s.prepare_and_trigger(&[&v2]);
    // ...refused at apply once required: before anything changes.
    require_signature(&s);
    let err = apply_refuses(&s);
    assert!(err.contains("not signed"), "{err}");
    assert!(err.contains(&k.id), "the trusted key id: {err}");

    // And at trigger.
    let out = trigger(&s);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("require-signature"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn signature_by_another_key_is_refused_naming_both() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let trusted = keypair(s.dir.path(), "trusted");
    let other = keypair(s.dir.path(), "other");
    trust(&s, &trusted);
    // require-signature is off: a signature that is there must still hold.
    prepare_signed(&s, &other, &v2);
    let out = trigger(&s);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&other.id) && e.contains(&trusted.id), "{e}");
    assert!(!s.link_exists());

    // Trusted at trigger, no longer at apply.
    trust(&s, &other);
    assert_eq!(code(&trigger(&s)), OK);
    fs::remove_file(key_dir(&s).join("other.pub")).unwrap();
    let err = apply_refuses(&s);
    assert!(
        err.contains(&other.id) && err.contains(&trusted.id),
        "{err}"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn tampered_manifest_is_refused_at_trigger() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let k = keypair(s.dir.path(), "admin");
    trust(&s, &k);
    prepare_signed(&s, &k, &v2);
    let text = fs::read_to_string(manifest(&s)).unwrap();
    fs::write(
        manifest(&s),
        text.replace("title = \"", "title = \"Tampered "),
    )
    .unwrap();
    let out = trigger(&s);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("does not match the manifest"), "{e}");
    assert!(e.contains(&k.id), "{e}");
    assert!(!s.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn manifest_swapped_after_trigger_is_refused_at_apply() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let k = keypair(s.dir.path(), "admin");
    trust(&s, &k);
    prepare_signed(&s, &k, &v2);
    assert_eq!(code(&trigger(&s)), OK);
    // Whoever can write the directory swaps in a command of their own,
    // keeping the signature beside it.
    let text = fs::read_to_string(manifest(&s)).unwrap();
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id = "))
        .unwrap()
        .to_string();
    fs::write(
        manifest(&s),
        format!(
            "schema = 2\nid = {id}\ntitle = \"Swapped\"\nbackend = \"command\"\ncreated = \"2025-01-01T00:00:00Z\"\ncommand = [\"/bin/sh\", \"-c\", \": > /swapped-ran\"]\n"
        ),
    )
    .unwrap();
    let err = apply_refuses(&s);
    assert!(err.contains("does not match the manifest"), "{err}");
    assert!(!s.path("/swapped-ran").exists(), "the swapped command ran");

    // The same with the signature removed, under require-signature.
    require_signature(&s);
    fs::remove_file(s.update_dir().join("manifest.toml.minisig")).unwrap();
    std::os::unix::fs::symlink("/var/lib/system-update", s.path("/system-update")).unwrap();
    let err = apply_refuses(&s);
    assert!(err.contains("not signed"), "{err}");
    assert!(!s.path("/swapped-ran").exists(), "the swapped command ran");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn key_directory_writable_by_others_is_refused() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let k = keypair(s.dir.path(), "admin");
    trust(&s, &k);
    prepare_signed(&s, &k, &v2);
    fs::set_permissions(key_dir(&s), fs::Permissions::from_mode(0o777)).unwrap();
    let out = trigger(&s);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("system-update-keys") && e.contains("0777"),
        "{e}"
    );
    assert!(!s.link_exists());

    // A key file writable by its group, at apply.
    fs::set_permissions(key_dir(&s), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code(&trigger(&s)), OK);
    let pubkey = key_dir(&s).join("admin.pub");
    fs::set_permissions(&pubkey, fs::Permissions::from_mode(0o664)).unwrap();
    let err = apply_refuses(&s);
    assert!(err.contains("admin.pub") && err.contains("0664"), "{err}");
}

/// Copies what an update directory holds onto "removable media".
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn removable_media_prepared_on_a_signed_on_a_applied_on_b() {
    if !is_root() {
        return;
    }
    // A: where the update is built and signed.
    let (a, v2) = with_foo_v1(None);
    let k = keypair(a.dir.path(), "vendor");
    prepare_signed(&a, &k, &v2);
    let media = a.dir.path().join("media/update");
    copy_dir(&a.update_dir(), &media);

    // B: another machine, with another package database, trusting the key
    // in the vendor directory and requiring signatures.
    let (b, _) = with_foo_v1(None);
    let bar = Deb::new("bar", "1").file("/opt/bar/x", "x").build(&b.debs);
    b.dpkg_install(&bar);
    let vendor = b.path("/usr/lib/system-update/keys");
    fs::create_dir_all(&vendor).unwrap();
    fs::copy(&k.public, vendor.join("vendor.pub")).unwrap();
    fs::set_permissions(vendor.join("vendor.pub"), fs::Permissions::from_mode(0o644)).unwrap();
    require_signature(&b);

    let out = b.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("signed by trusted key {}", k.id)),
        "{text}"
    );
    assert_eq!(
        fs::read(b.update_dir().join("manifest.toml")).unwrap(),
        fs::read(media.join("manifest.toml")).unwrap()
    );
    let local: serde_json::Value =
        serde_json::from_slice(&fs::read(b.update_dir().join("local.json")).unwrap()).unwrap();
    assert_eq!(local["imported-from"], media.to_str().unwrap(), "{local}");

    let out = trigger(&b);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let out = b.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = b.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["packages"][0]["after"], "2", "{r}");
    assert_eq!(b.version("foo").as_deref(), Some("2"));
    assert_eq!(b.version("bar").as_deref(), Some("1"));
    assert!(!b.link_exists());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn import_refuses_unsigned_mismatched_and_outside_names() {
    if !is_root() {
        return;
    }
    let (a, v2) = with_foo_v1(None);
    let k = keypair(a.dir.path(), "vendor");
    let (b, _) = with_foo_v1(None);
    trust(&b, &k);
    let import = |media: &Path| b.su(&["prepare", "--from", media.to_str().unwrap()]);
    let refused = |out: std::process::Output, needle: &str| {
        assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(needle), "{needle:?} in {e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
        assert!(
            !b.update_dir().join("manifest.toml").exists(),
            "nothing prepared"
        );
    };

    // Not an update directory at all.
    let out = import(a.dir.path());
    assert_eq!(code(&out), 1, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no manifest.toml here"), "{e}");

    // Unsigned, under require-signature.
    assert_eq!(code(&a.su(&["prepare", v2.to_str().unwrap()])), OK);
    let unsigned = a.dir.path().join("unsigned");
    copy_dir(&a.update_dir(), &unsigned);
    require_signature(&b);
    refused(import(&unsigned), "not signed");

    // Signed, but the payload on the media changed: named, nothing kept.
    prepare_signed_again(&a, &k, &v2);
    let media = a.dir.path().join("media");
    copy_dir(&a.update_dir(), &media);
    let deb = media.join("foo_2_all.deb");
    let mut bytes = fs::read(&deb).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    fs::write(&deb, &bytes).unwrap();
    refused(import(&media), "checksum mismatch");
    let out = import(&media);
    assert!(String::from_utf8_lossy(&out.stderr).contains(deb.to_str().unwrap()));

    // A signed manifest whose payload name leaves the directory.
    let outside = a.dir.path().join("outside");
    copy_dir(&a.update_dir(), &outside);
    let m = outside.join("manifest.toml");
    let text = fs::read_to_string(&m).unwrap();
    fs::write(
        &m,
        text.replace("\"foo_2_all.deb\"", "\"../foo_2_all.deb\""),
    )
    .unwrap();
    let out = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&k.secret)
        .arg("-m")
        .arg(&m)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    refused(import(&outside), "outside the update directory");

    // A payload that is a symlink on the media is not followed.
    let linked = a.dir.path().join("linked");
    copy_dir(&a.update_dir(), &linked);
    fs::remove_file(linked.join("foo_2_all.deb")).unwrap();
    std::os::unix::fs::symlink(&v2, linked.join("foo_2_all.deb")).unwrap();
    let out = import(&linked);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));

    // And the good copy goes in.
    let good = a.dir.path().join("good");
    copy_dir(&a.update_dir(), &good);
    assert_eq!(code(&import(&good)), OK);
}

fn prepare_signed_again(s: &Scratch, k: &Key, deb: &Path) {
    let out = s.su(&[
        "prepare",
        "--force",
        "--sign",
        k.secret.to_str().unwrap(),
        deb.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), OK, "{}", show(&out));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn old_manifest_asks_to_prepare_again() {
    if !is_root() {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    assert_eq!(code(&s.su(&["prepare", v2.to_str().unwrap()])), OK);
    let text = fs::read_to_string(manifest(&s)).unwrap();
    fs::write(
        manifest(&s),
        text.replace(
            "schema = 3\n",
            "schema = 1\nafter-action = \"reboot\"\ndb-fingerprint = \"sha256:00\"\n",
        ),
    )
    .unwrap();
    let out = trigger(&s);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("schema 1") && e.contains("prepare the update again"),
        "{e}"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn import_checks_space_first_and_never_waits_on_a_fifo() {
    if !is_root() {
        return;
    }
    // An update of 24 MiB for a root on a 16 MiB file system.
    let a = Scratch::new();
    let program = a.dir.path().join("big-update");
    let mut bytes = vec![0u8; 24 << 20];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    bytes[..10].copy_from_slice(b"#!/bin/sh\n");
    fs::write(&program, &bytes).unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
    // A relative program is copied into the payload.
    let out = Command::new(common::BIN)
        .current_dir(a.dir.path())
        .arg("--root")
        .arg(&a.root)
        .args(["prepare", "--command", "./big-update"])
        .output()
        .unwrap();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let media = a.dir.path().join("media");
    copy_dir(&a.update_dir(), &media);

    let b = Scratch::on_tmpfs(16);
    let out = b.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("not enough free space"), "{e}");
    assert!(
        !b.update_dir().join("big-update").exists(),
        "nothing copied"
    );

    // A FIFO where the payload should be: refused at once, never read.
    let fifo = a.dir.path().join("fifo-media");
    copy_dir(&a.update_dir(), &fifo);
    fs::remove_file(fifo.join("big-update")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(fifo.join("big-update"))
        .status()
        .unwrap()
        .success());
    let c = Scratch::new();
    let out = c.su(&["prepare", "--from", fifo.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_older_or_applied_signed_update_is_refused_unless_allowed() {
    if !is_root() {
        return;
    }
    let (a, v2) = with_foo_v1(None);
    let k = keypair(a.dir.path(), "vendor");
    prepare_signed(&a, &k, &v2);
    let older = a.dir.path().join("older");
    copy_dir(&a.update_dir(), &older);
    // The manifest's created time has whole seconds.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v3 = Deb::new("foo", "3")
        .file("/opt/foo/version", "3\n")
        .build(&a.debs);
    prepare_signed_again(&a, &k, &v3);
    let newer = a.dir.path().join("newer");
    copy_dir(&a.update_dir(), &newer);

    let (b, _) = with_foo_v1(None);
    trust(&b, &k);
    let import = |media: &Path, extra: &[&str]| {
        let mut args = vec!["prepare", "--force", "--from", media.to_str().unwrap()];
        args.extend_from_slice(extra);
        b.su(&args)
    };
    assert_eq!(code(&import(&newer, &[])), OK);
    assert_eq!(code(&trigger(&b)), OK);
    assert_eq!(code(&b.apply()), OK);
    assert_eq!(b.version("foo").as_deref(), Some("3"));

    let refused = |out: std::process::Output, needle: &str| {
        assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains(needle) && e.contains("--allow-older"), "{e}");
    };
    refused(import(&newer, &[]), "already applied");
    refused(import(&older, &[]), "older than");
    // The admin's word brings it in, and trigger keeps to it.
    let out = import(&older, &["--allow-older"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let out = trigger(&b);
    assert_eq!(code(&out), OK, "{}", show(&out));
    // An older update already prepared is refused at trigger, too, when it
    // was not imported with --allow-older.
    let local = b.update_dir().join("local.json");
    let text = fs::read_to_string(&local).unwrap();
    fs::write(&local, text.replace(",\n  \"allow-older\": true", "")).unwrap();
    refused(trigger(&b), "older than");
}
