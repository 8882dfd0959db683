// Root-only tests carry #[cfg_attr(not(root_tests), ignore = "needs root")]:
// a user's plain `cargo test` lists them as ignored in its summary, while
// built as root (make check, CI) they run; tests/check then allows no skip.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(root_tests)");
    // Who builds: another user (sudo, su) builds anew.
    println!("cargo::rerun-if-env-changed=USER");
    println!("cargo::rerun-if-env-changed=SUDO_UID");
    println!("cargo::rerun-if-changed=build.rs");
    if effective_uid() == Some(0) {
        println!("cargo::rustc-cfg=root_tests");
    }
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}
