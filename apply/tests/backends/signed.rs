//! The cases of signed packages, alike for the package managers whose
//! packages carry OpenPGP signatures that the root's own keys check (rpm:
//! in the package, against the rpm database's keys; pacman: beside it as
//! FILE.sig, against pacman-key's keyring).

use std::fs;
use std::path::{Path, PathBuf};

use crate::cases::{with_hello_1, V2};
use crate::common::{code, show, Scratch};
use crate::fixture::{Fixture, Pkg};

const OK: i32 = 0;
const FAILURE: i32 = 1;
const VERIFICATION: i32 = 3;

pub trait Signing: Fixture {
    /// A key that signs packages as the distribution would.
    type Signer;
    /// As `ready`, and the tools that sign.
    fn signing_ready() -> bool;
    fn signer() -> Self::Signer;
    fn sign(signer: &Self::Signer, file: &Path);
    /// The root's own keys trust `signer`, or no longer do.
    fn trust(signer: &Self::Signer, s: &Scratch);
    fn distrust(signer: &Self::Signer, s: &Scratch);
    /// The root's configuration requires signed local packages.
    fn require_signatures(s: &Scratch);
    /// The files that make up signed `file` in an update.
    fn payload(file: &Path) -> Vec<PathBuf>;
    /// Spoils `file`, `pkg` signed, as an attacker would.
    fn tamper(s: &Scratch, pkg: &Pkg, file: &Path);
    /// What prepare says of a tampered package: after its name, and
    /// beside.
    const TAMPERED: (&'static str, &'static str);
}

/// Runs the case where `F` can sign.
pub fn ready<F: Signing>() -> bool {
    F::signing_ready()
}

fn manifest_text(s: &Scratch) -> String {
    fs::read_to_string(s.update_dir().join("manifest.toml")).unwrap()
}

fn name(file: &Path) -> &str {
    file.file_name().unwrap().to_str().unwrap()
}

/// hello 2.0, signed by a key the root trusts, which must sign every
/// package the root installs.
fn signed_update<F: Signing>() -> (Scratch, F::Signer, PathBuf) {
    let (s, _) = with_hello_1::<F>();
    F::require_signatures(&s);
    let signer = F::signer();
    F::trust(&signer, &s);
    let v2 = F::build(&s, &V2);
    F::sign(&signer, &v2);
    (s, signer, v2)
}

/// Says the file's name and the key gpg did not have.
fn assert_nokey(err: &str, file: &Path) {
    assert!(
        err.starts_with(&format!("{}: ", name(file))) && err.contains("NOKEY"),
        "names the file and what the tool said: {err}"
    );
}

pub fn a_required_signature_is_checked_at_prepare_and_again_at_boot<F: Signing>() {
    let (s, signer, v2) = signed_update::<F>();
    s.prepare_and_trigger(&[&v2]);
    let m = manifest_text(&s);
    assert!(
        m.contains("signature = \"required\"") && m.contains("schema = 4"),
        "{m}"
    );
    for f in F::payload(&v2) {
        assert!(s.update_dir().join(name(&f)).is_file(), "{f:?} travels");
    }

    // The key is no longer trusted when the update boots.
    F::distrust(&signer, &s);
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "verification-failed", "{r}");
    assert_nokey(r["error"].as_str().unwrap(), &v2);
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("1.0")));

    // Trusted again: the same update installs.
    F::trust(&signer, &s);
    s.prepare_again_and_trigger(&[&v2]);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("2.0")));
}

pub fn local_packages_follow_the_roots_signature_level<F: Signing>() {
    let (s, _) = with_hello_1::<F>();
    let unsigned = F::build(&s, &V2);
    let untrusted = s.debs.join("untrusted").join(name(&unsigned));
    fs::create_dir_all(untrusted.parent().unwrap()).unwrap();
    fs::copy(&unsigned, &untrusted).unwrap();
    F::sign(&F::signer(), &untrusted);
    // A keyring without the signer's key.
    F::trust(&F::signer(), &s);
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

    // The tool's default: unsigned is fine, and nothing is required at
    // boot, so older versions still read the manifest.
    let out = s.su(&["prepare", unsigned.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let m = manifest_text(&s);
    assert!(!m.contains("signature") && m.contains("schema = 3"), "{m}");
    assert_eq!(code(&s.su(&["cancel", "--purge"])), OK);
    // A signature that is there must verify, whatever the level.
    refused(&untrusted, "NOKEY");

    F::require_signatures(&s);
    refused(&unsigned, "not signed");
    refused(&untrusted, "NOKEY");
}

pub fn a_tampered_signed_package_is_refused_at_prepare<F: Signing>() {
    let (s, _) = with_hello_1::<F>();
    let signer = F::signer();
    F::trust(&signer, &s);
    let v2 = F::build(&s, &V2);
    F::sign(&signer, &v2);
    F::tamper(&s, &V2, &v2);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let (after_name, beside) = F::TAMPERED;
    assert!(
        err.contains(&format!("{}: {after_name}", name(&v2))) && err.contains(beside),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
}

pub fn an_imported_update_is_checked_against_this_roots_keys<F: Signing>() {
    let (s, signer, v2) = signed_update::<F>();
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    // The update on removable media, for a machine without the key.
    let media = s.dir.path().join("media");
    fs::create_dir_all(&media).unwrap();
    let mut files = F::payload(&v2);
    files.push(PathBuf::from("manifest.toml"));
    for f in &files {
        fs::copy(s.update_dir().join(name(f)), media.join(name(f))).unwrap();
    }
    assert_eq!(code(&s.su(&["cancel", "--purge"])), OK);
    F::distrust(&signer, &s);
    let out = s.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: ", name(&v2))) && err.contains("NOKEY"),
        "{err}"
    );
    assert!(!s.update_dir().join("manifest.toml").exists());
    assert!(!s.update_dir().join(name(&v2)).exists());

    F::trust(&signer, &s);
    let out = s.su(&["prepare", "--from", media.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
}

pub fn trigger_refuses_a_required_signature_the_root_no_longer_trusts<F: Signing>() {
    let (s, signer, v2) = signed_update::<F>();
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    F::distrust(&signer, &s);
    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: ", name(&v2))) && err.contains("NOKEY"),
        "{err}"
    );
    assert!(!s.link_exists(), "not armed");
}
