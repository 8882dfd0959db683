//! The cases, each written once over `Fixture` and run for every package
//! manager (`main.rs` instantiates them). Each starts from a root with
//! hello 1.0 installed unless it says otherwise.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{self, code, show, Scratch};
use crate::fixture::{Fixture, Pkg};

const OK: i32 = 0;
const FAILURE: i32 = 1;
const VERIFICATION: i32 = 3;
const STALE: i32 = 4;
const INTERRUPTED: i32 = 5;

/// The first run of the script stops midway (it says so in /in-script)
/// for a minute, long enough to be cut; every run ends in /script-done.
const SLOW_ONCE: &str =
    "if [ ! -e /slow-once ]; then : > /slow-once; : > /in-script; sleep 60; fi; : > /script-done";

const V1: Pkg = Pkg::new("hello", "1.0");
pub const V2: Pkg = Pkg::new("hello", "2.0");

/// Runs the case where `F`'s tools are.
pub fn ready<F: Fixture>() -> bool {
    F::ready()
}

/// A root with hello 1.0 installed, and its package file.
pub fn with_hello_1<F: Fixture>() -> (Scratch, PathBuf) {
    let s = F::root();
    let v1 = F::build(&s, &V1);
    F::install(&s, &[&v1]);
    (s, v1)
}

/// hello 1.0 is installed still, its file as it was.
fn assert_untouched<F: Fixture>(s: &Scratch) {
    assert_eq!(F::version(s, "hello"), Some(F::spelled("1.0")));
    assert_eq!(fs::read_to_string(s.path(&V1.file())).unwrap(), "1.0\n");
}

fn assert_no_manifest(s: &Scratch) {
    assert!(!s.update_dir().join("manifest.toml").exists());
}

fn status_json(s: &Scratch) -> serde_json::Value {
    let st = s.su(&["status", "--json"]);
    assert_eq!(code(&st), OK, "{}", show(&st));
    serde_json::from_slice(&st.stdout).unwrap()
}

fn log_of(s: &Scratch, r: &serde_json::Value) -> String {
    fs::read_to_string(s.path(r["log"].as_str().unwrap())).unwrap()
}

/// The generator, when built: it must send this boot to
/// system-update.target.
fn assert_generator_arms(s: &Scratch) {
    let Some(g) = Path::new(common::BIN)
        .parent()
        .map(|d| d.join("system-update-generator"))
        .filter(|g| g.is_file())
    else {
        return;
    };
    let out_dirs: Vec<_> = ["normal", "early", "late"]
        .iter()
        .map(|d| s.dir.path().join(d))
        .collect();
    for d in &out_dirs {
        fs::create_dir_all(d).unwrap();
    }
    let out = Command::new(&g)
        .args(&out_dirs)
        .env("SYSTEM_UPDATE_GENERATOR_ROOT", &s.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "generator: {}", show(&out));
    let target = fs::read_link(out_dirs[1].join("default.target")).unwrap();
    assert!(
        target.to_string_lossy().ends_with("system-update.target"),
        "{target:?}"
    );
}

pub fn success<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let v2 = F::build(&s, &V2);
    s.prepare_and_trigger(&[&v2]);
    assert_eq!(status_json(&s)["prepared"]["backend"], F::NAME);
    assert_generator_arms(&s);

    // As the benchmark runs it: with the plain UI.
    let out = s.su(&["apply", "--ui", "plain", "--no-reboot"]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["backend"], F::NAME, "{r}");
    assert_eq!(r["attempts"], 1, "{r}");
    assert_eq!(r["stop_requested"], false, "{r}");
    let pkgs = r["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 1, "{r}");
    assert_eq!(pkgs[0]["name"], "hello", "{r}");
    assert_eq!(pkgs[0]["before"], F::spelled("1.0"), "{r}");
    assert_eq!(pkgs[0]["after"], F::spelled("2.0"), "{r}");
    assert!(!s.link_exists(), "the trigger must be gone");
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("2.0")));
    assert_eq!(fs::read_to_string(s.path(&V2.file())).unwrap(), "2.0\n");
    F::after_success(&s, &out);

    let st = status_json(&s);
    assert_eq!(st["triggered"], false, "{st}");
    assert_eq!(st["last_result"]["outcome"], "success", "{st}");
}

