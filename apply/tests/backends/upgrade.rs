//! The cases of `prepare --upgrade`, alike for the package managers whose
//! own tool plans an upgrade from the root's repositories and has no safe
//! mode (dnf for rpm, pacman; apt's are in apt_repository.rs).

use crate::cases::with_hello_1;
use crate::common::Scratch;
use crate::common::{code, show};
use crate::fixture::Fixture;

const OK: i32 = 0;
const FAILURE: i32 = 1;

pub trait Upgrading: Fixture {
    /// The tool that plans the upgrade.
    const PLANNER: &'static str;
    /// As `ready`, and the tools that make a repository.
    fn upgrade_ready() -> bool;
    /// The root's one repository, in which hello 2.0 needs libhello 2.0,
    /// a package new to the root (what a safe upgrade must not do).
    fn hello_2_needs_libhello(s: &Scratch);
}

/// Runs the case where `F` can make repositories.
pub fn ready<F: Upgrading>() -> bool {
    F::upgrade_ready()
}

pub fn an_upgrade_from_a_repository_brings_the_new_dependency<F: Upgrading>() {
    let (s, _) = with_hello_1::<F>();
    F::hello_2_needs_libhello(&s);
    let out = s.su(&["prepare", "--backend", F::NAME, "--upgrade"]);
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
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("2.0")));
    assert_eq!(F::version(&s, "libhello"), Some(F::spelled("2.0")));
}

pub fn upgrade_safe_is_refused_as_the_planner_has_no_such_mode<F: Upgrading>() {
    let (s, _) = with_hello_1::<F>();
    F::hello_2_needs_libhello(&s);
    let out = s.su(&["prepare", "--backend", F::NAME, "--upgrade=safe"]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let says = format!("--upgrade safe: {} has no mode", F::PLANNER);
    assert!(err.contains(&says), "{err}");
    assert!(err.contains("use --upgrade"), "{err}");
    assert!(!s.update_dir().join("manifest.toml").exists());
}
