//! Operating statistics the journal can answer exactly: per-model usage, model-call latency,
//! human interventions and sandbox violations. Folded in by [`crate::apply`] like every other
//! part of the state, so they survive restarts and replay the same way every time.

use std::collections::BTreeMap;

use takt_protocol::{Millis, ModelCallReport};

/// Upper bounds (inclusive, milliseconds) of the model-call latency buckets.
pub const MODEL_LATENCY_BOUNDS_MS: [u64; 10] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000,
];

/// Upper bounds (inclusive, seconds) of the buckets for durations people feel: the gap
/// between human interventions and a task's cycle time.
pub const HUMAN_SCALE_BOUNDS_S: [u64; 10] = [
    60,
    300,
    900,
    1_800,
    3_600,
    4 * 3_600,
    12 * 3_600,
    86_400,
    3 * 86_400,
    7 * 86_400,
];

/// A fixed-bucket histogram of non-negative integer observations (Prometheus' shape: the
/// exposition makes the counts cumulative).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket: `counts[i]` lie in `(bounds[i-1], bounds[i]]`; the last slot
    /// holds those above every bound.
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: u64,
}

impl Histogram {
    pub fn observe(&mut self, bounds: &[u64], value: u64) {
        if self.counts.len() != bounds.len() + 1 {
            self.counts = vec![0; bounds.len() + 1];
        }
        let slot = bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(bounds.len());
        self.counts[slot] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// `(upper bound, observations at or below it)` per bound, then `(None, count)` for +Inf.
    pub fn cumulative(&self, bounds: &[u64]) -> Vec<(Option<u64>, u64)> {
        let mut running = 0;
        let mut out: Vec<(Option<u64>, u64)> = bounds
            .iter()
            .enumerate()
            .map(|(index, bound)| {
                running += self.counts.get(index).copied().unwrap_or(0);
                (Some(*bound), running)
            })
            .collect();
        out.push((None, self.count));
        out
    }
}

/// One model's metered usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelUsage {
    pub calls: u64,
    pub refused: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

/// What the factory did and how often people had to step in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Usage by the model the call asked for (`unknown` when the request named none).
    pub by_model: BTreeMap<String, ModelUsage>,
    /// Latency of answered model calls through the gateway (refused ones never reach a
    /// provider and are left out).
    pub model_latency_ms: Histogram,
    /// Approvals, rejections, answers, operator retries and cancels.
    pub interventions: u64,
    pub last_intervention_at_ms: Option<Millis>,
    /// Seconds between one intervention and the next.
    pub intervention_gaps_s: Histogram,
    /// Containment reports (a limit hit, a denied connection, ...) from sandboxed agents.
    pub sandbox_violations: u64,
}

impl Stats {
    pub(crate) fn model_call(&mut self, call: &ModelCallReport) {
        let model = call.model.clone().unwrap_or_else(|| "unknown".to_owned());
        let usage = self.by_model.entry(model).or_default();
        usage.calls += 1;
        if call.refused.is_some() {
            usage.refused += 1;
            return;
        }
        usage.input_tokens += call.input_tokens;
        usage.output_tokens += call.output_tokens;
        usage.cost_micros += call.cost_micros.unwrap_or(0);
        self.model_latency_ms
            .observe(&MODEL_LATENCY_BOUNDS_MS, call.latency_ms);
    }

    pub(crate) fn intervention(&mut self, at: Millis) {
        if let Some(previous) = self.last_intervention_at_ms {
            let gap_s = u64::try_from((at - previous).max(0) / 1000).unwrap_or(0);
            self.intervention_gaps_s
                .observe(&HUMAN_SCALE_BOUNDS_S, gap_s);
        }
        self.interventions += 1;
        self.last_intervention_at_ms = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        let bounds = [10, 100];
        let mut histogram = Histogram::default();
        for value in [0, 10, 11, 100, 101, 5_000] {
            histogram.observe(&bounds, value);
        }
        assert_eq!(histogram.counts, vec![2, 2, 2]);
        assert_eq!(histogram.count, 6);
        assert_eq!(histogram.sum, 5_222);
        assert_eq!(
            histogram.cumulative(&bounds),
            vec![(Some(10), 2), (Some(100), 4), (None, 6)]
        );
    }

    #[test]
    fn an_empty_histogram_is_all_zero_buckets() {
        assert_eq!(
            Histogram::default().cumulative(&[1, 2]),
            vec![(Some(1), 0), (Some(2), 0), (None, 0)]
        );
    }

    #[test]
    fn the_first_intervention_has_no_gap_and_later_ones_measure_from_the_previous() {
        let mut stats = Stats::default();
        stats.intervention(1_000);
        stats.intervention(121_000);
        stats.intervention(121_500);
        assert_eq!(stats.interventions, 3);
        assert_eq!(stats.intervention_gaps_s.count, 2);
        assert_eq!(stats.intervention_gaps_s.sum, 120);
        assert_eq!(stats.last_intervention_at_ms, Some(121_500));
    }
}
