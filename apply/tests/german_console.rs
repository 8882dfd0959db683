//! The console in the system's language: a root whose /etc/locale.conf
//! says German, the catalogue compiled from po/de.po, a real update; the
//! plain lines on the invoking terminal say it all in German.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{code, show, with_foo_v1};

#[test]
fn the_update_speaks_the_systems_language() {
    if !common::root_or_skip("dpkg chroots into the scratch root")
        || !common::tool_or_skip("msgfmt", "gettext")
    {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let locales = s.dir.path().join("locale");
    let mo = locales.join("de/LC_MESSAGES");
    fs::create_dir_all(&mo).unwrap();
    let po = Path::new(env!("CARGO_MANIFEST_DIR")).join("../po/de.po");
    let o = Command::new("msgfmt")
        .arg("-o")
        .arg(mo.join("system-update.mo"))
        .arg(po)
        .output()
        .unwrap();
    assert!(o.status.success(), "msgfmt: {}", show(&o));
    fs::write(s.path("/etc/locale.conf"), "LANG=de_DE.UTF-8\n").unwrap();
    let out = s.su(&[
        "prepare",
        "--title",
        "Sicherheitsaktualisierung",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(code(&s.su(&["trigger", "--no-reboot"])), 0);

    let out = Command::new(common::BIN)
        .arg("--root")
        .arg(&s.root)
        .args(["apply", "--ui", "plain", "--no-reboot"])
        .env("SYSTEM_UPDATE_LOCALEDIR", &locales)
        // What the console can show, not what it speaks: that is the
        // root's locale.conf.
        .env("TERM", "xterm")
        .env("LANG", "C.UTF-8")
        .env_remove("LC_ALL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for german in [
        "Systemaktualisierung: Sicherheitsaktualisierung",
        "1 Paket(e) werden mit dpkg installiert",
        "foo wird entpackt",
        "Aktualisierung erfolgreich",
    ] {
        assert!(text.contains(german), "{german:?} missing:\n{text}");
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
