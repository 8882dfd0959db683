// Fixes at build time where system-update.target is installed, as systemd's
// own generator does with SYSTEM_DATA_UNIT_DIR: the link it writes must name
// the unit directory of the systemd it runs under.
use std::process::Command;

fn main() {
    // Root-only tests: see apply/build.rs.
    println!("cargo::rustc-check-cfg=cfg(root_tests)");
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_UID");
    if effective_uid() == Some(0) {
        println!("cargo::rustc-cfg=root_tests");
    }
    println!("cargo:rerun-if-env-changed=SYSTEMD_SYSTEM_UNIT_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    let dir = std::env::var("SYSTEMD_SYSTEM_UNIT_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .or_else(pkg_config_unit_dir)
        .unwrap_or_else(|| "/usr/lib/systemd/system".to_owned());
    if !dir.starts_with('/') {
        panic!("SYSTEMD_SYSTEM_UNIT_DIR must be an absolute path, got {dir:?}");
    }
    println!("cargo:rustc-env=SYSTEM_UPDATE_UNIT_DIR={dir}");
}

fn pkg_config_unit_dir() -> Option<String> {
    let pkg_config = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let out = Command::new(pkg_config)
        .args(["--variable=systemdsystemunitdir", "systemd"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!dir.is_empty()).then_some(dir)
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}
