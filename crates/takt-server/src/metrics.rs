//! `GET /metrics`: Prometheus text computed from the current snapshot.
//!
//! Everything here is derived from the orchestrator's state, which the daemon rebuilds from the
//! journal on start: counters therefore survive restarts instead of resetting, and nothing is
//! reported that the state cannot tell. Where the state keeps a summary rather than every
//! event, the series says so in its HELP text (and docs/api.md explains the approximation).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use takt_core::stats::{HUMAN_SCALE_BOUNDS_S, Histogram, MODEL_LATENCY_BOUNDS_MS, Stats};
use takt_core::{Task, VerifyOutcome};
use takt_protocol::{RunOutcome, TaskState};

use crate::app::App;
use crate::error::{ApiError, ErrorEnvelope};
use crate::port::Snapshot;

/// Prometheus' text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "Prometheus text format",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 503, description = "`snapshot_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn metrics(State(app): State<App>) -> Result<Response, ApiError> {
    let snapshot = app.snapshot()?;
    let mut response = render(&snapshot).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

/// Every run outcome, for labels. The match makes a new variant a compile error here.
pub const RUN_OUTCOMES: [RunOutcome; 9] = {
    const fn covered(outcome: RunOutcome) {
        match outcome {
            RunOutcome::Succeeded
            | RunOutcome::Failed
            | RunOutcome::TimedOut
            | RunOutcome::Stalled
            | RunOutcome::Cancelled
            | RunOutcome::BudgetExhausted
            | RunOutcome::InputRequired
            | RunOutcome::SandboxViolation
            | RunOutcome::Interrupted => {}
        }
    }
    covered(RunOutcome::Succeeded);
    [
        RunOutcome::Succeeded,
        RunOutcome::Failed,
        RunOutcome::TimedOut,
        RunOutcome::Stalled,
        RunOutcome::Cancelled,
        RunOutcome::BudgetExhausted,
        RunOutcome::InputRequired,
        RunOutcome::SandboxViolation,
        RunOutcome::Interrupted,
    ]
};

/// Every verification outcome, for labels. The match makes a new variant a compile error here.
pub const VERIFY_OUTCOMES: [VerifyOutcome; 6] = {
    const fn covered(outcome: VerifyOutcome) {
        match outcome {
            VerifyOutcome::Passed
            | VerifyOutcome::GatesFailed
            | VerifyOutcome::JudgeVetoed
            | VerifyOutcome::ReviewersBlocked
            | VerifyOutcome::VerdictMismatch
            | VerifyOutcome::Error => {}
        }
    }
    covered(VerifyOutcome::Passed);
    [
        VerifyOutcome::Passed,
        VerifyOutcome::GatesFailed,
        VerifyOutcome::JudgeVetoed,
        VerifyOutcome::ReviewersBlocked,
        VerifyOutcome::VerdictMismatch,
        VerifyOutcome::Error,
    ]
};

/// The exposition text for one snapshot.
pub fn render(snapshot: &Snapshot) -> String {
    let state = &snapshot.state;
    let tasks: Vec<&Task> = state.tasks.values().collect();
    let count = |wanted: TaskState| tasks.iter().filter(|task| task.state == wanted).count();
    let mut out = Exposition::default();

    out.family("takt_tasks", "gauge", "Tasks by state.");
    for task_state in TaskState::ALL {
        out.sample(
            "takt_tasks",
            &[("state", task_state.as_str())],
            count(task_state),
        );
    }
    out.single(
        "takt_queue_depth",
        "gauge",
        "Tasks waiting for an agent slot: queued plus retry_wait.",
        count(TaskState::Queued) + count(TaskState::RetryWait),
    );
    out.single(
        "takt_agents_running",
        "gauge",
        "Live agent runs (including runs blocked on a question).",
        state.running_count(),
    );
    out.single(
        "takt_agents_max",
        "gauge",
        "agent.max_concurrent_agents.",
        snapshot.max_concurrent_agents,
    );

    out.single(
        "takt_runs_started_total",
        "counter",
        "Agent runs dispatched.",
        state.totals.runs_started,
    );
    out.single(
        "takt_runs_finished_total",
        "counter",
        "Agent runs that ended.",
        state.totals.runs_finished,
    );
    out.family(
        "takt_run_outcomes_total",
        "counter",
        "Finished runs by outcome, from the tasks' run history.",
    );
    for outcome in RUN_OUTCOMES {
        let runs = tasks
            .iter()
            .flat_map(|task| &task.history)
            .filter(|run| run.outcome == outcome)
            .count();
        out.sample(
            "takt_run_outcomes_total",
            &[("outcome", outcome.as_str())],
            runs,
        );
    }
    out.single_float(
        "takt_run_seconds_total",
        "counter",
        "Wall-clock seconds of ended runs.",
        state.totals.run_ms as f64 / 1000.0,
    );

    out.family(
        "takt_tokens_total",
        "counter",
        "Tokens the model endpoint metered from the providers' responses.",
    );
    out.sample(
        "takt_tokens_total",
        &[("kind", "input")],
        state.totals.metered.input_tokens,
    );
    out.sample(
        "takt_tokens_total",
        &[("kind", "output")],
        state.totals.metered.output_tokens,
    );
    out.single(
        "takt_model_calls_total",
        "counter",
        "Model calls through the model endpoint, refused ones included.",
        state.totals.model_calls,
    );
    out.single(
        "takt_model_calls_refused_total",
        "counter",
        "Model calls the endpoint refused (bad token, budget, wrong API).",
        state.totals.model_calls_refused,
    );
    let spend_micros: u64 = state
        .spend_by_month
        .values()
        .map(|month| month.micros)
        .sum();
    out.single(
        "takt_spend_micros_total",
        "counter",
        "Metered model spend in micro-dollars (unpriced models add 0).",
        spend_micros,
    );

    verification_series(&mut out, &tasks);
    merged_ratio(&mut out, &tasks);
    model_series(&mut out, &state.stats);
    human_series(&mut out, &state.stats, &tasks);
    out.single(
        "takt_sandbox_violations_total",
        "counter",
        "Containment reports from sandboxed agents (a limit hit, a denied connection, ...).",
        state.stats.sandbox_violations,
    );
    out.text
}

