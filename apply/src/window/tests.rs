use super::*;
use jiff::civil::date;
use proptest::prelude::*;

/// Zones by their POSIX rules: no zoneinfo needed. Central Europe, the US
/// East, Lord Howe (a half-hour change), Chile-like (the jump at midnight),
/// and one without any change.
const ZONES: [&str; 5] = [
    "CET-1CEST,M3.5.0,M10.5.0/3",
    "EST5EDT,M3.2.0,M11.1.0",
    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
    "<-04>4<-03>,M9.1.6/24,M4.1.6/24",
    "UTC0",
];

fn zone(i: usize) -> TimeZone {
    TimeZone::posix(ZONES[i]).expect("a valid POSIX zone")
}

fn schedule(tz: TimeZone, w: &[&str]) -> Schedule {
    Schedule {
        windows: w
            .iter()
            .map(|s| s.parse().expect("a valid window"))
            .collect(),
        tz,
    }
}

fn at(tz: &TimeZone, dt: DateTime) -> Timestamp {
    tz.to_ambiguous_timestamp(dt)
        .compatible()
        .expect("in range")
}

#[test]
fn parses_days_ranges_lists_and_every_day() {
    let w: Window = "Sat,Sun 02:00-05:00".parse().unwrap();
    assert_eq!(w.days, [false, false, false, false, false, true, true]);
    assert_eq!((w.start, w.length), (120, 180));
    let w: Window = "fri-mon 22:00-02:30".parse().unwrap();
    assert_eq!(w.days, [true, false, false, false, true, true, true]);
    assert_eq!((w.start, w.length), (22 * 60, 4 * 60 + 30));
    let w: Window = "03:00-24:00".parse().unwrap();
    assert_eq!(w.days, [true; 7]);
    assert_eq!(w.length, 21 * 60);
    let w: Window = "Mon,Wed-Fri 00:00-00:01".parse().unwrap();
    assert_eq!(w.days, [true, false, true, true, true, false, false]);
}

#[test]
fn bad_windows_say_what_is_wrong() {
    for (s, says) in [
        ("Sat 02:00", "not a time range"),
        ("Fun 02:00-03:00", "not a day"),
        ("02:00-02:00", "no length"),
        ("25:00-26:00", "not a time of day"),
        ("2:0-3:00", "not a time of day"),
        ("24:00-01:00", "cannot start at 24:00"),
        ("Mon,,Tue 01:00-02:00", "not a day"),
    ] {
        let e = s.parse::<Window>().expect_err(s);
        assert!(e.contains(says), "{s}: {e}");
    }
    let long = format!("{} 01:00-02:00", "Mon,".repeat(20));
    assert!(long.parse::<Window>().unwrap_err().contains("at most"));
}

#[test]
fn crossing_midnight_belongs_to_the_start_day() {
    let tz = zone(4);
    let s = schedule(tz.clone(), &["Fri 22:00-02:00"]);
    // 2026-12-05 is a Saturday.
    let sat_1am = at(&tz, date(2026, 12, 5).at(1, 0, 0, 0));
    assert_eq!(
        s.is_open(sat_1am),
        Some(at(&tz, date(2026, 12, 5).at(2, 0, 0, 0)))
    );
    let sat_23 = at(&tz, date(2026, 12, 5).at(23, 0, 0, 0));
    assert_eq!(s.is_open(sat_23), None);
    assert_eq!(
        s.next_open(sat_23),
        Some(at(&tz, date(2026, 12, 11).at(22, 0, 0, 0)))
    );
}

#[test]
fn a_start_in_the_spring_jump_opens_right_after_it() {
    // Central Europe, 2026-03-29: 02:00 becomes 03:00.
    let tz = zone(0);
    let s = schedule(tz.clone(), &["02:30-02:45", "02:15-04:00"]);
    let jump = "2026-03-29T01:00:00Z".parse::<Timestamp>().unwrap();
    let spans: Vec<_> = s
        .windows
        .iter()
        .map(|w| w.span_on(&tz, date(2026, 3, 29)).unwrap())
        .collect();
    // Wholly inside the jump: from the jump, its fifteen minutes.
    assert_eq!(spans[0], (jump, jump + SignedDuration::from_mins(15)));
    // Its start in the jump: from the jump to 04:00 summer time.
    assert_eq!(spans[1], (jump, "2026-03-29T02:00:00Z".parse().unwrap()));
}

