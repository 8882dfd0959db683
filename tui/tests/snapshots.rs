//! Snapshots of the main screens (ratatui's TestBackend with insta): starting,
//! in progress, failure, success; at 80x24 and 200x60; Unicode and ASCII.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use system_update_tui::fullscreen::{draw, Branding, Theme, View};
use system_update_tui::glyphs::Glyphs;
use system_update_tui::Text;
use system_update_tui::{AfterAction, Event, Model, Outcome};

fn at(base: Instant, s: u64) -> Instant {
    base + Duration::from_secs(s)
}

fn starting(base: Instant) -> Model {
    let mut m = Model::new();
    m.apply(
        &Event::Started {
            title: "Debian 12 security update".into(),
        },
        base,
    );
    m
}

fn in_progress(base: Instant) -> Model {
    let mut m = starting(base);
    m.apply(&Event::Progress { percent: 0.0 }, at(base, 1));
    for i in 0..30 {
        m.apply(
            &Event::Log {
                line: format!("Unpacking libfoo{i} (2.{i}-1) over (2.{i}-0) ..."),
            },
            at(base, 2),
        );
    }
    m.apply(
        &Event::step(3, 7, Text::foreign("Installing openssl 3.0.15-1~deb12u1")),
        at(base, 20),
    );
    m.apply(
        &Event::message(Text::foreign("Setting up openssl (3.0.15-1~deb12u1) ...")),
        at(base, 20),
    );
    m.apply(&Event::Progress { percent: 42.5 }, at(base, 41));
    m
}

fn failed(base: Instant) -> Model {
    let mut m = in_progress(base);
    m.apply(
        &Event::Log {
            line: "dpkg: error processing package openssl (--configure):".into(),
        },
        at(base, 50),
    );
    m.apply(
        &Event::Finished {
            outcome: Outcome::Failure,
            detail: Some(
                "openssl: installed post-installation script returned error exit status 1".into(),
            ),
            log_path: Some("/var/log/system-update/2025-01-01T00:00:00.log".into()),
        },
        at(base, 50),
    );
    m.apply(
        &Event::Countdown {
            action: AfterAction::Reboot,
            remaining: Duration::from_secs(10),
        },
        at(base, 50),
    );
    m
}

fn succeeded(base: Instant) -> Model {
    let mut m = in_progress(base);
    m.apply(&Event::Progress { percent: 100.0 }, at(base, 95));
    m.apply(
        &Event::Finished {
            outcome: Outcome::Success,
            detail: None,
            log_path: Some("/var/log/system-update/2025-01-01T00:00:00.log".into()),
        },
        at(base, 96),
    );
    m.apply(
        &Event::Countdown {
            action: AfterAction::Reboot,
            remaining: Duration::from_secs(10),
        },
        at(base, 96),
    );
    m
}

fn screen(m: &Model, now: Instant, w: u16, h: u16, unicode: bool) -> String {
    branded(m, now, w, h, unicode, &Branding::default())
}

fn branded(m: &Model, now: Instant, w: u16, h: u16, unicode: bool, branding: &Branding) -> String {
    let glyphs = if unicode {
        Glyphs::UNICODE
    } else {
        Glyphs::ASCII
    };
    drawn(m, now, (w, h), glyphs, branding)
}

fn drawn(m: &Model, now: Instant, size: (u16, u16), glyphs: Glyphs, branding: &Branding) -> String {
    let mut t = Terminal::new(TestBackend::new(size.0, size.1)).expect("test backend");
    let view = View {
        model: m,
        now,
        host: "kiosk-07",
        theme: Theme {
            color: true,
            glyphs,
        },
        branding,
        width: size.0,
        tr: system_update_tui::i18n::Tr::english(),
    };
    t.draw(|f| draw(f, &view)).expect("draw");
    t.backend().to_string()
}

macro_rules! screens {
    ($($name:ident: $model:ident at $secs:expr;)*) => {$(
        #[test]
        fn $name() {
            let base = Instant::now();
            let m = $model(base);
            let now = at(base, $secs);
            for (w, h) in [(40, 12), (80, 24), (200, 50)] {
                for (unicode, glyphs) in [(true, "unicode"), (false, "ascii")] {
                    let s = screen(&m, now, w, h, unicode);
                    if !unicode {
                        assert!(s.is_ascii(), "ASCII mode drew non-ASCII:\n{s}");
                    }
                    insta::assert_snapshot!(
                        format!("{}_{w}x{h}_{glyphs}", stringify!($name)),
                        s
                    );
                }
            }
        }
    )*};
}

