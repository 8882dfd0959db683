//! Fleets against a real etcd (Debian's etcd-server) started by each test
//! on 127.0.0.1: slots taken and given back, a failure halting the group,
//! `fleet unlock` and `fleet resume`, and etcd gone. Needs root for the
//! command line's roots (their config and machine-id must be root's).

mod common;
mod etcd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{show, BIN};
use etcd::Etcd;
use system_update::fleet::{self, FleetConfig, FleetError, Gate, Settled};

fn ready() -> bool {
    common::root_or_skip("the roots' config and machine-id must be root's")
        && common::tool_or_skip("etcd", "etcd-server")
}

fn id(n: usize) -> String {
    format!("{:032x}", 0x1234_5678_9abc_def0_u128 * (n as u128 + 1))
}

fn cfg(etcd: &Etcd, group: &str, slots: u32) -> FleetConfig {
    FleetConfig {
        endpoints: vec![etcd.url.clone()],
        group: group.into(),
        slots,
    }
}

/// A root with a machine id and a config naming the fleet.
fn member(dir: &Path, n: usize, fleet: &FleetConfig) -> PathBuf {
    let root = dir.join(format!("m{n}"));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/machine-id"), format!("{}\n", id(n))).unwrap();
    let endpoints: Vec<String> = fleet.endpoints.iter().map(|e| format!("{e:?}")).collect();
    let config = format!(
        "fleet-endpoints = [{}]\nfleet-group = {:?}\nfleet-slots = {}\nmetrics-file = \"/m.prom\"\n",
        endpoints.join(", "),
        fleet.group,
        fleet.slots
    );
    std::fs::write(root.join("etc/system-update.toml"), config).unwrap();
    root
}

