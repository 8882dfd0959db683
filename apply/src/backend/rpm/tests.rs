#[test]
fn older_instances_of_the_update_are_leftovers() {
    let t = |n: &str, v: &str| (n.to_string(), v.to_string());
    let targets = vec![t("a", "2.0-1"), t("b", "2.0-1"), t("d", "2.0-1")];
    // a: cut between install and erase; b: done; c: not in the update;
    // d: the new one never got in, so the old one is all there is.
    let text = "a 2.0-1 a-2.0-1.noarch\na 1.0-1 a-1.0-1.noarch\nb 2.0-1 b-2.0-1.noarch\nc 1-1 c-1-1.noarch\nc 2-1 c-2-1.noarch\nd 1.0-1 d-1.0-1.noarch\n";
    assert_eq!(
        super::leftover_instances(text, &targets),
        vec!["a-1.0-1.noarch".to_string()]
    );
    // Two of one NEVRA: `rpm -e` cannot pick one of them.
    let same = "a 2.0-1 a-2.0-1.noarch\na 1.0-1 a-1.0-1.noarch\na 1.0-1 a-1.0-1.noarch\n";
    assert!(super::leftover_instances(same, &targets).is_empty());
    let twice = "a 2.0-1 a-2.0-1.noarch\nb 2.0-1 b-2.0-1.noarch\nb 2.0-1 b-2.0-1.noarch\n";
    assert_eq!(super::doubled_targets(twice, &targets), vec![1]);
    assert!(super::doubled_targets(text, &targets).is_empty());
}

use super::*;

#[test]
fn progress_from_percent_output() {
    let mut p = Progress::new(2);
    let mut all = Vec::new();
    for l in [
        "Verifying...                          %% 0.000000",
        "########################################",
        "Preparing...                          %% 0.000000",
        "Updating / installing...",
        "hello-2.0-1                           %% 0.000000",
        "%% 53.030300",
        "%% 100.000000",
        "world-1.0-1                           %% 0.000000",
        "%% 100.000000",
        "Cleaning up / removing...",
        "hello-1.0-1                           %% 0.000000",
        "%% 100.000000",
        "warning: %post(world-1.0-1.noarch) scriptlet failed, exit status 1",
    ] {
        all.extend(p.feed(l));
    }
    assert!(all.contains(&Event::step(
        2,
        2,
        said::doing("Installing").with(&[&"world-1.0-1"])
    )));
    assert!(all.contains(&Event::Progress { percent: 45.0 }));
    assert!(all.contains(&Event::Progress { percent: 100.0 }));
    assert_eq!(
        p.errors,
        ["%post(world-1.0-1.noarch) scriptlet failed, exit status 1"]
    );
}

#[test]
fn progress_from_dnf_output() {
    let mut p = Progress::new(1);
    let ev = p.feed("  Upgrading        : hello-2.0-1.noarch                  1/2 ");
    assert_eq!(
        ev[0],
        Event::step(
            1,
            1,
            said::doing("Upgrading").with(&[&"hello-2.0-1.noarch"])
        )
    );
}

#[test]
fn queries() {
    let f = parse_query("hello\n1:2.0-1\n5000\nnoarch\n").unwrap();
    assert_eq!(f.arch.as_deref(), Some("noarch"));
    assert_eq!(
        (f.package.as_str(), f.version.as_str()),
        ("hello", "1:2.0-1")
    );
    assert_eq!(f.installed_size, Some(5));
    assert!(parse_query("hello\n").is_err());
    assert_eq!(
        parse_dbpath("%_dbpath_rebuild x\n%_dbpath\t\t%{_var}/lib/rpm\n").as_deref(),
        Some("/var/lib/rpm")
    );
    assert_eq!(
        parse_dbpath("%_dbpath /a\n%_dbpath %{_usr}/lib/sysimage/rpm\n").as_deref(),
        Some("/usr/lib/sysimage/rpm")
    );
    assert_eq!(parse_dbpath("%_dbpath %(bash -c 'echo ~/.rpmdb')\n"), None);
    let v = parse_installed("a 1.0-1\nb 2:3-4\n");
    assert_eq!(v.get("b").map(String::as_str), Some("2:3-4"));
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn progress_stays_in_range_and_only_grows(
            total in 0u32..10,
            lines in proptest::collection::vec(
                prop_oneof![
                    any::<String>(),
                    "[a-z]{1,6}-[0-9]-1 +%% [0-9]{1,3}\\.[0-9]{1,6}",
                    "%% -?[0-9]{1,4}(\\.[0-9]{0,6})?|%% NaN|%% inf",
                    Just("Updating / installing...".to_string()),
                    Just("Cleaning up / removing...".to_string()),
                    "  (Installing|Upgrading|Cleanup) +: [a-z]{1,5}-1-1.noarch +[0-9]/[0-9]",
                ],
                0..40,
            ),
        ) {
            let mut p = Progress::new(total);
            let mut last = -1.0f32;
            for l in &lines {
                let r = crate::backend::check_progress(&p.feed(l), &mut last);
                prop_assert!(r.is_ok(), "{:?} after {:?}", r, l);
            }
        }

        #[test]
        fn queries_never_panic(text in any::<String>()) {
            let _ = parse_query(&text);
            let _ = parse_installed(&text);
        }
    }
}
