//! The cases that are the same for every package manager, written once
//! (`cases.rs`) over a fixture each backend implements (`fixture.rs`:
//! `dpkg.rs`, `rpm.rs`, `pacman.rs`) and run for each with the real tool
//! on scratch roots: `success::dpkg`, `success::rpm`, `success::pacman`.
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

use fixture::Fixture;

/// Runs `case` where `F`'s tools are (else says why not).
fn run<F: Fixture>(case: fn()) {
    if F::ready() {
        case();
    }
}

/// A module per case with a test per package manager.
macro_rules! for_each_backend {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            use crate::{cases, dpkg::Dpkg, pacman::Pacman, rpm::Rpm, run};

            #[cfg_attr(not(root_tests), ignore = "needs root")]
            #[test]
            fn dpkg() {
                run::<Dpkg>(cases::$case::<Dpkg>);
            }

            #[cfg_attr(not(root_tests), ignore = "needs root")]
            #[test]
            fn rpm() {
                run::<Rpm>(cases::$case::<Rpm>);
            }

            #[cfg_attr(not(root_tests), ignore = "needs root")]
            #[test]
            fn pacman() {
                run::<Pacman>(cases::$case::<Pacman>);
            }
        }
    )*};
}

for_each_backend!(
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
);