/// Usage and cost by model, and the gateway's latency.
fn model_series(out: &mut Exposition, stats: &Stats) {
    out.family(
        "takt_model_tokens_total",
        "counter",
        "Metered tokens by the model the call asked for.",
    );
    for (model, usage) in &stats.by_model {
        out.sample(
            "takt_model_tokens_total",
            &[("model", model), ("kind", "input")],
            usage.input_tokens,
        );
        out.sample(
            "takt_model_tokens_total",
            &[("model", model), ("kind", "output")],
            usage.output_tokens,
        );
    }
    out.family(
        "takt_model_cost_micros_total",
        "counter",
        "Metered spend in micro-dollars by model (unpriced models add 0).",
    );
    for (model, usage) in &stats.by_model {
        out.sample(
            "takt_model_cost_micros_total",
            &[("model", model)],
            usage.cost_micros,
        );
    }
    out.family(
        "takt_model_calls_by_model_total",
        "counter",
        "Model calls by model and whether the endpoint answered or refused them.",
    );
    for (model, usage) in &stats.by_model {
        out.sample(
            "takt_model_calls_by_model_total",
            &[("model", model), ("result", "answered")],
            usage.calls - usage.refused,
        );
        out.sample(
            "takt_model_calls_by_model_total",
            &[("model", model), ("result", "refused")],
            usage.refused,
        );
    }
    out.histogram(
        "takt_gateway_latency_seconds",
        "Latency of answered model calls through the model endpoint, request to last byte.",
        &stats.model_latency_ms,
        &MODEL_LATENCY_BOUNDS_MS,
        1000.0,
    );
}

/// How often people step in, and how long a change takes from task to merge.
fn human_series(out: &mut Exposition, stats: &Stats, tasks: &[&Task]) {
    out.single(
        "takt_interventions_total",
        "counter",
        "Human interventions: approvals, rejections, answers, operator retries and cancels.",
        stats.interventions,
    );
    out.single_float(
        "takt_last_intervention_timestamp_seconds",
        "gauge",
        "When a person last intervened, in Unix seconds (NaN before any).",
        stats
            .last_intervention_at_ms
            .map_or(f64::NAN, |at| at as f64 / 1000.0),
    );
    out.histogram(
        "takt_intervention_gap_seconds",
        "Time between one human intervention and the next.",
        &stats.intervention_gaps_s,
        &HUMAN_SCALE_BOUNDS_S,
        1.0,
    );
    let mut cycle = Histogram::default();
    for task in tasks {
        if let Some(merged) = task.merged_at_ms {
            let seconds = u64::try_from((merged - task.created_at_ms).max(0) / 1000).unwrap_or(0);
            cycle.observe(&HUMAN_SCALE_BOUNDS_S, seconds);
        }
    }
    out.histogram(
        "takt_cycle_time_seconds",
        "Merged tasks' time from creation to merge.",
        &cycle,
        &HUMAN_SCALE_BOUNDS_S,
        1.0,
    );
}

