//! Real-boot harness for the offline-update stack.
//!
//! `tests/vm/run` builds two Debian images (`tests/vm/build-image`), Debian 12
//! bookworm (systemd 252) and Debian 13 trixie (systemd 257), and runs the
//! scenarios in `tests/scenarios.rs` with this library: each scenario picks a
//! [`Guest`] (bookworm unless it says otherwise) and gets its own copy of
//! that guest's disk, boots it under qemu with the serial console on a pipe,
//! waits for markers with per-step timeouts, and boots again on the same disk
//! after the guest reboots (`-no-reboot` makes a reboot end qemu). Every boot's
//! serial log and report are kept; a failing scenario prints the tail of its
//! last boot.
//!
//! The guest side (`tests/vm/guest/`) prints `VMTEST-BOOTED multi-user` or
//! `VMTEST-BOOTED system-update` on the console, runs the setup step named by
//! `vmtest.run=` on the kernel command line, and writes a report of the
//! machine's state to a second serial port, which nothing else writes to.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Markers the guest prints on the serial console.
pub const BOOTED_NORMAL: &str = "VMTEST-BOOTED multi-user";
pub const BOOTED_UPDATE: &str = "VMTEST-BOOTED system-update";
pub mod screen;

/// Printed by the kernel as the last line of a reboot or a power-off.
pub const KERNEL_REBOOT: &str = "reboot: Restarting system";
pub const KERNEL_POWER_OFF: &str = "reboot: Power down";
pub const KERNEL_PANIC: &str = "Kernel panic";

#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn err(msg: impl Into<String>) -> Error {
    Error(msg.into())
}

fn io_err(what: impl fmt::Display, e: io::Error) -> Error {
    Error(format!("{what}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Which Debian a machine boots. Both images have the same guest side and
/// the same packages (tests/vm/build-image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guest {
    /// Debian 12, systemd 252: ext4 and btrfs disks (VMTEST_IMAGE).
    #[default]
    Bookworm,
    /// Debian 13, systemd 257, merged /usr: the ext4 disk only
    /// (VMTEST_IMAGE_TRIXIE).
    Trixie,
}

impl Guest {
    pub fn name(self) -> &'static str {
        match self {
            Guest::Bookworm => "bookworm",
            Guest::Trixie => "trixie",
        }
    }

    /// The disks its image has.
    pub fn disks(self) -> &'static [Disk] {
        match self {
            Guest::Bookworm => &[Disk::Ext4, Disk::Btrfs],
            Guest::Trixie => &[Disk::Ext4],
        }
    }

    fn env(self) -> &'static str {
        match self {
            Guest::Bookworm => "VMTEST_IMAGE",
            Guest::Trixie => "VMTEST_IMAGE_TRIXIE",
        }
    }

    /// The files its image directory must have.
    fn files(self) -> Vec<&'static str> {
        let mut files = vec!["vmlinuz", "initrd.img"];
        files.extend(self.disks().iter().map(|d| d.file()));
        files
    }
}

