//! The result record of a run: begun when the attempt is counted, written
//! whenever it changes, ended with the verdict. One place writes it.

use crate::paths::Root;
use crate::result::{self, ResultRecord};
use crate::timefmt;
use crate::{reserve, space};

use super::Verdict;

pub(super) struct Run<'a> {
    pub(super) root: &'a Root,
    pub(super) record: ResultRecord,
    /// The free bytes when a failed attempt left the disk full.
    pub(super) full: Option<u64>,
}

impl Run<'_> {
    /// Writes the record; on a full disk, into the space reserved for it,
    /// given back a part at a time (reserve::shrink).
    pub(super) fn store(&self) {
        loop {
            match result::store(self.root, &self.record) {
                Ok(()) => return,
                Err(_) if reserve::shrink(self.root) => {}
                Err(e) => return tracing::error!("{e}"),
            }
        }
    }

    /// The verdict recorded: a failure on a full disk says so.
    pub(super) fn end(&mut self, verdict: Verdict) {
        let outcome = verdict.outcome;
        self.record.outcome = outcome;
        self.record.error = verdict.error;
        if outcome != result::Outcome::Success {
            self.full = space::full(self.root.dir());
        }
        if let Some(free) = self.full {
            let said = self.record.error.take().unwrap_or_default();
            self.record.error = Some(result::disk_full_error(&said, self.root.dir(), free));
        }
        self.record.finished = Some(timefmt::now_rfc3339());
        match &self.record.error {
            Some(e) => tracing::error!("update {}: {e}", outcome.as_str()),
            None => tracing::info!("update {}", outcome.as_str()),
        }
        self.store();
    }
}
