use super::*;

#[test]
fn unknown_key_names_key_and_file() {
    let e = Config::parse("atempt-limit = 3\n", Path::new("/etc/system-update.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("atempt-limit"), "{e}");
    assert!(e.contains("/etc/system-update.toml"), "{e}");
}

#[test]
fn full_file() {
    let c = Config::parse(
        "update-dir = \"/srv/up\"\nafter-action = \"poweroff\"\nui = \"plain\"\nattempt-limit = 1\n\
         snapshot = \"btrfs\"\nkeep-snapshots = 3\nkeep-failed = 0\nrequire-signature = true\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(c.update_dir, Path::new("/srv/up"));
    assert_eq!(c.after_action, AfterAction::Poweroff);
    assert_eq!(c.ui, UiChoice::Plain);
    assert_eq!(c.attempt_limit, 1);
    assert_eq!(c.snapshot, SnapshotChoice::Btrfs);
    assert_eq!(c.keep_snapshots, 3);
    assert_eq!(c.keep_failed, 0);
    assert!(c.require_signature);
}

#[test]
fn ui_branding_keys_are_checked() {
    let c = Config::parse(
        "ui-title = \"Kiosk\"\nui-footer = \"Call 123\"\nui-accent = \"#ff8800\"\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(c.ui_title.as_deref(), Some("Kiosk"));
    assert_eq!(c.ui_accent.as_deref(), Some("#ff8800"));
    let e = Config::parse("ui-accent = \"chartreuse\"\n", Path::new("x"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ui-accent \"chartreuse\" is not a colour"),
        "{e}"
    );
    let long = format!("ui-footer = \"{}\"\n", "x".repeat(300));
    assert!(Config::parse(&long, Path::new("x")).is_err());
}

#[test]
fn empty_is_default() {
    assert_eq!(
        Config::parse("", Path::new("x")).unwrap(),
        Config::default()
    );
}

#[test]
fn relative_dir_and_zero_limit_refused() {
    assert!(Config::parse("update-dir = \"var/x\"\n", Path::new("x")).is_err());
    assert!(Config::parse("attempt-limit = 0\n", Path::new("x")).is_err());
}

#[test]
fn reboot_mode_and_probation_keys() {
    let c = Config::parse(
        "reboot-mode = \"always-reboot\"\nprobation = true\nhealth-target = \"graphical.target\"\nhealth-timeout = 120\nmust-run = [\"nginx.service\", \"getty@tty1.service\"]\nprobation-boots = 1\n",
        Path::new("x"),
    )
    .unwrap();
    assert_eq!(c.reboot_mode, RebootMode::AlwaysReboot);
    assert_eq!(c.health_target, "graphical.target");
    assert_eq!(c.must_run, ["nginx.service", "getty@tty1.service"]);
    assert_eq!((c.health_timeout, c.probation_boots), (120, 1));
    let d = Config::default();
    assert_eq!(d.reboot_mode, RebootMode::Auto);
    assert!(d.probation);
    assert_eq!(d.health_target, "boot-complete.target");
    for (bad, says) in [
        ("reboot-mode = \"soft\"\n", "reboot-mode"),
        (
            "probation-boots = 0\n",
            "probation-boots = 0 is out of range",
        ),
        ("health-timeout = 0\n", "health-timeout = 0"),
        ("health-timeout = 3601\n", "health-timeout = 3601"),
        ("must-run = [\"nginx\"]\n", "\"nginx\" is not a unit name"),
        ("must-run = [\"--now.service\"]\n", "is not a unit name"),
        ("must-run = [\"a b.service\"]\n", "is not a unit name"),
        ("health-target = \"../x.target\"\n", "is not a unit name"),
    ] {
        let e = Config::parse(bad, Path::new("/etc/system-update.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{bad}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

#[test]
fn stall_timeout() {
    let c = Config::parse("stall-timeout = 90\n", Path::new("x")).unwrap();
    assert_eq!(
        c.backend_limits().stall,
        Some(std::time::Duration::from_secs(90))
    );
    let c = Config::parse("stall-timeout = 0\n", Path::new("x")).unwrap();
    assert_eq!(c.backend_limits().stall, None, "0 disables it");
    assert_eq!(
        Config::default().backend_limits().stall,
        Some(std::time::Duration::from_secs(3600))
    );
    let e = Config::parse("stall-timeout = -5\n", Path::new("x"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stall-timeout = -5 is out of range"), "{e}");
    let e = Config::parse(
        "stall-timeout = \"1h\"\n",
        Path::new("/etc/system-update.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/etc/system-update.toml"), "{e}");
    assert!(e.contains("line 1, stall-timeout: "), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[cfg(test)]
mod bounds {
    use super::*;

    fn err(text: &str) -> String {
        let e = Config::parse(text, Path::new("/etc/system-update.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert_eq!(e.matches("/etc/system-update.toml").count(), 1, "{e}");
        e
    }

    #[test]
    fn every_number_is_bounded_and_the_error_names_key_value_and_range() {
        for (key, min, max) in RANGES {
            for v in [min, max] {
                assert!(
                    Config::parse(&format!("{key} = {v}\n"), Path::new("x")).is_ok(),
                    "{key} = {v}"
                );
            }
            let mut bad = vec![max + 1, i64::MAX as u64];
            if min > 0 {
                bad.push(min - 1);
            }
            for v in bad {
                let e = err(&format!("{key} = {v}\n"));
                assert!(
                    e.contains(&format!("{key} = {v}"))
                        && e.contains(&format!("from {min} to {max}")),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn a_huge_stall_timeout_is_refused_not_a_panic_later() {
        let e = err("stall-timeout = 18446744073709551615\n");
        assert!(e.contains("stall-timeout"), "{e}");
        let e = err("stall-timeout = 9223372036854775807\n");
        assert!(e.contains("from 0 to 86400"), "{e}");
    }

    #[test]
    fn an_unquoted_word_for_a_switch_says_true_or_false() {
        for key in ["require-signature", "keep-update", "probation"] {
            let e = err(&format!("{key} = yes\n"));
            assert!(e.contains(key) && e.contains("true or false"), "{e}");
            assert!(!e.contains("must be quoted"), "{e}");
        }
        let e = err("ui = plain\n");
        assert!(e.contains("ui") && e.contains("\"plain\""), "{e}");
    }

    #[test]
    fn a_config_that_is_not_a_file_names_its_path_once() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let p = d.path().join("etc/system-update.toml");
        std::fs::create_dir_all(&p).unwrap();
        let e = Config::load(&root).unwrap_err().to_string();
        assert_eq!(e.matches("system-update.toml").count(), 1, "{e}");
        assert!(e.contains("a directory"), "{e}");
    }

    #[test]
    fn fleet_keys_are_checked() {
        let c = Config::default();
        assert!(c.fleet_endpoints.is_empty());
        assert_eq!((c.fleet_group.as_str(), c.fleet_slots), ("default", 1));
        let c = Config::parse(
            "fleet-endpoints = [\"http://10.0.0.1:2379\", \"http://etcd2:2379\"]\n\
             fleet-group = \"kiosks-3\"\nfleet-slots = 5\nmetrics-file = \"/var/lib/m.prom\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.fleet_endpoints.len(), 2);
        assert_eq!((c.fleet_group.as_str(), c.fleet_slots), ("kiosks-3", 5));
        assert_eq!(
            c.metrics_file.as_deref(),
            Some(Path::new("/var/lib/m.prom"))
        );
        for (bad, said) in [
            (
                "fleet-endpoints = [\"https://e:2379\"]",
                "https is not spoken",
            ),
            ("fleet-endpoints = [\"e:2379\"]", "not an etcd client URL"),
            ("fleet-endpoints = [\"http://\"]", "not an etcd client URL"),
            ("fleet-group = \"a/b\"", "fleet-group \"a/b\""),
            ("fleet-group = \"\"", "fleet-group \"\""),
            ("fleet-slots = 0", "fleet-slots = 0 is out of range"),
            ("fleet-slots = 1001", "from 1 to 1000"),
            (
                "metrics-file = \"m.prom\"",
                "metrics-file must be an absolute path",
            ),
        ] {
            let e = Config::parse(&format!("{bad}\n"), Path::new("x"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(said), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "(/[a-z.]{1,6}){1,4}".prop_map(|d| format!("update-dir = {d:?}")),
            prop_oneof![Just("reboot"), Just("poweroff"), Just("none"), Just("x")]
                .prop_map(|a| format!("after-action = {a:?}")),
            any::<i64>().prop_map(|n| format!("attempt-limit = {n}")),
            any::<i64>().prop_map(|n| format!("stall-timeout = {n}")),
            any::<bool>().prop_map(|b| format!("require-signature = {b}")),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_errors_are_one_line(lines in proptest::collection::vec(line(), 0..6)) {
            match Config::parse(&lines.join("\n"), Path::new("/etc/system-update.toml")) {
                Ok(c) => {
                    prop_assert!(c.update_dir.is_absolute());
                    prop_assert!(crate::updatedir::unsuitable(&c.update_dir).is_none());
                    prop_assert!(c.attempt_limit >= 1);
                }
                Err(e) => {
                    let e = e.to_string();
                    prop_assert!(e.starts_with("/etc/system-update.toml: "), "{}", e);
                }
            }
        }

        #[test]
        fn update_dir_is_judged_after_normalising(dots in "(/\\.\\.|/\\.|/var){1,6}") {
            let c = Config::parse(&format!("update-dir = {dots:?}\n"), Path::new("x"));
            if let Ok(c) = c {
                prop_assert_eq!(c.update_dir.clone(), paths::normalize(Path::new(&dots)));
                prop_assert!(crate::updatedir::unsuitable(&c.update_dir).is_none());
            }
        }
    }
}