impl fmt::Display for Guest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the images are and how to run qemu; from the environment that
/// `tests/vm/run` sets.
#[derive(Debug, Clone)]
pub struct Config {
    /// Debian 12's image: `vmlinuz`, `initrd.img`, `disk.img`,
    /// `disk-btrfs.img` and the repository disk `repo.img` (VMTEST_IMAGE).
    pub image: PathBuf,
    /// Debian 13's image: `vmlinuz`, `initrd.img`, `disk.img`, `repo.img`
    /// (VMTEST_IMAGE_TRIXIE). Without it only bookworm machines can be made.
    pub image_trixie: Option<PathBuf>,
    /// Scenario disks go to `work/disks/` (VMTEST_WORK, default image/..).
    pub work: PathBuf,
    /// Serial logs and the summary (VMTEST_LOGS, default work/logs).
    pub logs: PathBuf,
    pub accel: Accel,
    pub smp: u32,
    pub mem_mib: u32,
    /// Multiplies every timeout (VMTEST_TIMEOUT_SCALE), for slow runners.
    pub timeout_scale: f64,
    pub qemu: PathBuf,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        let image = std::env::var_os(Guest::Bookworm.env())
            .map(PathBuf::from)
            .ok_or_else(|| {
                err("VMTEST_IMAGE is not set: run the scenarios through tests/vm/run")
            })?;
        let image_trixie = std::env::var_os(Guest::Trixie.env())
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        for (guest, dir) in [
            (Guest::Bookworm, Some(&image)),
            (Guest::Trixie, image_trixie.as_ref()),
        ] {
            for f in guest.files() {
                match dir {
                    Some(dir) if !dir.join(f).exists() => {
                        return Err(err(format!("{guest} image {}: no {f}", dir.display())))
                    }
                    _ => {}
                }
            }
        }
        let work = match std::env::var_os("VMTEST_WORK") {
            Some(w) => PathBuf::from(w),
            None => image
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| image.clone()),
        };
        let logs = std::env::var_os("VMTEST_LOGS")
            .map(PathBuf::from)
            .unwrap_or_else(|| work.join("logs"));
        let accel = match std::env::var("VMTEST_ACCEL").as_deref() {
            Ok("kvm") => Accel::Kvm,
            Ok("tcg") | Err(_) => Accel::Tcg,
            Ok(other) => return Err(err(format!("VMTEST_ACCEL={other}: want kvm or tcg"))),
        };
        let num = |name: &str, default: f64| -> Result<f64> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|n| *n > 0.0)
                    .ok_or_else(|| err(format!("{name}={v}: want a positive number"))),
                Err(_) => Ok(default),
            }
        };
        Ok(Config {
            image,
            image_trixie,
            work,
            logs,
            accel,
            // One vCPU under TCG: with two, Debian 12's qemu 7.2 has left a
            // guest CPU looping in the int3 of a cross-CPU kernel text patch
            // (an RCU stall, the boot never finished) and has segfaulted.
            // It costs about a fifth more time per boot.
            smp: num("VMTEST_SMP", if accel == Accel::Kvm { 2.0 } else { 1.0 })? as u32,
            mem_mib: num("VMTEST_MEM", 1024.0)? as u32,
            timeout_scale: num("VMTEST_TIMEOUT_SCALE", 1.0)?,
            qemu: std::env::var_os("VMTEST_QEMU")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64")),
        })
    }

    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.timeout_scale)
    }

    /// The image directory of `guest`.
    pub fn image_of(&self, guest: Guest) -> Result<&Path> {
        match guest {
            Guest::Bookworm => Ok(&self.image),
            Guest::Trixie => self.image_trixie.as_deref().ok_or_else(|| {
                err("VMTEST_IMAGE_TRIXIE is not set: run the scenarios through tests/vm/run")
            }),
        }
    }
}

/// Which of the image's disks a machine boots: the same system on ext4, or
/// on btrfs with the root in subvolume `@` (the snapshot scenarios).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disk {
    #[default]
    Ext4,
    Btrfs,
}

impl Disk {
    fn file(self) -> &'static str {
        match self {
            Disk::Ext4 => "disk.img",
            Disk::Btrfs => "disk-btrfs.img",
        }
    }

    /// Kernel command line words that mount this disk's root.
    fn root_words(self) -> &'static [&'static str] {
        match self {
            Disk::Ext4 => &["root=/dev/vda"],
            // subvol=, not subvolid=: a rollback gives the root a new id.
            Disk::Btrfs => &["root=/dev/vda", "rootfstype=btrfs", "rootflags=subvol=@"],
        }
    }
}

/// How one boot is started.
#[derive(Debug, Clone, Default)]
pub struct BootSpec {
    /// Setup step for the guest's report unit (`vmtest.run=`), e.g.
    /// `update:vmtest-hello`; it runs only if the boot reaches multi-user.
    pub run: Option<String>,
    /// Boot with plymouth (`splash`); other boots say `plymouth.enable=0`.
    /// With `vga` too, plymouth draws its theme on the card and leaves the
    /// serial console alone.
    pub splash: bool,
    /// More kernel command line words.
    pub extra: Vec<String>,
    /// The serial console's speed (`console=ttyS0,SPEED`); default 115200.
    /// qemu does not slow the line down, but the guest's termios says it,
    /// and the UI's byte budget follows that.
    pub serial_speed: Option<u32>,
    /// A VGA card and tty1 as a console besides ttyS0, screendumps taken
    /// through qemu's monitor (see `screen`), and `vmtest.vga` on the
    /// command line (vmtest-hello 2's postinst then writes a kernel
    /// message and takes its time, for the pictures).
    pub vga: bool,
}

impl BootSpec {
    pub fn plain() -> BootSpec {
        BootSpec::default()
    }

    pub fn run(step: &str) -> BootSpec {
        BootSpec {
            run: Some(step.to_string()),
            ..BootSpec::default()
        }
    }

    pub fn splash(mut self) -> BootSpec {
        self.splash = true;
        self
    }

    pub fn vga(mut self) -> BootSpec {
        self.vga = true;
        self
    }

    pub fn serial_speed(mut self, bps: u32) -> BootSpec {
        self.serial_speed = Some(bps);
        self
    }

