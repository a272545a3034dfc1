//! Token throughput from successive readings of a cumulative token counter.
//!
//! The dashboard only ever sees totals (`totals.metered.total_tokens`), so throughput is the
//! counter's growth over time. Two views of it:
//!
//! - the headline rate: tokens per second over the last [`TPS_WINDOW_MS`], recomputed at most
//!   once per [`TPS_UPDATE_MS`] so the number stays readable while the screen redraws;
//! - the history for the sparkline: the last [`HISTORY_MS`] cut into [`HISTORY_COLUMNS`]
//!   buckets aligned to the epoch, so a column keeps its value as time moves on. The growth
//!   between two readings is spread over the time between them, and each bucket's rate is its
//!   tokens over the time readings covered in it: a bucket that has just begun, or one the
//!   dashboard saw only part of, shows the rate it saw rather than a diluted one.
//!
//! A counter that goes down (the daemon's journal was reset, or the dashboard switched source)
//! starts a new baseline instead of producing a negative rate.

use std::collections::VecDeque;

use takt_protocol::Millis;

/// The rolling window of the headline rate.
pub const TPS_WINDOW_MS: Millis = 5_000;
/// The headline rate changes at most this often.
pub const TPS_UPDATE_MS: Millis = 1_000;
/// How far back the sparkline reaches.
pub const HISTORY_MS: Millis = 10 * 60 * 1_000;
/// Sparkline columns.
pub const HISTORY_COLUMNS: usize = 24;
/// The span of one sparkline column (25 s).
pub const BUCKET_MS: Millis = HISTORY_MS / HISTORY_COLUMNS as Millis;

/// The growth seen in one sparkline column.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    /// `at_ms / BUCKET_MS`.
    index: i64,
    tokens: f64,
    /// How much of the bucket lies between readings; the rate's denominator.
    covered_ms: i64,
}

/// One reading of the cumulative counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    at_ms: Millis,
    total_tokens: u64,
}

/// Tracks the token counter and derives the rate and its history.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// Readings inside the window, plus the newest one before it (the baseline), oldest first.
    samples: VecDeque<Sample>,
    /// The last ten minutes' buckets that readings covered, oldest first.
    buckets: VecDeque<Bucket>,
    /// The headline rate and when it was computed.
    tps: f64,
    tps_computed_at_ms: Option<Millis>,
}

impl Throughput {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one reading of the cumulative counter taken at `now_ms`. Readings must come in
    /// time order; an older one than the last is ignored.
    pub fn record(&mut self, now_ms: Millis, total_tokens: u64) {
        let sample = Sample {
            at_ms: now_ms,
            total_tokens,
        };
        match self.samples.back().copied() {
            Some(last) if now_ms < last.at_ms => return,
            Some(last) if total_tokens < last.total_tokens => {
                // A reset counter: the tokens before it say nothing about the rate after it.
                self.samples.clear();
            }
            Some(last) => self.spread(last.at_ms, now_ms, total_tokens - last.total_tokens),
            None => {}
        }
        self.samples.push_back(sample);
        self.forget_before(now_ms);
        let due = self
            .tps_computed_at_ms
            .is_none_or(|at| now_ms - at >= TPS_UPDATE_MS);
        if due {
            self.tps = self.window_rate();
            self.tps_computed_at_ms = Some(now_ms);
        }
    }

    /// Tokens per second over the last [`TPS_WINDOW_MS`], as of the latest recomputation.
    pub fn tps(&self) -> f64 {
        self.tps
    }

    /// Tokens per second in each of the [`HISTORY_COLUMNS`] buckets of the ten minutes up to
    /// `now_ms`, oldest first; the last column is the bucket `now_ms` falls in.
    pub fn history(&self, now_ms: Millis) -> [u64; HISTORY_COLUMNS] {
        let mut columns = [0; HISTORY_COLUMNS];
        let current = now_ms.div_euclid(BUCKET_MS);
        for bucket in &self.buckets {
            let age = current - bucket.index;
            if (0..HISTORY_COLUMNS as i64).contains(&age) && bucket.covered_ms > 0 {
                let column = HISTORY_COLUMNS - 1 - age as usize;
                columns[column] =
                    (bucket.tokens * 1_000.0 / bucket.covered_ms as f64).round() as u64;
            }
        }
        columns
    }

