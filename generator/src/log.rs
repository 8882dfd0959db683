//! Logging for a program that runs before the journal exists: to the kernel
//! log when /dev/kmsg can be opened, else to stderr, as systemd's generators
//! do. `SYSTEMD_LOG_LEVEL` and `SYSTEMD_LOG_TARGET` mean what they mean to
//! systemd.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;

/// syslog priorities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Emerg = 0,
    Alert,
    Crit,
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

impl Level {
    /// A level as systemd accepts it: a name or a number from 0 to 7.
    pub fn parse(s: &str) -> Option<Level> {
        const NAMES: [(&str, Level); 8] = [
            ("emerg", Level::Emerg),
            ("alert", Level::Alert),
            ("crit", Level::Crit),
            ("err", Level::Err),
            ("warning", Level::Warning),
            ("notice", Level::Notice),
            ("info", Level::Info),
            ("debug", Level::Debug),
        ];
        let s = s.trim();
        NAMES
            .iter()
            .find(|(n, l)| *n == s || (*l as u8).to_string() == s)
            .map(|(_, l)| *l)
    }
}

// LOG_DAEMON, as systemd adds to kmsg priorities.
const FACILITY_DAEMON: u8 = 3 << 3;

enum Sink {
    Kmsg(File),
    Stderr,
}

pub struct Logger {
    max: Level,
    sink: Sink,
    ident: &'static str,
}

impl Logger {
    /// A logger configured from the environment, falling back to stderr when
    /// the kernel log cannot be opened.
    pub fn from_env(ident: &'static str) -> Logger {
        let max = std::env::var("SYSTEMD_LOG_LEVEL")
            .ok()
            .and_then(|v| Level::parse(&v))
            .unwrap_or(Level::Info);
        let target = std::env::var("SYSTEMD_LOG_TARGET").unwrap_or_default();
        let sink = match target.as_str() {
            "console" => Sink::Stderr,
            _ => match OpenOptions::new().write(true).open("/dev/kmsg") {
                Ok(f) => Sink::Kmsg(f),
                Err(_) => Sink::Stderr,
            },
        };
        Logger { max, sink, ident }
    }

    /// A logger writing to stderr at the given level.
    pub fn stderr(ident: &'static str, max: Level) -> Logger {
        Logger {
            max,
            sink: Sink::Stderr,
            ident,
        }
    }

    pub fn enabled(&self, level: Level) -> bool {
        level <= self.max
    }

    pub fn log(&mut self, level: Level, args: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        // Logging must never fail the generator: a lost line is all we can lose.
        let _ = match &mut self.sink {
            // One write() per record: /dev/kmsg takes each write as one message.
            Sink::Kmsg(f) => f.write_all(
                format!(
                    "<{}>{}[{}]: {}\n",
                    FACILITY_DAEMON | level as u8,
                    self.ident,
                    std::process::id(),
                    args
                )
                .as_bytes(),
            ),
            Sink::Stderr => std::io::stderr().write_all(format!("{args}\n").as_bytes()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(Level::parse("debug"), Some(Level::Debug));
        assert_eq!(Level::parse("7"), Some(Level::Debug));
        assert_eq!(Level::parse("warning"), Some(Level::Warning));
        assert_eq!(Level::parse("4"), Some(Level::Warning));
        assert_eq!(Level::parse("0"), Some(Level::Emerg));
        assert_eq!(Level::parse(" err\n"), Some(Level::Err));
        assert_eq!(Level::parse("8"), None);
        assert_eq!(Level::parse("warn"), None);
        assert_eq!(Level::parse(""), None);
    }

    #[test]
    fn filters_by_level() {
        let l = Logger::stderr("t", Level::Warning);
        assert!(l.enabled(Level::Err));
        assert!(l.enabled(Level::Warning));
        assert!(!l.enabled(Level::Notice));
        assert!(!l.enabled(Level::Debug));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn level_parse_never_panics(s in any::<String>()) {
            let _ = Level::parse(&s);
        }

        #[test]
        fn level_names_and_numbers_round_trip(n in 0u8..8, pad in "[ \t]{0,2}") {
            let l = Level::parse(&format!("{pad}{n}{pad}")).unwrap();
            prop_assert_eq!(l as u8, n);
            let too_high = (n + 8).to_string();
            prop_assert!(Level::parse(&too_high).is_none());
        }
    }
}
