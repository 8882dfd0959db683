//! Shared test helpers: scratch roots where `dpkg --root` works (with a
//! shell for maintainer scripts) and small packages for each package
//! manager: .deb (`deb`), rpm (`rpm`) and pacman (`pacman`).

#![allow(dead_code)]

mod deb;
pub mod gpg;
pub mod pacman;
pub mod rpm;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
#[allow(unused_imports)]
pub use system_update_test_support::{root_or_skip, tool_or_skip};

pub use deb::Deb;

pub const BIN: &str = env!("CARGO_BIN_EXE_system-update");

/// Programs maintainer scripts in the tests may call (besides builtins).
const TOOLS: [&str; 2] = ["/bin/sh", "/usr/bin/sleep"];

pub struct Scratch {
    /// Unmounted before `dir` is removed (fields drop in order).
    pub mount: Option<Mount>,
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub debs: PathBuf,
}

fn copy_into(root: &Path, host: &Path) {
    let real = fs::canonicalize(host).unwrap();
    let dest = root.join(host.strip_prefix("/").unwrap());
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::copy(&real, &dest).unwrap();
}

/// A filesystem mounted for one test, unmounted when dropped.
pub struct Mount {
    pub point: PathBuf,
    pub device: Option<PathBuf>,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("--lazy")
            .arg(&self.point)
            .status();
    }
}

