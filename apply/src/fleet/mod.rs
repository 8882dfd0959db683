//! Fleets: a few machines of a group update at a time, and one failure
//! stops the rest. The group's state lives in etcd, FleetLock-style:
//!
//! - `<prefix>/slots/<n>` (n in 0..fleet-slots), value the machine id: a
//!   semaphore, each slot taken by a transaction that succeeds only while
//!   the slot key is absent and the group is not halted;
//! - `<prefix>/halted`, a JSON object naming the machine and the reason.
//!
//! Network code: only the `fleet` command (and `auto`) reach this module;
//! `apply`, probation and the generator never do (ARCHITECTURE.md).

mod etcd;
pub mod machine;
pub mod report;

pub use etcd::round_trips;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use etcd::{Client, Compare, Kv, Op};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("no fleet: fleet-endpoints is empty in /etc/system-update.toml")]
    NotConfigured,
    #[error("etcd is unreachable ({why}); nothing is armed until it answers")]
    Unreachable { why: String },
    #[error("etcd at {endpoint} answered wrongly: {why}")]
    Protocol { endpoint: String, why: String },
    #[error("{0}")]
    MachineId(String),
    #[error("{id} holds no slot in fleet group {group:?}; `system-update fleet status` lists the holders")]
    NotHolding { id: String, group: String },
    #[error("{0:?} is not a machine id: give the 32 hex digits `fleet status` shows")]
    BadId(String),
}

impl FleetError {
    fn protocol(endpoint: &str, why: &dyn std::fmt::Display) -> FleetError {
        FleetError::Protocol {
            endpoint: endpoint.to_string(),
            why: why.to_string(),
        }
    }
}

/// What the fleet part of the configuration says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetConfig {
    pub endpoints: Vec<String>,
    pub group: String,
    pub slots: u32,
}

impl FleetConfig {
    /// The fleet settings, or NotConfigured without endpoints.
    pub fn from_config(c: &Config) -> Result<FleetConfig, FleetError> {
        if c.fleet_endpoints.is_empty() {
            return Err(FleetError::NotConfigured);
        }
        Ok(FleetConfig {
            endpoints: c.fleet_endpoints.clone(),
            group: c.fleet_group.clone(),
            slots: c.fleet_slots,
        })
    }

    fn client(&self) -> Client<'_> {
        Client {
            endpoints: &self.endpoints,
        }
    }

    /// The group's keys all start with this.
    pub fn prefix(&self) -> String {
        format!("/system-update/fleet/{}/", self.group)
    }

    fn slot_key(&self, n: u32) -> String {
        format!("{}slots/{n}", self.prefix())
    }

    fn halted_key(&self) -> String {
        format!("{}halted", self.prefix())
    }
}

/// Whether this machine may arm its update now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// A slot is ours (taken now, or already).
    Proceed { slot: u32 },
    /// Not now; the reason says who is in the way.
    Wait { reason: String },
}

/// How the update that held the slot ended, as the caller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The next boot was confirmed (or came up, probation off).
    Confirmed,
    /// The update failed, or probation rolled it back.
    Failed { reason: String },
    /// Nothing to settle.
    Nothing,
}

/// Who halted the group, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    pub machine: String,
    pub reason: String,
    /// When, RFC 3339.
    pub since: String,
}

/// One slot taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holder {
    pub slot: u32,
    pub machine: String,
}

/// The group as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetStatus {
    pub group: String,
    pub slots: u32,
    pub held: Vec<Holder>,
    pub halted: Option<Halt>,
}

/// The longest halt reason written or shown.
const REASON_MAX: usize = 500;