    fn cmdline(&self, disk: Disk) -> String {
        let mut words: Vec<String> = disk.root_words().iter().map(|w| w.to_string()).collect();
        words.push("rw".to_string());
        if self.vga {
            // Before ttyS0, which stays /dev/console (the last one named).
            words.extend(["console=tty1".to_string(), "vmtest.vga".to_string()]);
        }
        words.extend([
            format!("console=ttyS0,{}", self.serial_speed.unwrap_or(115_200)),
            // A panic reboots at once, which ends qemu (-no-reboot).
            "panic=-1".to_string(),
            // Unit names, not descriptions, in the status lines: the checks
            // look for them and descriptions get cut at 80 columns.
            "systemd.status_unit_format=name".to_string(),
        ]);
        if self.splash {
            words.push("splash".to_string());
            if self.vga {
                // plymouth forces its text (details) splash on every display
                // when a serial console is active: passed over, the theme
                // draws on the card.
                words.push("plymouth.ignore-serial-consoles".to_string());
            }
        } else {
            words.push("plymouth.enable=0".to_string());
        }
        if let Some(run) = &self.run {
            words.push(format!("vmtest.run={run}"));
        }
        words.extend(self.extra.iter().cloned());
        words.join(" ")
    }
}

/// How a boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Reboot,
    PowerOff,
    Panic,
    /// The harness killed qemu on purpose (SIGKILL): a power cut.
    PowerCut,
    /// qemu exited without the kernel saying why.
    Exited,
    /// The harness gave up on it (timeout or failed check) and killed it.
    Aborted,
}

/// Which target the boot went to, from the guest's markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Normal,
    Update,
    Unknown,
}

#[derive(Debug, Clone)]
pub struct BootRecord {
    pub label: String,
    pub secs: f64,
    pub end: End,
    pub log: PathBuf,
}

/// A finished boot: its serial bytes, its report and how it ended.
#[derive(Debug, Clone)]
pub struct Boot {
    pub label: String,
    pub serial: Vec<u8>,
    pub report: String,
    pub end: End,
    pub secs: f64,
    pub log: PathBuf,
}

impl Boot {
    /// The serial log as text, escape sequences and carriage returns removed.
    pub fn text(&self) -> String {
        strip_escapes(&self.serial)
    }

    /// The screendumps taken during this boot (a `vga` boot), in order.
    pub fn shots(&self) -> Vec<PathBuf> {
        screen::shots(&self.log)
    }

    pub fn kind(&self) -> Kind {
        let text = self.text();
        if text.contains(BOOTED_UPDATE) {
            Kind::Update
        } else if text.contains(BOOTED_NORMAL) {
            Kind::Normal
        } else {
            Kind::Unknown
        }
    }

    /// A section of the guest's report (`VMTEST-BEGIN name` .. `VMTEST-END`),
    /// with the exit status of the command that made it.
    pub fn section(&self, name: &str) -> Option<(String, i32)> {
        let begin = format!("VMTEST-BEGIN {name}\n");
        let end = format!("VMTEST-END {name} rc=");
        let report = self.report.replace('\r', "");
        let start = report.find(&begin)? + begin.len();
        let len = report[start..].find(&end)?;
        let rc_text = &report[start + len + end.len()..];
        let rc = rc_text
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1);
        Some((report[start..start + len].to_string(), rc))
    }

    /// Whether the guest finished its report (the report unit ran to the end).
    pub fn reported(&self) -> bool {
        self.report.contains("VMTEST-REPORT-DONE")
    }

    pub fn tail(&self, lines: usize) -> String {
        tail(&self.text(), lines)
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Removes ANSI escape sequences and carriage returns, keeping the text.
pub fn strip_escapes(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    // CSI: parameters, then one final byte in @..~.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') | Some('P') | Some('_') | Some('^') => {
                    // OSC and friends: up to BEL or ESC \.
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            chars.next();
                            break;
                        }
                    }
                }
                Some('(') | Some(')') | Some('#') => {
                    chars.next();
                }
                _ => {}
            },
            '\r' | '\u{7}' | '\u{0}' | '\u{f}' | '\u{e}' => {}
            c => out.push(c),
        }
    }
    out
}

/// What the serial reader thread shares with the harness.
#[derive(Default)]
struct Serial {
    state: Mutex<SerialState>,
    changed: Condvar,
}

#[derive(Default)]
struct SerialState {
    bytes: Vec<u8>,
    closed: bool,
}

