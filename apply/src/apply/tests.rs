//! Each phase alone, with a fake backend on a temporary root.

use std::path::PathBuf;

use system_update_tui::{Event, Output, Text};

use super::phases::*;
use super::ui::{ui_locale, user_locale};
use super::*;
use crate::attempts::State;
use crate::backend::BackendKind;
use crate::backend::{Backend, BackendError, PackageChange, Sink};
use crate::local::LocalState;
use crate::manifest::Manifest;
use crate::manifest::PayloadFile;
use crate::osinfo::{parse_locale, parse_pretty_name};
use crate::snapshot::Provider;

#[derive(Default)]
struct Fake {
    fail: Option<&'static str>,
    recovered: bool,
    verified: Vec<(String, PathBuf)>,
    required: u64,
}

impl Backend for Fake {
    fn recover(&mut self, _sink: &mut dyn Sink) -> Result<(), BackendError> {
        self.recovered = true;
        Ok(())
    }
    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        sink.event(Event::step(1, 1, Text::foreign("Installing a")));
        match self.fail {
            Some(why) => Err(BackendError::Failed(why.into())),
            None => Ok(()),
        }
    }
    fn changes(&self) -> Vec<PackageChange> {
        vec![PackageChange {
            name: "a".into(),
            before: Some("1".into()),
            after: Some(if self.fail.is_some() { "1" } else { "2" }.into()),
            state: Some("installed".into()),
        }]
    }
    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        self.verified = files.to_vec();
    }
    fn required_bytes(&self) -> u64 {
        self.required
    }
}

#[derive(Default)]
struct Events(Vec<Event>);

impl Sink for Events {
    fn event(&mut self, e: Event) {
        self.0.push(e);
    }
    fn output(&mut self, _line: &str) {}
}

fn manifest(backend: &str, files: Vec<PayloadFile>) -> Manifest {
    Manifest {
        schema: crate::manifest::SCHEMA,
        id: "t".into(),
        title: "t".into(),
        backend: BackendKind::from_name(backend).unwrap(),
        created: "2026-11-26T00:00:00Z".into(),
        command: None,
        files,
        plan: Vec::new(),
        resolved_by: None,
    }
}

/// A root whose dpkg database holds one package.
fn dpkg_root() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("var/lib/dpkg")).unwrap();
    std::fs::write(
        d.path().join("var/lib/dpkg/status"),
        "Package: a\nStatus: install ok installed\nVersion: 1\n\n",
    )
    .unwrap();
    let root = Root::new(d.path());
    (d, root)
}

#[test]
fn the_locale_of_the_system() {
    assert_eq!(
        parse_locale("LANG=de_DE.UTF-8\n").as_deref(),
        Some("de_DE.UTF-8")
    );
    assert_eq!(
        parse_locale("# x\nLANG=\"en_US.UTF-8\"\nLC_MESSAGES=de_AT.UTF-8\n").as_deref(),
        Some("de_AT.UTF-8")
    );
    assert_eq!(parse_locale("LANGUAGE=fr\n"), None);
}

#[test]
fn consoles_speak_the_systems_language_a_terminal_its_users() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::write(d.path().join("etc/locale.conf"), "LANG=de_DE.UTF-8\n").unwrap();
    let root = Root::new(d.path());
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    };
    let french = env(&[("LANG", "fr_FR.UTF-8")]);
    assert_eq!(
        ui_locale(&root, &Output::Consoles, french).as_deref(),
        Some("de_DE.UTF-8")
    );
    assert_eq!(
        ui_locale(&root, &Output::Stdout, french).as_deref(),
        Some("fr_FR.UTF-8")
    );
    // Nothing set: the C locale, whatever the root says.
    assert_eq!(ui_locale(&root, &Output::Stdout, env(&[])), None);
    // POSIX's precedence; an empty variable counts as unset.
    let all = env(&[
        ("LC_ALL", "it_IT"),
        ("LC_MESSAGES", "es_ES"),
        ("LANG", "fr_FR"),
    ]);
    assert_eq!(user_locale(all).as_deref(), Some("it_IT"));
    let msgs = env(&[("LC_ALL", ""), ("LC_MESSAGES", "es_ES"), ("LANG", "fr_FR")]);
    assert_eq!(user_locale(msgs).as_deref(), Some("es_ES"));
    assert_eq!(
        user_locale(env(&[("LANG", "fr_FR")])).as_deref(),
        Some("fr_FR")
    );
}

