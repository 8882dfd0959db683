//! The boot's health as systemd tells it: the target reached, the must-run units, the wait.

use super::*;

/// One unit as `systemctl show` tells it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub id: String,
    pub load: String,
    pub active: String,
    pub sub: String,
    pub result: String,
}

/// `systemctl show -p Id,LoadState,...` of several units: blocks of
/// key=value lines, separated by empty lines, in the order asked.
pub fn parse_show(text: &str) -> Vec<UnitState> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|block| {
            let kv: HashMap<&str, &str> = block.lines().filter_map(|l| l.split_once('=')).collect();
            let get = |k: &str| kv.get(k).copied().unwrap_or_default().to_string();
            UnitState {
                id: get("Id"),
                load: get("LoadState"),
                active: get("ActiveState"),
                sub: get("SubState"),
                result: get("Result"),
            }
        })
        .collect()
}

pub(super) fn systemctl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("systemctl")
        .args(args)
        .env("SYSTEMD_PAGER", "")
        .output()
        .map_err(|e| format!("systemctl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "systemctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn show(units: &[String]) -> Result<Vec<UnitState>, String> {
    let mut args = vec![
        "show",
        "-p",
        "Id,LoadState,ActiveState,SubState,Result",
        "--",
    ];
    args.extend(units.iter().map(String::as_str));
    let states = parse_show(&systemctl(&args)?);
    if states.len() != units.len() {
        return Err(format!(
            "systemctl show: {} answers for {} units",
            states.len(),
            units.len()
        ));
    }
    Ok(states)
}

/// The units the health target requires (its hooks), from `Requires=` and
/// `Wants=` less sysinit.target.
pub(super) fn hooks(target: &str) -> Vec<String> {
    systemctl(&["show", "-p", "Requires,Wants", "--value", "--", target])
        .map(|t| {
            t.split_whitespace()
                .filter(|u| *u != "sysinit.target")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What is waited for: the configured target; boot-complete.target (the
/// default) only where some unit hooks into it, multi-user.target
/// otherwise, since an unhooked boot-complete.target says nothing.
pub fn choose_target(configured: &str, hooks: &[String]) -> String {
    if configured == DEFAULT_HEALTH_TARGET && hooks.is_empty() {
        FALLBACK_TARGET.to_string()
    } else {
        configured.to_string()
    }
}

/// The verdict on one look at the units: Some(Ok) confirmed, Some(Err)
/// failed for good, None not yet.
pub fn judge(
    target: &UnitState,
    must_run: &[UnitState],
    required: &[UnitState],
) -> Option<Result<(), String>> {
    for u in must_run {
        if u.load == "not-found" {
            return Some(Err(format!("{} (must-run) does not exist", u.id)));
        }
        if u.active == "failed" {
            return Some(Err(format!(
                "{} (must-run) failed ({})",
                u.id,
                if u.result.is_empty() {
                    "failed"
                } else {
                    &u.result
                }
            )));
        }
    }
    if target.active != "active" {
        if let Some(u) = required.iter().find(|u| u.active == "failed") {
            return Some(Err(format!(
                "{} failed, so {} was not reached",
                u.id, target.id
            )));
        }
        return None;
    }
    let up =
        |u: &UnitState| u.active == "active" || (u.active == "inactive" && u.result == "success");
    must_run.iter().all(up).then_some(Ok(()))
}

/// Why the time ran out: the target, or the must-run units not up.
pub(super) fn timed_out(target: &UnitState, must_run: &[UnitState], secs: u64) -> String {
    if target.active != "active" {
        return format!("{} was not reached within {secs} s", target.id);
    }
    let down: Vec<String> = must_run
        .iter()
        .filter(|u| u.active != "active")
        .map(|u| format!("{} ({} {})", u.id, u.active, u.sub))
        .collect();
    format!("{} not running within {secs} s", down.join(", "))
}

/// Waits for the health target; Err says why the boot is not healthy.
pub(super) fn wait_healthy(
    config: &Config,
    target: &str,
    required: &[String],
    stop: &AtomicBool,
) -> Result<Result<(), String>, ()> {
    let units: Vec<String> = std::iter::once(target.to_string())
        .chain(config.must_run.iter().cloned())
        .chain(required.iter().cloned())
        .collect();
    let n = config.must_run.len();
    let deadline = Instant::now() + Duration::from_secs(config.health_timeout);
    let mut last_error = String::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(());
        }
        match show(&units) {
            Ok(states) => {
                let (t, rest) = states.split_at(1);
                let (must, req) = rest.split_at(n);
                if let Some(v) = judge(&t[0], must, req) {
                    return Ok(v);
                }
                if Instant::now() >= deadline {
                    return Ok(Err(timed_out(&t[0], must, config.health_timeout)));
                }
            }
            Err(e) => {
                if e != last_error {
                    tracing::warn!("{e}");
                    last_error = e;
                }
                if Instant::now() >= deadline {
                    return Ok(Err(format!(
                        "the units could not be checked within {} s: {last_error}",
                        config.health_timeout
                    )));
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// One line on stdout besides the journal: the unit sends it to the
/// console too, where someone at a kiosk or a serial line sees why the
/// machine restarts.
pub(super) fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "system-update: {line}");
    let _ = out.flush();
}
