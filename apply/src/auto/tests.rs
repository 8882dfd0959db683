use super::*;
use crate::logind::{Inhibitor, Seen, Session};

fn seen(inhibitors: Vec<Inhibitor>, users: &[&str]) -> Seen {
    Seen {
        inhibitors,
        sessions: users
            .iter()
            .enumerate()
            .map(|(i, u)| Session {
                id: i.to_string(),
                user: u.to_string(),
                uid: 1000,
                seat: "seat0".into(),
            })
            .collect(),
    }
}

fn backup(mode: &str) -> Inhibitor {
    Inhibitor {
        what: "shutdown:sleep".into(),
        who: "backup".into(),
        why: "copying the disks".into(),
        mode: mode.into(),
        uid: 0,
        pid: 7,
    }
}

#[test]
fn a_blocking_inhibitor_holds_the_reboot_and_is_named() {
    let why = held_by_people(&seen(vec![backup("block")], &[]), WhenUsers::Warn).unwrap();
    assert_eq!(
        why,
        "a shutdown is inhibited by backup (pid 7): copying the disks"
    );
    assert_eq!(
        held_by_people(&seen(vec![backup("delay")], &[]), WhenUsers::Wait),
        None
    );
}

#[test]
fn logged_in_users_hold_it_only_with_when_users_wait() {
    let s = seen(Vec::new(), &["ann", "ann", "bob"]);
    assert_eq!(held_by_people(&s, WhenUsers::Warn), None);
    assert_eq!(
        held_by_people(&s, WhenUsers::Wait).unwrap(),
        "logged in: ann, bob (when-users is wait)"
    );
    assert_eq!(held_by_people(&Seen::default(), WhenUsers::Wait), None);
    let s = seen(Vec::new(), &["bob", "ann", "bob"]);
    assert_eq!(
        held_by_people(&s, WhenUsers::Wait).unwrap(),
        "logged in: ann, bob (when-users is wait)"
    );
}

#[test]
fn the_fleet_gate_lets_a_machine_without_a_fleet_proceed() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    assert_eq!(fleet_gate(&root, &Config::default()), Gate::Proceed);
}
