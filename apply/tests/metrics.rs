//! The Prometheus text file (`metrics-file`): written after trigger and
//! after apply's result, parsed here as node_exporter's textfile collector
//! would, with the values the scratch root's update left. Needs root (dpkg
//! into a scratch root).

mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{show, with_foo_v1, Deb};

const FILE: &str = "/var/lib/prometheus/node-exporter/system-update.prom";

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `{a="x",b="y"}` checked: names, quoted values without a raw quote.
fn check_labels(labels: &str, line: &str) {
    let inner = labels
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| panic!("labels not in braces: {line}"));
    for pair in inner.split(',') {
        let (name, value) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
        assert!(is_name(name), "label name {name:?}: {line}");
        let v = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("label value not quoted: {line}"));
        assert!(!v.contains('"') && !v.contains('\n'), "{line}");
    }
}

/// The text exposition format: every sample's metric has a TYPE before it,
/// names and labels are well formed, values are numbers, no series twice.
/// Returns "name{labels}" -> value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "the last line ends in a newline");
    let (mut typed, mut samples) = (Vec::new(), BTreeMap::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{line}"));
            assert!(is_name(name) && kind == "gauge", "{line}");
            assert!(!typed.contains(&name.to_string()), "TYPE twice: {line}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap_or("");
        assert!(is_name(name), "{line}");
        assert_eq!(
            typed.last().map(String::as_str),
            Some(name),
            "sample before its TYPE: {line}"
        );
        if let Some(at) = series.find('{') {
            check_labels(&series[at..], line);
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(
            samples.insert(series.to_string(), v).is_none(),
            "series twice: {line}"
        );
    }
    samples
}

fn metrics(s: &common::Scratch) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(s.path(FILE)).expect("the metrics file");
    parse(&text)
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn the_parser_refuses_what_a_collector_would() {
    assert_eq!(parse("# TYPE a gauge\na{x=\"1\"} 2\n")["a{x=\"1\"}"], 2.0);
    for bad in [
        "a 1\n",
        "# TYPE a gauge\na one\n",
        "# TYPE a gauge\na{x=1} 1\n",
        "# TYPE a gauge\na 1",
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad:?}");
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_update_leaves_its_outcome_in_the_metrics_file() {
    if !common::root_or_skip("dpkg chroots into the scratch root") {
        return;
    }
    let (s, v2) = with_foo_v1(None);
    std::fs::write(
        s.path("/etc/system-update.toml"),
        format!("metrics-file = {FILE:?}\n"),
    )
    .unwrap();
    s.prepare_and_trigger(&[&v2]);
    let m = metrics(&s);
    assert_eq!(m["system_update_pending"], 1.0, "{m:?}");
    assert!(
        !m.keys().any(|k| k.starts_with("system_update_last_")),
        "no result yet: {m:?}"
    );

    let out = s.apply();
    assert!(out.status.success(), "{}", show(&out));
    let m = metrics(&s);
    assert_eq!(
        m["system_update_last_outcome{outcome=\"success\"}"], 1.0,
        "{m:?}"
    );
    assert_eq!(m["system_update_last_attempts"], 1.0, "{m:?}");
    assert_eq!(m["system_update_pending"], 0.0, "{m:?}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    let finished = m["system_update_last_finished_timestamp_seconds"];
    assert!(
        (now - 600.0..=now + 1.0).contains(&finished),
        "{finished} vs {now}"
    );
    assert!(
        (0.0..600.0).contains(&m["system_update_last_duration_seconds"]),
        "{m:?}"
    );
    assert_eq!(
        m.keys()
            .filter(|k| k.starts_with("system_update_probation{"))
            .count(),
        1,
        "{m:?}"
    );
    assert!(
        !m.contains_key("system_update_fleet_halted"),
        "no fleet asked: {m:?}"
    );

    // A failing update says so.
    let v3 = Deb::new("foo", "3").postinst("exit 1").build(&s.debs);
    s.prepare_again_and_trigger(&[&v3]);
    let out = s.apply();
    assert!(!out.status.success(), "{}", show(&out));
    let m = metrics(&s);
    assert_eq!(
        m["system_update_last_outcome{outcome=\"failure\"}"], 1.0,
        "{m:?}"
    );
    assert!(
        !m.contains_key("system_update_last_outcome{outcome=\"success\"}"),
        "{m:?}"
    );
}