/// One scenario's machine: a disk of its own that lives across boots.
pub struct Machine {
    pub config: Config,
    name: String,
    guest: Guest,
    /// The guest's image directory (kernel, initrd, repository disk).
    image: PathBuf,
    kind: Disk,
    disk: PathBuf,
    logdir: PathBuf,
    boots: Vec<BootRecord>,
    started: Instant,
}

impl Machine {
    /// A fresh copy of the bookworm image's ext4 disk for scenario `name`.
    pub fn new(name: &str) -> Result<Machine> {
        Machine::with_disk(name, Disk::Ext4)
    }

    /// A fresh copy of the bookworm image's disk `kind` for scenario `name`.
    pub fn with_disk(name: &str, kind: Disk) -> Result<Machine> {
        Machine::on(Guest::Bookworm, name, kind)
    }

    /// A fresh copy of `guest`'s disk `kind` for scenario `name`, e.g.
    /// `Machine::on(Guest::Trixie, "s6-etc-trigger", Disk::Ext4)`.
    pub fn on(guest: Guest, name: &str, kind: Disk) -> Result<Machine> {
        Machine::with_config(Config::from_env()?, guest, name, kind)
    }

    /// As `on`, with the configuration given.
    pub fn with_config(config: Config, guest: Guest, name: &str, kind: Disk) -> Result<Machine> {
        if !guest.disks().contains(&kind) {
            return Err(err(format!(
                "the {guest} image has no {kind:?} disk (it has {:?})",
                guest.disks()
            )));
        }
        let image = config.image_of(guest)?.to_path_buf();
        let disks = config.work.join("disks");
        let logdir = config.logs.join(name);
        fs::create_dir_all(&disks).map_err(|e| io_err(disks.display(), e))?;
        if logdir.exists() {
            fs::remove_dir_all(&logdir).map_err(|e| io_err(logdir.display(), e))?;
        }
        fs::create_dir_all(&logdir).map_err(|e| io_err(logdir.display(), e))?;
        let disk = disks.join(format!("{name}.img"));
        // cp keeps the 2G disk sparse; std::fs::copy might not.
        let status = Command::new("cp")
            .arg("--sparse=always")
            .arg(image.join(kind.file()))
            .arg(&disk)
            .status()
            .map_err(|e| io_err("cp", e))?;
        if !status.success() {
            return Err(err(format!(
                "cp of the disk to {}: {status}",
                disk.display()
            )));
        }
        Ok(Machine {
            config,
            name: name.to_string(),
            guest,
            image,
            kind,
            disk,
            logdir,
            boots: Vec::new(),
            started: Instant::now(),
        })
    }

    pub fn disk(&self) -> &Path {
        &self.disk
    }

    pub fn guest(&self) -> Guest {
        self.guest
    }

    pub fn boots(&self) -> &[BootRecord] {
        &self.boots
    }

