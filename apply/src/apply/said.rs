//! What the apply core says on the consoles, translated by its id
//! (events::m_); backends declare theirs in their own modules.

use system_update_events::{m_, Msg};

pub const VERIFYING: Msg = m_("Verifying the update");
pub const SNAPSHOT: Msg = m_("Taking a snapshot");
pub const ROLLING_BACK: Msg = m_("Rolling back to the snapshot taken before the update");
pub const REPAIRING: Msg = m_("Repairing the package database after the interrupted update");