pub fn run(cmd: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {}", show(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The file system image `img` mounted at `top` (made here) through a
/// loop device, which goes away with the last unmount.
pub fn loop_mount(img: &Path, top: &Path) -> Mount {
    fs::create_dir(top).unwrap();
    let device = run(
        "losetup",
        &["--find".as_ref(), "--show".as_ref(), img.as_os_str()],
    );
    let device = PathBuf::from(device.trim());
    run("mount", &[device.as_os_str(), top.as_os_str()]);
    run("losetup", &["--detach".as_ref(), device.as_os_str()]);
    Mount {
        point: top.to_path_buf(),
        device: Some(device),
    }
}

/// A new btrfs subvolume at `path`.
pub fn subvolume(path: &Path) {
    run(
        "btrfs",
        &[
            "-q".as_ref(),
            "subvolume".as_ref(),
            "create".as_ref(),
            path.as_os_str(),
        ],
    );
}

/// Runs system-update with `--root root`, no input, the default log level.
pub fn su_at(root: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("SYSTEM_UPDATE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run system-update")
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        Scratch::populate(dir, root, None)
    }

    /// A scratch root that is the btrfs subvolume `subvol` (e.g. `@` or
    /// `roots/debian`) of a fresh loop-mounted filesystem, whose top level
    /// is mounted at `top()`. With `default`, the subvolume is made the
    /// filesystem's default, as when a boot mounts the root without
    /// subvol= options.
    pub fn on_btrfs(subvol: &str, default: bool) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        fs::File::create(&img).unwrap().set_len(512 << 20).unwrap();
        run("mkfs.btrfs", &["-q".as_ref(), img.as_os_str()]);
        let top = dir.path().join("top");
        let mount = loop_mount(&img, &top);
        let root = top.join(subvol);
        fs::create_dir_all(root.parent().unwrap()).unwrap();
        subvolume(&root);
        if default {
            run(
                "btrfs",
                &[
                    "-q".as_ref(),
                    "subvolume".as_ref(),
                    "set-default".as_ref(),
                    root.as_os_str(),
                ],
            );
        }
        Scratch::populate(dir, root, Some(mount))
    }

    /// A scratch root in the directory `@` of a small fresh loop-mounted
    /// file system (`mib` MiB): ext4 with no blocks reserved for root (so
    /// root can fill it too), or btrfs (mixed block groups, as small
    /// file systems are made) with the root as the subvolume `@`.
    pub fn on_small_fs(btrfs: bool, mib: u64) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        fs::File::create(&img).unwrap().set_len(mib << 20).unwrap();
        let (mkfs, opts): (&str, [&std::ffi::OsStr; 3]) = if btrfs {
            (
                "mkfs.btrfs",
                ["-q".as_ref(), "--mixed".as_ref(), "-f".as_ref()],
            )
        } else {
            ("mkfs.ext4", ["-q".as_ref(), "-m".as_ref(), "0".as_ref()])
        };
        let mut args = opts.to_vec();
        args.push(img.as_os_str());
        run(mkfs, &args);
        let top = dir.path().join("top");
        let mount = loop_mount(&img, &top);
        let root = top.join("@");
        if btrfs {
            subvolume(&root);
        } else {
            fs::create_dir(&root).unwrap();
        }
        Scratch::populate(dir, root, Some(mount))
    }

    /// A scratch root on a tmpfs of `mib` MiB, to run out of space.
    pub fn on_tmpfs(mib: u64) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        run(
            "mount",
            &[
                "-t".as_ref(),
                "tmpfs".as_ref(),
                "-o".as_ref(),
                format!("size={mib}m").as_ref(),
                "tmpfs".as_ref(),
                root.as_os_str(),
            ],
        );
        let mount = Mount {
            point: root.clone(),
            device: None,
        };
        Scratch::populate(dir, root, Some(mount))
    }

    /// Where the top level of the btrfs filesystem is mounted.
    pub fn top(&self) -> PathBuf {
        self.dir.path().join("top")
    }

    fn populate(dir: tempfile::TempDir, root: PathBuf, mount: Option<Mount>) -> Scratch {
        let debs = dir.path().join("debs");
        fs::create_dir_all(&debs).unwrap();
        for d in ["info", "updates", "triggers", "alternatives"] {
            fs::create_dir_all(root.join("var/lib/dpkg").join(d)).unwrap();
        }
        for f in ["status", "available"] {
            fs::write(root.join("var/lib/dpkg").join(f), b"").unwrap();
        }
        for d in ["etc", "tmp", "var/log"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        // dpkg chroots into the root for maintainer scripts: give it a shell
        // and the libraries it loads.
        for tool in TOOLS {
            copy_into(&root, Path::new(tool));
            let out = Command::new("ldd").arg(tool).output().unwrap();
            for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if word.starts_with('/') && Path::new(word).exists() {
                    copy_into(&root, Path::new(word));
                }
            }
        }
        Scratch {
            mount,
            dir,
            root,
            debs,
        }
    }

    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Runs system-update with `--root` on this scratch root.
    pub fn su(&self, args: &[&str]) -> Output {
        su_at(&self.root, args)
    }

    /// Runs system-update from the scratch directory with `--root` relative
    /// to it, as a person in the parent of an image would type it.
    pub fn su_relative(&self, args: &[&str]) -> Output {
        let rel = self
            .root
            .strip_prefix(self.dir.path())
            .expect("the root lies in the scratch directory");
        Command::new(BIN)
            .current_dir(self.dir.path())
            .arg("--root")
            .arg(rel)
            .args(args)
            .env_remove("SYSTEM_UPDATE_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// prepare (with `prepare`'s arguments), trigger, apply and results,
    /// each with a relative `--root` from another directory; every step
    /// must succeed. Returns the result record.
    pub fn cycle_with_relative_root(&self, prepare: &[&str]) -> serde_json::Value {
        let steps: [&[&str]; 3] = [
            prepare,
            &["trigger", "--no-reboot"],
            &["apply", "--ui", "none", "--no-reboot"],
        ];
        for step in steps {
            let out = self.su_relative(step);
            assert!(out.status.success(), "{step:?}: {}", show(&out));
        }
        let out = self.su_relative(&["results", "--json"]);
        assert!(out.status.success(), "results: {}", show(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn su_spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(BIN)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `apply` without a UI: the tests must not write on the machine's
    /// consoles (Output::Consoles).
    pub fn apply(&self) -> Output {
        self.su(&["apply", "--ui", "none", "--no-reboot"])
    }

    /// Plain `dpkg -i` into the root, as an admin would.
    pub fn dpkg_install(&self, deb: &Path) {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", self.root.display()))
            .arg(format!(
                "--log={}",
                self.path("/var/log/dpkg.log").display()
            ))
            .arg("-i")
            .arg(deb)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg -i: {}", show(&out));
    }

    pub fn version(&self, pkg: &str) -> Option<String> {
        let out = Command::new("dpkg-query")
            .arg(format!(
                "--admindir={}",
                self.path("/var/lib/dpkg").display()
            ))
            .args(["-W", "-f=${Status}|${Version}", pkg])
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&out.stdout).to_string();
        match s.split_once('|') {
            Some((st, v)) if st.ends_with(" installed") => Some(v.to_string()),
            _ => None,
        }
    }

    /// `dpkg --audit` output; empty when the database is consistent.
    pub fn audit(&self) -> String {
        let out = Command::new("dpkg")
            .arg(format!("--root={}", self.root.display()))
            .arg("--audit")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn results(&self) -> serde_json::Value {
        let out = self.su(&["results", "--json"]);
        assert!(out.status.success(), "{}", show(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `auto --json` with the clock at `now` (RFC 3339); its answer.
    #[track_caller]
    pub fn auto(&self, now: &str) -> serde_json::Value {
        let out = self.su(&["auto", "--json", "--now", now]);
        assert_eq!(code(&out), 0, "{}", show(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
    }

    pub fn link_exists(&self) -> bool {
        self.path("/system-update").symlink_metadata().is_ok()
    }

    pub fn update_dir(&self) -> PathBuf {
        self.path("/var/lib/system-update")
    }

    /// Prepares `debs` and triggers without rebooting.
    pub fn prepare_and_trigger(&self, debs: &[&Path]) {
        self.prepare_and_trigger_with(&["prepare"], debs)
    }

    /// As `prepare_and_trigger`, replacing the update already prepared.
    pub fn prepare_again_and_trigger(&self, debs: &[&Path]) {
        self.prepare_and_trigger_with(&["prepare", "--force"], debs)
    }

    pub fn prepare_and_trigger_with(&self, prepare: &[&str], debs: &[&Path]) {
        let mut args: Vec<String> = prepare.iter().map(|a| a.to_string()).collect();
        args.extend(debs.iter().map(|d| d.display().to_string()));
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.su(&a);
        assert!(out.status.success(), "prepare: {}", show(&out));
        let out = self.su(&["trigger", "--no-reboot"]);
        assert!(out.status.success(), "trigger: {}", show(&out));
        assert!(self.link_exists());
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch root with `foo` 1 installed and `foo` 2 built.
pub fn with_foo_v1(v2_postinst: Option<&str>) -> (Scratch, PathBuf) {
    foo_v1_in(Scratch::new(), v2_postinst)
}

/// `s` with `foo` 1 installed and `foo` 2 built.
pub fn foo_v1_in(s: Scratch, v2_postinst: Option<&str>) -> (Scratch, PathBuf) {
    let v1 = Deb::new("foo", "1")
        .file("/opt/foo/version", "1\n")
        .build(&s.debs);
    s.dpkg_install(&v1);
    let mut v2 = Deb::new("foo", "2").file("/opt/foo/version", "2\n");
    if let Some(p) = v2_postinst {
        v2 = v2.postinst(p);
    }
    let v2 = v2.build(&s.debs);
    (s, v2)
}

/// Children of `pid` (all threads); none once it has exited (the faults
/// campaign walks a tree whose processes may end as it reads them).
pub fn children(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        if let Ok(c) = fs::read_to_string(task.path().join("children")) {
            out.extend(c.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

/// Waits (a minute at most) until `path` appears while `child` runs.
pub fn wait_for(path: &Path, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        assert!(child.try_wait().unwrap().is_none(), "apply ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts apply, waits until the package script has written `marker` (a
/// path in the root), then kills apply and the package manager with
/// SIGKILL, as a power cut would. The trigger must still be there.
pub fn cut_when(s: &Scratch, marker: &str) {
    let mut child = s.su_spawn(&["apply", "--ui", "none", "--no-reboot"]);
    wait_for(&s.path(marker), &mut child);
    let kids = children(child.id());
    assert!(!kids.is_empty(), "no package manager child");
    child.kill().unwrap();
    for k in kids {
        // The package manager runs in its own process group, with its
        // scripts.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(k), nix::sys::signal::SIGKILL);
    }
    child.wait().unwrap();
    assert!(s.link_exists());
}

/// Starts apply, waits until v2's postinst runs, then kills apply and dpkg
/// with SIGKILL, as a power cut would.
pub fn kill_mid_transaction(s: &Scratch) {
    cut_when(s, "/in-postinst");
    // The database is half done, the trigger is still there.
    assert!(!s.audit().is_empty(), "dpkg --audit should complain");
    let r = s.results();
    assert_eq!(r["outcome"], "interrupted", "{r}");
}

pub const SLOW_ONCE: &str =
    "if [ ! -e /slow-once ]; then : > /slow-once; : > /in-postinst; sleep 60; fi";

/// The exit status, -1 for a signal.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Sets snapper up for the scratch root as `snapper create-config /` does
/// (which itself refuses to run unless the host's / is btrfs): the root
/// configuration from snapper's template, listed in SNAPPER_CONFIGS, and
/// `.snapshots` as a subvolume nested in the root.
pub fn configure_snapper(s: &Scratch) {
    let template = fs::read_to_string("/usr/share/snapper/config-templates/default")
        .expect("snapper's config template (apt install snapper)");
    let config: String = template
        .lines()
        .map(|l| match l.split_once('=') {
            Some(("SUBVOLUME", _)) => "SUBVOLUME=\"/\"".to_string(),
            Some(("FSTYPE", _)) => "FSTYPE=\"btrfs\"".to_string(),
            _ => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    fs::create_dir_all(s.path("/etc/snapper/configs")).unwrap();
    fs::write(s.path("/etc/snapper/configs/root"), config).unwrap();
    fs::create_dir_all(s.path("/etc/default")).unwrap();
    fs::write(s.path("/etc/default/snapper"), "SNAPPER_CONFIGS=\"root\"\n").unwrap();
    let snapshots = s.path("/.snapshots");
    run(
        "btrfs",
        &[
            "-q".as_ref(),
            "subvolume".as_ref(),
            "create".as_ref(),
            snapshots.as_os_str(),
        ],
    );
}

/// A power supply in the root's sysfs as the kernel lays it out: the class
/// entry a link into /sys/devices, its attributes files there.
pub fn fake_power_supply(s: &Scratch, name: &str, attrs: &[(&str, &str)]) {
    let dev = s.path(&format!("/sys/devices/platform/power_supply/{name}"));
    fs::create_dir_all(&dev).unwrap();
    for (k, v) in attrs {
        fs::write(dev.join(k), format!("{v}\n")).unwrap();
    }
    let class = s.path("/sys/class/power_supply");
    fs::create_dir_all(&class).unwrap();
    let link = class.join(name);
    if link.symlink_metadata().is_err() {
        let target = format!("../../devices/platform/power_supply/{name}");
        std::os::unix::fs::symlink(target, link).unwrap();
    }
}

/// A laptop on battery at `percent`, its adapter unplugged.
pub fn on_battery(s: &Scratch, percent: u8) {
    let p = percent.to_string();
    fake_power_supply(
        s,
        "BAT0",
        &[
            ("type", "Battery"),
            ("capacity", &p),
            ("status", "Discharging"),
        ],
    );
    fake_power_supply(s, "AC", &[("type", "Mains"), ("online", "0")]);
}