pub fn failing_script<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let v2 = V2.script("echo 'script: broken on purpose' >&2; exit 1");
    let file = F::build(&s, &v2);
    s.prepare_and_trigger(&[&file]);
    let out = s.apply();
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "failure", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(err.contains(&F::script_failed(&v2)), "{err}");
    let log = log_of(&s, &r);
    assert!(log.contains("script: broken on purpose"), "{log}");
    assert!(!s.link_exists());

    // Nothing left to apply: a second run is a no-op.
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    assert_eq!(s.results(), r);

    let text = String::from_utf8_lossy(&s.su(&["status"]).stdout).into_owned();
    assert!(text.contains("outcome:  failure"), "{text}");
    assert!(text.contains(&F::script_failed(&v2)), "{text}");
}

pub fn corrupted_payload<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let v2 = F::build(&s, &V2);
    s.prepare_and_trigger(&[&v2]);
    let copy = s.update_dir().join(v2.file_name().unwrap());
    let mut bytes = fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&copy, bytes).unwrap();
    let out = s.apply();
    assert_eq!(code(&out), VERIFICATION, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "verification-failed", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_untouched::<F>(&s);
    assert!(!s.link_exists());
}

/// Another package installed between prepare and the update boot.
pub fn stale_plan<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let v2 = F::build(&s, &V2);
    s.prepare_and_trigger(&[&v2]);
    let other = F::build(&s, &Pkg::new("world", "1"));
    F::install(&s, &[&other]);
    let out = s.apply();
    assert_eq!(code(&out), STALE, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "stale", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(
        err.contains(F::DATABASE) && err.contains("prepare"),
        "{err}"
    );
    assert_untouched::<F>(&s);
    assert!(!s.link_exists());
}

pub fn stale_plan_is_not_triggered<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let v2 = F::build(&s, &V2);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), OK, "{}", show(&out));
    let other = F::build(&s, &Pkg::new("world", "1"));
    F::install(&s, &[&other]);
    let out = s.su(&["trigger", "--no-reboot"]);
    assert_eq!(code(&out), STALE, "{}", show(&out));
    assert!(!s.link_exists());
}

/// The package manager's own resolver refuses it at prepare.
pub fn unmet_dependency_is_refused_at_prepare<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let needy = Pkg::new("needy", "1").depends("libmissing");
    let file = F::build(&s, &needy);
    let out = s.su(&["prepare", file.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&F::unmet(&needy, "libmissing")), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_no_manifest(&s);
}

/// Starts the update whose script stops midway and cuts it there.
fn cut_mid_script<F: Fixture>(s: &Scratch) {
    let v2 = F::build(s, &V2.script(SLOW_ONCE));
    s.prepare_and_trigger(&[&v2]);
    common::cut_when(s, "/in-script");
    assert!(!s.path("/script-done").exists());
    F::after_cut(s);
    let r = s.results();
    assert_eq!(r["outcome"], "interrupted", "{r}");
}

pub fn power_cut_then_the_next_attempt_finishes<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    cut_mid_script::<F>(&s);

    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["attempts"], 2, "{r}");
    assert!(
        s.path("/script-done").exists(),
        "the retry reran the script"
    );
    assert_eq!(F::complaints(&s), "", "the database is consistent");
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("2.0")));
    assert!(!s.link_exists());
    assert_eq!(log_of(&s, &r).matches("== ").count(), 2, "two attempts");
}

pub fn at_the_limit_it_is_repaired_and_never_a_loop<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    fs::write(s.path("/etc/system-update.toml"), "attempt-limit = 1\n").unwrap();
    cut_mid_script::<F>(&s);

    let out = s.apply();
    assert_eq!(code(&out), INTERRUPTED, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "interrupted", "{r}");
    let err = r["error"].as_str().unwrap();
    assert!(err.contains("limit") && err.contains(F::REPAIRED), "{err}");
    assert!(r["finished"].is_string(), "{r}");
    assert!(!s.link_exists(), "never a boot loop");
    assert_eq!(F::complaints(&s), "", "the database is consistent");
    // The package manager works again, and it stays done.
    let other = F::build(&s, &Pkg::new("world", "1"));
    F::install(&s, &[&other]);
    assert_eq!(code(&s.apply()), OK);
}