/// The verification series. The state keeps per task the rounds started, the rounds that sent
/// the change back (red gates or a reviewer's block, counted together), the judge's vetoes,
/// and only the latest outcome; the series are what those can tell exactly.
fn verification_series(out: &mut Exposition, tasks: &[&Task]) {
    let started: u64 = tasks.iter().map(|task| u64::from(task.verify_rounds)).sum();
    let sent_back: u64 = tasks.iter().map(|task| u64::from(task.failed_rounds)).sum();
    let vetoed: u64 = tasks.iter().map(|task| u64::from(task.judge_vetoes)).sum();
    out.family(
        "takt_verifications_total",
        "counter",
        "Verifications started, by what they came to: failed (a required gate red or a \
         reviewer blocked), judge_vetoed, or other (passed, could not finish, or still running).",
    );
    for (outcome, rounds) in [
        ("failed", sent_back),
        ("judge_vetoed", vetoed),
        ("other", started.saturating_sub(sent_back + vetoed)),
    ] {
        out.sample("takt_verifications_total", &[("outcome", outcome)], rounds);
    }
    out.family(
        "takt_tasks_by_verify_outcome",
        "gauge",
        "Tasks by the outcome of their latest verification.",
    );
    for outcome in VERIFY_OUTCOMES {
        let latest = tasks
            .iter()
            .filter(|task| task.verify_outcome == Some(outcome))
            .count();
        out.sample(
            "takt_tasks_by_verify_outcome",
            &[("outcome", outcome.as_str())],
            latest,
        );
    }

    let blocked: u64 = tasks
        .iter()
        .map(|task| u64::from(task.reviewer_blocks))
        .sum();
    out.single(
        "takt_reviewer_blocks_total",
        "counter",
        "Verifications a blind reviewer blocked (also counted in takt_verifications_total's \
         failed).",
        blocked,
    );
    out.single_float(
        "takt_judge_veto_ratio",
        "gauge",
        "Judge vetoes per verification started (NaN before any).",
        ratio(vetoed, started),
    );
    out.single_float(
        "takt_reviewer_block_ratio",
        "gauge",
        "Reviewer blocks per verification started (NaN before any).",
        ratio(blocked, started),
    );

    // A task counts once its change was judged at all: a lone verification that could not
    // finish (or whose verdicts did not match their commitments) says nothing about the change.
    let judged: Vec<&&Task> = tasks
        .iter()
        .filter(|task| match task.verify_outcome {
            None => false,
            Some(VerifyOutcome::Error | VerifyOutcome::VerdictMismatch) => task.verify_rounds > 1,
            Some(_) => true,
        })
        .collect();
    let first_round = judged
        .iter()
        .filter(|task| task.failed_rounds == 0 && task.judge_vetoes == 0)
        .count();
    out.single(
        "takt_verified_tasks",
        "gauge",
        "Tasks whose change verification has judged.",
        judged.len(),
    );
    out.single(
        "takt_first_round_passed_tasks",
        "gauge",
        "Judged tasks that verification never sent back (no red gate, reviewer block or judge \
         veto in any round).",
        first_round,
    );
    out.single_float(
        "takt_first_round_pass_ratio",
        "gauge",
        "takt_first_round_passed_tasks / takt_verified_tasks (NaN before any).",
        ratio(first_round, judged.len()),
    );
}

/// The "Ramp metric": of the runs whose task has ended (done, failed, cancelled), the share
/// whose task ended done. Runs of tasks still in flight are left out until their task ends.
fn merged_ratio(out: &mut Exposition, tasks: &[&Task]) {
    let runs_of = |wanted: TaskState| -> usize {
        tasks
            .iter()
            .filter(|task| task.state == wanted)
            .map(|task| task.history.len())
            .sum()
    };
    let ended = [TaskState::Done, TaskState::Failed, TaskState::Cancelled];
    out.family(
        "takt_ended_task_runs",
        "gauge",
        "Finished runs of tasks that have ended, by how the task ended.",
    );
    for task_state in ended {
        out.sample(
            "takt_ended_task_runs",
            &[("state", task_state.as_str())],
            runs_of(task_state),
        );
    }
    let all: usize = ended.into_iter().map(runs_of).sum();
    out.single_float(
        "takt_merged_ratio",
        "gauge",
        "Share of the finished runs of ended tasks whose task ended done (NaN before any).",
        ratio(runs_of(TaskState::Done), all),
    );
}

fn ratio(part: impl TryInto<u64>, whole: impl TryInto<u64>) -> f64 {
    let (part, whole) = (part.try_into().unwrap_or(0), whole.try_into().unwrap_or(0));
    if whole == 0 {
        f64::NAN
    } else {
        part as f64 / whole as f64
    }
}

/// A small writer of the text format.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
            .collect();
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value}");
        } else {
            let _ = writeln!(self.text, "{name}{{{}}} {value}", labels.join(","));
        }
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram whose observations are integers in `1/scale` of the exported unit (e.g.
    /// milliseconds with `scale` 1000 export seconds).
    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        histogram: &Histogram,
        bounds: &[u64],
        scale: f64,
    ) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, count) in histogram.cumulative(bounds) {
            let le = bound.map_or_else(|| "+Inf".to_owned(), |b| (b as f64 / scale).to_string());
            self.sample(&bucket, &[("le", &le)], count);
        }
        self.sample(&format!("{name}_sum"), &[], histogram.sum as f64 / scale);
        self.sample(&format!("{name}_count"), &[], histogram.count);
    }

    fn single_float(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        let value = if value.is_nan() {
            "NaN".to_owned()
        } else {
            value.to_string()
        };
        self.sample(name, &[], value);
    }
}

/// Label values escape backslash, quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_renders_every_family_with_undefined_ratios() {
        let text = render(&Snapshot::default());
        assert!(text.contains("takt_tasks{state=\"retry_wait\"} 0\n"));
        assert!(text.contains("takt_run_outcomes_total{outcome=\"budget_exhausted\"} 0\n"));
        assert!(text.contains("takt_first_round_pass_ratio NaN\n"));
        assert!(text.contains("takt_merged_ratio NaN\n"));
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').expect("a value");
            assert!(value == "NaN" || value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