    /// Starts qemu on this machine's disk.
    pub fn boot(&mut self, label: &str, spec: &BootSpec) -> Result<Running<'_>> {
        let q = self.spawn(label, spec)?;
        Ok(Running {
            machine: self,
            label: label.to_string(),
            spec: spec.clone(),
            restarted: false,
            child: Some(q.child),
            serial: q.serial,
            reader: Some(q.reader),
            cursor: 0,
            started: q.started,
            log: q.log,
            report: q.report,
            stderr: q.stderr,
        })
    }

    fn spawn(&self, label: &str, spec: &BootSpec) -> Result<Spawned> {
        let n = self.boots.len() + 1;
        let base = format!("{n:02}-{label}");
        let log = self.logdir.join(format!("{base}.serial.log"));
        let report = self.logdir.join(format!("{base}.report.txt"));
        let stderr_path = self.logdir.join(format!("{base}.qemu-stderr.log"));
        let log_file = File::create(&log).map_err(|e| io_err(log.display(), e))?;
        File::create(&report).map_err(|e| io_err(report.display(), e))?;
        let stderr = File::create(&stderr_path).map_err(|e| io_err(stderr_path.display(), e))?;

        let monitor = spec
            .vga
            .then(|| self.logdir.join(format!("{n:02}.monitor")));
        let c = &self.config;
        let mut cmd = Command::new(&c.qemu);
        match c.accel {
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => cmd.args(["-accel", "tcg,thread=multi"]),
        };
        cmd.arg("-m")
            .arg(c.mem_mib.to_string())
            .arg("-smp")
            .arg(c.smp.to_string())
            // No floppy, CD-ROM, parallel port or NIC: fewer drivers to probe.
            .args(["-nodefaults", "-display", "none", "-vga"])
            .arg(if spec.vga { "std" } else { "none" })
            .arg("-monitor")
            .arg(match &monitor {
                Some(m) => format!("unix:{},server=on,wait=off", m.display()),
                None => "none".to_string(),
            })
            // A reboot ends qemu; the harness starts the next boot.
            .arg("-no-reboot")
            // ttyS0: the console, on our pipe. ttyS1: the guest's report.
            .args(["-serial", "stdio", "-serial"])
            .arg(format!("file:{}", report.display()))
            .arg("-kernel")
            .arg(self.image.join("vmlinuz"))
            .arg("-initrd")
            .arg(self.image.join("initrd.img"))
            .arg("-append")
            .arg(spec.cmdline(self.kind))
            .arg("-drive")
            // cache=unsafe: a SIGKILL still keeps what the guest wrote (it is
            // in the host's page cache), and the boots are faster.
            .arg(format!(
                "file={},format=raw,if=virtio,cache=unsafe",
                self.disk.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        // The repository disk (s13), shared read-only by every machine.
        let repo = self.image.join("repo.img");
        if repo.is_file() {
            cmd.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                repo.display()
            ));
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| io_err(format!("{}", c.qemu.display()), e))?;
        let started = Instant::now();
        if let Some(m) = monitor {
            // Ends by itself when qemu closes the monitor.
            drop(screen::start_shooting(m, self.logdir.clone(), base.clone()));
        }
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| err("qemu's stdout is not a pipe"))?;
        let serial = Arc::new(Serial::default());
        let reader = {
            let serial = Arc::clone(&serial);
            thread::spawn(move || read_serial(stdout, log_file, &serial))
        };
        Ok(Spawned {
            child,
            serial,
            reader,
            started,
            log,
            report,
            stderr: stderr_path,
        })
    }

    /// Boots, waits for the guest to end the boot on its own, and returns it.
    pub fn boot_through(
        &mut self,
        label: &str,
        spec: &BootSpec,
        timeout: Duration,
    ) -> Result<Boot> {
        self.boot(label, spec)?.finish(timeout)
    }

    fn record(&mut self, rec: BootRecord) {
        self.boots.push(rec);
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let failed = thread::panicking();
        let boots: Vec<String> = self
            .boots
            .iter()
            .map(|b| format!("{}={:.1}s({:?})", b.label, b.secs, b.end))
            .collect();
        let line = format!(
            "{}\t{}\t{}\t{:.1}\t{}\n",
            self.name,
            self.guest,
            if failed { "FAIL" } else { "pass" },
            self.started.elapsed().as_secs_f64(),
            boots.join(" ")
        );
        let summary = self.config.logs.join("summary.tsv");
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&summary) {
            let _ = f.write_all(line.as_bytes());
        }
        if failed {
            if let Some(last) = self.boots.last() {
                let text = fs::read(&last.log)
                    .map(|b| strip_escapes(&b))
                    .unwrap_or_default();
                eprintln!(
                    "\n--- {}: last 60 lines of the serial log of boot {} ({}) ---\n{}\n--- logs kept in {} ---",
                    self.name,
                    last.label,
                    last.log.display(),
                    tail(&text, 60),
                    self.logdir.display()
                );
            } else {
                eprintln!(
                    "--- {}: no boot; logs in {} ---",
                    self.name,
                    self.logdir.display()
                );
            }
        } else {
            // The disk is 2G apparent size; only a failing scenario's is kept.
            let _ = fs::remove_file(&self.disk);
        }
    }
}

fn read_serial(mut stdout: impl Read, mut log: File, serial: &Serial) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        // The log is best effort: a full disk must not stall the guest.
        let _ = log.write_all(&buf[..n]);
        if let Ok(mut st) = serial.state.lock() {
            st.bytes.extend_from_slice(&buf[..n]);
        }
        serial.changed.notify_all();
    }
    let _ = log.flush();
    if let Ok(mut st) = serial.state.lock() {
        st.closed = true;
    }
    serial.changed.notify_all();
}

/// A qemu process just started, with its serial reader.
struct Spawned {
    child: Child,
    serial: Arc<Serial>,
    reader: JoinHandle<()>,
    started: Instant,
    log: PathBuf,
    report: PathBuf,
    stderr: PathBuf,
}

/// What the kernel prints as it starts the initrd's init: nothing before it
/// can have written to the disk.
const KERNEL_RUNS_INIT: &str = "Run /init as init process";

