//! The German catalogue (po/de.po, compiled here with msgfmt): with it
//! loaded, no English is left on the screens; a console that cannot show
//! it stays English. A test binary of its own: the catalogue is global.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use system_update_tui::event::m_;
use system_update_tui::fullscreen::{draw, Branding, Theme, View};
use system_update_tui::glyphs::Glyphs;
use system_update_tui::i18n::{self, Tr};
use system_update_tui::{AfterAction, Event, Model, Outcome};

fn catalogue() -> Option<tempfile::TempDir> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("de/LC_MESSAGES");
    std::fs::create_dir_all(&out).unwrap();
    let po = Path::new(env!("CARGO_MANIFEST_DIR")).join("../po/de.po");
    match Command::new("msgfmt")
        .arg("-c")
        .arg("-o")
        .arg(out.join("system-update.mo"))
        .arg(po)
        .output()
    {
        Ok(o) if o.status.success() => Some(dir),
        Ok(o) => panic!("msgfmt: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => {
            assert!(
                std::env::var_os("SYSTEM_UPDATE_TEST_ALL").is_none(),
                "tests/check runs every test, but msgfmt is missing (gettext)"
            );
            eprintln!("skipped: needs msgfmt (apt install gettext)");
            None
        }
    }
}

fn model(base: Instant, finish: Option<Outcome>) -> Model {
    let mut m = Model::new();
    let t = |s| base + Duration::from_secs(s);
    m.apply(
        &Event::Started {
            title: "Sicherheitsaktualisierung".into(),
        },
        t(0),
    );
    m.apply(&Event::message(m_("Verifying the update").text()), t(1));
    m.apply(
        &Event::step(2, 4, m_("Unpacking {}").with(&[&"openssl"])),
        t(2),
    );
    m.apply(
        &Event::message(m_("Configuring {}").with(&[&"openssl"])),
        t(3),
    );
    m.apply(&Event::Progress { percent: 40.0 }, t(4));
    if let Some(outcome) = finish {
        m.apply(
            &Event::Finished {
                outcome,
                detail: (!outcome.is_success())
                    .then(|| "openssl: Skript mit Status 1 beendet".into()),
                log_path: Some(PathBuf::from("/var/log/system-update/x.log")),
            },
            t(10),
        );
        m.apply(
            &Event::Countdown {
                action: AfterAction::Reboot,
                remaining: Duration::from_secs(9),
            },
            t(10),
        );
    }
    m
}

fn screen(m: &Model, now: Instant, tr: Tr) -> String {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let view = View {
        model: m,
        now,
        host: "kiosk-07",
        theme: Theme {
            color: true,
            glyphs: Glyphs::UNICODE,
        },
        branding: &Branding::default(),
        width: 80,
        tr,
    };
    t.draw(|f| draw(f, &view)).unwrap();
    t.backend().to_string()
}

/// Words of the English screens that must not survive a translation.
const ENGLISH: &[&str] = &[
    "System update",
    "Step",
    "Progress",
    "Elapsed",
    "left",
    "Do not",
    "Log ",
    "UPDATE",
    " update",
    "Restarting",
    "Took",
    "Full log",
    "Error",
    "Unpacking",
    "Configuring",
    "Verifying",
    "finished",
    "failed",
];

#[test]
fn in_german_no_english_is_left_and_ascii_consoles_keep_english() {
    let Some(dir) = catalogue() else { return };
    assert!(i18n::load("de_DE.UTF-8", &[dir.path().to_path_buf()]).is_some());
    let base = Instant::now();
    let de = Tr::for_console(true);
    for (name, finish) in [
        ("running", None),
        ("failed", Some(Outcome::Failure)),
        ("succeeded", Some(Outcome::Success)),
    ] {
        let s = screen(&model(base, finish), base + Duration::from_secs(10), de);
        for w in ENGLISH {
            assert!(!s.contains(w), "{name}: {w:?} left in German:\n{s}");
        }
        insta::assert_snapshot!(format!("german_{name}_80x24"), s);
    }
    let s = screen(&model(base, None), base + Duration::from_secs(10), de);
    assert!(s.contains("openssl wird entpackt"), "{s}");
    // A console that cannot show umlauts (a vt220 line) stays English.
    let en = Tr::for_console(false);
    let s = screen(&model(base, None), base + Duration::from_secs(10), en);
    assert!(s.contains("Step 2 of 4: Unpacking openssl"), "{s}");
}