    /// Spreads `tokens` evenly over `[from_ms, to_ms)` across the buckets it touches.
    fn spread(&mut self, from_ms: Millis, to_ms: Millis, tokens: u64) {
        let span_ms = to_ms - from_ms;
        if span_ms <= 0 {
            // Two readings at one instant: the growth has no duration to be a rate over.
            return;
        }
        // Only the last ten minutes can be drawn; a long gap is cut to them (its share of the
        // growth with it) so the loop stays short.
        let mut start = from_ms.max(to_ms - HISTORY_MS);
        while start < to_ms {
            let index = start.div_euclid(BUCKET_MS);
            let end = ((index + 1) * BUCKET_MS).min(to_ms);
            let share = tokens as f64 * (end - start) as f64 / span_ms as f64;
            match self.buckets.back_mut() {
                Some(bucket) if bucket.index == index => {
                    bucket.tokens += share;
                    bucket.covered_ms += end - start;
                }
                _ => self.buckets.push_back(Bucket {
                    index,
                    tokens: share,
                    covered_ms: end - start,
                }),
            }
            start = end;
        }
    }

    fn forget_before(&mut self, now_ms: Millis) {
        let window_start = now_ms - TPS_WINDOW_MS;
        // Keep one reading at or before the window's start as the baseline, so a window with a
        // single fresh reading still spans the whole five seconds.
        while self
            .samples
            .get(1)
            .is_some_and(|second| second.at_ms <= window_start)
        {
            self.samples.pop_front();
        }
        let oldest_bucket = now_ms.div_euclid(BUCKET_MS) - HISTORY_COLUMNS as i64 + 1;
        while self
            .buckets
            .front()
            .is_some_and(|bucket| bucket.index < oldest_bucket)
        {
            self.buckets.pop_front();
        }
    }

