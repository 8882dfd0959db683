use super::*;

#[test]
fn simulation_to_plan() {
    let (plan, essential) = parse_simulation(
        "NOTE: This is only a simulation!\nInst libhello (2.0 localhost [all])\nInst hello [1.0] (2.0 localhost [all])\nRemv oldlib [1.0]\nConf libhello (2.0 localhost [all])\n",
    );
    assert!(!essential);
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0].action, Action::Install);
    assert_eq!(plan[0].to.as_deref(), Some("2.0"));
    assert_eq!(plan[1].action, Action::Upgrade);
    assert_eq!(plan[1].from.as_deref(), Some("1.0"));
    assert_eq!(plan[2].action, Action::Remove);
    assert_eq!(plan[2].to, None);
}

#[test]
fn unmet_dependencies_are_named() {
    let p = problems(
        "The following packages have unmet dependencies:\n hello : Depends: libhello (>= 2.0) but it is not installable\n",
        "E: Unable to correct problems, you have held broken packages.\n",
    );
    assert_eq!(
        p,
        ["hello : Depends: libhello (>= 2.0) but it is not installable"]
    );
}

#[test]
fn only_harmless_update_warnings_pass() {
    let err = "W: Conflicting distribution: file:/r bookworm InRelease (expected bookworm but got trixie)\n\
        W: http://r/ bookworm InRelease: Signature by key 0123 uses weak digest algorithm (SHA1)\n\
        W: Target Packages (main/binary-amd64/Packages) is configured multiple times in /etc/apt/sources.list:1 and /etc/apt/sources.list.d/a.list:1\n\
        W: http://r/ bookworm InRelease: Key is stored in legacy trusted.gpg keyring (/etc/apt/trusted.gpg), see the DEPRECATION section in apt-key(8) for details.\n\
        N: Download is performed unsandboxed as root\n";
    let bad = refusing_lines("", err);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("Conflicting distribution"));
    assert!(bad[1].contains("weak digest"));
}

#[test]
fn sources_are_read_inside_the_root() {
    let in_root = |p: &str| Ok(PathBuf::from(format!("/r{p}")));
    let (text, found) = rewrite_sources(
        "# deb http://x/ a main\ndeb [arch=amd64 signed-by=/etc/apt/keyrings/k.gpg,/usr/share/k2.gpg] http://x/ a main # c\ndeb-src http://x/ a main\ndeb [trusted=yes] file:/repo ./\n",
        false,
        &in_root,
    )
    .unwrap();
    assert_eq!(found.entries, 2);
    assert_eq!(found.unsigned.len(), 1);
    assert!(
        text.contains("deb [arch=amd64 signed-by=/r/etc/apt/keyrings/k.gpg,/r/usr/share/k2.gpg] http://x/ a main\n"),
        "{text}"
    );
    let (text, found) = rewrite_sources(
        "Types: deb\nURIs: http://x/\nSuites: a\nSigned-By: /etc/apt/keyrings/k.gpg\n\nTypes: deb\nURIs: http://y/\nEnabled: no\n\nTypes: deb-src deb\nURIs: http://z/\nTrusted: yes\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n",
        true,
        &in_root,
    )
    .unwrap();
    assert_eq!(found.entries, 2);
    assert_eq!(found.unsigned.len(), 1);
    assert!(
        text.contains("Signed-By: /r/etc/apt/keyrings/k.gpg\n"),
        "{text}"
    );
    assert!(text.contains(" -----BEGIN PGP"), "{text}");
}

#[test]
fn status_lines() {
    assert_eq!(
        parse_status("pmstatus:hello:33.3333:Unpacking hello (amd64)"),
        Some((33.3333, "Unpacking hello (amd64)".into()))
    );
    assert_eq!(parse_status("pmstatus:x:NaN:y"), None);
    assert_eq!(parse_status("dlstatus:x:1:y"), None);
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsers_never_panic(text in any::<String>()) {
            let _ = parse_simulation(&text);
            let _ = problems(&text, &text);
            let _ = refusing_lines(&text, &text);
            let _ = rewrite_sources(&text, true, &|p| Ok(PathBuf::from(p)));
            let _ = rewrite_sources(&text, false, &|p| Ok(PathBuf::from(p)));
            if let Some((p, _)) = parse_status(&text) {
                prop_assert!((0.0..=100.0).contains(&p));
            }
        }
    }
}
