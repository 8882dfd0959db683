//! Maintenance windows (`window` in system-update.toml(5)): when `auto`
//! may arm an update, in the machine's local time.
//!
//! Syntax, one string a window: `[DAYS ]HH:MM-HH:MM`. DAYS is a comma list
//! of `Mon`..`Sun` (any case) and ranges of them (`Mon-Fri`, `Fri-Mon`
//! wraps), or `*`; left out, every day. The end may be `24:00`; an end at
//! or before the start crosses midnight, and the window belongs to the day
//! it starts on (`Fri 22:00-02:00` ends on Saturday at 02:00).
//!
//! Daylight saving time: a window is the span of real time between its
//! start and its end as the wall clock shows them on that day. A start or
//! end that does not exist (the clock jumps over it) is the first instant
//! after the jump; a start the clock shows twice is its first showing, an
//! end its last, so a repeated hour counts once and lengthens the window.
//! A window wholly inside a jump opens right after it, for its length.
//! So each listed day opens its window exactly once, for at least its
//! length less the jump: never skipped, never doubled.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// The longest window string read from the config.
pub const MAX_LEN: usize = 64;
/// Where the machine's zone is: a TZif file, usually a link into zoneinfo.
pub const LOCALTIME: &str = "/etc/localtime";
/// A TZif file is a few KiB; more is not one.
const MAX_TZIF: u64 = 256 * 1024;

/// One window: on which weekdays (Monday first) it starts, and its wall
/// clock start and length in minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    days: [bool; 7],
    start: u32,
    length: u32,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(s: &str) -> Result<usize, String> {
    let lower = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == lower)
        .ok_or_else(|| format!("{s:?} is not a day: use Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
}

fn days(s: &str) -> Result<[bool; 7], String> {
    if s == "*" {
        return Ok([true; 7]);
    }
    let mut out = [false; 7];
    for part in s.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(part)?, day(part)?),
        };
        let mut d = a;
        loop {
            out[d] = true;
            if d == b {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(out)
}

fn clock(s: &str) -> Result<u32, String> {
    let bad = || format!("{s:?} is not a time of day: use HH:MM, 00:00 to 24:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl std::str::FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Window, String> {
        if s.len() > MAX_LEN {
            return Err(format!("a window is at most {MAX_LEN} characters"));
        }
        let s = s.trim();
        let (d, times) = match s.rsplit_once(char::is_whitespace) {
            Some((d, t)) => (days(d.trim())?, t),
            None => ([true; 7], s),
        };
        let (a, b) = times
            .split_once('-')
            .ok_or_else(|| format!("{times:?} is not a time range: use HH:MM-HH:MM"))?;
        let (start, end) = (clock(a)?, clock(b)?);
        if start == 24 * 60 {
            return Err("a window cannot start at 24:00: use 00:00".into());
        }
        let length = (end + 24 * 60 - start) % (24 * 60);
        if length == 0 {
            return Err(format!("{times:?} has no length: its end is its start"));
        }
        Ok(Window {
            days: d,
            start,
            length,
        })
    }
}

fn weekday_index(w: Weekday) -> usize {
    usize::from(w.to_monday_zero_offset().unsigned_abs())
}

/// The instant a wall-clock time resolves to: in a jump, the first
/// instant after it; shown twice, the first showing (`late`: the last).
fn resolve(tz: &TimeZone, dt: DateTime, late: bool) -> Option<Timestamp> {
    let amb = tz.to_ambiguous_timestamp(dt);
    match amb.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
        AmbiguousOffset::Gap { before, after } => {
            let a = before.to_timestamp(dt).ok()?;
            let b = after.to_timestamp(dt).ok()?;
            let lo = a.min(b);
            let hi = a.max(b);
            let after_lo = lo.checked_sub(SignedDuration::from_secs(1)).ok()?;
            let transition = tz
                .following(after_lo)
                .next()
                .map(|t| t.timestamp())
                .filter(|t| *t >= lo && *t <= hi);
            Some(transition.unwrap_or(hi))
        }
        AmbiguousOffset::Fold { before, after } => {
            let a = before.to_timestamp(dt).ok()?;
            let b = after.to_timestamp(dt).ok()?;
            Some(if late { a.max(b) } else { a.min(b) })
        }
    }
}

