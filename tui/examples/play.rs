//! Plays a made-up update through the UI, to look at it:
//! `cargo run -p system-update-tui --example play -- [--fail] [--plain]
//! [--mode plymouth] [--speed N] [DEVICE...]` (no DEVICE: this terminal).

use std::path::PathBuf;
use std::time::Duration;

use system_update_tui::Text;
use system_update_tui::{AfterAction, Event, Outcome, Output, Ui, UiMode, UiOptions};

fn main() {
    let mut fail = false;
    let mut mode = UiMode::Auto;
    let mut speed = 1.0f64;
    let mut devices = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fail" => fail = true,
            "--plain" => mode = UiMode::Plain,
            "--mode" => {
                mode = match args.next().as_deref() {
                    Some("plymouth") => UiMode::Plymouth,
                    Some("fullscreen") => UiMode::Fullscreen,
                    Some("plain") => UiMode::Plain,
                    Some("none") => UiMode::None,
                    _ => UiMode::Auto,
                }
            }
            "--speed" => speed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1.0),
            d => devices.push(PathBuf::from(d)),
        }
    }
    let output = if devices.is_empty() {
        Output::Stdout
    } else {
        Output::Devices(devices)
    };
    let ui = Ui::start(UiOptions { mode, output });
    let pause = |ms: u64| std::thread::sleep(Duration::from_secs_f64(ms as f64 / 1000.0 / speed));
    ui.send(Event::Started {
        title: "Demo security update".into(),
    });
    let pkgs = ["libc6", "openssl", "hello", "curl", "tzdata"];
    let n = pkgs.len() as u32;
    for (i, p) in pkgs.iter().enumerate() {
        let i = i as u32;
        ui.send(Event::step(
            i + 1,
            n,
            Text::foreign(format!("Installing {p}")),
        ));
        for k in 0..20u32 {
            let pct = (i * 20 + k) as f32 * 100.0 / (n * 20) as f32;
            ui.send(Event::Progress { percent: pct });
            ui.send(Event::message(Text::foreign(format!(
                "Unpacking {p} ({k}/20)"
            ))));
            ui.send(Event::Log {
                line: format!("Preparing to unpack .../{p}_2.0_amd64.deb, part {k} ..."),
            });
            if fail && i == 3 && k == 10 {
                ui.send(Event::Finished {
                    outcome: Outcome::Failure,
                    detail: Some(format!("{p}: post-installation script returned 1")),
                    log_path: Some("/var/log/system-update/demo.log".into()),
                });
                countdown(&ui, pause);
                ui.finish();
                return;
            }
            pause(100);
        }
    }
    ui.send(Event::Progress { percent: 100.0 });
    ui.send(Event::Finished {
        outcome: Outcome::Success,
        detail: None,
        log_path: Some("/var/log/system-update/demo.log".into()),
    });
    countdown(&ui, pause);
    ui.finish();
}

fn countdown(ui: &Ui, pause: impl Fn(u64)) {
    for s in (1..=3).rev() {
        ui.send(Event::Countdown {
            action: AfterAction::Reboot,
            remaining: Duration::from_secs(s),
        });
        pause(1000);
    }
}
