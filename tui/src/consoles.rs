//! The system's active consoles and the TERM each one gets.

use std::path::{Path, PathBuf};

const ACTIVE: &str = "/sys/class/tty/console/active";
const TTY0_ACTIVE: &str = "/sys/class/tty/tty0/active";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Console {
    /// Kernel name, e.g. "tty1", "ttyS0".
    pub name: String,
    pub path: PathBuf,
    pub term: String,
}

/// The active consoles, deduplicated, in the kernel's order. `tty0` (the
/// foreground VT) is resolved to the VT it names.
pub fn active_consoles() -> Vec<Console> {
    let active = std::fs::read_to_string(ACTIVE).unwrap_or_default();
    let fg = std::fs::read_to_string(TTY0_ACTIVE).ok();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let env_term = std::env::var("TERM").ok();
    parse_active(&active, fg.as_deref(), &cmdline, env_term.as_deref())
}

/// As [`active_consoles`], from given file contents.
pub fn parse_active(
    active: &str,
    tty0_active: Option<&str>,
    cmdline: &str,
    env_term: Option<&str>,
) -> Vec<Console> {
    let mut out: Vec<Console> = Vec::new();
    for name in active.split_whitespace() {
        let name = if name == "tty0" {
            match tty0_active.map(str::trim) {
                Some(n) if !n.is_empty() => n.to_string(),
                _ => "tty1".to_string(),
            }
        } else {
            name.to_string()
        };
        // A name is a device in /dev: never a path that leads elsewhere.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            continue;
        }
        if out.iter().any(|c| c.name == name) {
            continue;
        }
        let term = term_for(&name, cmdline, env_term);
        out.push(Console {
            path: Path::new("/dev").join(&name),
            name,
            term,
        });
    }
    out
}

/// Whether a person types on this terminal: a VT or a terminal emulator's
/// pty, never a serial line (whose noise would read as keys).
pub fn has_keyboard(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    is_vt(&name) || path.starts_with("/dev/pts")
}

pub fn is_vt(name: &str) -> bool {
    name.strip_prefix("tty")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The TERM systemd would give a service on that console:
/// `systemd.tty.term.NAME=` on the kernel command line, else `linux` for
/// VTs, else our own TERM when it is not a VT's, else `vt220`.
pub(crate) fn term_for(name: &str, cmdline: &str, env_term: Option<&str>) -> String {
    let key = format!("systemd.tty.term.{name}=");
    if let Some(v) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key.as_str()))
    {
        return v.to_string();
    }
    if is_vt(name) {
        return "linux".to_string();
    }
    match env_term {
        Some(t) if !t.is_empty() && t != "linux" => t.to_string(),
        _ => "vt220".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vt_and_serial() {
        let c = parse_active("tty0 ttyS0\n", Some("tty2\n"), "quiet", Some("vt220"));
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "tty2");
        assert_eq!(c[0].path, PathBuf::from("/dev/tty2"));
        assert_eq!(c[0].term, "linux");
        assert_eq!(c[1].name, "ttyS0");
        assert_eq!(c[1].term, "vt220");
    }

    #[test]
    fn cmdline_term_and_dedup() {
        let c = parse_active(
            "tty1 tty0 ttyS0",
            Some("tty1"),
            "console=ttyS0 systemd.tty.term.ttyS0=xterm-256color",
            Some("linux"),
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].term, "xterm-256color");
        assert!(parse_active("", None, "", None).is_empty());
        assert!(is_vt("tty12") && !is_vt("ttyS0") && !is_vt("tty"));
    }
}

#[cfg(test)]
mod regressions {
    use super::*;

    #[test]
    fn a_name_with_a_slash_is_no_console() {
        let l = parse_active("../../etc/shadow tty1 .. ttyS0", None, "", None);
        let names: Vec<_> = l.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["tty1", "ttyS0"]);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn names() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just("tty0".to_string()),
                Just("tty1".to_string()),
                Just("ttyS0".to_string()),
                Just("../etc/passwd".to_string()),
                Just("..".to_string()),
                "[a-zA-Z0-9/._-]{0,10}",
                "[ \t\n]{1,2}",
            ],
            0..8,
        )
        .prop_map(|v| v.join(" "))
    }

    proptest! {
        #[test]
        fn consoles_are_devices_in_dev_each_once(
            active in names(),
            fg in proptest::option::of("[a-z0-9/. ]{0,8}"),
            cmdline in "[a-zA-Z0-9=,. ]{0,30}",
        ) {
            let list = parse_active(&active, fg.as_deref(), &cmdline, None);
            for (i, c) in list.iter().enumerate() {
                prop_assert_eq!(c.path.parent(), Some(Path::new("/dev")), "{:?}", c);
                prop_assert_eq!(c.path.file_name().map(|n| n.to_string_lossy().into_owned()), Some(c.name.clone()));
                prop_assert!(list[..i].iter().all(|o| o.name != c.name), "twice: {:?}", c);
                prop_assert!(!c.term.is_empty());
            }
        }

        #[test]
        fn parse_active_never_panics(active in any::<String>(), fg in any::<Option<String>>(), cmdline in any::<String>()) {
            let _ = parse_active(&active, fg.as_deref(), &cmdline, Some("vt220"));
        }
    }
}
