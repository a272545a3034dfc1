//! Short, fixed-format renderings of numbers, money, durations and times for dashboard cells.
//!
//! Everything here is a pure function of its arguments (no clock, no locale), so snapshots are
//! stable.

use takt_protocol::Millis;

/// `1234567` → `1,234,567`.
pub fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Token counts in at most six characters: `950`, `12.3k`, `4.56M`, `1.20G`.
pub fn compact(value: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")];
    for (scale, unit) in UNITS {
        if value >= scale {
            let scaled = value as f64 / scale as f64;
            // Three significant digits, the width of the plain numbers below 1000.
            return if scaled >= 100.0 {
                format!("{scaled:.0}{unit}")
            } else if scaled >= 10.0 {
                format!("{scaled:.1}{unit}")
            } else {
                format!("{scaled:.2}{unit}")
            };
        }
    }
    value.to_string()
}

/// Micro-dollars to dollars and cents, rounded to the nearest cent: `$12.35`. A non-zero amount
/// under half a cent shows as `<$0.01`, so a small spend is never shown as nothing.
pub fn usd(micros: u64) -> String {
    let cents = (micros + 5_000) / 10_000;
    if cents == 0 && micros > 0 {
        return "<$0.01".into();
    }
    format!("${}.{:02}", count(cents / 100), cents % 100)
}

/// A duration in whole seconds, with the two largest units: `42s`, `3m 05s`, `1h 02m`,
/// `2d 03h`. Negative durations show as `0s`.
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d {hours:02}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// The time from `now_ms` until `at_ms` in whole seconds, rounded up so a countdown reads
/// `1s` until the moment arrives; 0 once it has.
pub fn seconds_until(at_ms: Millis, now_ms: Millis) -> i64 {
    ((at_ms - now_ms).max(0) + 999) / 1_000
}

/// The time from `at_ms` to `now_ms` in whole seconds (0 for the future).
pub fn seconds_since(at_ms: Millis, now_ms: Millis) -> i64 {
    (now_ms - at_ms).max(0) / 1_000
}

/// The UTC time of day of `at_ms`: `12:00:03 UTC`. The dashboard shows recent moments, so the
/// date is left out.
pub fn utc_clock(at_ms: Millis) -> String {
    let seconds_of_day = at_ms.div_euclid(1_000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds_of_day / 3_600,
        seconds_of_day % 3_600 / 60,
        seconds_of_day % 60
    )
}

/// Tokens per second, whole: `1,234`.
pub fn tps(rate: f64) -> String {
    if !rate.is_finite() || rate <= 0.0 {
        return "0".into();
    }
    count(rate.round() as u64)
}

/// Keeps the first `max` characters of `text`, ending in `…` when it cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A long opaque id as its first four and last six characters: `0198…3fa2c1`.
pub fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 12 {
        return id.to_owned();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn compact_counts_keep_three_digits() {
        assert_eq!(compact(950), "950");
        assert_eq!(compact(1_000), "1.00k");
        assert_eq!(compact(12_345), "12.3k");
        assert_eq!(compact(456_789), "457k");
        assert_eq!(compact(4_560_000), "4.56M");
        assert_eq!(compact(1_200_000_000), "1.20G");
    }

    #[test]
    fn dollars_round_to_the_cent() {
        assert_eq!(usd(0), "$0.00");
        assert_eq!(usd(1), "<$0.01");
        assert_eq!(usd(12_345_678), "$12.35");
        assert_eq!(usd(1_234_000_000), "$1,234.00");
    }

    #[test]
    fn durations_use_two_units() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(185), "3m 05s");
        assert_eq!(duration(3_720), "1h 02m");
        assert_eq!(duration(2 * 86_400 + 3 * 3_600), "2d 03h");
    }

    #[test]
    fn countdowns_round_up() {
        assert_eq!(seconds_until(10_000, 10_000), 0);
        assert_eq!(seconds_until(10_001, 10_000), 1);
        assert_eq!(seconds_until(12_000, 10_000), 2);
        assert_eq!(seconds_until(9_000, 10_000), 0);
        assert_eq!(seconds_since(9_000, 10_999), 1);
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(utc_clock(0), "00:00:00 UTC");
        assert_eq!(
            utc_clock(86_400_000 + 12 * 3_600_000 + 3_000),
            "12:00:03 UTC"
        );
    }

    #[test]
    fn clip_and_short_ids() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("a longer text", 6), "a lon…");
        assert_eq!(short_id("thread-1"), "thread-1");
        assert_eq!(
            short_id("0198c2d4-7b1e-7f00-9a3f-8c1d2e3fa2c1"),
            "0198…3fa2c1"
        );
    }
}
