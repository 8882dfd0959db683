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
    /// A rollback follows: the space reserved is kept for it.
    pub(super) for_rollback: bool,
}

impl Run<'_> {
    /// Writes the record; on a full disk, into the space reserved for it
    /// (no block freed that another writer could take first), else with
    /// that space given back a part at a time (btrfs may lack the
    /// metadata space even for that).
    pub(super) fn store(&self) {
        let Err(e) = crate::history::keep(self.root, &self.record) else {
            return;
        };
        if self.for_rollback {
            return tracing::error!("{}", crate::oneline::of(e.as_ref()));
        }
        tracing::warn!(
            "{}; writing it into the space reserved for it",
            crate::oneline::of(e.as_ref())
        );
        loop {
            match crate::history::keep_reserved(self.root, &self.record) {
                Ok(()) => return,
                Err(_) if reserve::shrink(self.root) => {}
                Err(e) => return tracing::error!("{}", crate::oneline::of(e.as_ref())),
            }
        }
    }

    /// The verdict recorded: a failure of a transaction that left the disk
    /// full says so (before one, nothing was changed and the space check
    /// said what it found).
    pub(super) fn end(&mut self, verdict: Verdict, transaction_started: bool) {
        let outcome = verdict.outcome;
        self.record.outcome = outcome;
        self.record.error = verdict.error;
        if outcome != result::Outcome::Success && transaction_started {
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
