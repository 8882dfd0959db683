//! The cases that are the same for every package manager, written once
//! (`cases.rs`) over a fixture each backend implements (`fixture.rs`:
//! `dpkg.rs`, `rpm.rs`, `pacman.rs`) and run for each with the real tool
//! on scratch roots: `success::dpkg`, `success::rpm`, `success::pacman`;
//! those of signed packages (`signed.rs`) and of upgrades planned from
//! repositories (`upgrade.rs`) for rpm and pacman.
//! What only one package manager does stays in its own file
//! (offline_update.rs for dpkg and the core, rpm_backend.rs,
//! pacman_backend.rs). Needs root: the package managers chroot into the
//! scratch roots for package scripts.

#[path = "../common/mod.rs"]
mod common;

mod cases;
mod dpkg;
mod fixture;
mod pacman;
mod rpm;
mod signed;
mod upgrade;

use dpkg::Dpkg;
use pacman::Pacman;
use rpm::Rpm;

/// Runs `case` where `ready` says the tools are (else it says why not).
fn run(ready: fn() -> bool, case: fn()) {
    if ready() {
        case();
    }
}

/// For each case of `module`, a module of that name with a test per
/// package manager: `[Fixture test_name, ...]`.
macro_rules! for_each_backend {
    (@case $module:ident $case:ident [$($fixture:ident $test:ident),*]) => {
        mod $case {
            $(
                #[cfg_attr(not(root_tests), ignore = "needs root")]
                #[test]
                fn $test() {
                    use crate::$module::{ready, $case};
                    crate::run(ready::<crate::$fixture>, $case::<crate::$fixture>);
                }
            )*
        }
    };
    ($module:ident $backends:tt: $($case:ident),* $(,)?) => {
        $(for_each_backend!(@case $module $case $backends);)*
    };
}

for_each_backend!(
    cases [Dpkg dpkg, Rpm rpm, Pacman pacman]:
    success,
    failing_script,
    corrupted_payload,
    stale_plan,
    stale_plan_is_not_triggered,
    unmet_dependency_is_refused_at_prepare,
    power_cut_then_the_next_attempt_finishes,
    at_the_limit_it_is_repaired_and_never_a_loop,
    another_architecture_is_refused_at_prepare,
    one_package_twice_is_refused_and_a_reinstall_needs_asking,
    a_root_without_the_database_is_refused_at_prepare,
    a_relative_root_works_from_another_directory,
    many_packages_in_one_update,
    sigterm_does_not_cut_the_transaction,
);

for_each_backend!(
    signed [Rpm rpm, Pacman pacman]:
    a_required_signature_is_checked_at_prepare_and_again_at_boot,
    local_packages_follow_the_roots_signature_level,
    a_tampered_signed_package_is_refused_at_prepare,
    an_imported_update_is_checked_against_this_roots_keys,
    trigger_refuses_a_required_signature_the_root_no_longer_trusts,
);

for_each_backend!(
    upgrade [Rpm rpm, Pacman pacman]:
    an_upgrade_from_a_repository_brings_the_new_dependency,
    upgrade_safe_is_refused_as_the_planner_has_no_such_mode,
);
