//! Which packages make the way out of an update a full reboot: the backend
//! reads what it installed from its own database (dpkg's file lists here,
//! real packages in a scratch root).

mod common;

use common::{Deb, Scratch};
use system_update::backend::{PackageChange, KINDS};
use system_update::paths::Root;

fn change(name: &str, before: Option<&str>, after: Option<&str>) -> PackageChange {
    PackageChange {
        name: name.into(),
        before: before.map(Into::into),
        after: after.map(Into::into),
        state: None,
    }
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn dpkg_says_which_package_put_files_in_boot() {
    if !common::root_or_skip("dpkg chroots") {
        return;
    }
    let s = Scratch::new();
    let app = Deb::new("app", "2")
        .file("/usr/share/app/version", "2\n")
        .build(&s.debs);
    let kernel = Deb::new("vmlinuz-test", "2")
        .file("/boot/vmlinuz-test", "not a kernel\n")
        .build(&s.debs);
    s.dpkg_install(&app);
    s.dpkg_install(&kernel);
    let dpkg = KINDS
        .iter()
        .find(|k| k.name() == "dpkg")
        .expect("the dpkg backend");
    let root = Root::new(&s.root);
    assert_eq!(
        dpkg.boot_files(&root, &[change("app", Some("1"), Some("2"))]),
        None
    );
    assert_eq!(
        dpkg.boot_files(
            &root,
            &[
                change("app", Some("1"), Some("2")),
                change("vmlinuz-test", None, Some("2"))
            ]
        )
        .as_deref(),
        Some("vmlinuz-test installs /boot/vmlinuz-test")
    );
    let command = KINDS
        .iter()
        .find(|k| k.name() == "command")
        .expect("the command backend");
    assert!(
        command.boot_files(&root, &[]).is_some(),
        "the command backend cannot tell: always a full reboot"
    );
}

#[cfg_attr(not(root_tests), ignore = "needs root")]
#[test]
fn an_unreadable_file_list_means_a_full_reboot() {
    if !common::root_or_skip("dpkg chroots") {
        return;
    }
    let s = Scratch::new();
    let app = Deb::new("app", "2")
        .file("/usr/share/app/version", "2\n")
        .build(&s.debs);
    s.dpkg_install(&app);
    let dpkg = KINDS
        .iter()
        .find(|k| k.name() == "dpkg")
        .expect("the dpkg backend");
    let root = Root::new(&s.root);
    let list = s.path("/var/lib/dpkg/info/app.list");
    std::fs::remove_file(&list).unwrap();
    // A link in its place is not followed either.
    std::os::unix::fs::symlink("/etc/hostname", &list).unwrap();
    assert_eq!(
        dpkg.boot_files(&root, &[change("app", Some("1"), Some("2"))])
            .as_deref(),
        Some("the file list of app could not be read")
    );
    // A removed package has no list left: the boot trees decide.
    assert_eq!(
        dpkg.boot_files(&root, &[change("gone", Some("1"), None)]),
        None
    );
}
