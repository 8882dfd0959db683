//! The JSON that `prepare`, `trigger`, `status`, `results`, `history`,
//! `log`, `cancel`, `fleet` and `auto` print is an
//! interface: one key style (snake_case) and a `format` version that changes
//! whenever a key does. The keys seen in a real update are compared with the
//! list recorded for the current format, `json-format-N.keys` beside this
//! file: a changed key without a new format (and a new list) fails here.
//! Needs root (dpkg into a scratch root).

mod common;
mod etcd;

use std::collections::BTreeSet;

use common::{show, with_foo_v1};
use system_update::result::JSON_FORMAT;

/// "a.b[].c" for every key, arrays marked with [].
fn keys(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(path.clone());
                keys(child, &path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                keys(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn json(s: &common::Scratch, args: &[&str], name: &str, out: &mut BTreeSet<String>) {
    let o = s.su(args);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    if name != "results" {
        assert_eq!(v["format"], JSON_FORMAT, "{name}: {v}");
    }
    let mut k = BTreeSet::new();
    keys(&v, "", &mut k);
    out.extend(k.into_iter().map(|k| format!("{name}: {k}")));
}

/// The `fleet` commands' JSON, against a real etcd: a slot held, the group
/// halted, resumed, a slot unlocked.
fn fleet_json(s: &common::Scratch, seen: &mut BTreeSet<String>) {
    use system_update::fleet::{self, FleetConfig, Settled};
    let etcd = etcd::Etcd::start();
    let cfg = FleetConfig {
        endpoints: vec![etcd.url.clone()],
        group: "default".into(),
        slots: 2,
    };
    let config = format!("fleet-endpoints = [{:?}]\nfleet-slots = 2\n", etcd.url);
    std::fs::write(s.path("/etc/system-update.toml"), config).unwrap();
    let (a, b) = (
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    );
    fleet::take_slot(&cfg, a).unwrap();
    fleet::take_slot(&cfg, b).unwrap();
    json(s, &["fleet", "status", "--json"], "fleet-status", seen);
    fleet::settle(
        &cfg,
        a,
        &Settled::Failed {
            reason: "test".into(),
        },
    )
    .unwrap();
    json(s, &["fleet", "status", "--json"], "fleet-status", seen);
    json(s, &["fleet", "resume", "--json"], "fleet-resume", seen);
    json(s, &["fleet", "unlock", "--json", b], "fleet-unlock", seen);
    std::fs::remove_file(s.path("/etc/system-update.toml")).unwrap();
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn json_keys_are_snake_case_and_match_the_format() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    let mut seen = BTreeSet::new();
    json(
        &s,
        &["prepare", "--json", v2.to_str().unwrap()],
        "prepare",
        &mut seen,
    );
    json(
        &s,
        &["trigger", "--json", "--no-reboot"],
        "trigger",
        &mut seen,
    );
    json(&s, &["status", "--json"], "status-prepared", &mut seen);
    let out = s.apply();
    assert!(out.status.success(), "{}", show(&out));
    json(&s, &["status", "--json"], "status", &mut seen);
    json(&s, &["results", "--json"], "results", &mut seen);
    json(&s, &["history", "--json"], "history", &mut seen);
    let conf = s.path("/etc/system-update.toml");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(
        &conf,
        "auto-prepare = \"none\"\nwindow = [\"02:00-03:00\"]\n",
    )
    .unwrap();
    json(
        &s,
        &["auto", "--json", "--now", "2026-12-05T12:00:00Z"],
        "auto",
        &mut seen,
    );
    json(&s, &["log", "--json"], "log", &mut seen);
    json(&s, &["cancel", "--json", "--purge"], "cancel", &mut seen);
    fleet_json(&s, &mut seen);

    for k in &seen {
        let last = k.rsplit(['.', ' ']).next().unwrap_or("");
        let last = last.trim_end_matches("[]");
        assert!(
            !last.is_empty()
                && last
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "key not in snake_case: {k}"
        );
    }
    let file = format!(
        "{}/tests/json-format-{JSON_FORMAT}.keys",
        env!("CARGO_MANIFEST_DIR")
    );
    let seen_text: String = seen.iter().map(|k| format!("{k}\n")).collect();
    if std::env::var_os("SYSTEM_UPDATE_WRITE_KEYS").is_some() {
        std::fs::write(&file, &seen_text).unwrap();
    }
    let recorded = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!("{file}: {e}; a new JSON format needs its key list (SYSTEM_UPDATE_WRITE_KEYS=1 writes it)")
    });
    let recorded: BTreeSet<String> = recorded.lines().map(str::to_string).collect();
    let added: Vec<_> = seen.difference(&recorded).collect();
    let gone: Vec<_> = recorded.difference(&seen).collect();
    assert!(
        added.is_empty() && gone.is_empty(),
        "the JSON keys changed without a new format: added {added:?}, gone {gone:?}. \
         Raise result::JSON_FORMAT, document the change in system-update(8) and record \
         the new list (SYSTEM_UPDATE_WRITE_KEYS=1 cargo test --test json_format); never \
         edit the list of a format that was released"
    );
}
