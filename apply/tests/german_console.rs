//! The UI in the language of whoever reads it, with the catalogue compiled
//! from po/de.po and real updates: on the terminal of the person who ran
//! `apply --root` or the demo, their LANG; the root's /etc/locale.conf
//! speaks only for the update boot's consoles (apply.rs's unit tests).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{code, show, with_foo_v1};

/// The German catalogue, compiled from po/de.po into `dir`.
fn german_catalogue(dir: &Path) {
    let mo = dir.join("de/LC_MESSAGES");
    fs::create_dir_all(&mo).unwrap();
    let po = Path::new(env!("CARGO_MANIFEST_DIR")).join("../po/de.po");
    let o = Command::new("msgfmt")
        .arg("-o")
        .arg(mo.join("system-update.mo"))
        .arg(po)
        .output()
        .unwrap();
    assert!(o.status.success(), "msgfmt: {}", show(&o));
}

/// A triggered update of foo, the root's locale.conf saying `system`;
/// returns the scratch root and the catalogue directory.
fn triggered(system: &str) -> (common::Scratch, std::path::PathBuf) {
    let (s, v2) = with_foo_v1(None);
    let locales = s.dir.path().join("locale");
    german_catalogue(&locales);
    fs::write(s.path("/etc/locale.conf"), system).unwrap();
    let out = s.su(&[
        "prepare",
        "--title",
        "Sicherheitsaktualisierung",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), 0);
    (s, locales)
}

/// `system-update ARGS` as a person with `LANG=lang` would run it, the
/// German catalogue installed; returns its standard output.
fn run_as(locales: &Path, lang: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(common::BIN)
        .args(args)
        .env("SYSTEM_UPDATE_LOCALEDIR", locales)
        // What the terminal can show (UTF-8); what it speaks is LANG.
        .env("TERM", "xterm")
        .env("LANG", lang)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apply_args(s: &common::Scratch) -> Vec<&std::ffi::OsStr> {
    let mut v = vec![std::ffi::OsStr::new("--root"), s.root.as_os_str()];
    v.extend(["apply", "--ui", "plain", "--no-reboot"].map(std::ffi::OsStr::new));
    v
}

fn assert_german(text: &str, german: &[&str]) {
    for g in german {
        assert!(text.contains(g), "{g:?} missing:\n{text}");
    }
    for english in [
        "System update",
        "Verifying",
        "Unpacking",
        "Update succeeded",
        "Full log",
    ] {
        assert!(!text.contains(english), "{english:?} left:\n{text}");
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn apply_on_the_invoking_terminal_speaks_the_users_language() {
    if !common::root_or_skip("dpkg chroots into the scratch root")
        || !common::tool_or_skip("msgfmt", "gettext")
    {
        return;
    }
    // The root's locale chooses the consoles' language at boot, not the
    // language of the person at this terminal.
    let (s, locales) = triggered("LANG=C.UTF-8\n");
    let text = run_as(&locales, "de_DE.UTF-8", &apply_args(&s));
    assert_german(
        &text,
        &[
            "Systemaktualisierung: Sicherheitsaktualisierung",
            "1 Paket(e) werden mit dpkg installiert",
            "foo wird entpackt",
            "Aktualisierung erfolgreich",
        ],
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_german_root_does_not_choose_the_invoking_terminals_language() {
    if !common::root_or_skip("dpkg chroots into the scratch root")
        || !common::tool_or_skip("msgfmt", "gettext")
    {
        return;
    }
    let (s, locales) = triggered("LANG=de_DE.UTF-8\n");
    let text = run_as(&locales, "C.UTF-8", &apply_args(&s));
    assert!(text.contains("Update succeeded"), "{text}");
    assert!(!text.contains("Aktualisierung"), "German:\n{text}");
}

#[test]
fn the_demo_speaks_the_users_language() {
    if !common::tool_or_skip("msgfmt", "gettext") || !common::tool_or_skip("dpkg-deb", "dpkg") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let locales = work.path().join("locale");
    german_catalogue(&locales);
    let workdir = work.path().join("demo");
    let text = run_as(
        &locales,
        "de_DE.UTF-8",
        &[
            "demo".as_ref(),
            "--ui".as_ref(),
            "plain".as_ref(),
            "--workdir".as_ref(),
            workdir.as_os_str(),
        ],
    );
    assert_german(
        &text,
        &["Systemaktualisierung: ", "Aktualisierung erfolgreich"],
    );
}
