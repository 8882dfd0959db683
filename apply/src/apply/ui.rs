//! The progress UI of an update: started in the language and with the
//! branding of the root it updates.

use std::path::Path;

use system_update_tui::{Output, Ui, UiOptions};

use crate::config::Config;
use crate::paths::Root;

use super::*;
use crate::osinfo::{pretty_name, system_locale};

/// The progress UI on the consoles, in the system's language and with its
/// branding.
pub(super) fn start_ui(root: &Root, config: &Config, opts: &ApplyOptions) -> Ui {
    load_language(
        root,
        ui_locale(root, &opts.output, |k| std::env::var(k).ok()),
    );
    Ui::start_with(
        UiOptions {
            mode: opts.ui.unwrap_or(config.ui).mode(),
            output: opts.output.clone(),
        },
        system_update_tui::Tuning {
            branding: branding(root, config),
            ..Default::default()
        },
    )
}

/// The language the UI speaks, `var` reading the environment. The
/// consoles of the update boot speak the system's (nobody logged in there);
/// the terminal of the person who ran us (the demo, `apply --root`) speaks
/// theirs, as every command does.
pub fn ui_locale(
    root: &Root,
    output: &Output,
    var: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    match output {
        Output::Stdout => user_locale(var),
        Output::Consoles | Output::Devices(_) => system_locale(root),
    }
}

/// The locale for messages by POSIX's precedence: LC_ALL, LC_MESSAGES,
/// LANG, the first that is set and not empty.
pub fn user_locale(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()))
}

/// The UI speaks `locale` when a catalogue for it is installed (English
/// otherwise, and on consoles that cannot show it).
pub(super) fn load_language(root: &Root, locale: Option<String>) {
    let Some(locale) = locale else {
        return;
    };
    let mut dirs = system_update_tui::i18n::default_dirs();
    if !root.is_live() {
        // The catalogues under an image's root, never through a link out.
        if let Ok(d) = crate::rooted::real_dir(root, Path::new("/usr/share/locale")) {
            dirs.push(d);
        }
    }
    match system_update_tui::i18n::load(&locale, &dirs) {
        Some(p) => tracing::info!("console messages in {locale} ({})", p.display()),
        None => tracing::debug!("no catalogue for {locale}: console messages in English"),
    }
}

/// What the full screen says of this machine: its operating system's
/// PRETTY_NAME (os-release of the root being updated) and the admin's
/// title, footer and colour.
pub(super) fn branding(root: &Root, config: &Config) -> system_update_tui::fullscreen::Branding {
    use system_update_tui::fullscreen::Branding;
    Branding {
        system: pretty_name(root),
        title: config.ui_title.clone(),
        footer: config.ui_footer.clone(),
        accent: config.ui_accent.as_deref().and_then(Branding::parse_accent),
    }
}
