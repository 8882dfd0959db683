//! `auto`'s part in a fleet (fleet-endpoints set): the group's slot taken
//! last before arming, and settled on a later pass once this machine's
//! update has ended. Only `auto` reaches here, never the update boot.

use super::Gate;
use crate::config::Config;
use crate::fleet::{self, FleetConfig, FleetError, Settled};
use crate::paths::Root;
use crate::result::{Outcome, ResultRecord};

/// A slot of the group, or why not; etcd unreachable arms nothing (fail
/// closed). A machine without a fleet proceeds.
pub fn gate(root: &Root, config: &Config) -> Gate {
    let cfg = match FleetConfig::from_config(config) {
        Ok(c) => c,
        Err(FleetError::NotConfigured) => return Gate::Proceed,
        Err(e) => return Gate::Wait(format!("fleet: {e}")),
    };
    let taken = fleet::machine::machine_id(root).and_then(|id| fleet::take_slot(&cfg, &id));
    match taken {
        Ok(fleet::Gate::Proceed { slot }) => {
            tracing::info!("fleet {}: slot {slot} is ours", cfg.group);
            Gate::Proceed
        }
        Ok(fleet::Gate::Wait { reason }) => Gate::Wait(format!("fleet: {reason}")),
        Err(e) => Gate::Wait(format!("fleet: {e}")),
    }
}

/// How the last update ended, for the group: confirmed (or no probation)
/// gives the slot back, a failure or a rollback halts the group; an update
/// still on its way (deferred, stale) keeps the slot.
pub fn settled(last: &ResultRecord) -> Settled {
    use crate::probation::Verdict;
    match last.outcome {
        Outcome::Success => match last.probation.as_ref().map(|p| p.verdict) {
            None | Some(Verdict::Confirmed) | Some(Verdict::Off) => Settled::Confirmed,
            Some(Verdict::Pending) => Settled::Nothing,
            Some(_) => Settled::Failed {
                reason: format!(
                    "update {}: its boot was not confirmed",
                    last.id.as_deref().unwrap_or("?")
                ),
            },
        },
        Outcome::Deferred | Outcome::Stale => Settled::Nothing,
        other => Settled::Failed {
            reason: format!(
                "update {} ended {}: {}",
                last.id.as_deref().unwrap_or("?"),
                other.as_str(),
                last.error.as_deref().unwrap_or("see its record")
            ),
        },
    }
}

/// On a pass with nothing pending: the end of this machine's update told
/// to the group, when it still holds a slot (so an old failure halts the
/// group once, not again after `fleet resume`). Never stops the pass.
pub fn settle(root: &Root, config: &Config) {
    let Ok(cfg) = FleetConfig::from_config(config) else {
        return;
    };
    let step = || -> Result<Option<Settled>, FleetError> {
        let id = fleet::machine::machine_id(root)?;
        fleet::settle_held(&cfg, &id, || match crate::result::load(root) {
            Ok(Some(r)) => settled(&r),
            _ => Settled::Nothing,
        })
    };
    match step() {
        Ok(Some(s)) => tracing::info!("fleet {}: settled {s:?}", cfg.group),
        Ok(None) => {}
        Err(e) => tracing::warn!("fleet {}: not settled: {e}", cfg.group),
    }
}
