#[test]
fn what_touches_boot() {
    for p in [
        "/boot/vmlinuz-6.1.0-30-amd64",
        "/usr/lib/modules/6.12.0/kernel/fs/btrfs/btrfs.ko.xz",
        "/lib/firmware/intel-ucode/06-8e-09",
        "/usr/share/initramfs-tools/hooks/cryptroot",
        "/etc/default/grub",
        "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
    ] {
        assert!(is_boot_path(p), "{p}");
    }
    for p in [
        "/boot",
        "/usr/lib/modules",
        "/usr/bin/bootctl",
        "/etc/default/grubby",
        "/usr/share/doc/linux",
    ] {
        assert!(!is_boot_path(p), "{p}");
    }
    for n in [
        "linux-image-amd64",
        "linux",
        "kernel-core",
        "grub-efi-amd64",
        "intel-microcode",
        "firmware-linux-free",
        "dracut-core",
        "amd-ucode",
    ] {
        assert!(is_boot_package(n), "{n}");
    }
    for n in ["vmtest-hello", "libc6", "systemd", "nginx", "linuxlogo"] {
        assert!(!is_boot_package(n), "{n}");
    }
    let change = |name: &str, after: Option<&str>| PackageChange {
        name: name.into(),
        before: Some("1".into()),
        after: after.map(Into::into),
        state: None,
    };
    let lists = |c: &PackageChange| match c.name.as_str() {
        "vmtest-kernel" => Some(vec![
            "/.".to_string(),
            "/boot".into(),
            "/boot/vmtest-kernel".into(),
        ]),
        _ => Some(vec!["/usr/bin/hello".to_string()]),
    };
    assert_eq!(first_boot_file(&[change("hello", Some("2"))], lists), None);
    assert_eq!(
        first_boot_file(
            &[
                change("hello", Some("2")),
                change("vmtest-kernel", Some("2"))
            ],
            lists
        ),
        Some("vmtest-kernel installs /boot/vmtest-kernel".into())
    );
    // Unchanged packages do not count; a removed kernel does.
    assert_eq!(
        first_boot_file(&[change("vmtest-kernel", Some("1"))], lists),
        None
    );
    assert!(
        first_boot_file(&[change("linux-image-6.1.0-9-amd64", None)], |_| None::<
            Vec<String>,
        >)
        .is_some_and(|w| w.contains("kernel"))
    );
}

use super::*;

#[test]
fn descriptors_are_named_as_their_files() {
    let names = [
        ("/proc/self/fd/1".to_string(), "a_1_all.deb".to_string()),
        ("/proc/self/fd/12".to_string(), "b_2_all.deb".to_string()),
    ];
    assert_eq!(
        unname(
            "Preparing to unpack /proc/self/fd/12 ... /proc/self/fd/1: x /proc/self/fd/13",
            &names
        ),
        "Preparing to unpack b_2_all.deb ... a_1_all.deb: x /proc/self/fd/13"
    );
}

#[test]
fn names_are_unique_and_round_trip() {
    let n = names();
    for (i, a) in n.iter().enumerate() {
        assert!(!n[i + 1..].contains(a), "{a} twice in KINDS");
        assert_eq!(BackendKind::from_name(a).map(|k| k.name()), Some(*a));
    }
    assert!(BackendKind::from_name("apt-get").is_none());
}

#[test]
fn the_backend_is_guessed_from_the_files_and_a_mix_refused() {
    let p = |s: &str| PathBuf::from(s);
    assert_eq!(
        BackendKind::guess(&[p("a.deb"), p("b.deb")])
            .unwrap()
            .name(),
        "dpkg"
    );
    let refusal = |files: &[PathBuf]| match BackendKind::guess(files) {
        Ok(k) => format!("guessed {}", k.name()),
        Err(e) => e.to_string(),
    };
    assert!(
        refusal(&[p("a.tar")]).starts_with("a.tar: cannot deduce the backend"),
        "{}",
        refusal(&[p("a.tar")])
    );
    assert!(refusal(&[]).starts_with("nothing to prepare"));
    assert!(refusal(&[p("a.deb"), p("b.rpm")]).contains("one update uses one package manager"));
}