    /// The counter's growth across the window divided by the time it spans.
    fn window_rate(&self) -> f64 {
        let (Some(&first), Some(&last)) = (self.samples.front(), self.samples.back()) else {
            return 0.0;
        };
        let window_start = last.at_ms - TPS_WINDOW_MS;
        // A baseline older than the window stands for the counter's value at the window's
        // start, interpolated towards the next reading, so a stale baseline neither stretches
        // the window nor dilutes a burst inside it.
        let (start_ms, start_tokens) = if first.at_ms >= window_start {
            (first.at_ms, first.total_tokens as f64)
        } else {
            let next = self.samples.get(1).copied().unwrap_or(last);
            let gap_ms = (next.at_ms - first.at_ms) as f64;
            let grown = (next.total_tokens - first.total_tokens) as f64;
            let fraction = (window_start - first.at_ms) as f64 / gap_ms;
            (window_start, first.total_tokens as f64 + grown * fraction)
        };
        let span_ms = last.at_ms - start_ms;
        if span_ms <= 0 {
            return 0.0;
        }
        (last.total_tokens as f64 - start_tokens) * 1_000.0 / span_ms as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Millis = 1_800_000_000_000;

    #[test]
    fn no_readings_no_rate() {
        let throughput = Throughput::new();
        assert_eq!(throughput.tps(), 0.0);
        assert_eq!(throughput.history(T0), [0; HISTORY_COLUMNS]);
    }

    #[test]
    fn a_single_reading_has_no_rate() {
        let mut throughput = Throughput::new();
        throughput.record(T0, 5_000);
        assert_eq!(throughput.tps(), 0.0);
    }

    #[test]
    fn rate_over_the_five_second_window() {
        let mut throughput = Throughput::new();
        // 100 tokens/s for 10 s, read once a second.
        for second in 0..=10 {
            throughput.record(T0 + second * 1_000, (second * 100) as u64);
        }
        assert_eq!(throughput.tps(), 100.0);
        // Then the counter stops: the window drains over five seconds.
        for second in 11..=13 {
            throughput.record(T0 + second * 1_000, 1_000);
        }
        // At 13 s the window is 8..13 s: 200 tokens in 5 s.
        assert_eq!(throughput.tps(), 40.0);
        for second in 14..=16 {
            throughput.record(T0 + second * 1_000, 1_000);
        }
        assert_eq!(throughput.tps(), 0.0);
    }

    #[test]
    fn old_readings_outside_the_window_do_not_count() {
        let mut throughput = Throughput::new();
        throughput.record(T0, 0);
        // A burst long ago, then nothing until now: the rate is the window's, not the average.
        throughput.record(T0 + 1_000, 10_000);
        throughput.record(T0 + 60_000, 10_000);
        throughput.record(T0 + 61_000, 10_500);
        // The window 56..61 s starts after the 1 s reading: 500 tokens in it.
        assert_eq!(throughput.tps(), 100.0);
    }

    #[test]
    fn rate_is_recomputed_at_most_once_a_second() {
        let mut throughput = Throughput::new();
        throughput.record(T0, 0);
        throughput.record(T0 + 1_000, 1_000);
        assert_eq!(throughput.tps(), 1_000.0);
        // Readings 100 ms apart change nothing on screen until a second has passed.
        throughput.record(T0 + 1_100, 1_000);
        throughput.record(T0 + 1_900, 1_000);
        assert_eq!(throughput.tps(), 1_000.0);
        throughput.record(T0 + 2_000, 1_000);
        assert_eq!(throughput.tps(), 500.0);
    }

    #[test]
    fn a_counter_that_goes_down_starts_over() {
        let mut throughput = Throughput::new();
        throughput.record(T0, 1_000_000);
        throughput.record(T0 + 1_000, 1_000_100);
        throughput.record(T0 + 2_000, 10);
        assert_eq!(throughput.tps(), 0.0);
        throughput.record(T0 + 3_000, 60);
        assert_eq!(throughput.tps(), 50.0);
    }

    #[test]
    fn out_of_order_readings_are_ignored() {
        let mut throughput = Throughput::new();
        throughput.record(T0 + 2_000, 200);
        throughput.record(T0, 0);
        throughput.record(T0 + 3_000, 300);
        assert_eq!(throughput.tps(), 100.0);
    }

    /// A moment on a bucket boundary, so the columns are easy to name.
    fn bucket_start() -> Millis {
        T0 - T0.rem_euclid(BUCKET_MS)
    }

    #[test]
    fn history_buckets_twenty_five_seconds_per_column() {
        let start = bucket_start();
        let mut throughput = Throughput::new();
        let mut total = 0;
        throughput.record(start, total);
        // 50 tokens/s through the first bucket, 10 tokens/s through the second.
        for second in 1..=25 {
            total += 50;
            throughput.record(start + second * 1_000, total);
        }
        for second in 26..=50 {
            total += 10;
            throughput.record(start + second * 1_000, total);
        }
        let history = throughput.history(start + 50 * 1_000);
        // The third bucket has only just begun: nothing seen in it yet.
        assert_eq!(history[HISTORY_COLUMNS - 1], 0);
        assert_eq!(history[HISTORY_COLUMNS - 2], 10);
        assert_eq!(history[HISTORY_COLUMNS - 3], 50);
        assert!(history[..HISTORY_COLUMNS - 3].iter().all(|&tps| tps == 0));
    }

    #[test]
    fn a_bucket_in_progress_shows_the_rate_seen_so_far() {
        let start = bucket_start();
        let mut throughput = Throughput::new();
        throughput.record(start, 0);
        throughput.record(start + 5_000, 1_000);
        assert_eq!(throughput.history(start + 5_000)[HISTORY_COLUMNS - 1], 200);
    }

    #[test]
    fn growth_between_distant_readings_is_spread_over_the_gap() {
        let start = bucket_start();
        let mut throughput = Throughput::new();
        throughput.record(start, 0);
        // One reading 50 s later: 100 tokens/s across two whole buckets.
        throughput.record(start + 50_000, 5_000);
        let history = throughput.history(start + 50_000);
        assert_eq!(history[HISTORY_COLUMNS - 3..], [100, 100, 0]);
    }

    #[test]
    fn history_forgets_after_ten_minutes() {
        let start = bucket_start();
        let mut throughput = Throughput::new();
        throughput.record(start, 0);
        throughput.record(start + 1_000, 100);
        assert_eq!(throughput.history(start + 1_000)[HISTORY_COLUMNS - 1], 100);
        // 23 buckets later the burst is the oldest column; one more and it is gone.
        let later = start + 23 * BUCKET_MS;
        assert_eq!(throughput.history(later)[0], 100);
        assert_eq!(throughput.history(later + BUCKET_MS), [0; HISTORY_COLUMNS]);
        // A reading after a long silence covers only the last ten minutes, and the old bucket
        // leaves memory.
        throughput.record(later + BUCKET_MS, 100);
        assert_eq!(throughput.buckets.len(), HISTORY_COLUMNS - 1);
        assert_eq!(
            throughput.buckets.front().map(|bucket| bucket.index),
            Some(start / BUCKET_MS + 1)
        );
    }
}
