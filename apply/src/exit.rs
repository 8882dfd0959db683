//! Exit statuses, documented in system-update(8).

/// Success, or nothing to do (not our update, another instance acting).
pub const OK: i32 = 0;
/// The update failed (the backend reported an error), or an operation failed.
pub const FAILURE: i32 = 1;
/// Usage or configuration error (clap uses 2 for usage errors too).
pub const USAGE: i32 = 2;
/// The manifest or the payload did not verify; nothing was installed.
pub const VERIFICATION: i32 = 3;
/// The package database changed since prepare; nothing was installed.
pub const STALE: i32 = 4;
/// The attempt limit was reached after interrupted attempts.
pub const INTERRUPTED: i32 = 5;
/// The update was installed but its first boot was not healthy, and the
/// pre-update snapshot was put back (`rolled-back-after-boot`).
pub const ROLLED_BACK_AFTER_BOOT: i32 = 6;
/// Too little power in the update boot: nothing was changed, the update
/// stays prepared and is armed again later (`deferred`).
pub const DEFERRED: i32 = 7;

use crate::result::Outcome;

pub fn for_outcome(o: Outcome) -> i32 {
    match o {
        Outcome::Success => OK,
        Outcome::Failure => FAILURE,
        Outcome::VerificationFailed => VERIFICATION,
        Outcome::Stale => STALE,
        Outcome::Interrupted => INTERRUPTED,
        Outcome::RolledBackAfterBoot => ROLLED_BACK_AFTER_BOOT,
        Outcome::Deferred => DEFERRED,
    }
}