/// At most `max` characters, control characters shown as '?': values in
/// etcd are anyone's in the group, and they reach a terminal.
fn short(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The group's keys read in one round trip.
fn read_status(cfg: &FleetConfig) -> Result<FleetStatus, FleetError> {
    let kvs = cfg.client().range_prefix(&cfg.prefix())?;
    Ok(status_of(cfg, &kvs))
}

fn status_of(cfg: &FleetConfig, kvs: &[Kv]) -> FleetStatus {
    let slots_prefix = format!("{}slots/", cfg.prefix());
    let mut held: Vec<Holder> = kvs
        .iter()
        .filter_map(|kv| {
            let n = kv.key.strip_prefix(&slots_prefix)?.parse().ok()?;
            Some(Holder {
                slot: n,
                machine: short(&kv.value, 64),
            })
        })
        .collect();
    held.sort_by_key(|h| h.slot);
    let halted = kvs
        .iter()
        .find(|kv| kv.key == cfg.halted_key())
        .map(|kv| halt_of(&kv.value));
    FleetStatus {
        group: cfg.group.clone(),
        slots: cfg.slots,
        held,
        halted,
    }
}

/// The halted key's value; a value someone else wrote is shown as it is.
fn halt_of(value: &str) -> Halt {
    serde_json::from_str::<Halt>(value)
        .map(|h| Halt {
            machine: short(&h.machine, 64),
            reason: short(&h.reason, REASON_MAX),
            since: short(&h.since, 40),
        })
        .unwrap_or_else(|_| Halt {
            machine: "unknown".into(),
            reason: short(value, REASON_MAX),
            since: String::new(),
        })
}

/// The text of a halt, for Wait and for the status.
pub fn halt_text(h: &Halt) -> String {
    let since = if h.since.is_empty() {
        String::new()
    } else {
        format!(" since {}", h.since)
    };
    format!(
        "the fleet group is halted by {}{since}: {}",
        h.machine, h.reason
    )
}

fn holders_text(st: &FleetStatus) -> String {
    let names: Vec<&str> = st.held.iter().map(|h| h.machine.as_str()).collect();
    format!(
        "all {} slots of fleet group {:?} are held, by {}",
        st.slots,
        st.group,
        names.join(", ")
    )
}

/// Takes one of the group's slots for `machine_id`, or says why not. An
/// error (etcd unreachable) means the caller arms nothing: fail closed.
pub fn take_slot(cfg: &FleetConfig, machine_id: &str) -> Result<Gate, FleetError> {
    // Each lost race means another machine took a slot: bounded by slots.
    for _ in 0..=cfg.slots.saturating_add(1) {
        let st = read_status(cfg)?;
        if let Some(h) = &st.halted {
            return Ok(Gate::Wait {
                reason: halt_text(h),
            });
        }
        if let Some(h) = st.held.iter().find(|h| h.machine == machine_id) {
            return Ok(Gate::Proceed { slot: h.slot });
        }
        // Holders of slots past fleet-slots (it was lowered) count too.
        let free = (0..cfg.slots).find(|n| !st.held.iter().any(|h| h.slot == *n));
        let Some(n) = free.filter(|_| st.held.len() < cfg.slots as usize) else {
            return Ok(Gate::Wait {
                reason: holders_text(&st),
            });
        };
        let key = cfg.slot_key(n);
        let compare = [Compare::absent(&key), Compare::absent(&cfg.halted_key())];
        if cfg.client().txn(&compare, &[Op::Put(&key, machine_id)])? {
            return Ok(Gate::Proceed { slot: n });
        }
    }
    Ok(Gate::Wait {
        reason: format!(
            "fleet group {:?}: others keep taking the free slots",
            cfg.group
        ),
    })
}

/// Settles the end of this machine's update with the group.
pub fn settle(cfg: &FleetConfig, machine_id: &str, last: &Settled) -> Result<(), FleetError> {
    settle_with(cfg, machine_id, last, &read_status(cfg)?)
}

/// As [`settle`], only while `machine_id` holds a slot (so an old failure
/// halts the group once, not again after `fleet resume`), from one read of
/// the group; `last` is asked only then. What was settled, if anything.
pub fn settle_held(
    cfg: &FleetConfig,
    machine_id: &str,
    last: impl FnOnce() -> Settled,
) -> Result<Option<Settled>, FleetError> {
    let st = read_status(cfg)?;
    if !st.held.iter().any(|h| h.machine == machine_id) {
        return Ok(None);
    }
    let last = last();
    settle_with(cfg, machine_id, &last, &st)?;
    Ok(Some(last))
}

fn settle_with(
    cfg: &FleetConfig,
    machine_id: &str,
    last: &Settled,
    st: &FleetStatus,
) -> Result<(), FleetError> {
    match last {
        Settled::Nothing => Ok(()),
        Settled::Confirmed => release(cfg, machine_id, st).map(|_| ()),
        Settled::Failed { reason } => halt(cfg, machine_id, reason, st),
    }
}

/// Frees every slot `machine_id` holds in `st`; how many.
fn release(cfg: &FleetConfig, machine_id: &str, st: &FleetStatus) -> Result<usize, FleetError> {
    let mut freed = 0;
    for h in st.held.iter().filter(|h| h.machine == machine_id) {
        let key = cfg.slot_key(h.slot);
        // Only while it is still ours: an admin's unlock may have given it on.
        if cfg
            .client()
            .txn(&[Compare::holds(&key, machine_id)], &[Op::Delete(&key)])?
        {
            freed += 1;
        }
    }
    Ok(freed)
}

/// Halts the group (the first halt's reason stays) and gives our slot back.
fn halt(
    cfg: &FleetConfig,
    machine_id: &str,
    reason: &str,
    st: &FleetStatus,
) -> Result<(), FleetError> {
    let value = serde_json::to_string(&Halt {
        machine: machine_id.to_string(),
        reason: short(reason, REASON_MAX),
        since: crate::timefmt::now_rfc3339(),
    })
    .map_err(|e| FleetError::protocol("(none)", &e))?;
    let key = cfg.halted_key();
    cfg.client()
        .txn(&[Compare::absent(&key)], &[Op::Put(&key, &value)])?;
    release(cfg, machine_id, st).map(|_| ())
}

/// The group as etcd holds it.
pub fn status(cfg: &FleetConfig) -> Result<FleetStatus, FleetError> {
    read_status(cfg)
}

/// Frees the slots a machine holds (one that died with it); how many.
pub fn unlock(cfg: &FleetConfig, id: &str) -> Result<usize, FleetError> {
    if !machine::is_machine_id(id) {
        return Err(FleetError::BadId(short(id, 64)));
    }
    match release(cfg, id, &read_status(cfg)?)? {
        0 => Err(FleetError::NotHolding {
            id: id.to_string(),
            group: cfg.group.clone(),
        }),
        n => Ok(n),
    }
}

/// Lifts a halt; the halt there was, if any.
pub fn resume(cfg: &FleetConfig) -> Result<Option<Halt>, FleetError> {
    let st = read_status(cfg)?;
    if st.halted.is_some() {
        cfg.client().delete(&cfg.halted_key())?;
    }
    Ok(st.halted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_halt_written_by_someone_else_is_shown_safely() {
        let h = halt_of("\u{1b}[2Jstop\neverything");
        assert_eq!(h.machine, "unknown");
        assert_eq!(h.reason, "?[2Jstop?everything");
        let long = format!(
            "{{\"machine\":\"{}\",\"reason\":\"r\",\"since\":\"\"}}",
            "m".repeat(500)
        );
        assert_eq!(halt_of(&long).machine.len(), 64);
        assert!(halt_text(&halt_of(&long)).ends_with(": r"));
    }

    #[test]
    fn slots_beyond_the_count_are_shown_and_odd_keys_ignored() {
        let cfg = FleetConfig {
            endpoints: vec![],
            group: "g".into(),
            slots: 1,
        };
        let kv = |k: &str, v: &str| Kv {
            key: format!("/system-update/fleet/g/{k}"),
            value: v.into(),
        };
        let st = status_of(
            &cfg,
            &[kv("slots/3", "a"), kv("slots/x", "b"), kv("other", "c")],
        );
        assert_eq!(
            st.held,
            vec![Holder {
                slot: 3,
                machine: "a".into()
            }]
        );
        assert!(st.halted.is_none());
    }
}
