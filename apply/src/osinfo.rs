//! What a root says of itself: its operating system's name (os-release)
//! and its locale for messages (locale.conf), read as untrusted files.

use std::path::Path;

use crate::paths::Root;

/// The system's locale for messages as the update boot knows it: LC_ALL,
/// LC_MESSAGES or LANG of /etc/locale.conf (systemd) or, on Debian,
/// /etc/default/locale. Not our environment: nobody logged in here.
pub fn system_locale(root: &Root) -> Option<String> {
    first_of(
        root,
        &["/etc/locale.conf", "/etc/default/locale"],
        parse_locale,
    )
}

pub fn parse_locale(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
            let v = v.trim().trim_matches('"').trim_matches('\'');
            (!v.is_empty()).then(|| v.to_string())
        })
    };
    get("LC_ALL")
        .or_else(|| get("LC_MESSAGES"))
        .or_else(|| get("LANG"))
}

/// os-release's PRETTY_NAME, unquoted; None when there is none.
pub fn pretty_name(root: &Root) -> Option<String> {
    first_of(
        root,
        &["/etc/os-release", "/usr/lib/os-release"],
        parse_pretty_name,
    )
}

/// What `parse` finds in the first of the root's files `paths` that has
/// it: regular files within the config size cap, never through a link
/// that could lead out of an image's root.
fn first_of<T>(root: &Root, paths: &[&str], parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    paths.iter().find_map(|p| {
        let max = crate::untrusted::CONFIG_MAX;
        let text = crate::untrusted::read_text_in(root, Path::new(p), max, false).ok()?;
        parse(&text)
    })
}

pub fn parse_pretty_name(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("PRETTY_NAME="))
        .map(|v| {
            let v = v.trim();
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v)
                .replace("\\\"", "\"")
        })
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(120).collect())
}
