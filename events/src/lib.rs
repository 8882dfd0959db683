//! Progress events: what a backend reports and the UI, the journal and the
//! result record are built from. They say nothing of any package manager
//! and depend on nothing of the UI, so a backend links neither ratatui nor
//! crossterm.
//!
//! Serialised as one JSON object per event with an `event` tag; a reader
//! checks [`FORMAT`] (carried by [`Versioned`]) before trusting the keys.

pub mod text;
pub mod words;

pub use words::{m_, Msg, Text};

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Version of the serialised events: raised whenever a key changes meaning
/// or goes away (adding an event or a key does not raise it).
pub const FORMAT: u32 = 1;

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Success,
    Failure,
    /// Cut short (power cut, crash, kill) too many times: not tried again.
    Interrupted,
    /// The signature, a checksum, an owner or a mode did not hold.
    VerificationFailed,
    /// The package database changed since the update was prepared.
    Stale,
    /// Installed, but the first boot afterwards was not healthy (a
    /// must-run unit failed, the health target was not reached in time, or
    /// the boot never got that far): the pre-update snapshot was put back.
    RolledBackAfterBoot,
    /// Not begun, nothing changed: too little power (on battery below
    /// min-battery). The update stays prepared and no attempt is counted.
    Deferred,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Interrupted => "interrupted",
            Outcome::VerificationFailed => "verification-failed",
            Outcome::Stale => "stale",
            Outcome::RolledBackAfterBoot => "rolled-back-after-boot",
            Outcome::Deferred => "deferred",
        }
    }

    pub fn is_success(self) -> bool {
        self == Outcome::Success
    }
}

/// What the machine does once the update is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterAction {
    Reboot,
    PowerOff,
    /// Nothing (`--no-reboot`, the demo, tests).
    None,
}

/// One package's change as the backend saw it once its program ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageChange {
    pub name: String,
    /// Installed version before the update; `None` when it was new.
    pub before: Option<String>,
    /// Installed version after the update; `None` when it is gone or was
    /// never installed.
    pub after: Option<String>,
    /// The package's real state afterwards, as its database records it:
    /// `installed`, `removed`, `not-installed`, or a state of a transaction
    /// cut short such as dpkg's `half-configured` or `unpacked`.
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The update begins; `title` names it ("Debian security update").
    Started { title: String },
    /// Step `index` (1-based) of `total`, e.g. "Installing hello 2.0";
    /// `id` and `args` as in [`Text`] (build it with [`Event::step`]).
    Step {
        index: u32,
        total: u32,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// Overall progress, 0.0 to 100.0.
    Progress { percent: f32 },
    /// What is happening right now, one line; `id` and `args` as in
    /// [`Text`] (build it with [`Event::message`]).
    Message {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// One line of the backend's output, for the log tail.
    Log { line: String },
    /// A package the transaction touched (sent once the program ended; the
    /// result record's package list is made of these).
    Package(PackageChange),
    /// The update is over. `detail` is the error on failure (one line),
    /// `log_path` where the full log is kept.
    Finished {
        outcome: Outcome,
        detail: Option<String>,
        log_path: Option<PathBuf>,
    },
    /// The after-action happens in `remaining`.
    Countdown {
        action: AfterAction,
        remaining: Duration,
    },
}

impl Event {
    pub fn message(t: Text) -> Event {
        Event::Message {
            text: t.english,
            id: t.id,
            args: t.args,
        }
    }

    pub fn step(index: u32, total: u32, t: Text) -> Event {
        Event::Step {
            index,
            total,
            name: t.english,
            id: t.id,
            args: t.args,
        }
    }

    /// The words of a step or a message.
    pub fn words(&self) -> Option<Text> {
        let (english, id, args) = match self {
            Event::Step { name, id, args, .. } => (name, id, args),
            Event::Message { text, id, args } => (text, id, args),
            _ => return None,
        };
        Some(Text {
            english: english.clone(),
            id: id.clone(),
            args: args.clone(),
        })
    }
}

/// An event with the format it is written in, for a stream read by another
/// program: `{"format":1,"event":"step",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    pub format: u32,
    #[serde(flatten)]
    pub event: Event,
}

impl Versioned {
    pub fn new(event: Event) -> Versioned {
        Versioned {
            format: FORMAT,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_their_format() {
        let all = [
            Event::Started { title: "t".into() },
            Event::step(1, 2, m_("Unpacking {}").with(&[&"a"])),
            Event::step(1, 2, Text::foreign("Copying")),
            Event::Progress { percent: 50.0 },
            Event::message(Text::foreign("m")),
            Event::message(m_("Checking the keyring").text()),
            Event::Log { line: "l".into() },
            Event::Package(PackageChange {
                name: "a".into(),
                before: Some("1".into()),
                after: None,
                state: Some("removed".into()),
            }),
            Event::Finished {
                outcome: Outcome::VerificationFailed,
                detail: Some("d".into()),
                log_path: Some("/var/log/x".into()),
            },
            Event::Countdown {
                action: AfterAction::PowerOff,
                remaining: Duration::from_secs(3),
            },
        ];
        for e in all {
            let json = serde_json::to_string(&Versioned::new(e.clone())).unwrap();
            assert!(json.starts_with("{\"format\":1,\"event\":"), "{json}");
            let back: Versioned = serde_json::from_str(&json).unwrap();
            assert_eq!(back.event, e);
        }
    }

    #[test]
    fn words_keep_format_1_and_add_their_id() {
        let j = serde_json::to_string(&Event::message(Text::foreign("m"))).unwrap();
        assert_eq!(j, r#"{"event":"message","text":"m"}"#);
        let old: Event =
            serde_json::from_str(r#"{"event":"step","index":1,"total":2,"name":"x"}"#).unwrap();
        assert_eq!(old.words(), Some(Text::foreign("x")));
        let j =
            serde_json::to_string(&Event::step(1, 2, m_("Unpacking {}").with(&[&"a"]))).unwrap();
        assert_eq!(
            j,
            r#"{"event":"step","index":1,"total":2,"name":"Unpacking a","id":"Unpacking {}","args":["a"]}"#
        );
    }

    #[test]
    fn names_on_the_wire_are_stable() {
        let j = serde_json::to_string(&Event::Finished {
            outcome: Outcome::VerificationFailed,
            detail: None,
            log_path: None,
        })
        .unwrap();
        assert_eq!(
            j,
            r#"{"event":"finished","outcome":"verification-failed","detail":null,"log_path":null}"#
        );
        let j = serde_json::to_string(&Event::Package(PackageChange {
            name: "a".into(),
            before: None,
            after: Some("2".into()),
            state: Some("half-configured".into()),
        }))
        .unwrap();
        assert_eq!(
            j,
            r#"{"event":"package","name":"a","before":null,"after":"2","state":"half-configured"}"#
        );
    }
}
