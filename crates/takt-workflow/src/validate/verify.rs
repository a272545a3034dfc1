//! takt's `verify` section: how gates are found and how their results are read. Unknown keys are
//! errors.

use super::to_u32;
use crate::config::VerifyConfig;
use crate::reader::{Report, Section};

/// Most re-runs of a failing gate: each one costs a full gate run.
const MAX_FLAKY_RERUNS: i128 = 5;

/// 16 TiB: beyond any disk, and far from overflowing a byte count.
const MAX_WARM_CACHE_MB: i128 = 1 << 24;

pub(super) fn verify(section: &Section<'_>, report: &mut Report<'_>) -> VerifyConfig {
    let defaults = VerifyConfig::default();
    let gates_auto = report.boolean(section, "gates_auto", defaults.gates_auto);
    let flaky_reruns = report
        .integer(
            section,
            "flaky_reruns",
            0..=MAX_FLAKY_RERUNS,
            "an integer from 0 to 5",
            "write a number such as `flaky_reruns: 1` (0 turns flaky-test detection off)",
        )
        .map_or(defaults.flaky_reruns, to_u32);
    let keep_going = report.boolean(section, "keep_going", defaults.keep_going);
    let base_tests = report.boolean(section, "base_tests", defaults.base_tests);
    let baseline = report.boolean(section, "baseline", defaults.baseline);
    let warm_cache = report.boolean(section, "warm_cache", defaults.warm_cache);
    let warm_cache_max_mb = report
        .integer(
            section,
            "warm_cache_max_mb",
            1..=MAX_WARM_CACHE_MB,
            "a number of MiB from 1 to 16777216",
            "write a size in MiB such as `warm_cache_max_mb: 20480` (20 GiB)",
        )
        .map_or(defaults.warm_cache_max_mb, |mb| {
            u64::try_from(mb).unwrap_or(defaults.warm_cache_max_mb)
        });
    section.check_unknown(report);
    VerifyConfig {
        gates_auto,
        flaky_reruns,
        keep_going,
        base_tests,
        baseline,
        warm_cache,
        warm_cache_max_mb,
    }
}