pub fn another_architecture_is_refused_at_prepare<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let (other, takes) = F::foreign_arch(&s);
    let foreign = F::build(&s, &Pkg::new("hello", "5.0").arch(&other));
    let out = s.su(&["prepare", foreign.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = foreign.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "{err}");
    assert!(err.contains(&format!("a package for {other}")), "{err}");
    assert!(err.contains(takes), "names what the root takes: {err}");
    assert_no_manifest(&s);
    F::root_decides(&s, &other, &foreign);
}

pub fn one_package_twice_is_refused_and_a_reinstall_needs_asking<F: Fixture>() {
    let (s, v1) = with_hello_1::<F>();
    let v2 = F::build(&s, &V2);
    let out = s.su(&["prepare", v2.to_str().unwrap(), v1.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hello is given twice"), "{err}");
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        err.contains(&name(&v2)) && err.contains(&name(&v1)),
        "{err}"
    );
    assert_no_manifest(&s);

    let out = s.su(&["prepare", v1.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let said = format!("hello {} is already installed", F::spelled("1.0"));
    assert!(err.contains(&said) && err.contains("--reinstall"), "{err}");
    assert_no_manifest(&s);

    s.prepare_and_trigger_with(&["prepare", "--reinstall"], &[&v1]);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["packages"].as_array().map(Vec::len), Some(1), "{r}");
}

pub fn a_root_without_the_database_is_refused_at_prepare<F: Fixture>() {
    let s = F::without_database();
    let v2 = F::build(&s, &V2);
    let out = s.su(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(code(&out), FAILURE, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for said in F::no_database() {
        assert!(err.contains(said), "{said}: {err}");
    }
    assert_no_manifest(&s);
    assert!(!s.path(F::DATABASE_PATH).exists(), "nothing created: {err}");
}

pub fn a_relative_root_works_from_another_directory<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    let v2 = F::build(&s, &V2);
    let r = s.cycle_with_relative_root(&["prepare", v2.to_str().unwrap()]);
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("2.0")));
    assert!(!s.link_exists());
}

/// Five packages new to the root, in one update.
pub fn many_packages_in_one_update<F: Fixture>() {
    let s = F::root();
    let names: Vec<String> = (0..5).map(|i| format!("pkg{i}")).collect();
    let files: Vec<PathBuf> = names
        .iter()
        .map(|n| F::build(&s, &Pkg::new(n, "1.0")))
        .collect();
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    s.prepare_and_trigger(&refs);
    let out = s.apply();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    let pkgs = r["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 5, "{r}");
    let after = F::spelled("1.0");
    assert!(
        pkgs.iter()
            .all(|p| p["before"].is_null() && p["after"] == after.as_str()),
        "{r}"
    );
}

/// SIGTERM (a shutdown asked for meanwhile) waits for the transaction.
pub fn sigterm_does_not_cut_the_transaction<F: Fixture>() {
    let (s, _) = with_hello_1::<F>();
    // The script waits until the test has sent the signal.
    let waits = ": > /in-script; while [ ! -e /go ]; do sleep 0.1; done";
    let v2 = F::build(&s, &V2.script(waits));
    s.prepare_and_trigger(&[&v2]);
    let mut child = s.su_spawn(&["apply", "--ui", "none", "--no-reboot"]);
    common::wait_for(&s.path("/in-script"), &mut child);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM).unwrap();
    fs::write(s.path("/go"), "").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), OK, "{}", show(&out));
    let r = s.results();
    assert_eq!(r["outcome"], "success", "{r}");
    assert_eq!(r["stop_requested"], true, "{r}");
    assert_eq!(F::complaints(&s), "", "the database is consistent");
    assert_eq!(F::version(&s, "hello"), Some(F::spelled("2.0")));
    assert!(!s.link_exists());
}
