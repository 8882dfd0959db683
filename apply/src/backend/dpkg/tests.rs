#[test]
fn a_fatal_error_on_the_output_is_kept() {
    let mut p = super::Progress::new(1);
    p.output("Unpacking alpha (2.0) over (1.0) ...");
    p.output("dpkg: error: failed to write status database record about 'alpha' to '/var/lib/dpkg/status-new': No space left on device");
    assert_eq!(
        p.errors,
        vec!["failed to write status database record about 'alpha' to '/var/lib/dpkg/status-new': No space left on device"]
    );
}

#[test]
fn what_dpkg_wants_reinstalled() {
    let text = "a install reinstreq unpacked\nb install ok installed\nc install ok half-installed\nd install ok half-configured\ne\n";
    assert_eq!(super::needs_reinstall(text), vec!["a", "c"]);
}

use super::*;

#[test]
fn status_file_versions() {
    let s = "Package: a\nStatus: install ok installed\nVersion: 1.0\n\nPackage: b\nStatus: deinstall ok config-files\nVersion: 2\n\nPackage: c\nVersion: 3\nStatus: install ok half-configured\n";
    let v = parse_status(s);
    assert_eq!(v.get("a").map(String::as_str), Some("1.0"));
    assert_eq!(v.get("b"), None);
    assert_eq!(v.get("c").map(String::as_str), Some("3"));
}

#[test]
fn progress_from_status_fd() {
    let mut p = Progress::new(1);
    let mut all = Vec::new();
    for l in [
        "processing: install: foo",
        "status: foo: half-installed",
        "status: foo:amd64: unpacked",
        "processing: configure: foo:amd64",
        "status: foo: half-configured",
        "status: foo:amd64 : error : installed foo package post-installation script subprocess returned error exit status 1",
    ] {
        all.extend(p.feed(l));
    }
    assert!(all.contains(&Event::Progress { percent: 50.0 }));
    assert!(all.contains(&Event::step(2, 2, CONFIGURING.with(&[&"foo"]))));
    assert_eq!(p.packages, vec!["foo".to_string()]);
    assert_eq!(p.errors.len(), 1);
    assert!(p.errors[0].starts_with("foo: installed foo package post-installation"));
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn status_fd_line() -> impl Strategy<Value = String> {
        let pkg = "[a-z0-9.+-]{1,8}(:amd64)?";
        prop_oneof![
            any::<String>(),
            (
                prop_oneof![
                    Just("install"),
                    Just("upgrade"),
                    Just("configure"),
                    Just("remove"),
                    Just("trigproc"),
                    Just("x")
                ],
                pkg
            )
                .prop_map(|(a, p)| format!("processing: {a}: {p}")),
            (
                pkg,
                prop_oneof![
                    Just("unpacked"),
                    Just("installed"),
                    Just("half-configured"),
                    Just("")
                ]
            )
                .prop_map(|(p, s)| format!("status: {p}: {s}")),
            (pkg, any::<String>()).prop_map(|(p, m)| format!("status: {p} : error : {m}")),
        ]
    }

    proptest! {
        #[test]
        fn status_fd_progress_stays_in_range_and_only_grows(
            total in 0u32..20,
            lines in proptest::collection::vec(status_fd_line(), 0..40),
        ) {
            let mut p = Progress::new(total);
            let mut last = -1.0f32;
            for l in &lines {
                for e in p.feed(l) {
                    match e {
                        Event::Progress { percent } => {
                            prop_assert!((0.0..=100.0).contains(&percent));
                            prop_assert!(percent > last, "{} after {}", percent, last);
                            last = percent;
                        }
                        Event::Step { index, total: t, .. } => {
                            prop_assert!(index >= 1 && index <= t, "{}/{}", index, t);
                        }
                        _ => {}
                    }
                }
            }
        }

        #[test]
        fn status_file_never_panics(text in any::<String>()) {
            let _ = parse_status(&text);
        }

        #[test]
        fn status_file_stanzas_round_trip(
            pkgs in proptest::collection::btree_map("[a-z][a-z0-9.+-]{0,8}", "[0-9][0-9a-z.:~+-]{0,8}", 0..6),
        ) {
            let text: String = pkgs
                .iter()
                .map(|(p, v)| format!("Package: {p}\nStatus: install ok installed\nVersion: {v}\n\n"))
                .collect();
            let got = parse_status(&text);
            prop_assert_eq!(got.len(), pkgs.len());
            for (p, v) in &pkgs {
                prop_assert_eq!(got.get(p), Some(v));
            }
        }

        #[test]
        fn deb_fields_never_panic(text in any::<String>()) {
            if let Ok(f) = parse_deb_fields(&text) {
                prop_assert!(!f.package.is_empty() && !f.version.is_empty());
            }
        }

        #[test]
        fn deb_fields_round_trip(p in "[a-z][a-z0-9.+-]{0,10}", v in "[0-9][0-9a-z.:~+-]{0,10}", size in proptest::option::of(any::<u64>())) {
            let mut text = format!("Package: {p}\nVersion: {v}\nArchitecture: arm64\n");
            if let Some(s) = size {
                text += &format!("Installed-Size: {s}\n");
            }
            let f = parse_deb_fields(&text).unwrap();
            prop_assert_eq!(f, PackageInfo { package: p, version: v, installed_size: size, arch: Some("arm64".into()) });
        }
    }
}