fn su(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn proceeds(g: &Gate) -> bool {
    matches!(g, Gate::Proceed { .. })
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn six_machines_two_slots_never_more_than_two_hold() {
    if !ready() {
        return;
    }
    let etcd = Etcd::start();
    let c = cfg(&etcd, "six", 2);
    // In turn: two proceed, the third waits naming both holders.
    assert!(proceeds(&fleet::take_slot(&c, &id(0)).unwrap()));
    assert!(proceeds(&fleet::take_slot(&c, &id(1)).unwrap()));
    assert!(
        proceeds(&fleet::take_slot(&c, &id(0)).unwrap()),
        "re-entrant"
    );
    match fleet::take_slot(&c, &id(2)).unwrap() {
        Gate::Wait { reason } => {
            assert!(reason.contains("all 2 slots"), "{reason}");
            assert!(
                reason.contains(&id(0)) && reason.contains(&id(1)),
                "{reason}"
            );
        }
        g => panic!("a third machine got {g:?}"),
    }
    // A confirmed boot gives the slot back; the waiting machine gets it.
    fleet::settle(&c, &id(0), &Settled::Confirmed).unwrap();
    assert!(proceeds(&fleet::take_slot(&c, &id(2)).unwrap()));
    fleet::settle(&c, &id(1), &Settled::Confirmed).unwrap();
    fleet::settle(&c, &id(2), &Settled::Confirmed).unwrap();
    assert!(fleet::status(&c).unwrap().held.is_empty());

    // All six at once, each until through: never more than two inside.
    let inside = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for n in 0..6 {
            let (c, inside, most) = (&c, &inside, &most);
            s.spawn(move || {
                let start = Instant::now();
                while !proceeds(&fleet::take_slot(c, &id(n)).unwrap()) {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "machine {n} never got a slot"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(fleet::status(c).unwrap().held.len() <= 2);
                std::thread::sleep(Duration::from_millis(50));
                inside.fetch_sub(1, Ordering::SeqCst);
                fleet::settle(c, &id(n), &Settled::Confirmed).unwrap();
            });
        }
    });
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "two slots, both used, never more"
    );
    assert!(fleet::status(&c).unwrap().held.is_empty());
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_failure_halts_the_group_until_resume() {
    if !ready() {
        return;
    }
    let etcd = Etcd::start();
    let c = cfg(&etcd, "halt", 2);
    let dir = tempfile::tempdir().unwrap();
    let root = member(dir.path(), 5, &c);
    assert!(proceeds(&fleet::take_slot(&c, &id(0)).unwrap()));
    assert!(proceeds(&fleet::take_slot(&c, &id(1)).unwrap()));
    let failed = Settled::Failed {
        reason: "probation: nginx.service failed; rolled back".into(),
    };
    fleet::settle(&c, &id(0), &failed).unwrap();
    let st = fleet::status(&c).unwrap();
    let halt = st.halted.expect("halted");
    assert_eq!(halt.machine, id(0));
    assert!(halt.reason.contains("nginx.service"), "{halt:?}");
    assert_eq!(st.held.len(), 1, "the failed machine's slot is given back");
    // A second failure keeps the first reason.
    fleet::settle(
        &c,
        &id(1),
        &Settled::Failed {
            reason: "later".into(),
        },
    )
    .unwrap();
    assert_eq!(fleet::status(&c).unwrap().halted.unwrap().machine, id(0));
    for n in 1..6 {
        match fleet::take_slot(&c, &id(n)).unwrap() {
            Gate::Wait { reason } => assert!(
                reason.contains("halted by") && reason.contains(&id(0)) && reason.contains("nginx"),
                "{reason}"
            ),
            g => panic!("machine {n} got {g:?} in a halted group"),
        }
    }
    let o = su(&root, &["fleet", "status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("Halted: the fleet group is halted by"),
        "{}",
        show(&o)
    );
    let metrics = || std::fs::read_to_string(root.join("m.prom")).unwrap();
    assert!(
        metrics().contains("\nsystem_update_fleet_halted 1\n"),
        "{}",
        metrics()
    );
    let o = su(&root, &["fleet", "resume"]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("goes on"),
        "{}",
        show(&o)
    );
    assert!(fleet::status(&c).unwrap().halted.is_none());
    assert!(
        metrics().contains("\nsystem_update_fleet_halted 0\n"),
        "{}",
        metrics()
    );
    assert!(proceeds(&fleet::take_slot(&c, &id(2)).unwrap()));
    let o = su(&root, &["fleet", "resume"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("was not halted"),
        "{}",
        show(&o)
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn unlock_frees_a_dead_machines_slot() {
    if !ready() {
        return;
    }
    let etcd = Etcd::start();
    let c = cfg(&etcd, "dead", 1);
    let dir = tempfile::tempdir().unwrap();
    let root = member(dir.path(), 1, &c);
    assert!(proceeds(&fleet::take_slot(&c, &id(3)).unwrap()));
    assert!(!proceeds(&fleet::take_slot(&c, &id(1)).unwrap()));
    let o = su(&root, &["fleet", "unlock", &id(3)]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Freed 1 slot"),
        "{}",
        show(&o)
    );
    assert!(proceeds(&fleet::take_slot(&c, &id(1)).unwrap()));
    let o = su(&root, &["fleet", "status"]);
    let mine = format!("slot 0: {} (this machine)", id(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&mine),
        "{}",
        show(&o)
    );
    // Nothing held: said, and a failure.
    let o = su(&root, &["fleet", "unlock", &id(3)]);
    assert_eq!(common::code(&o), 1, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds no slot"),
        "{}",
        show(&o)
    );
    let o = su(&root, &["fleet", "unlock", "x/../y"]);
    assert_eq!(common::code(&o), 2, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a machine id"),
        "{}",
        show(&o)
    );
    // An unlocked machine that comes back does not free its successor's slot.
    fleet::settle(&c, &id(3), &Settled::Confirmed).unwrap();
    assert_eq!(fleet::status(&c).unwrap().held[0].machine, id(1));
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn etcd_gone_is_an_error_said_plainly_and_quickly() {
    if !ready() {
        return;
    }
    let mut etcd = Etcd::start();
    let c = cfg(&etcd, "gone", 1);
    let dir = tempfile::tempdir().unwrap();
    let root = member(dir.path(), 0, &c);
    etcd.stop();
    let start = Instant::now();
    let e = fleet::take_slot(&c, &id(0)).unwrap_err();
    assert!(matches!(e, FleetError::Unreachable { .. }), "{e}");
    let said = e.to_string();
    assert!(
        said.contains("etcd is unreachable") && said.contains("nothing is armed"),
        "{said}"
    );
    assert!(said.contains(&etcd.url), "{said}");
    assert!(fleet::settle(&c, &id(0), &Settled::Confirmed).is_err());
    let o = su(&root, &["fleet", "status"]);
    assert_eq!(common::code(&o), 1, "{}", show(&o));
    // Another endpoint that answers is used.
    let other = Etcd::start();
    let both = FleetConfig {
        endpoints: vec![etcd.url.clone(), other.url.clone()],
        ..c.clone()
    };
    assert!(proceeds(&fleet::take_slot(&both, &id(0)).unwrap()));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("etcd is unreachable"),
        "{}",
        show(&o)
    );
    // Generous: the deadline per request is seconds, a hang is forever.
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn a_machine_without_a_fleet_or_an_id_is_told_what_to_do() {
    if !ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(BIN)
        .arg("--root")
        .arg(dir.path())
        .args(["fleet", "status"])
        .output()
        .unwrap();
    assert_eq!(common::code(&o), 2, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fleet-endpoints is empty"),
        "{}",
        show(&o)
    );
    let e = system_update::fleet::machine::machine_id(&system_update::paths::Root::new(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("machine-id"), "{e}");
}

/// Timing for the closing note, by hand:
/// `cargo test --test fleet -- --ignored --nocapture fifty`. Each machine
/// polls every 50 ms while it waits and "updates" for 100 ms; a watcher
/// reads the group from etcd meanwhile.
#[test]
#[ignore]
fn fifty_machines_five_slots_benchmark() {
    let etcd = Etcd::start();
    let c = cfg(&etcd, "bench", 5);
    let (most, done, looks) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let (start, trips) = (Instant::now(), fleet::round_trips());
    std::thread::scope(|s| {
        for n in 0..50 {
            let (c, done) = (&c, &done);
            s.spawn(move || {
                while !proceeds(&fleet::take_slot(c, &id(n)).unwrap()) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(100));
                fleet::settle(c, &id(n), &Settled::Confirmed).unwrap();
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (c, most, done, looks) = (&c, &most, &done, &looks);
        s.spawn(move || {
            while done.load(Ordering::SeqCst) < 50 {
                looks.fetch_add(1, Ordering::SeqCst);
                most.fetch_max(fleet::status(c).unwrap().held.len(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    });
    let elapsed = start.elapsed();
    // The watcher's one range a look is not the machines'.
    let trips = fleet::round_trips() - trips - looks.load(Ordering::SeqCst) as u64;
    let most = most.load(Ordering::SeqCst);
    println!(
        "50 machines, 5 slots: all through in {elapsed:?}, at most {most} held, \
         {:.1} etcd round trips per machine ({trips} in all; 4 without waiting)",
        trips as f64 / 50.0
    );
    assert!(most <= 5);
}

/// The update boot opens no socket: the apply phases, the probation and the
/// generator never name the fleet code nor the HTTP client (ARCHITECTURE.md,
/// "Decisions"). A guard on the sources, so that a later wiring is a choice.
#[test]
fn the_boot_path_never_reaches_the_network_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join("apply"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(src.join("probation.rs"));
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("../generator");
    files.push(generator.join("Cargo.toml"));
    for e in std::fs::read_dir(generator.join("src")).unwrap() {
        files.push(e.unwrap().path());
    }
    assert!(files.len() > 5, "{files:?}");
    for f in files.iter().filter(|f| f.is_file()) {
        let text = std::fs::read_to_string(f).unwrap();
        for word in ["fleet::", "minreq", "TcpStream"] {
            assert!(!text.contains(word), "{} names {word}", f.display());
        }
    }
}
