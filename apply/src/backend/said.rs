//! What more than one backend says, translated by its id (events::m_); a
//! backend's own messages are declared in its module.

use system_update_events::{m_, Msg};

pub const INSTALLING: Msg = m_("Installing {} package(s) with {}");
pub const REMOVING: Msg = m_("Removing {}");
pub const VERIFYING: Msg = m_("Verifying the packages");

/// A package manager's verb for one package ("installing", "Upgrading"),
/// as a step's message.
pub fn doing(verb: &str) -> Msg {
    match verb.to_ascii_lowercase().as_str() {
        "upgrading" => m_("Upgrading {}"),
        "reinstalling" => m_("Reinstalling {}"),
        "downgrading" => m_("Downgrading {}"),
        "removing" | "erasing" => REMOVING,
        _ => m_("Installing {}"),
    }
}
