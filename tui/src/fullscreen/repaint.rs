//! How often a console's screen is painted whole: others (a driver's
//! message past the quieted console level, a stray getty) may have written
//! across it, and only a whole repaint covers that, since ratatui redraws
//! just the cells it changed. As often as the console's byte budget allows
//! with half of it left to the progress.

use std::time::Duration;

/// Never more often than this.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Never less often: a slow line still heals within minutes.
pub const MAX_INTERVAL: Duration = Duration::from_secs(120);
/// The share of the byte budget whole repaints may take.
const SHARE: f64 = 0.5;

/// The time between whole repaints of a screen whose last one cost
/// `whole_bytes`, on a console allowed `budget` bytes a second.
pub fn interval(whole_bytes: u64, budget: f64) -> Duration {
    let secs = whole_bytes as f64 / (budget.max(1.0) * SHARE);
    Duration::from_secs_f64(secs.min(MAX_INTERVAL.as_secs_f64())).clamp(MIN_INTERVAL, MAX_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vt_repaints_within_seconds_a_slow_line_within_its_budget() {
        // 80x25 on a VT (38400 baud: 1920 B/s), a frame of ~3 KiB.
        assert_eq!(interval(3000, 1920.0), MIN_INTERVAL);
        // 240x67 on the same budget: ~20 KiB take 21 s of half of it.
        let wide = interval(20_000, 1920.0);
        assert!(
            wide > Duration::from_secs(20) && wide < Duration::from_secs(22),
            "{wide:?}"
        );
        // 9600 baud (480 B/s): 3 KiB every 12.5 s, a quarter of the line.
        assert_eq!(interval(3000, 480.0), Duration::from_secs_f64(12.5));
        assert_eq!(interval(u64::MAX, 0.0), MAX_INTERVAL);
    }
}
