//! Real-boot scenarios of issue 5, one qemu machine each. Run by
//! `tests/vm/run`, which builds the image and sets VMTEST_IMAGE; the tests run
//! one at a time (`--test-threads=1`) in name order.

use std::time::Duration;

mod common;
use common::pictures;
use common::screen::{has_percent, screens};

use system_update_vm_tests::{
    Boot, BootSpec, Disk, End, Guest, Kind, Machine, Running, BOOTED_NORMAL, BOOTED_UPDATE,
    KERNEL_POWER_OFF, KERNEL_REBOOT,
};

/// How a Rust panic starts on stderr (the unit's stderr goes to the console).
const PANIC: &str = "panicked at ";

/// Per-step timeouts for software emulation on 2 shared cores; a normal boot
/// takes about 15 s there. VMTEST_TIMEOUT_SCALE stretches them all.
const TO_MARKER: Duration = Duration::from_secs(150);
const TO_END: Duration = Duration::from_secs(120);
const TO_BOOT: Duration = Duration::from_secs(270);

/// Attempt limit of the apply service's default configuration.
const ATTEMPT_LIMIT: usize = 2;

fn machine(name: &str) -> Machine {
    Machine::new(name).expect("scenario machine (run through tests/vm/run)")
}

/// A machine of the Debian 13 guest (systemd 257, soft-reboot), ext4.
fn trixie_machine(name: &str) -> Machine {
    Machine::on(Guest::Trixie, name, Disk::Ext4)
        .expect("scenario machine on Debian 13 (run through tests/vm/run)")
}

fn btrfs_machine(name: &str) -> Machine {
    Machine::with_disk(name, Disk::Btrfs)
        .expect("scenario machine on btrfs (run through tests/vm/run)")
}

/// The btrfs top level as the guest saw it: its entries, and the content of
/// each test package's version file in each, keyed `ENTRY/usr/share/…`.
struct TopLevel {
    entries: Vec<String>,
    files: Vec<(String, String)>,
    text: String,
}

impl TopLevel {
    fn of(boot: &Boot) -> TopLevel {
        let (text, rc) = section(boot, "btrfs-top");
        assert_eq!(rc, 0, "the guest mounted and listed the top level: {text}");
        let mut entries = Vec::new();
        let mut files = Vec::new();
        for line in text.lines() {
            if let Some(dir) = line.strip_prefix("subvolume-dir ") {
                entries.push(dir.to_string());
            } else if let Some((path, content)) =
                line.strip_prefix("file ").and_then(|f| f.split_once(' '))
            {
                files.push((path.to_string(), content.to_string()));
            }
        }
        TopLevel {
            entries,
            files,
            text,
        }
    }

    fn file(&self, entry: &str, package: &str) -> Option<&str> {
        let path = format!("{entry}/usr/share/{package}/version");
        self.files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, c)| c.as_str())
    }
}

/// The content of a test package's version file in the running root.
fn version_file(boot: &Boot, package: &str) -> String {
    let (files, _) = section(boot, "files");
    let prefix = format!("/usr/share/{package}/version:");
    files
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{package}'s version file in the report: {files}"))
}

/// The root is mounted from subvolume @, as the btrfs disk's boots ask.
fn root_on_btrfs_at(boot: &Boot) {
    let (mount, _) = section(boot, "root-mount");
    assert!(
        mount.contains(" btrfs ") && mount.contains("subvol=/@"),
        "boot {}: / is btrfs subvolume @: {mount}",
        boot.label
    );
}

/// system-update-cleanup-snapshots.service ran in this boot (before the
/// report, which is ordered after it) and took its marker away.
fn snapshot_cleanup_ran(boot: &Boot) {
    assert!(
        boot.text()
            .contains("Finished system-update-cleanup-snapshots.service"),
        "boot {}: the snapshot cleanup ran",
        boot.label
    );
    let (dir, _) = section(boot, "results-dir");
    assert!(
        !dir.contains("cleanup-pending"),
        "boot {}: the cleanup took its marker away: {dir}",
        boot.label
    );
}

/// A boot that must reach multi-user.target and then end as `end`.
fn normal_boot(m: &mut Machine, label: &str, spec: &BootSpec, end: End) -> Boot {
    let mut r = m.boot(label, spec).expect("start qemu");
    wait(&mut r, &[BOOTED_NORMAL, BOOTED_UPDATE], TO_MARKER, 0);
    let boot = r.finish(TO_END).expect("normal boot ends");
    assert_eq!(boot.kind(), Kind::Normal, "boot {label} went to multi-user");
    assert_eq!(boot.end, end, "how boot {label} ended");
    if end == End::PowerOff {
        assert!(
            boot.reported(),
            "boot {label}: the guest's report is complete"
        );
    }
    boot
}

/// A boot that must go to system-update.target and end with a reboot.
fn update_boot(m: &mut Machine, label: &str, spec: &BootSpec) -> Boot {
    let mut r = m.boot(label, spec).expect("start qemu");
    wait(&mut r, &[BOOTED_UPDATE, BOOTED_NORMAL], TO_MARKER, 0);
    // A panic in system-update leaves the unit to its 30 min stop timeout:
    // fail at once, with the panic in the log's tail.
    let got = r
        .wait_for_any(&[KERNEL_REBOOT, KERNEL_POWER_OFF, PANIC], TO_BOOT)
        .expect("update boot ends");
    if got == 2 {
        std::thread::sleep(Duration::from_secs(3));
        panic!("boot {label}: a Rust panic on the console (system-update)");
    }
    let boot = r.finish(TO_END).expect("qemu exits after the update boot");
    assert_eq!(
        boot.kind(),
        Kind::Update,
        "boot {label} went to system-update.target"
    );
    assert_eq!(boot.end, End::Reboot, "boot {label} ends with a reboot");
    boot
}

