//! The command backend: runs the program named in the manifest, which
//! reports progress on descriptor 3 (`progress N`, `message TEXT`,
//! `step I N NAME`); its exit status decides the outcome.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::collections::HashMap;

use super::process::{self, Ended, Limits, Line, PROGRESS_FD};
use super::{
    Backend, BackendError, Event, Kind, PackageChange, PackageInfo, Repair, Sink, Transaction,
};
use crate::paths::Root;
use system_update_events::Text;

/// A program of the update's own: no package database, so nothing is ever
/// stale and there is nothing to repair but the program itself.
pub struct CommandKind;
pub static KIND: CommandKind = CommandKind;

impl Kind for CommandKind {
    fn name(&self) -> &'static str {
        "command"
    }

    fn payload(&self) -> &'static str {
        "a program and the files it uses"
    }

    fn accepts(&self, _file: &Path) -> bool {
        false
    }

    fn takes_command(&self) -> bool {
        true
    }

    fn inspect(&self, file: &Path) -> Result<PackageInfo, BackendError> {
        Err(BackendError::Failed(format!(
            "{}: the command backend reads no packages",
            file.display()
        )))
    }

    fn fingerprint(&self, _root: &Root) -> Result<Option<String>, BackendError> {
        Ok(None)
    }

    fn installed(&self, _root: &Root) -> Result<HashMap<String, String>, BackendError> {
        Ok(HashMap::new())
    }

    fn repair(&self) -> Repair {
        Repair {
            done: "the program was not run again",
            by_hand: "check what the update program left behind",
        }
    }

    fn open(&self, t: Transaction<'_>) -> Result<Box<dyn Backend>, BackendError> {
        Ok(Box::new(CommandBackend::new(
            t.root.clone(),
            t.update_dir,
            t.payload
                .command
                .map(<[String]>::to_vec)
                .unwrap_or_default(),
            t.payload.id.to_string(),
            t.attempt,
            t.limits,
        )))
    }
}

pub struct CommandBackend {
    root: Root,
    update_dir_host: PathBuf,
    argv: Vec<String>,
    id: String,
    attempt: u32,
    limits: Limits,
    /// The program as verified and held open, when it is a payload file.
    verified_program: Option<PathBuf>,
}

impl CommandBackend {
    pub fn new(
        root: Root,
        update_dir_host: &Path,
        argv: Vec<String>,
        id: String,
        attempt: u32,
        limits: Limits,
    ) -> CommandBackend {
        CommandBackend {
            root,
            update_dir_host: update_dir_host.to_path_buf(),
            argv,
            id,
            attempt,
            limits,
            verified_program: None,
        }
    }
}

/// One protocol line to an event; anything else is ignored.
pub fn parse_line(line: &str) -> Option<Event> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        // NaN and infinities parse as f32 but mean nothing: ignored (NaN
        // passes clamp and would reach the progress bar).
        "progress" => rest
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|p| p.is_finite())
            .map(|p| Event::Progress {
                percent: p.clamp(0.0, 100.0),
            }),
        // The program's own words: not ours to translate.
        "message" => Some(Event::message(Text::foreign(rest))),
        "step" => {
            let mut it = rest.splitn(3, ' ');
            let index = it.next()?.parse().ok()?;
            let total = it.next()?.parse().ok()?;
            let name = it.next().unwrap_or("");
            Some(Event::step(index, total, Text::foreign(name)))
        }
        _ => None,
    }
}

impl Backend for CommandBackend {
    /// The program learns the attempt number from SYSTEM_UPDATE_ATTEMPT and
    /// recovers itself.
    fn recover(&mut self, _sink: &mut dyn Sink) -> Result<(), BackendError> {
        Ok(())
    }

    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let prog = &self.argv[0];
        let program = if prog.starts_with('/') {
            PathBuf::from(prog)
        } else if let Some(p) = &self.verified_program {
            p.clone()
        } else {
            self.update_dir_host.join(prog)
        };
        let mut c = Command::new(&program);
        c.args(&self.argv[1..])
            .current_dir(&self.update_dir_host)
            .env("SYSTEM_UPDATE_PROGRESS_FD", PROGRESS_FD.to_string())
            .env("SYSTEM_UPDATE_ROOT", self.root.dir())
            .env("SYSTEM_UPDATE_DIR", &self.update_dir_host)
            .env("SYSTEM_UPDATE_ID", &self.id)
            .env("SYSTEM_UPDATE_ATTEMPT", self.attempt.to_string());
        let ended = process::run(c, self.limits, &mut |line| match line {
            Line::Output(l) => sink.output(&l),
            Line::Progress(l) => match parse_line(&l) {
                Some(e) => sink.event(e),
                None => tracing::debug!("ignoring progress line {l:?}"),
            },
        })
        .map_err(|source| BackendError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
        let status = match ended {
            Ended::Exited(s) => s,
            Ended::Stalled(limit) => {
                return Err(BackendError::Stalled {
                    program: program.display().to_string(),
                    limit,
                })
            }
        };
        if status.success() {
            Ok(())
        } else {
            Err(BackendError::Failed(match status.code() {
                Some(c) => format!("{} exited with status {c}", program.display()),
                None => format!("{} was killed by a signal", program.display()),
            }))
        }
    }

    fn changes(&self) -> Vec<PackageChange> {
        Vec::new()
    }

    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        if let Some((_, p)) = files.iter().find(|(n, _)| *n == self.argv[0]) {
            self.verified_program = Some(p.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol() {
        assert_eq!(
            parse_line("progress 42"),
            Some(Event::Progress { percent: 42.0 })
        );
        assert_eq!(
            parse_line("progress 420"),
            Some(Event::Progress { percent: 100.0 })
        );
        assert_eq!(
            parse_line("message Copying files"),
            Some(Event::message(Text::foreign("Copying files")))
        );
        assert_eq!(
            parse_line("step 2 5 Installing kernel"),
            Some(Event::step(2, 5, Text::foreign("Installing kernel")))
        );
        assert_eq!(parse_line("progress x"), None);
        // Found by the property test: NaN passed the clamp.
        assert_eq!(parse_line("progress NaN"), None);
        assert_eq!(parse_line("progress inf"), None);
        assert_eq!(parse_line("hello"), None);
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn protocol_line() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            ("[-+]?[0-9]{0,4}(\\.[0-9]{0,3})?|NaN|inf|-inf|1e99")
                .prop_map(|n| format!("progress {n}")),
            any::<String>().prop_map(|t| format!("message {t}")),
            (any::<i64>(), any::<i64>(), any::<String>())
                .prop_map(|(i, n, t)| format!("step {i} {n} {t}")),
        ]
    }

    proptest! {
        #[test]
        fn parse_line_never_panics_and_keeps_progress_in_range(l in protocol_line()) {
            if let Some(Event::Progress { percent }) = parse_line(&l) {
                prop_assert!((0.0..=100.0).contains(&percent), "{} from {:?}", percent, l);
            }
        }

        #[test]
        fn steps_round_trip(i in any::<u32>(), n in any::<u32>(), name in "[ -~]{0,40}") {
            let ev = parse_line(&format!("step {i} {n} {name}"));
            prop_assert_eq!(ev, Some(Event::step(i, n, Text::foreign(name))));
        }
    }
}