impl Window {
    /// The span this window opens for when it starts on `date`, if it
    /// starts that day.
    pub fn span_on(&self, tz: &TimeZone, date: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.days[weekday_index(date.weekday())] {
            return None;
        }
        let midnight = date.to_datetime(jiff::civil::Time::midnight());
        let start_dt = midnight
            .checked_add(SignedDuration::from_mins(i64::from(self.start)))
            .ok()?;
        let length = SignedDuration::from_mins(i64::from(self.length));
        let end_dt = start_dt.checked_add(length).ok()?;
        let start = resolve(tz, start_dt, false)?;
        let end = resolve(tz, end_dt, true)?;
        if end > start {
            Some((start, end))
        } else {
            Some((start, start.checked_add(length).ok()?))
        }
    }
}

/// The windows of a machine in its zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub windows: Vec<Window>,
    pub tz: TimeZone,
}

impl Schedule {
    /// Every span starting on a day from `from` days before `now`'s local
    /// date to `to` days after it.
    fn spans(&self, now: Timestamp, from: i64, to: i64) -> Vec<(Timestamp, Timestamp)> {
        let today = self.tz.to_datetime(now).date();
        let mut out = Vec::new();
        for offset in -from..=to {
            let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else {
                continue;
            };
            out.extend(
                self.windows
                    .iter()
                    .filter_map(|w| w.span_on(&self.tz, date)),
            );
        }
        out
    }

    /// When a window is open at `now`, the instant the last open one
    /// closes.
    pub fn is_open(&self, now: Timestamp) -> Option<Timestamp> {
        // A window is at most a day and the repeated hour long: one that
        // began two local dates ago may still be open.
        self.spans(now, 2, 0)
            .into_iter()
            .filter(|(s, e)| *s <= now && now < *e)
            .map(|(_, e)| e)
            .max()
    }

    /// The first instant at or after `now` when a window is open; `None`
    /// without any window.
    pub fn next_open(&self, now: Timestamp) -> Option<Timestamp> {
        if self.is_open(now).is_some() {
            return Some(now);
        }
        self.spans(now, 2, 8)
            .into_iter()
            .map(|(s, _)| s)
            .filter(|s| *s > now)
            .min()
    }
}

/// The machine's zone: the root's /etc/localtime, a TZif file (its link
/// followed inside the root). UTC when there is none, as systemd does; an
/// unreadable or broken one is an error naming the file.
pub fn local_zone(root: &crate::paths::Root) -> anyhow::Result<TimeZone> {
    use std::io::Read;
    let inside = std::path::Path::new(LOCALTIME);
    let shown = root.host(inside);
    let f = match root.open_following_in(inside) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TimeZone::UTC),
        Err(e) => anyhow::bail!("{}: {e}", shown.display()),
    };
    let md = f
        .metadata()
        .map_err(|e| anyhow::anyhow!("{}: {e}", shown.display()))?;
    if !md.is_file() {
        anyhow::bail!("{}: not a regular file", shown.display());
    }
    let mut data = Vec::new();
    f.take(MAX_TZIF + 1)
        .read_to_end(&mut data)
        .map_err(|e| anyhow::anyhow!("{}: {e}", shown.display()))?;
    if data.len() as u64 > MAX_TZIF {
        anyhow::bail!(
            "{}: larger than {MAX_TZIF} bytes: not a TZif file",
            shown.display()
        );
    }
    TimeZone::tzif("localtime", &data).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a time zone file ({e}); set the zone with timedatectl set-timezone",
            shown.display()
        )
    })
}

#[cfg(test)]
mod tests;