/// Waits for the first of `needles` and insists it is `want`.
fn wait(r: &mut Running<'_>, needles: &[&str], timeout: Duration, want: usize) {
    let got = r
        .wait_for_any(needles, timeout)
        .expect("marker on the serial console");
    assert_eq!(
        got, want,
        "saw {:?} instead of {:?}",
        needles[got], needles[want]
    );
}

/// Boots a machine whose setup step (in the guest, at multi-user.target)
/// prepares an update and reboots; `update` names the step.
fn setup(m: &mut Machine, step: &str) {
    let boot = normal_boot(m, "setup", &BootSpec::run(step), End::Reboot);
    // The step's reboot may stop it before it says "ok"; the next boot
    // shows whether the trigger took.
    let text = boot.text();
    assert!(
        text.contains(&format!("VMTEST-STEP {step} begin"))
            && !text.contains(&format!("VMTEST-STEP {step} failed")),
        "setup step {step} ran and did not fail"
    );
}

fn section(boot: &Boot, name: &str) -> (String, i32) {
    boot.section(name)
        .unwrap_or_else(|| panic!("report of boot {} has a section {name}", boot.label))
}

/// `system-update results --json` as the guest printed it.
fn results(boot: &Boot) -> serde_json::Value {
    let (json, rc) = section(boot, "results");
    assert_eq!(rc, 0, "system-update results --json exits 0: {json}");
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("results JSON ({e}): {json}"))
}

fn outcome(results: &serde_json::Value) -> &str {
    results["outcome"].as_str().unwrap_or("")
}

/// `name version status` lines of the test packages.
fn package(boot: &Boot, name: &str) -> String {
    let (list, _) = section(boot, "packages");
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{name} in the package list: {list}"))
}

fn no_triggers(boot: &Boot) {
    let (ls, _) = section(boot, "triggers");
    assert!(
        ls.lines().filter(|l| l.ends_with(" absent")).count() == 2,
        "no /system-update nor /etc/system-update left: {ls}"
    );
}

fn audit_clean(boot: &Boot) {
    let (audit, rc) = section(boot, "audit");
    assert!(
        rc == 0 && audit.trim().is_empty(),
        "dpkg --audit is clean: {audit}"
    );
}

/// The full-screen UI drew its header and a percentage on ttyS0, and the
/// final screen says `banner`.
fn ui_was_drawn(boot: &Boot, banner: &str) {
    let screens = screens(&boot.serial);
    let progress = screens
        .iter()
        .any(|s| s.contains("System update") && has_percent(s));
    let last_ui = screens.iter().rev().find(|s| s.contains("System update"));
    assert!(
        progress,
        "boot {}: a screen with the UI's header and a percentage ({} screens; log {})",
        boot.label,
        screens.len(),
        boot.log.display()
    );
    let finals = screens.iter().any(|s| s.contains(banner));
    assert!(
        finals,
        "boot {}: a screen with {banner:?}; last UI screen:\n{}",
        boot.label,
        last_ui.map(String::as_str).unwrap_or("(none)")
    );
}

/// What the VT's pictures must show in one language: tesseract's data
/// for it, the UI's title, step word and outcome banner, and the name the
/// kept screenshots start with.
struct Language {
    ocr: &'static str,
    title: &'static str,
    step: &'static str,
    succeeded: &'static str,
    shots: &'static str,
}

const ENGLISH: Language = Language {
    ocr: "eng",
    title: "System update",
    step: "Step",
    succeeded: "UPDATE SUCCEEDED",
    shots: "vt",
};

/// po/de.po's words, for a root whose /etc/locale.conf says de_DE.UTF-8.
const GERMAN: Language = Language {
    ocr: "deu",
    title: "Systemaktualisierung",
    step: "Schritt",
    succeeded: "AKTUALISIERUNG ERFOLGREICH",
    shots: "vt-de",
};

/// The kiosk's monitor (issue 23): the VT of a `vga` boot as its
/// screendumps show it, read by OCR in the system's language `lang`: the
/// title, a step, a percentage and the outcome; never the kernel message
/// vmtest-hello 2's postinst writes meanwhile (`after`, the boot that
/// follows, shows it was written).
fn vt_pictures_show_the_update(update: &Boot, after: &Boot, lang: &Language) {
    let reads = pictures::read_all(update, lang.ocr);
    let progress = reads.iter().find(|r| {
        r.text.contains(lang.title) && r.text.contains(lang.step) && has_percent(&r.text)
    });
    let done = reads.iter().find(|r| r.text.contains(lang.succeeded));
    let noise: Vec<String> = reads
        .iter()
        .filter(|r| r.text.contains("TEST kernel"))
        .map(|r| r.png.display().to_string())
        .collect();
    let (journal, _) = section(after, "previous-boot");
    assert!(
        journal.contains("kmsg written at priority 2"),
        "the update's postinst wrote its kernel message: {journal}"
    );
    let (Some(progress), Some(done)) = (progress, done) else {
        panic!(
            "boot {}: of {} pictures ({}), one with {:?}, {:?} and a percentage: {}, one with {:?}: {} (OCR in {})",
            update.label,
            reads.len(),
            lang.ocr,
            lang.title,
            lang.step,
            progress.is_some(),
            lang.succeeded,
            done.is_some(),
            update.log.parent().map(|p| p.display().to_string()).unwrap_or_default()
        )
    };
    assert!(
        noise.is_empty(),
        "the kernel message is on the screen in {noise:?}"
    );
    assert!(
        !update.text().contains("TEST kernel message"),
        "the kernel message reached the serial console"
    );
    pictures::keep(update, &progress.png, &format!("{}-progress", lang.shots));
    pictures::keep(update, &done.png, &format!("{}-final", lang.shots));
}

