//! An image's own links under `--root` (issue 20, row H): real images link
//! parts of /var elsewhere (`/var/log -> /persist/log`). Every write is
//! resolved inside the image, as the kernel will resolve it when the image
//! boots: such a link is followed within the image, and one that points
//! out of it (`..` past its top, or a host path) is mapped back into it,
//! never reaching this machine's files. Needs root (dpkg into scratch
//! roots).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{code, show, with_foo_v1, Scratch};

fn root_only() -> bool {
    common::root_or_skip("dpkg into a scratch root")
}

/// Moves the image's `inside` (a directory, made when missing) to `to`
/// within the image and puts a link `inside -> target` in its place.
fn relink(s: &Scratch, inside: &str, to: &str, target: &str) {
    let at = s.path(inside);
    let moved = s.path(to);
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    if at.is_dir() {
        fs::rename(&at, &moved).unwrap();
    } else {
        fs::create_dir_all(&moved).unwrap();
    }
    std::os::unix::fs::symlink(target, &at).unwrap();
}

/// prepare, trigger, apply and results: each must succeed, foo 2 ends up
/// installed; the record.
fn cycle(s: &Scratch, v2: &Path) -> serde_json::Value {
    s.prepare_and_trigger(&[v2]);
    let out = s.apply();
    assert_eq!(code(&out), 0, "apply: {}", show(&out));
    assert_eq!(s.version("foo").as_deref(), Some("2"));
    let rec = s.results();
    assert_eq!(rec["outcome"], "success", "{rec}");
    rec
}

/// The files under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_images_absolute_links_to_its_own_directories_are_followed_inside_it() {
    if !root_only() {
        return;
    }
    // Where the image's links point, on this machine: nothing may land
    // there. (It is not ours to create; it must not exist before either.)
    let host_persist = Path::new("/persist");
    let before = host_persist.exists();
    let (s, v2) = with_foo_v1(None);
    relink(&s, "/var/log", "/persist/log", "/persist/log");
    relink(
        &s,
        "/var/lib/system-update-results",
        "/persist/results",
        "/persist/results",
    );
    let rec = cycle(&s, &v2);

    let results = s.path("/persist/results");
    let kept = files(&results);
    for f in ["last.json", "lock", "history"] {
        assert!(kept.contains(&PathBuf::from(f)), "{f} in {kept:?}");
    }
    let log = rec["log"].as_str().expect("the record names its log");
    let name = Path::new(log).file_name().unwrap();
    let landed = s.path("/persist/log/system-update").join(name);
    assert!(landed.is_file(), "{} not written", landed.display());
    // What was written is what the readers find through the same links.
    let out = s.su(&["log"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let out = s.su(&["history"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("success"),
        "{}",
        show(&out)
    );
    assert_eq!(host_persist.exists(), before, "/persist on this machine");
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn links_that_point_out_of_an_image_are_mapped_back_into_it() {
    if !root_only() {
        return;
    }
    // Two directories of this machine that the image's links name: one by
    // climbing out with `..`, one by its absolute path.
    let host = tempfile::tempdir().unwrap();
    let (host_log, host_results) = (host.path().join("log"), host.path().join("results"));
    fs::create_dir_all(&host_log).unwrap();
    fs::create_dir_all(&host_results).unwrap();
    let (s, v2) = with_foo_v1(None);
    // Where the same names lead inside the image.
    let inner = |p: &Path| s.path(p.to_str().unwrap());
    let climb = format!(
        "{}{}",
        "../".repeat(40),
        host_log.strip_prefix("/").unwrap().display()
    );
    relink(&s, "/var/log", host_log.to_str().unwrap(), &climb);
    relink(
        &s,
        "/var/lib/system-update-results",
        host_results.to_str().unwrap(),
        host_results.to_str().unwrap(),
    );
    let rec = cycle(&s, &v2);

    assert!(files(&host_log).is_empty(), "{:?}", files(&host_log));
    assert!(
        files(&host_results).is_empty(),
        "{:?}",
        files(&host_results)
    );
    let kept = files(&inner(&host_results));
    assert!(kept.contains(&PathBuf::from("last.json")), "{kept:?}");
    let log = rec["log"].as_str().expect("the record names its log");
    let name = Path::new(log).file_name().unwrap();
    let landed = inner(&host_log).join("system-update").join(name);
    assert!(landed.is_file(), "{} not written", landed.display());
}
