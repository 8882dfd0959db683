//! What the `fleet` commands print: a few lines for a person, or JSON
//! (`format` as every command's) for programs.

use serde_json::json;

use super::{halt_text, FleetConfig, FleetStatus, Halt};
use crate::result::JSON_FORMAT;

/// `me`: this machine's id, marked among the holders when known.
pub fn status(cfg: &FleetConfig, st: &FleetStatus, me: Option<&str>, json: bool) -> String {
    if json {
        let mut v = serde_json::to_value(st).unwrap_or_default();
        v["format"] = json!(JSON_FORMAT);
        return format!("{v}\n");
    }
    let mut out = format!(
        "Fleet group {:?} ({}): {} of {} slots held\n",
        st.group,
        cfg.endpoints.join(", "),
        st.held.len(),
        st.slots
    );
    for h in &st.held {
        let mine = if me == Some(h.machine.as_str()) {
            " (this machine)"
        } else {
            ""
        };
        out += &format!("  slot {}: {}{mine}\n", h.slot, h.machine);
    }
    match &st.halted {
        Some(h) => {
            out += &format!(
                "Halted: {}.\n`system-update fleet resume` lets the group go on.\n",
                halt_text(h)
            )
        }
        None => out += "Not halted.\n",
    }
    out
}

pub fn unlocked(cfg: &FleetConfig, id: &str, freed: usize, json: bool) -> String {
    if json {
        let v = json!({"format": JSON_FORMAT, "group": cfg.group, "machine": id, "freed": freed});
        return format!("{v}\n");
    }
    let slots = system_update_events::text::count(freed, "slot", "slots");
    format!("Freed {slots} of {id} in fleet group {:?}.\n", cfg.group)
}

pub fn resumed(cfg: &FleetConfig, was: Option<&Halt>, json: bool) -> String {
    if json {
        let v = json!({"format": JSON_FORMAT, "group": cfg.group, "resumed": was.is_some(), "halted": was});
        return format!("{v}\n");
    }
    match was {
        Some(h) => format!("Fleet group {:?} goes on ({}).\n", cfg.group, halt_text(h)),
        None => format!("Fleet group {:?} was not halted.\n", cfg.group),
    }
}
