//! The result record of a run: begun when the attempt is counted, written
//! whenever it changes, ended with the verdict. One place writes it.

use crate::paths::Root;
use crate::result::{self, ResultRecord};
use crate::timefmt;

use super::Verdict;

pub(super) struct Run<'a> {
    pub(super) root: &'a Root,
    pub(super) record: ResultRecord,
}

impl Run<'_> {
    pub(super) fn store(&self) {
        if let Err(e) = result::store(self.root, &self.record) {
            tracing::error!("{e}");
        }
    }

    pub(super) fn end(&mut self, verdict: Verdict) {
        let outcome = verdict.outcome;
        self.record.outcome = outcome;
        self.record.error = verdict.error;
        self.record.finished = Some(timefmt::now_rfc3339());
        match &self.record.error {
            Some(e) => tracing::error!("update {}: {e}", outcome.as_str()),
            None => tracing::info!("update {}", outcome.as_str()),
        }
        self.store();
    }
}
