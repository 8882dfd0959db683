use super::*;

fn battery(name: &str, capacity: u8, status: &str) -> Supply {
    Supply {
        name: name.into(),
        kind: "Battery".into(),
        capacity: Some(capacity),
        status: Some(status.into()),
        ..Default::default()
    }
}

fn mains(name: &str, online: bool) -> Supply {
    Supply {
        name: name.into(),
        kind: "Mains".into(),
        online: Some(online),
        ..Default::default()
    }
}

#[test]
fn decides_from_the_supplies() {
    assert_eq!(decide(&[]), Power::Mains { supply: None });
    let on_ac = decide(&[battery("BAT0", 5, "Discharging"), mains("AC", true)]);
    assert!(on_ac.enough(30), "{on_ac:?}");
    let low = decide(&[battery("BAT0", 29, "Discharging"), mains("AC", false)]);
    assert_eq!(low, Power::Battery { percent: 29 });
    assert!(!low.enough(30));
    assert!(low.describe(30).contains("below min-battery 30%"));
    assert!(decide(&[battery("BAT0", 30, "Discharging")]).enough(30));
    // Charging without a mains entry listed: the adapter is there.
    assert!(decide(&[battery("BAT0", 3, "Charging")]).enough(30));
    // Two batteries: their mean.
    let two = decide(&[
        battery("BAT0", 10, "Discharging"),
        battery("BAT1", 70, "Discharging"),
    ]);
    assert_eq!(two, Power::Battery { percent: 40 });
    // A mouse's battery is not the machine's.
    let mut mouse = battery("hidpp_battery_0", 2, "Discharging");
    mouse.scope = Some("Device".into());
    assert_eq!(decide(&[mouse]), Power::Mains { supply: None });
    // A battery whose charge cannot be read counts as empty.
    let mut unknown = battery("BAT0", 0, "Discharging");
    unknown.capacity = None;
    assert!(!decide(&[unknown]).enough(1));
}

/// A sysfs like the kernel's, under a scratch root: class entries are
/// links into /sys/devices.
pub(crate) fn fake_supply(root: &Path, name: &str, attrs: &[(&str, &str)]) {
    let dev = root
        .join("sys/devices/platform/ACPI0003:00/power_supply")
        .join(name);
    std::fs::create_dir_all(&dev).unwrap();
    for (k, v) in attrs {
        std::fs::write(dev.join(k), format!("{v}\n")).unwrap();
    }
    let class = root.join("sys/class/power_supply");
    std::fs::create_dir_all(&class).unwrap();
    let target = format!("../../devices/platform/ACPI0003:00/power_supply/{name}");
    std::os::unix::fs::symlink(target, class.join(name)).unwrap();
}

#[test]
fn reads_a_fake_sysfs_through_its_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    assert_eq!(read(&root).unwrap(), Power::Mains { supply: None });
    fake_supply(
        dir.path(),
        "BAT0",
        &[
            ("type", "Battery"),
            ("capacity", "12"),
            ("status", "Discharging"),
        ],
    );
    fake_supply(dir.path(), "AC", &[("type", "Mains"), ("online", "0")]);
    assert_eq!(read(&root).unwrap(), Power::Battery { percent: 12 });
    std::fs::write(
        dir.path()
            .join("sys/devices/platform/ACPI0003:00/power_supply/AC/online"),
        "1\n",
    )
    .unwrap();
    assert_eq!(
        read(&root).unwrap(),
        Power::Mains {
            supply: Some("AC".into())
        }
    );
}

#[test]
fn an_attribute_that_is_a_link_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    fake_supply(
        dir.path(),
        "BAT0",
        &[("type", "Battery"), ("status", "Discharging")],
    );
    std::fs::write(dir.path().join("full"), "99\n").unwrap();
    let cap = dir
        .path()
        .join("sys/devices/platform/ACPI0003:00/power_supply/BAT0/capacity");
    std::os::unix::fs::symlink("/full", cap).unwrap();
    assert_eq!(read(&root).unwrap(), Power::Battery { percent: 0 });
}

#[test]
fn an_absolute_class_link_stays_in_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root::new(dir.path());
    let class = dir.path().join("sys/class/power_supply");
    std::fs::create_dir_all(&class).unwrap();
    // On the host this would be the real machine's supply, if any.
    std::os::unix::fs::symlink(
        "/sys/class/power_supply/../../devices/none",
        class.join("BAT9"),
    )
    .unwrap();
    let s = read_supply(&root, "BAT9");
    assert_eq!(s.kind, "");
    assert_eq!(read(&root).unwrap(), Power::Mains { supply: None });
}