/// A boot in progress.
pub struct Running<'m> {
    machine: &'m mut Machine,
    label: String,
    spec: BootSpec,
    /// Started again after qemu crashed (at most once).
    restarted: bool,
    child: Option<Child>,
    serial: Arc<Serial>,
    reader: Option<JoinHandle<()>>,
    /// Searches start here: each found marker moves it past the match.
    cursor: usize,
    started: Instant,
    log: PathBuf,
    report: PathBuf,
    stderr: PathBuf,
}

impl Running<'_> {
    pub fn config(&self) -> &Config {
        &self.machine.config
    }

    /// Waits until one of `needles` appears on the console after the last
    /// match, and returns its index. Fails on timeout (scaled) or when qemu
    /// exits first.
    pub fn wait_for_any(&mut self, needles: &[&str], timeout: Duration) -> Result<usize> {
        let timeout = self.machine.config.scaled(timeout);
        let deadline = Instant::now() + timeout;
        let mut st = self
            .serial
            .state
            .lock()
            .map_err(|_| err("serial reader panicked"))?;
        loop {
            let hay = &st.bytes[self.cursor.min(st.bytes.len())..];
            let found = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| find(hay, n.as_bytes()).map(|at| (at, i, n.len())))
                .min();
            if let Some((at, i, len)) = found {
                self.cursor += at + len;
                return Ok(i);
            }
            if st.closed {
                drop(st);
                if self.restart_after_emulator_crash()? {
                    st = self
                        .serial
                        .state
                        .lock()
                        .map_err(|_| err("serial reader panicked"))?;
                    continue;
                }
                return Err(err(format!(
                    "boot {}: qemu ended before any of {needles:?} appeared",
                    self.label
                )));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(err(format!(
                    "boot {}: none of {needles:?} within {:.0}s",
                    self.label,
                    timeout.as_secs_f64()
                )));
            }
            st = self
                .serial
                .changed
                .wait_timeout(st, deadline - now)
                .map_err(|_| err("serial reader panicked"))?
                .0;
        }
    }

    /// qemu itself crashed (TCG in Debian 12's qemu 7.2 has segfaulted here)
    /// before the guest ran any program: nothing reached the disk, so the
    /// same boot is started again, once, and the crash is recorded. A crash
    /// later in the boot is a failure like any other.
    fn restart_after_emulator_crash(&mut self) -> Result<bool> {
        use std::os::unix::process::ExitStatusExt;
        let Some(child) = self.child.as_mut() else {
            return Ok(false);
        };
        let status = child.wait().map_err(|e| io_err("waiting for qemu", e))?;
        let before_init = self
            .serial
            .state
            .lock()
            .map(|st| find(&st.bytes, KERNEL_RUNS_INIT.as_bytes()).is_none())
            .unwrap_or(false);
        let Some(signal) = status.signal() else {
            return Ok(false);
        };
        if !before_init || self.restarted {
            return Ok(false);
        }
        self.child = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        eprintln!(
            "boot {}: qemu died of signal {signal} before the guest's init ran; booting again",
            self.label
        );
        self.machine.record(BootRecord {
            label: format!("{}-qemu-crashed", self.label),
            secs: self.started.elapsed().as_secs_f64(),
            end: End::Exited,
            log: self.log.clone(),
        });
        self.restarted = true;
        let q = self.machine.spawn(&self.label, &self.spec)?;
        self.child = Some(q.child);
        self.serial = q.serial;
        self.reader = Some(q.reader);
        self.cursor = 0;
        self.started = q.started;
        self.log = q.log;
        self.report = q.report;
        self.stderr = q.stderr;
        Ok(true)
    }

    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_for_any(&[needle], timeout).map(|_| ())
    }

    /// Seconds since qemu started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Waits for qemu to end (the guest reboots or powers off).
    pub fn finish(mut self, timeout: Duration) -> Result<Boot> {
        let timeout = self.machine.config.scaled(timeout);
        let deadline = Instant::now() + timeout;
        loop {
            let status = match self.child.as_mut() {
                Some(c) => c.try_wait().map_err(|e| io_err("waiting for qemu", e))?,
                None => return Err(err("qemu already reaped")),
            };
            if let Some(status) = status {
                return self.ended(Some(status), false);
            }
            if Instant::now() >= deadline {
                return Err(err(format!(
                    "boot {}: qemu still running after {:.0}s",
                    self.label,
                    timeout.as_secs_f64()
                )));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Cuts the power: SIGKILL to qemu, no chance for the guest to flush.
    pub fn power_cut(mut self) -> Result<Boot> {
        if let Some(c) = self.child.as_mut() {
            c.kill().map_err(|e| io_err("killing qemu", e))?;
        }
        let status = match self.child.as_mut() {
            Some(c) => Some(c.wait().map_err(|e| io_err("waiting for qemu", e))?),
            None => None,
        };
        self.ended(status, true)
    }

    fn ended(&mut self, status: Option<ExitStatus>, cut: bool) -> Result<Boot> {
        self.child = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let secs = self.started.elapsed().as_secs_f64();
        let serial = self
            .serial
            .state
            .lock()
            .map(|st| st.bytes.clone())
            .unwrap_or_default();
        let report = fs::read(&self.report)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let end = if cut { End::PowerCut } else { end_of(&serial) };
        self.machine.record(BootRecord {
            label: self.label.clone(),
            secs,
            end,
            log: self.log.clone(),
        });
        if let Some(status) = status {
            if !cut && !status.success() {
                let stderr = fs::read_to_string(&self.stderr).unwrap_or_default();
                return Err(err(format!(
                    "boot {}: qemu exited with {status}: {}",
                    self.label,
                    stderr.trim()
                )));
            }
        }
        Ok(Boot {
            label: self.label.clone(),
            serial,
            report,
            end,
            secs,
            log: self.log.clone(),
        })
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if let Some(r) = self.reader.take() {
                let _ = r.join();
            }
            let rec = BootRecord {
                label: self.label.clone(),
                secs: self.started.elapsed().as_secs_f64(),
                end: End::Aborted,
                log: self.log.clone(),
            };
            self.machine.record(rec);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// The kernel's last word decides: whichever of reboot, power-off or panic
/// it printed last.
fn end_of(serial: &[u8]) -> End {
    [
        (KERNEL_REBOOT, End::Reboot),
        (KERNEL_POWER_OFF, End::PowerOff),
        (KERNEL_PANIC, End::Panic),
    ]
    .iter()
    .filter_map(|(n, e)| rfind(serial, n.as_bytes()).map(|at| (at, *e)))
    .max_by_key(|(at, _)| *at)
    .map(|(_, e)| e)
    .unwrap_or(End::Exited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escapes() {
        let raw = b"\x1b[0;32m  OK  \x1b[0m] Reached\r\n\x1b]0;title\x07x\x1b(By";
        assert_eq!(strip_escapes(raw), "  OK  ] Reached\nxy");
    }

    #[test]
    fn end_is_the_last_word() {
        assert_eq!(end_of(b"reboot: Power down\n"), End::PowerOff);
        assert_eq!(
            end_of(b"Kernel panic - not syncing\nreboot: Restarting system\n"),
            End::Reboot
        );
        assert_eq!(end_of(b"nothing"), End::Exited);
    }

    #[test]
    fn sections() {
        let boot = Boot {
            label: "x".into(),
            serial: Vec::new(),
            report:
                "VMTEST-BEGIN a\r\none\ntwo\nVMTEST-END a rc=3\nVMTEST-BEGIN b\nVMTEST-END b rc=0\n"
                    .into(),
            end: End::PowerOff,
            secs: 1.0,
            log: PathBuf::new(),
        };
        assert_eq!(boot.section("a"), Some(("one\ntwo\n".to_string(), 3)));
        assert_eq!(boot.section("b"), Some((String::new(), 0)));
        assert_eq!(boot.section("c"), None);
    }

    /// A configuration whose "qemu" is a script that writes its arguments to
    /// `dir/args` and behaves, run after run, as `runs` says: `early` dies of
    /// SIGSEGV before the guest's init, `late` after it, `ok` boots to
    /// multi-user and powers off. Both images' files say which guest they are.
    fn fake_config(dir: &Path, runs: &[&str]) -> Config {
        let image = dir.join("image");
        let image_trixie = dir.join("image-trixie");
        for (d, guest) in [(&image, Guest::Bookworm), (&image_trixie, Guest::Trixie)] {
            fs::create_dir_all(d).unwrap();
            for f in guest.files() {
                fs::write(d.join(f), guest.name()).unwrap();
            }
        }
        let mut script = format!(
            "#!/bin/sh\nulimit -c 0\necho \"$@\" >{1}\nn=$(cat {0} 2>/dev/null || echo 0)\nn=$((n+1))\necho $n >{0}\ncase $n in\n",
            dir.join("count").display(),
            dir.join("args").display()
        );
        for (i, r) in runs.iter().enumerate() {
            let body = match *r {
                "early" => "echo '[    0.6] pci 0000:00:02.0: BAR 0'; kill -SEGV $$",
                "late" => "echo '[    1.0] Run /init as init process'; kill -SEGV $$",
                _ => "echo '[    1.0] Run /init as init process'; echo VMTEST-BOOTED multi-user; echo 'reboot: Power down'",
            };
            script += &format!("{}) {body} ;;\n", i + 1);
        }
        script += "esac\n";
        let qemu = dir.join("qemu");
        fs::write(&qemu, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&qemu, fs::Permissions::from_mode(0o755)).unwrap();
        Config {
            image,
            image_trixie: Some(image_trixie),
            work: dir.join("work"),
            logs: dir.join("logs"),
            accel: Accel::Tcg,
            smp: 1,
            mem_mib: 64,
            timeout_scale: 1.0,
            qemu,
        }
    }

    fn fake_machine(dir: &Path, runs: &[&str]) -> Machine {
        Machine::with_config(fake_config(dir, runs), Guest::Bookworm, "fake", Disk::Ext4).unwrap()
    }

    #[test]
    fn a_machine_boots_its_guests_image() {
        let dir = tempfile::tempdir().unwrap();
        let config = fake_config(dir.path(), &["ok"]);
        let mut m = Machine::with_config(config.clone(), Guest::Trixie, "t", Disk::Ext4).unwrap();
        assert_eq!(fs::read_to_string(m.disk()).unwrap(), "trixie");
        let mut r = m.boot("b", &BootSpec::plain()).unwrap();
        r.wait_for(BOOTED, Duration::from_secs(20)).unwrap();
        r.finish(Duration::from_secs(20)).unwrap();
        let args = fs::read_to_string(dir.path().join("args")).unwrap();
        assert!(args.contains("image-trixie/vmlinuz"), "{args}");
        assert!(args.contains("image-trixie/initrd.img"), "{args}");
        drop(m);
        let summary = fs::read_to_string(config.logs.join("summary.tsv")).unwrap();
        assert!(summary.starts_with("t\ttrixie\tpass\t"), "{summary}");

        let e = Machine::with_config(config.clone(), Guest::Trixie, "t", Disk::Btrfs)
            .err()
            .expect("no btrfs disk on trixie");
        assert!(e.to_string().contains("no Btrfs disk"), "{e}");
        let without = Config {
            image_trixie: None,
            ..config
        };
        let e = Machine::with_config(without, Guest::Trixie, "t", Disk::Ext4)
            .err()
            .expect("no trixie image");
        assert!(e.to_string().contains("VMTEST_IMAGE_TRIXIE"), "{e}");
    }

    const BOOTED: &str = "VMTEST-BOOTED multi-user";

    #[test]
    fn emulator_crash_before_init_is_booted_again_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = fake_machine(dir.path(), &["early", "ok"]);
        let mut r = m.boot("b", &BootSpec::plain()).unwrap();
        r.wait_for(BOOTED, Duration::from_secs(20)).unwrap();
        let boot = r.finish(Duration::from_secs(20)).unwrap();
        assert_eq!(boot.end, End::PowerOff);
        let labels: Vec<_> = m.boots().iter().map(|b| b.label.clone()).collect();
        assert_eq!(labels, ["b-qemu-crashed", "b"]);

        let dir = tempfile::tempdir().unwrap();
        let mut m = fake_machine(dir.path(), &["early", "early", "ok"]);
        let mut r = m.boot("b", &BootSpec::plain()).unwrap();
        let e = r.wait_for(BOOTED, Duration::from_secs(20)).unwrap_err();
        assert!(e.to_string().contains("qemu ended before"), "{e}");
    }

    #[test]
    fn emulator_crash_after_init_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = fake_machine(dir.path(), &["late", "ok"]);
        let mut r = m.boot("b", &BootSpec::plain()).unwrap();
        let e = r.wait_for(BOOTED, Duration::from_secs(20)).unwrap_err();
        assert!(e.to_string().contains("qemu ended before"), "{e}");
    }

    #[test]
    fn cmdline() {
        let c = BootSpec::run("update:vmtest-hello").cmdline(Disk::Ext4);
        assert!(c.starts_with("root=/dev/vda rw "));
        assert!(c.contains("plymouth.enable=0") && c.ends_with("vmtest.run=update:vmtest-hello"));
        assert!(BootSpec::plain()
            .splash()
            .cmdline(Disk::Ext4)
            .contains(" splash"));
        let vga = BootSpec::plain().splash().vga().cmdline(Disk::Ext4);
        assert!(
            vga.contains(" splash plymouth.ignore-serial-consoles"),
            "{vga}"
        );
        assert!(!c.contains("ignore-serial-consoles"));
        let b = BootSpec::plain().cmdline(Disk::Btrfs);
        assert!(b.starts_with("root=/dev/vda rootfstype=btrfs rootflags=subvol=@ rw "));
    }
}