#[test]
fn os_release_pretty_name() {
    assert_eq!(
        parse_pretty_name("NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
            .as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(
        parse_pretty_name("PRETTY_NAME=Arch\n").as_deref(),
        Some("Arch")
    );
    assert_eq!(parse_pretty_name("PRETTY_NAME=\"\"\n"), None);
    assert_eq!(parse_pretty_name("NAME=x\n"), None);
}

#[test]
fn the_transaction_reports_its_packages_in_the_stream_whatever_the_outcome() {
    for fail in [None, Some("a: post-installation script failed")] {
        let mut b = Fake {
            fail,
            ..Fake::default()
        };
        let mut ev = Events::default();
        let v = transaction(&mut b, &mut ev);
        assert_eq!(v.outcome.is_success(), fail.is_none(), "{v:?}");
        assert_eq!(v.error.as_deref(), fail);
        let pkgs: Vec<_> =
            ev.0.iter()
                .filter_map(|e| match e {
                    Event::Package(p) => Some(p.name.as_str()),
                    _ => None,
                })
                .collect();
        assert_eq!(pkgs, ["a"]);
    }
}

#[test]
fn a_changed_database_is_stale_and_a_retry_recovers_instead() {
    let (_d, root) = dpkg_root();
    let m = manifest("dpkg", Vec::new());
    let now = m.backend.fingerprint(&root).unwrap();
    let same = Ok(LocalState {
        db_fingerprint: now.clone(),
        ..LocalState::default()
    });
    let other = Ok(LocalState {
        db_fingerprint: Some("sha256:0".into()),
        ..LocalState::default()
    });
    let first = State {
        attempts: 1,
        transaction_started: false,
        ..State::default()
    };
    let (mut b, mut ev) = (Fake::default(), Events::default());
    assert_eq!(
        recover_or_check_stale(&root, &m, &same, &first, &mut b, &mut ev),
        Ok(())
    );
    let v = recover_or_check_stale(&root, &m, &other, &first, &mut b, &mut ev).unwrap_err();
    assert_eq!(v.outcome, Outcome::Stale);
    assert!(v.error.unwrap().contains("var/lib/dpkg/status changed"));
    assert!(!b.recovered);

    // Our own cut transaction changed the database: not stale, repaired.
    let retry = State {
        attempts: 2,
        transaction_started: true,
        ..State::default()
    };
    assert_eq!(
        recover_or_check_stale(&root, &m, &other, &retry, &mut b, &mut ev),
        Ok(())
    );
    assert!(b.recovered);
    // A backend without a database is never stale.
    let m = manifest("command", Vec::new());
    assert_eq!(
        recover_or_check_stale(&root, &m, &other, &first, &mut b, &mut ev),
        Ok(())
    );
}

#[test]
fn verification_hands_the_backend_descriptors_or_fails_before_any_change() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.deb"), b"payload").unwrap();
    let good = crate::manifest::sha256_file(&d.path().join("a.deb")).unwrap();
    let file = |sha256: String| PayloadFile {
        name: "a.deb".into(),
        sha256,
        package: None,
        version: None,
        installed_size: None,
        signature: None,
    };
    let (mut b, mut ev) = (Fake::default(), Events::default());
    let m = manifest("dpkg", vec![file(good.clone())]);
    let root = Root::new(d.path().to_path_buf());
    let held = verify(&root, d.path(), &m, &mut b, &mut ev).unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(b.verified[0].0, "a.deb");
    assert!(b.verified[0].1.starts_with("/proc/self/fd/"));

    let mut b = Fake::default();
    let m = manifest("dpkg", vec![file("0".repeat(64))]);
    let v = verify(&root, d.path(), &m, &mut b, &mut ev).unwrap_err();
    assert_eq!(v.outcome, Outcome::VerificationFailed);
    assert!(b.verified.is_empty(), "nothing reaches the backend");

    // A required signature a backend cannot check fails closed, naming
    // the payload file, not its descriptor.
    let mut signed = file(good);
    signed.signature = Some(crate::manifest::PackageSignature::Required);
    let m = manifest("dpkg", vec![signed]);
    let v = verify(&root, d.path(), &m, &mut b, &mut ev).unwrap_err();
    assert_eq!(v.outcome, Outcome::VerificationFailed);
    assert!(
        v.error.as_deref().is_some_and(|e| e.starts_with("a.deb: ")),
        "{:?}",
        v.error
    );
    assert!(b.verified.is_empty(), "nothing reaches the backend");
}

#[test]
fn no_room_fails_before_the_snapshot_but_a_retry_goes_on() {
    let (_d, root) = dpkg_root();
    let b = Fake {
        required: u64::MAX / 2,
        ..Fake::default()
    };
    let none = Provider::None { why: "test".into() };
    let first = State::default();
    let v = check_space(&root, &none, &first, &b).unwrap_err();
    assert_eq!(v.outcome, Outcome::Failure);
    let retry = State {
        attempts: 2,
        transaction_started: true,
        ..State::default()
    };
    assert_eq!(check_space(&root, &none, &retry, &b), Ok(()));
}

#[test]
fn the_repair_at_the_limit_says_what_the_backend_did() {
    let (d, root) = dpkg_root();
    let opts = ApplyOptions {
        no_reboot: true,
        ui: None,
        output: Output::Stdout,
        backend_args: Vec::new(),
        limits: Default::default(),
    };
    let at = Attempt {
        root: &root,
        udh: d.path(),
        update_dir: std::path::Path::new("/"),
        opts: &opts,
    };
    let mut ev = Events::default();
    let unreadable = Err(crate::manifest::ManifestError::Missing(d.path().into()));
    let said = repair(&at, &unreadable, &State::default(), &mut ev);
    assert!(said.contains("not run"), "{said}");
    let mut m = manifest("command", Vec::new());
    m.command = Some(vec!["/bin/true".into()]);
    let said = repair(&at, &Ok(m), &State::default(), &mut ev);
    assert!(said.contains("not run again"), "{said}");
}