screens! {
    screen_starting: starting at 0;
    screen_progress: in_progress at 41;
    screen_failure: failed at 53;
    screen_success: succeeded at 99;
}

/// A kiosk's screen: the system's name under the header, the admin's title
/// and footer, and a narrow screen where the title is cut before the host.
#[test]
fn screen_branded() {
    let base = Instant::now();
    let m = in_progress(base);
    let b = Branding {
        system: Some("Debian GNU/Linux 12 (bookworm)".into()),
        title: Some("Kiosk maintenance".into()),
        footer: Some("Questions? Call extension 123.".into()),
        accent: Branding::parse_accent("magenta"),
    };
    let s = branded(&m, at(base, 41), 80, 24, true, &b);
    insta::assert_snapshot!("screen_branded_80x24", s);
    let narrow = branded(&m, at(base, 41), 40, 12, true, &b);
    insta::assert_snapshot!("screen_branded_40x12", narrow);
    let header = narrow.lines().next().unwrap_or("");
    assert!(header.contains("kiosk-07"), "{header}");
    assert!(
        !header.contains("update kiosk-07") && header.contains(" kiosk-07"),
        "the title is cut before the host name: {header}"
    );
}

#[test]
fn accents_parse_names_and_rgb() {
    use ratatui::style::Color;
    assert_eq!(Branding::parse_accent("Light-Blue"), Some(Color::LightBlue));
    assert_eq!(
        Branding::parse_accent("#0a0B0c"),
        Some(Color::Rgb(10, 11, 12))
    );
    assert_eq!(Branding::parse_accent("#12345"), None);
    assert_eq!(Branding::parse_accent("chartreuse"), None);
}

/// A VT font with box lines but no block glyphs (its Unicode map lacks
/// U+2588 and U+2591): the panels keep their lines, the gauge turns ASCII.
#[test]
fn a_font_without_blocks_gets_an_ascii_gauge_in_box_lines() {
    let font: BTreeSet<u32> = (0x20..0x7f)
        .chain("┌┐└┘│─".chars().map(u32::from))
        .collect();
    let base = Instant::now();
    let m = in_progress(base);
    let glyphs = Glyphs::for_font(&font);
    let s = drawn(&m, at(base, 41), (80, 24), glyphs, &Branding::default());
    let used: BTreeSet<u32> = s.chars().filter(|c| *c != '\n').map(u32::from).collect();
    let missing: Vec<char> = used
        .difference(&font)
        .filter_map(|&c| char::from_u32(c))
        .collect();
    assert!(
        missing.is_empty(),
        "drew {missing:?}, not in the font:\n{s}"
    );
    assert!(s.contains('┌') && s.contains('│'), "box lines kept:\n{s}");
    assert!(s.contains("[####"), "an ASCII gauge:\n{s}");
}

/// A kiosk's 1920x1080 VT (240x67 cells) shows the percentage in large
/// digits, drawn with the gauge's glyph; an 80x24 screen does not.
#[test]
fn a_wide_screen_shows_the_percentage_in_large_digits() {
    let base = Instant::now();
    let m = in_progress(base);
    let now = at(base, 41);
    let none = Branding::default();
    // "42%": the rows of the 4, the 2 and the percent sign, pixels doubled.
    let top = "##  ##  ######  ##  ##";
    let middle = "######  ######    ##  ";
    for glyphs in [Glyphs::ASCII, Glyphs::UNICODE] {
        let s = drawn(&m, now, (240, 67), glyphs, &none);
        for row in [top, middle] {
            let row = row.replace('#', glyphs.full);
            assert!(s.contains(&row), "no {row:?} at 240x67:\n{s}");
        }
        assert!(s.contains(" 42 %"), "the gauge keeps its number:\n{s}");
        let small = drawn(&m, now, (80, 24), glyphs, &none);
        assert!(!small.contains(&top.replace('#', glyphs.full)), "{small}");
    }
    insta::assert_snapshot!(
        "screen_progress_240x67_unicode",
        drawn(&m, now, (240, 67), Glyphs::UNICODE, &none)
    );
}