#[test]
fn the_repeated_autumn_hour_counts_once() {
    // Central Europe, 2026-10-25: 03:00 summer time becomes 02:00 again.
    let tz = zone(0);
    let w: Window = "02:00-02:30".parse().unwrap();
    let (s, e) = w.span_on(&tz, date(2026, 10, 25)).unwrap();
    // From the first 02:00 to the second 02:30: one window, 90 minutes.
    assert_eq!(s, "2026-10-25T00:00:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(e, "2026-10-25T01:30:00Z".parse::<Timestamp>().unwrap());
}

#[test]
fn reads_the_zone_from_the_roots_localtime_link() {
    let Ok(data) = std::fs::read("/usr/share/zoneinfo/Europe/Berlin") else {
        eprintln!("no zoneinfo on this machine: the TZif reading is not tested here");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let zi = dir.path().join("usr/share/zoneinfo/Europe");
    std::fs::create_dir_all(&zi).unwrap();
    std::fs::write(zi.join("Berlin"), data).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    // An absolute link, as on a real system: resolved inside the root.
    std::os::unix::fs::symlink(
        "/usr/share/zoneinfo/Europe/Berlin",
        dir.path().join("etc/localtime"),
    )
    .unwrap();
    let root = crate::paths::Root::new(dir.path());
    let tz = local_zone(&root).unwrap();
    let summer = "2026-07-01T00:00:00Z".parse::<Timestamp>().unwrap();
    assert_eq!(tz.to_offset(summer).seconds(), 2 * 3600);
    std::fs::write(
        dir.path().join("usr/share/zoneinfo/Europe/Berlin"),
        b"not a zone",
    )
    .unwrap();
    let e = local_zone(&root).unwrap_err().to_string();
    assert!(e.contains("not a time zone file"), "{e}");
}

#[test]
fn no_localtime_is_utc() {
    let dir = tempfile::tempdir().unwrap();
    let tz = local_zone(&crate::paths::Root::new(dir.path())).unwrap();
    assert_eq!(tz.to_offset(Timestamp::UNIX_EPOCH).seconds(), 0);
}

fn window_strategy() -> impl Strategy<Value = String> {
    (1u8..128, 0u32..24 * 60, 1u32..24 * 60).prop_map(|(days, start, len)| {
        let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        let d: Vec<_> = (0..7)
            .filter(|i| days & (1 << i) != 0)
            .map(|i| names[i])
            .collect();
        let end = (start + len) % (24 * 60);
        format!(
            "{} {:02}:{:02}-{:02}:{:02}",
            d.join(","),
            start / 60,
            start % 60,
            end / 60,
            end % 60
        )
    })
}

/// The days around the zone's changes in 2026, and some plain ones.
fn days_around_changes(tz: &TimeZone) -> Vec<Date> {
    let from = "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap();
    let mut out = vec![date(2026, 1, 14), date(2026, 6, 3)];
    for t in tz.following(from).take(2) {
        let d = tz.to_datetime(t.timestamp()).date();
        out.extend([d.yesterday().unwrap(), d, d.tomorrow().unwrap()]);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Never skipped: a listed day opens its window, no shorter than its
    /// length less the clock's jump, and next_open finds it.
    #[test]
    fn every_listed_day_opens_once(w in window_strategy(), z in 0usize..ZONES.len(), pick in 0usize..8) {
        let tz = zone(z);
        let window: Window = w.parse().unwrap();
        let days = days_around_changes(&tz);
        let d = days[pick % days.len()];
        let s = Schedule { windows: vec![window.clone()], tz: tz.clone() };
        match window.span_on(&tz, d) {
            None => prop_assert!(!window.days[weekday_index(d.weekday())]),
            Some((start, end)) => {
                prop_assert!(end > start);
                let len = end.duration_since(start).as_mins();
                prop_assert!(len >= i64::from(window.length) - 60, "{len} minutes");
                prop_assert!(len <= i64::from(window.length) + 60, "{len} minutes");
                // Open through its whole span, past midnight too.
                let mid = start + SignedDuration::from_secs(end.duration_since(start).as_secs() / 2);
                for t in [start, mid, end - SignedDuration::from_secs(1)] {
                    prop_assert!(s.is_open(t).is_some_and(|close| close >= end), "{t}");
                }
                let before = start - SignedDuration::from_secs(1);
                prop_assert!(s.next_open(before).is_some_and(|t| t <= start));
            }
        }
    }

    /// Never doubled: over three days around a change, a one-window
    /// schedule opens as many times as listed days start in them, and the
    /// windows of following days never overlap.
    #[test]
    fn a_window_opens_once_a_day(w in window_strategy(), z in 0usize..ZONES.len(), pick in 0usize..8) {
        let tz = zone(z);
        let window: Window = w.parse().unwrap();
        let days = days_around_changes(&tz);
        let d = days[pick % days.len()];
        let s = Schedule { windows: vec![window.clone()], tz: tz.clone() };
        let spans: Vec<_> = (0..4)
            .filter_map(|i| window.span_on(&tz, d.checked_add(jiff::Span::new().days(i)).unwrap()))
            .collect();
        for pair in spans.windows(2) {
            prop_assert!(pair[0].1 <= pair[1].0 || window.length > 22 * 60);
        }
        if window.length > 22 * 60 {
            return Ok(());
        }
        // Count the openings from d's local start through three days, by
        // the minute and at every span's own edges.
        let from = at(&tz, d.to_datetime(jiff::civil::Time::midnight()));
        let mut probes: Vec<Timestamp> = (0..3 * 24 * 60 + 1).map(|m| from + SignedDuration::from_mins(m)).collect();
        let until = *probes.last().unwrap();
        probes.extend(spans.iter().flat_map(|(a, b)| [*a, *b]).filter(|t| *t >= from && *t <= until));
        probes.sort();
        let mut openings = 0;
        let mut was = s.is_open(from).is_some();
        for t in &probes[1..] {
            let open = s.is_open(*t).is_some();
            if open && !was {
                openings += 1;
            }
            was = open;
        }
        let starts = spans.iter().filter(|(a, _)| *a > from && *a <= until).count();
        prop_assert_eq!(openings, starts);
    }

    /// next_open is the first open instant: open there, closed just before.
    #[test]
    fn next_open_is_the_first_open_instant(w in window_strategy(), z in 0usize..ZONES.len(), pick in 0usize..8, minute in 0i64..2 * 24 * 60) {
        let tz = zone(z);
        let days = days_around_changes(&tz);
        let d = days[pick % days.len()];
        let s = schedule(tz.clone(), &[&w]);
        let now = at(&tz, d.to_datetime(jiff::civil::Time::midnight())) + SignedDuration::from_mins(minute);
        let t = s.next_open(now).expect("a window within a week");
        prop_assert!(t >= now);
        prop_assert!(s.is_open(t).is_some());
        if t > now {
            prop_assert!(s.is_open(t - SignedDuration::from_secs(1)).is_none());
            prop_assert!(t.duration_since(now).as_hours() <= 8 * 24);
        }
    }
}
