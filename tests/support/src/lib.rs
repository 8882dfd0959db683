//! What the tests of every package share: whether a test can run here.
//! A test that cannot says why and returns; under tests/check
//! (`SYSTEM_UPDATE_TEST_ALL`), which runs every test as root with every
//! tool installed, that is a failure instead. Root-only tests are also
//! marked `#[cfg_attr(not(root_tests), ignore = "needs root")]`, so that a
//! user's `cargo test` lists them as ignored.

/// True as root; otherwise says why the test needs it.
pub fn root_or_skip(why: &str) -> bool {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(&format!("needs root ({why})"))
}

/// True when `program` is on the PATH; otherwise says which package has it.
pub fn tool_or_skip(program: &str, package: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
    found
        || skip(&format!(
            "needs {program} (apt install {package}; tests/install-deps installs it)"
        ))
}

/// Says why a test does not run, and fails under tests/check.
pub fn skip(why: &str) -> bool {
    assert!(
        std::env::var_os("SYSTEM_UPDATE_TEST_ALL").is_none(),
        "tests/check runs every test, but this one {why}"
    );
    eprintln!("skipped: {why}");
    false
}
