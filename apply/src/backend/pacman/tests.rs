#[test]
fn an_overwrite_glob_matches_only_its_path() {
    assert_eq!(
        super::glob_escape("usr/share/a/version"),
        "usr/share/a/version"
    );
    assert_eq!(
        super::glob_escape("usr/a[1]*?\\b"),
        "usr/a\\[1\\]\\*\\?\\\\b"
    );
}

use super::*;

#[test]
fn progress_from_pacman_output() {
    let mut p = Progress::new(1);
    let mut all = Vec::new();
    for l in [
        "loading packages...",
        "Packages (2) hello-2.0-1  needs-1.0-1",
        "checking package integrity...",
        ":: Processing package changes...",
        "upgrading hello...",
        "installing needs...",
        "needs: post_install failing",
        "error: command failed to execute correctly",
    ] {
        all.extend(p.feed(l));
    }
    assert!(all.contains(&Event::step(
        2,
        2,
        said::doing("installing").with(&[&"needs"])
    )));
    assert!(all.contains(&Event::Progress { percent: 55.0 }));
    assert_eq!(p.errors, ["needs: its install script failed"]);
}

#[test]
fn entries_and_pkginfo() {
    assert_eq!(split_entry("hello-2.0-1"), Some(("hello", "2.0-1")));
    assert_eq!(
        split_entry("lib32-foo-bar-1:2.0-3"),
        Some(("lib32-foo-bar", "1:2.0-3"))
    );
    assert_eq!(split_entry("broken"), None);
    let f = parse_pkginfo("# x\npkgname = hello\npkgver = 2.0-1\nsize = 3000\n").unwrap();
    assert_eq!((f.package.as_str(), f.version.as_str()), ("hello", "2.0-1"));
    assert_eq!(f.installed_size, Some(3));
    assert!(parse_pkginfo("pkgname = x\n").is_err());
    let conf = "[options]\nArchitecture = x86_64 x86_64_v3\n#Architecture = arm\n[core]\nArchitecture = no\n";
    assert_eq!(conf_values(conf, "Architecture"), ["x86_64", "x86_64_v3"]);
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
                    "(installing|upgrading|removing|reinstalling) [a-z]{1,6}\\.\\.\\.",
                    "Packages \\([0-9]{1,3}\\) [a-z -]{0,20}",
                    Just("checking package integrity...".to_string()),
                    Just("error: command failed to execute correctly".to_string()),
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
        fn parsers_never_panic(text in any::<String>()) {
            let _ = parse_pkginfo(&text);
            let _ = split_entry(&text);
        }
    }
}