fn update_boots(m: &Machine) -> usize {
    m.boots()
        .iter()
        .filter(|b| {
            std::fs::read(&b.log)
                .map(|s| String::from_utf8_lossy(&s).contains(BOOTED_UPDATE))
                .unwrap_or(false)
        })
        .count()
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s2_dpkg_update_round_trip() {
    let mut m = machine("s2-dpkg-update");
    // The serial console runs at 9600 baud in this scenario: the UI's byte
    // budget follows the line (480 B/s) and the screens still keep up.
    let step = "update:vmtest-hello";
    let setup = normal_boot(
        &mut m,
        "setup",
        &BootSpec::run(step).serial_speed(9600),
        End::Reboot,
    );
    assert!(
        !setup.text().contains(&format!("VMTEST-STEP {step} failed")),
        "setup step did not fail"
    );
    // A VGA card too: the VT is a second console, photographed (issue 23).
    let update = update_boot(
        &mut m,
        "update",
        &BootSpec::plain().serial_speed(9600).vga(),
    );
    assert!(
        update.text().contains("console=ttyS0,9600"),
        "the kernel ran the console at 9600 baud"
    );
    assert!(
        update
            .text()
            .contains("default.target=/lib/systemd/system/system-update.target")
            || update
                .text()
                .contains("default.target=/usr/lib/systemd/system/system-update.target"),
        "our generator pointed default.target at system-update.target"
    );
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    vt_pictures_show_the_update(&update, &after, &ENGLISH);
    let (journal, _) = section(&after, "previous-boot");
    assert!(
        journal.contains("/dev/ttyS0: 9600 bit/s, at most 480 B/s for the screen"),
        "the budget followed the line: {journal}"
    );
    assert!(package(&after, "vmtest-hello").starts_with("vmtest-hello 2 ii"));
    let res = results(&after);
    assert_eq!(outcome(&res), "success", "{res}");
    let hello = res["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "vmtest-hello"))
        .unwrap_or_else(|| panic!("vmtest-hello in the result: {res}"));
    assert_eq!(
        (hello["before"].as_str(), hello["after"].as_str()),
        (Some("1"), Some("2"))
    );
    no_triggers(&after);
    audit_clean(&after);
    assert_eq!(update_boots(&m), 1);
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s3_failing_update_reboots_once() {
    let mut m = machine("s3-failing-update");
    setup(&mut m, "update:vmtest-broken");
    let update = update_boot(&mut m, "update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE FAILED");
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    let res = results(&after);
    assert_eq!(outcome(&res), "failure", "{res}");
    no_triggers(&after);
    assert_eq!(update_boots(&m), 1, "no second update boot");
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s4_power_cut_recovers() {
    let mut m = machine("s4-power-cut");
    setup(&mut m, "update:vmtest-slow");

    let mut r = m
        .boot("update-cut", &BootSpec::plain())
        .expect("start qemu");
    wait(&mut r, &[BOOTED_UPDATE, BOOTED_NORMAL], TO_MARKER, 0);
    r.wait_for("VMTEST-SLOW-POSTINST", TO_END)
        .expect("dpkg runs vmtest-slow's postinst");
    let cut = r.power_cut().expect("power cut");
    assert!(!cut.text().contains("VMTEST-SLOW-POSTINST-DONE"));

    // The link is still there: the next boot goes to the update environment,
    // recovers (dpkg --configure -a reruns the postinst) and finishes.
    let recover = update_boot(&mut m, "update-recover", &BootSpec::plain());
    assert!(recover.text().contains("VMTEST-SLOW-POSTINST-DONE"));

    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    audit_clean(&after);
    assert!(package(&after, "vmtest-slow").starts_with("vmtest-slow 2 ii"));
    let res = results(&after);
    assert_eq!(outcome(&res), "success", "{res}");
    assert_eq!(res["attempts"].as_u64(), Some(2), "{res}");
    no_triggers(&after);
    assert!(update_boots(&m) <= ATTEMPT_LIMIT);
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s4b_power_cut_at_every_attempt_ends_interrupted() {
    let mut m = machine("s4b-power-cut-twice");
    setup(&mut m, "update:vmtest-slow");
    for attempt in 1..=ATTEMPT_LIMIT {
        let label = format!("update-cut-{attempt}");
        let mut r = m.boot(&label, &BootSpec::plain()).expect("start qemu");
        wait(&mut r, &[BOOTED_UPDATE, BOOTED_NORMAL], TO_MARKER, 0);
        r.wait_for("VMTEST-SLOW-POSTINST", TO_END)
            .expect("dpkg runs vmtest-slow's postinst");
        r.power_cut().expect("power cut");
    }
    // At the limit the service gives up: it removes the link first, repairs
    // the package database once (dpkg --configure -a, which runs the cut
    // postinst to its end), records `interrupted` and reboots; this is the
    // last update boot.
    let _limit = update_boot(&mut m, "update-limit", &BootSpec::plain());
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    let res = results(&after);
    assert_eq!(outcome(&res), "interrupted", "{res}");
    assert!(
        res["error"]
            .as_str()
            .is_some_and(|e| e.contains("dpkg --configure -a")),
        "{res}"
    );
    no_triggers(&after);
    assert_eq!(update_boots(&m), ATTEMPT_LIMIT + 1);
    audit_clean(&after);
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s5_foreign_trigger_is_left_to_systemd() {
    let mut m = machine("s5-foreign-trigger");
    setup(&mut m, "foreign");
    let update = update_boot(&mut m, "foreign", &BootSpec::plain());
    let text = update.text();
    assert!(
        text.contains("Finished system-update-apply.service"),
        "our service ran and exited 0"
    );
    assert!(!text.contains("Failed to start system-update-apply.service"));
    assert!(
        text.contains("Finished system-update-cleanup.service"),
        "systemd's cleanup service ran"
    );
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    no_triggers(&after);
    let (dir, _) = section(&after, "update-dir");
    assert!(
        dir.contains("payload"),
        "the other updater's directory is untouched: {dir}"
    );
    // The update boot's journal, as the next boot reads it.
    let (journal, _) = section(&after, "previous-boot");
    assert!(
        journal.contains("removed '/system-update'"),
        "systemd's cleanup removed the link: {journal}"
    );
    assert!(
        !journal.contains("system-update-apply.service: Main process exited, code=exited, status="),
        "our service exited 0: {journal}"
    );
    let (results, _) = section(&after, "results");
    assert_eq!(
        results.trim(),
        "null",
        "no result recorded for another tool's update"
    );
    assert_eq!(update_boots(&m), 1);
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s6_etc_trigger() {
    // Also the trigger's --reboot-mode: always-reboot travels with the
    // update to apply (local.json), so the way out says nothing of why.
    let mut m = machine("s6-etc-trigger");
    setup(&mut m, "etc-trigger:vmtest-hello:reboot-mode=always-reboot");
    let update = update_boot(&mut m, "update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    assert!(package(&after, "vmtest-hello").starts_with("vmtest-hello 2 ii"));
    let res = results(&after);
    assert_eq!(outcome(&res), "success");
    assert_eq!(res["legs"]["enter"], "reboot", "{res}");
    assert_eq!(res["legs"]["leave"], "reboot", "{res}");
    assert!(res["legs"]["leave_why"].is_null(), "{res}");
    no_triggers(&after);
    assert_eq!(update_boots(&m), 1);

    // 2. Unattended (issue 22): system-update-auto.timer's pass waits while
    // a guest process holds a shutdown inhibitor, and names it (logind over
    // D-Bus); released, it waits while a user is logged in (when-users =
    // "wait", a real logind session on tty2) and names the user; once the
    // session ends, the next pass arms the update and reboots into it; the
    // next boot is confirmed and the metrics file says so.
    let auto = normal_boot(
        &mut m,
        "auto",
        &BootSpec::run("auto:vmtest-slow"),
        End::Reboot,
    );
    let text = auto.text();
    assert!(
        text.contains("VMTEST-AUTO")
            && text.contains("inhibited by vmtest-kiosk")
            && text.contains("a customer is paying"),
        "auto waited for the inhibitor and named it"
    );
    assert!(
        !text.contains("VMTEST-AUTO no ") && !text.contains("armed despite"),
        "auto's passes in the guest"
    );
    logged_in_user_held_auto(&auto);
    let update = update_boot(&mut m, "auto-update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    let after = normal_boot(&mut m, "auto-after", &BootSpec::plain(), End::PowerOff);
    assert!(package(&after, "vmtest-slow").starts_with("vmtest-slow 2 ii"));
    let (metrics, rc) = section(&after, "metrics");
    assert_eq!(rc, 0, "the metrics file is there: {metrics}");
    for line in [
        "system_update_last_outcome{outcome=\"success\"} 1",
        "system_update_pending 0",
        "system_update_probation{state=\"confirmed\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    auto_passes_in_order(&after);
    no_triggers(&after);
    assert_eq!(update_boots(&m), 2);
}

/// s6's auto boot: vmtest's autologin on tty2 is a real logind session of
/// class user, and while it lasted the pass waited and named the user
/// (section auto-users, written by the guest's auto step).
fn logged_in_user_held_auto(auto: &Boot) {
    let (users, rc) = section(auto, "auto-users");
    assert_eq!(rc, 0, "not armed while vmuser was logged in: {users}");
    for line in [
        "Name=vmuser",
        "Class=user",
        "Type=tty",
        "TTY=tty2",
        "Remote=no",
    ] {
        assert!(users.contains(line), "{line} in the session: {users}");
    }
    assert!(
        users.contains("auto: waiting: logged in: vmuser (when-users is wait)"),
        "the pass named the user: {users}"
    );
}

/// The auto passes across s6's boots, as the journal kept them: held by
/// the inhibitor, then by the logged-in user, then armed.
fn auto_passes_in_order(after: &Boot) {
    let (journal, _) = section(after, "auto-journal");
    let at = |what: &str| {
        journal
            .find(what)
            .unwrap_or_else(|| panic!("{what:?} in auto's journal: {journal}"))
    };
    let inhibited = at("auto: waiting: a shutdown is inhibited by vmtest-kiosk");
    let users = at("auto: waiting: logged in: vmuser");
    let armed = at("auto: armed: armed; rebooting into the update");
    assert!(
        inhibited < users && users < armed,
        "inhibitor, then user, then armed: {journal}"
    );
    assert!(
        !journal[armed..].contains("logged in: vmuser"),
        "no pass saw vmuser after the arming one: {journal}"
    );
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s7_plymouth_shows_progress() {
    let mut m = machine("s7-plymouth");
    setup(&mut m, "update:vmtest-hello");
    let update = update_boot(&mut m, "update", &BootSpec::plain().splash().vga());
    // plymouth owns the VT and passes over the serial console
    // (plymouth.ignore-serial-consoles), taking what goes to /dev/console:
    // neither its text nor our full screen there; the kernel's log, and the
    // guest's marker through it, still.
    assert!(
        !update.text().contains("Do not turn off the computer"),
        "plymouth's messages on the serial console"
    );
    let fullscreen = screens(&update.serial)
        .iter()
        .filter(|s| s.contains("System update:"))
        .count();
    assert_eq!(
        fullscreen, 0,
        "no full-screen UI on the console plymouth owns"
    );
    plymouth_pictures_show_the_update(&update);
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    let (journal, _) = section(&after, "previous-boot");
    assert!(
        journal.contains("kmsg written at priority 2"),
        "the update's postinst wrote its kernel message: {journal}"
    );
    assert_eq!(outcome(&results(&after)), "success");
    assert_eq!(update_boots(&m), 1);
}

/// plymouth's graphical theme (spinfinity) on the VT (issue 23): our
/// messages, read by OCR from its picture (which reads "vmtest" as
/// "umtest"): the first, one with a step and a percentage, the outcome;
/// the theme's blue behind them, not the text console's black; and never
/// the priority-2 kernel message vmtest-hello 2's postinst writes.
fn plymouth_pictures_show_the_update(update: &Boot) {
    // The message line, at the top left: 48 of 800 pixel rows.
    let messages = pictures::plymouth_messages(update, "eng", 48);
    let find = |what: &dyn Fn(&str) -> bool| messages.iter().find(|m| what(&m.band));
    let first = find(&|b| b.contains("Update of") && b.contains("preparing"));
    let progress = find(&|b| b.contains("Update of") && b.contains("(2/2)") && has_percent(b));
    let done = find(&|b| b.contains("Update succeeded"));
    let (Some(first), Some(progress), Some(done)) = (first, progress, done) else {
        panic!(
            "boot {}: of {} messages of plymouth, the first: {}, one with a step and a percentage: {}, the outcome: {} (OCR in {})",
            update.label,
            messages.len(),
            first.is_some(),
            progress.is_some(),
            done.is_some(),
            update.log.display()
        )
    };
    let noise: Vec<String> = messages
        .iter()
        .filter(|m| m.text.contains("TEST kernel"))
        .map(|m| m.png.display().to_string())
        .collect();
    assert!(
        noise.is_empty(),
        "the kernel message is on plymouth's screen in {noise:?}"
    );
    for (m, name) in [
        (first, "plymouth-first"),
        (progress, "plymouth"),
        (done, "plymouth-final"),
    ] {
        pictures::keep(update, &m.png, name);
    }
}

/// Setup `step` prepares vmtest-broken 2 (its postinst fails) on a btrfs
/// machine; the update boot fails and rolls back. The normal boot after it
/// must run the pre-update state: version 1, database clean, vmtest-broken
/// 2's file (unpacked before its postinst failed) gone, and a result that
/// says `failure`, rolled back by `provider`. Returns that boot and result.
fn failed_update_rolled_back(
    m: &mut Machine,
    step: &str,
    provider: &str,
) -> (Boot, serde_json::Value) {
    setup(m, step);
    let update = update_boot(m, "update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE FAILED");
    let after = normal_boot(m, "after", &BootSpec::plain(), End::PowerOff);
    root_on_btrfs_at(&after);
    assert!(
        package(&after, "vmtest-broken").starts_with("vmtest-broken 1 ii"),
        "{}",
        package(&after, "vmtest-broken")
    );
    assert_eq!(version_file(&after, "vmtest-broken"), "1");
    audit_clean(&after);

    let res = results(&after);
    assert_eq!(outcome(&res), "failure", "{res}");
    assert_eq!(res["snapshot"]["provider"], provider, "{res}");
    assert_eq!(res["snapshot"]["rolled_back"], true, "{res}");
    (after, res)
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s8_btrfs_failed_update_rolls_back() {
    let mut m = btrfs_machine("s8-btrfs-rollback");
    let (after, res) = failed_update_rolled_back(&mut m, "update:vmtest-broken", "btrfs");
    let snap = &res["snapshot"];
    let before = snap["name"].as_str().unwrap_or_else(|| panic!("{res}"));
    let failed = snap["failed_state"]
        .as_str()
        .unwrap_or_else(|| panic!("a failed state in the result: {res}"));

    // On the disk, after this boot's snapshot cleanup (keep-failed = 1): the
    // failed state is kept, and it is the update's state (vmtest-broken 2
    // unpacked), beside the snapshot it was rolled back to.
    snapshot_cleanup_ran(&after);
    let top = TopLevel::of(&after);
    for entry in ["@", before, failed] {
        assert!(
            top.entries.iter().any(|e| e == entry),
            "{entry} in the top level: {}",
            top.text
        );
    }
    assert_eq!(top.file(failed, "vmtest-broken"), Some("2"), "{}", top.text);
    assert_eq!(top.file(before, "vmtest-broken"), Some("1"), "{}", top.text);
    assert_eq!(top.file("@", "vmtest-broken"), Some("1"), "{}", top.text);

    no_triggers(&after);
    assert_eq!(update_boots(&m), 1, "no second update boot");
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s9_btrfs_update_keeps_snapshot() {
    let mut m = btrfs_machine("s9-btrfs-success");
    setup(&mut m, "update:vmtest-hello");
    let update = update_boot(&mut m, "update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    root_on_btrfs_at(&after);
    assert!(package(&after, "vmtest-hello").starts_with("vmtest-hello 2 ii"));
    assert_eq!(version_file(&after, "vmtest-hello"), "2");
    audit_clean(&after);

    let res = results(&after);
    assert_eq!(outcome(&res), "success", "{res}");
    let snap = &res["snapshot"];
    assert_eq!(snap["provider"], "btrfs", "{res}");
    assert_eq!(snap["rolled_back"], false, "{res}");
    assert!(snap["failed_state"].is_null(), "{res}");
    let before = snap["name"]
        .as_str()
        .unwrap_or_else(|| panic!("a snapshot name in the result: {res}"));

    // The first normal boot was on probation and confirmed: nothing hooks
    // into boot-complete.target here, so multi-user.target stood in.
    let probation = &res["probation"];
    assert_eq!(probation["verdict"], "confirmed", "{res}");
    assert_eq!(probation["target"], "multi-user.target", "{res}");
    assert_eq!(probation["boots"].as_u64(), Some(1), "{res}");
    let (dir, _) = section(&after, "results-dir");
    assert!(!dir.contains("probation"), "the probation is over: {dir}");
    // systemd 252: no soft-reboot, both legs were full reboots.
    assert_eq!(res["legs"]["enter"], "reboot", "{res}");
    assert_eq!(res["legs"]["leave"], "reboot", "{res}");
    assert!(
        res["legs"]["leave_why"]
            .as_str()
            .is_some_and(|w| w.contains("no soft-reboot")),
        "{res}"
    );

    // The cleanup after this first normal boot, once the boot was
    // confirmed, keeps the newest snapshot (keep-snapshots = 1): the
    // pre-update state is still there.
    snapshot_cleanup_ran(&after);
    let top = TopLevel::of(&after);
    assert_eq!(top.file(before, "vmtest-hello"), Some("1"), "{}", top.text);
    assert_eq!(top.file("@", "vmtest-hello"), Some("2"), "{}", top.text);
    assert!(
        !top.entries.iter().any(|e| e.contains(".failed-")),
        "no failed state: {}",
        top.text
    );

    no_triggers(&after);
    assert_eq!(update_boots(&m), 1);
}

/// snapper's history as the guest listed it, and the test packages' version
/// files in its snapshots (`/.snapshots/N/snapshot/usr/share/…` → content).
fn snapper_state(boot: &Boot) -> (Vec<serde_json::Value>, Vec<(String, String)>) {
    let (text, rc) = section(boot, "snapper");
    assert_eq!(rc, 0, "the guest listed snapper's history: {text}");
    let (json, files): (Vec<&str>, Vec<&str>) = text.lines().partition(|l| !l.starts_with("file "));
    let v: serde_json::Value = serde_json::from_str(&json.join("\n"))
        .unwrap_or_else(|e| panic!("snapper's JSON ({e}): {text}"));
    let list = v["root"].as_array().cloned().unwrap_or_default();
    let files = files
        .iter()
        .filter_map(|l| l.strip_prefix("file ")?.split_once(' '))
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    (list, files)
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s10_snapper_failed_update_rolls_back() {
    let mut m = btrfs_machine("s10-snapper-rollback");
    let (after, res) = failed_update_rolled_back(&mut m, "snapper-update:vmtest-broken", "snapper");
    let snap = &res["snapshot"];
    let pre = snap["snapper_pre"]
        .as_u64()
        .unwrap_or_else(|| panic!("{res}"));
    let post = snap["snapper_post"]
        .as_u64()
        .unwrap_or_else(|| panic!("{res}"));
    assert_eq!(
        snap["name"],
        format!("@/.snapshots/{pre}/snapshot"),
        "{res}"
    );
    let failed = snap["failed_state"]
        .as_str()
        .unwrap_or_else(|| panic!("a failed state in the result: {res}"));

    // snapper's history (/.snapshots, a subvolume nested in the root) came
    // along into the restored root, with the update's pre/post pair: the
    // pre snapshot at version 1, the post one holding the failed state.
    let id = res["id"].as_str().unwrap_or_default();
    let (list, files) = snapper_state(&after);
    let desc = format!("system-update {id}");
    assert!(
        list.iter()
            .any(|x| x["number"] == pre && x["type"] == "pre" && x["description"] == desc.as_str()),
        "pre snapshot {pre} in {list:?}"
    );
    assert!(
        list.iter().any(|x| x["number"] == post
            && x["type"] == "post"
            && x["pre-number"] == pre
            && x["userdata"]["outcome"] == "failure"),
        "post snapshot {post} in {list:?}"
    );
    let file = |n: u64| {
        let path = format!("/.snapshots/{n}/snapshot/usr/share/vmtest-broken/version");
        files
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, c)| c.as_str())
    };
    assert_eq!(file(pre), Some("1"), "{files:?}");
    assert_eq!(file(post), Some("2"), "{files:?}");

    // The failed root itself is kept beside the restored one (keep-failed).
    snapshot_cleanup_ran(&after);
    let top = TopLevel::of(&after);
    assert_eq!(top.file(failed, "vmtest-broken"), Some("2"), "{}", top.text);
    assert_eq!(top.file("@", "vmtest-broken"), Some("1"), "{}", top.text);

    no_triggers(&after);
    assert_eq!(update_boots(&m), 1, "no second update boot");
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s12_signed_update_from_media() {
    let mut m = machine("s12-signed-update");
    // The setup step requires signatures, sees an unsigned update refused at
    // trigger, imports the signed one from "removable media" and triggers it.
    // The system speaks German from the setup boot on (issue 23): the VT,
    // photographed in the update boot, shows po/de.po's words; the serial
    // console, a terminal of unknown make, stays in English.
    let step = "signed-update:vmtest-hello";
    let mut spec = BootSpec::run(step);
    spec.extra.push("vmtest.lang=de_DE.UTF-8".to_string());
    let setup = normal_boot(&mut m, "setup", &spec, End::Reboot);
    let text = setup.text();
    assert!(
        text.contains("VMTEST-UNSIGNED-TRIGGER rc=3"),
        "the unsigned update was refused at trigger (status 3)"
    );
    assert!(
        !text.contains(&format!("VMTEST-STEP {step} failed")),
        "setup step {step} did not fail"
    );
    let update = update_boot(&mut m, "update", &BootSpec::plain().vga());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    vt_pictures_show_the_update(&update, &after, &GERMAN);
    let (journal, _) = section(&after, "previous-boot");
    assert!(
        journal.contains("console messages in de_DE.UTF-8"),
        "apply read the root's language: {journal}"
    );
    assert!(
        journal.contains("signed by trusted key"),
        "apply verified the signature at boot: {journal}"
    );
    assert!(package(&after, "vmtest-hello").starts_with("vmtest-hello 2 ii"));
    assert_eq!(version_file(&after, "vmtest-hello"), "2");
    let res = results(&after);
    assert_eq!(outcome(&res), "success", "{res}");
    no_triggers(&after);
    audit_clean(&after);
    assert_eq!(update_boots(&m), 1);
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s13_upgrade_from_a_repository_on_a_second_disk() {
    let mut m = machine("s13-repository-upgrade");
    // prepare --upgrade inside the guest: apt resolves against the signed
    // repository on /dev/vdb, pulls in vmtest-applib and plans the removal
    // of vmtest-oldlib; the update boot replays that from the update
    // directory alone.
    setup(&mut m, "repo-upgrade");
    let update = update_boot(&mut m, "update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    let after = normal_boot(&mut m, "after", &BootSpec::plain(), End::PowerOff);
    assert!(package(&after, "vmtest-app").starts_with("vmtest-app 2 ii"));
    assert!(package(&after, "vmtest-applib").starts_with("vmtest-applib 2 ii"));
    let (list, _) = section(&after, "packages");
    assert!(
        !list
            .lines()
            .any(|l| l.starts_with("vmtest-oldlib ") && l.contains(" ii")),
        "vmtest-oldlib was removed: {list}"
    );
    let res = results(&after);
    assert_eq!(outcome(&res), "success", "{res}");
    let oldlib = res["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "vmtest-oldlib"))
        .unwrap_or_else(|| panic!("vmtest-oldlib in the result: {res}"));
    assert_eq!(oldlib["state"].as_str(), Some("removed"), "{res}");
    no_triggers(&after);
    audit_clean(&after);
    assert_eq!(update_boots(&m), 1);
}

/// A probation boot that must not be confirmed: it reboots before the
/// guest's report (why is in the record, checked after the rollback; the
/// console line that says so can be lost to the shutdown).
fn unconfirmed_boot(m: &mut Machine, label: &str) -> Boot {
    let mut r = m.boot(label, &BootSpec::plain()).expect("start qemu");
    wait(
        &mut r,
        &[BOOTED_UPDATE, "on probation; waiting"],
        TO_MARKER,
        1,
    );
    let boot = r.finish(TO_BOOT).expect("the unconfirmed boot ends");
    assert_eq!(boot.end, End::Reboot, "boot {label} ends with a reboot");
    assert!(!boot.reported(), "boot {label} reboots before the report");
    boot
}

/// After a probation rollback: the pre-update versions, the record's
/// `rolled-back-after-boot` with the reason, the probation over and the
/// failed state kept beside the snapshot. `then`: the setup step of the
/// next update, run by the same boot after its report. `updates`: update
/// boots of the machine so far, this rollback's included.
fn rolled_back_after_boot(
    m: &mut Machine,
    package_name: &str,
    reason: &str,
    then: Option<&str>,
    updates: usize,
) -> serde_json::Value {
    let rollback = update_boot(m, "rollback", &BootSpec::plain());
    assert!(
        screens(&rollback.serial)
            .iter()
            .any(|s| s.contains("UPDATE ROLLED BACK")),
        "the rollback boot's final screen says so (log {})",
        rollback.log.display()
    );
    let mut spec = BootSpec::plain();
    let end = match then {
        Some(step) => {
            spec.extra.push(format!("vmtest.then={step}"));
            End::Reboot
        }
        None => End::PowerOff,
    };
    let after = normal_boot(m, "after", &spec, end);
    assert!(after.reported(), "the guest's report is complete");
    root_on_btrfs_at(&after);
    assert!(
        package(&after, package_name).starts_with(&format!("{package_name} 1 ii")),
        "{}",
        package(&after, package_name)
    );
    assert_eq!(version_file(&after, package_name), "1");
    audit_clean(&after);
    let res = results(&after);
    assert_eq!(outcome(&res), "rolled-back-after-boot", "{res}");
    assert!(
        res["error"].as_str().is_some_and(|e| e.contains(reason)),
        "the record says why ({reason}): {res}"
    );
    assert_eq!(res["probation"]["verdict"], "rolled-back", "{res}");
    assert_eq!(res["snapshot"]["rolled_back"], true, "{res}");
    let failed = res["snapshot"]["failed_state"]
        .as_str()
        .unwrap_or_else(|| panic!("a failed state in the result: {res}"));
    let top = TopLevel::of(&after);
    assert_eq!(top.file(failed, package_name), Some("2"), "{}", top.text);
    assert_eq!(top.file("@", package_name), Some("1"), "{}", top.text);
    let (dir, _) = section(&after, "results-dir");
    assert!(!dir.contains("probation"), "no probation left: {dir}");
    let (status, _) = section(&after, "status");
    assert!(!status.contains("on probation"), "{status}");
    no_triggers(&after);
    if let Some(step) = then {
        let text = after.text();
        assert!(
            text.contains(&format!("VMTEST-STEP {step} begin"))
                && !text.contains(&format!("VMTEST-STEP {step} failed")),
            "the next update's step ran after the report and did not fail"
        );
    }
    // Each update, then its rollback: never a third boot of either.
    assert_eq!(update_boots(m), updates);
    res
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s15_probation_rolls_back_a_failed_unit_and_power_cuts() {
    let mut m = btrfs_machine("s15-probation");
    // 1. vmtest-svc 2's service fails at boot; the admin listed it as
    // must-run: the probation boot is not confirmed and reboots, the next
    // boot rolls back.
    setup(&mut m, "must-run:vmtest-svc:vmtest-svc.service");
    let update = update_boot(&mut m, "update", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    unconfirmed_boot(&mut m, "probation");
    let res = rolled_back_after_boot(
        &mut m,
        "vmtest-svc",
        "vmtest-svc.service",
        Some("update:vmtest-hello"),
        2,
    );
    assert_eq!(res["probation"]["boots"].as_u64(), Some(1), "{res}");

    // 2. The next update's first boots are cut before they are confirmed:
    // probation-boots = 2 (the default), so two cuts, and the third boot
    // rolls back.
    let update = update_boot(&mut m, "update-2", &BootSpec::plain());
    ui_was_drawn(&update, "UPDATE SUCCEEDED");
    for n in 1..=2 {
        let mut r = m
            .boot(&format!("probation-cut-{n}"), &BootSpec::plain())
            .expect("start qemu");
        r.wait_for(&format!("boot {n} of at most 2 on probation"), TO_MARKER)
            .expect("the probation counts the boot");
        r.power_cut().expect("power cut");
    }
    let res = rolled_back_after_boot(
        &mut m,
        "vmtest-hello",
        "ended before they were confirmed",
        None,
        4,
    );
    assert_eq!(res["probation"]["boots"].as_u64(), Some(2), "{res}");
}

/// The guest's `legs` section: (kind, boot id) of every leg so far.
fn legs(boot: &Boot) -> Vec<(String, String)> {
    let (text, _) = section(boot, "legs");
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, id)| (k.to_string(), id.trim().to_string()))
        .collect()
}

#[test]
#[ignore = "real boot: run by tests/vm/run"]
fn s14_soft_reboot_legs_on_debian_13() {
    let mut m = trixie_machine("s14-soft-reboot");
    // 1. A "kernel" package (a file in /boot): in by soft-reboot, out by a
    // full reboot, which ends this qemu run.
    let step = "update:vmtest-kernel";
    let mut r = m
        .boot("kernel-legs", &BootSpec::run(step))
        .expect("start qemu");
    wait(&mut r, &[BOOTED_NORMAL, BOOTED_UPDATE], TO_MARKER, 0);
    wait(&mut r, &[BOOTED_UPDATE, BOOTED_NORMAL], TO_BOOT, 0);
    let kernel = r.finish(TO_BOOT).expect("a full reboot ends qemu");
    assert_eq!(kernel.end, End::Reboot, "out by a full reboot");
    ui_was_drawn(&kernel, "UPDATE SUCCEEDED");

    // 2. A userspace update: into the update and out of it by soft-reboot,
    // all in one kernel boot (one qemu run), the generator running again at
    // each leg. Power-on to back in multi-user.target is the timing.
    let step = "update:vmtest-hello";
    let mut r = m
        .boot("soft-legs", &BootSpec::run(step))
        .expect("start qemu");
    wait(&mut r, &[BOOTED_NORMAL, BOOTED_UPDATE], TO_MARKER, 0);
    let setup_up = r.elapsed();
    r.wait_for(&format!("VMTEST-STEP {step} begin"), TO_END)
        .expect("the setup step runs");
    wait(&mut r, &[BOOTED_UPDATE, BOOTED_NORMAL], TO_BOOT, 0);
    wait(
        &mut r,
        &[BOOTED_NORMAL, BOOTED_UPDATE, KERNEL_REBOOT],
        TO_BOOT,
        0,
    );
    let back = r.elapsed();
    let soft = r.finish(TO_END).expect("the report leg powers off");
    eprintln!(
        "s14 timing, soft-reboot legs: power-on to multi-user {setup_up:.1} s, to back in multi-user after the update {back:.1} s"
    );
    assert_eq!(soft.end, End::PowerOff);
    assert!(soft.reported(), "the report of the last leg");
    assert!(
        !soft.text().contains(KERNEL_REBOOT),
        "no kernel reboot between the legs"
    );
    ui_was_drawn(&soft, "UPDATE SUCCEEDED");

    // Every leg's kernel boot id, both runs.
    let l = legs(&soft);
    let kinds: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["normal", "update", "normal", "update", "normal"],
        "{l:?}"
    );
    assert_eq!(
        l[0].1, l[1].1,
        "the kernel update: in by soft-reboot: {l:?}"
    );
    assert_ne!(
        l[1].1, l[2].1,
        "the kernel update: out by a full reboot: {l:?}"
    );
    assert!(
        l[2..].iter().all(|(_, id)| *id == l[2].1),
        "the userspace update: one kernel boot across both legs: {l:?}"
    );

    // The generator ran again in each leg: it pointed default.target at
    // system-update.target in the update leg (the package is built on
    // Debian 12, whose unit directory is /lib's) and left it alone after,
    // logging nothing above info.
    assert!(
        ["/lib", "/usr/lib"]
            .iter()
            .any(|d| soft.text().contains(&format!(
            "VMTEST-BOOTED system-update default.target={d}/systemd/system/system-update.target"
        ))),
        "our generator redirected the soft-rebooted userspace"
    );
    let (link, rc) = section(&soft, "generator-link");
    assert_ne!(rc, 0, "no default.target link after the way out: {link}");
    let (notice, _) = section(&soft, "generator-journal-notice");
    assert!(
        notice.trim().is_empty(),
        "the generator logged nothing above info: {notice}"
    );
    no_triggers(&soft);

    assert!(package(&soft, "vmtest-hello").starts_with("vmtest-hello 2 ii"));
    assert!(package(&soft, "vmtest-kernel").starts_with("vmtest-kernel 2 ii"));
    let res = results(&soft);
    assert_eq!(outcome(&res), "success", "{res}");
    assert_eq!(res["legs"]["enter"], "soft-reboot", "{res}");
    assert_eq!(res["legs"]["leave"], "soft-reboot", "{res}");
    let (history, rc) = section(&soft, "history");
    assert_eq!(rc, 0, "{history}");
    let history: serde_json::Value =
        serde_json::from_str(history.trim()).unwrap_or_else(|e| panic!("{e}: {history}"));
    let kernel_update = history["updates"]
        .as_array()
        .and_then(|u| u.get(1))
        .unwrap_or_else(|| panic!("the kernel update in the history: {history}"));
    assert_eq!(kernel_update["legs"]["enter"], "soft-reboot", "{history}");
    assert_eq!(kernel_update["legs"]["leave"], "reboot", "{history}");
    assert!(
        kernel_update["legs"]["leave_why"]
            .as_str()
            .is_some_and(|w| w.contains("vmtest-kernel installs /boot/vmtest-kernel")),
        "{history}"
    );
}
