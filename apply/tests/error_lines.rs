//! Refusals whose errors became anyhow (issue 21), word for word as a
//! person reads them: one line on stderr naming the file or value and what
//! to do, with the exit status of a failure. No root needed: none of these
//! gets as far as a package manager.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{code, show};

/// A root with an empty dpkg database and nothing else.
fn bare_root() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    (d, root)
}

fn su(root: &Path, args: &[&str]) -> Output {
    common::su_at(root, args)
}

/// The one line on stderr, without the program's name.
fn said(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{}", show(out));
    err.trim_end()
        .strip_prefix("system-update: ")
        .unwrap_or_else(|| panic!("{}", show(out)))
        .to_string()
}

#[test]
fn prepare_names_what_it_refuses() {
    let (_d, root) = bare_root();
    let out = su(&root, &["prepare", "/nonexistent/foo_2_all.deb"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_eq!(said(&out), "/nonexistent/foo_2_all.deb: no such file");

    let out = su(
        &root,
        &["prepare", "--backend", "dpkg", "--command", "/bin/true"],
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_eq!(
        said(&out),
        "--backend dpkg takes package files, not --command"
    );

    let media = root.parent().unwrap().join("media");
    fs::create_dir_all(&media).unwrap();
    let out = su(&root, &["prepare", "--from", &media.display().to_string()]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_eq!(
        said(&out),
        format!(
            "{}: no manifest.toml here; give the directory that holds the update (its manifest.toml, signature and payload)",
            media.display()
        )
    );
}

#[test]
fn log_without_history_says_so() {
    let (_d, root) = bare_root();
    let out = su(&root, &["log"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert_eq!(said(&out), "no update has been applied yet");
}

#[test]
fn an_unreadable_record_is_named_with_why() {
    let (_d, root) = bare_root();
    let results = root.join("var/lib/system-update-results");
    fs::create_dir_all(&results).unwrap();
    fs::write(results.join("last.json"), "{\n").unwrap();
    for cmd in ["status", "results"] {
        let out = su(&root, &[cmd]);
        assert_eq!(code(&out), 1, "{cmd}: {}", show(&out));
        assert_eq!(
            said(&out),
            format!(
                "{}: unreadable result record: EOF while parsing an object at line 2 column 0",
                results.join("last.json").display()
            ),
            "{cmd}"
        );
    }
}

#[test]
fn a_broken_configuration_is_named_with_what_to_do() {
    let (_d, root) = bare_root();
    fs::create_dir_all(root.join("etc")).unwrap();
    let conf = root.join("etc/system-update.toml");
    fs::write(&conf, "attempt-limit = 0\n").unwrap();
    let out = su(&root, &["status"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let line = said(&out);
    assert!(
        line.starts_with(&format!("{}: ", conf.display()))
            && line.ends_with("; fix or remove the file"),
        "{line}"
    );
}
