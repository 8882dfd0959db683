//! A backend's events and errors with the verified files' descriptor paths turned back into their names.

use super::*;

/// A transaction whose messages name the payload files: the package
/// manager runs on verified descriptors (`/proc/self/fd/N`, or
/// `/proc/PID/fd/N` through [`Links`]) and says so in its output.
pub(super) struct Named {
    pub(super) inner: Box<dyn Backend>,
    /// (descriptor path, payload file name)
    pub(super) names: Vec<(String, String)>,
}

impl Backend for Named {
    fn recover(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let result = self.inner.recover(&mut NamingSink {
            sink,
            names: &self.names,
        });
        result.map_err(|e| unname_error(e, &self.names))
    }

    fn install(&mut self, sink: &mut dyn Sink) -> Result<(), BackendError> {
        let result = self.inner.install(&mut NamingSink {
            sink,
            names: &self.names,
        });
        result.map_err(|e| unname_error(e, &self.names))
    }

    fn changes(&self) -> Vec<PackageChange> {
        self.inner.changes()
    }

    fn use_verified(&mut self, files: &[(String, PathBuf)]) {
        let pid = format!("/proc/{}/", std::process::id());
        for (name, path) in files {
            let path = path.to_string_lossy().into_owned();
            if let Some(rest) = path.strip_prefix("/proc/self/") {
                self.names.push((format!("{pid}{rest}"), name.clone()));
            }
            self.names.push((path, name.clone()));
        }
        self.inner.use_verified(files);
    }

    fn required_bytes(&self) -> u64 {
        self.inner.required_bytes()
    }
}

pub(super) struct NamingSink<'a> {
    pub(super) sink: &'a mut dyn Sink,
    pub(super) names: &'a [(String, String)],
}

impl Sink for NamingSink<'_> {
    fn event(&mut self, event: Event) {
        let event = match event {
            Event::Message { .. } => Event::message(words(&event).map(|s| unname(s, self.names))),
            Event::Step { index, total, .. } => {
                Event::step(index, total, words(&event).map(|s| unname(s, self.names)))
            }
            Event::Log { line } => Event::Log {
                line: unname(&line, self.names),
            },
            e => e,
        };
        self.sink.event(event);
    }

    fn output(&mut self, line: &str) {
        self.sink.output(&unname(line, self.names));
    }
}

pub(super) fn words(e: &Event) -> system_update_events::Text {
    e.words().unwrap_or_default()
}

pub(super) fn unname_error(e: BackendError, names: &[(String, String)]) -> BackendError {
    match e {
        BackendError::Failed(t) => BackendError::Failed(unname(&t, names)),
        BackendError::WouldFail(t) => BackendError::WouldFail(unname(&t, names)),
        e => e,
    }
}

/// `text` with each descriptor path of `names` replaced by its file name;
/// `/proc/self/fd/1` never matches the start of `/proc/self/fd/12`.
pub fn unname(text: &str, names: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (path, name) in names {
        let mut from = 0;
        while let Some(at) = out[from..].find(path.as_str()).map(|i| i + from) {
            let end = at + path.len();
            if out[end..].starts_with(|c: char| c.is_ascii_digit()) {
                from = end;
                continue;
            }
            out.replace_range(at..end, name);
            from = at + name.len();
        }
    }
    out
}

/// Points each payload path at the verified file of the same name.
pub fn take_verified(paths: &mut [PathBuf], verified: &[(String, PathBuf)]) {
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some((_, v)) = verified.iter().find(|(n, _)| Some(n) == name.as_ref()) {
            *p = v.clone();
        }
    }
}
