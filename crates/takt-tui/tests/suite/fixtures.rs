//! Snapshots of a factory at a fixed moment: every time is relative to [`NOW`], never the clock.

use serde_json::json;
use takt_protocol::{
    Issue, RetryKind, RiskAssessment, RiskTier, RunPhase, TaskState, TaskSummary, TokenUsage,
};
use takt_tui::{DaemonStatus, Dashboard, LiveRun, ScheduleRow, Spend, Throughput, Totals};

/// 2027-01-15 08:00:00 UTC.
pub const NOW: i64 = 1_800_000_000_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// A task `T-<n>` in `state` with every other field empty.
pub fn task(n: u32, state: TaskState, title: &str) -> TaskSummary {
    TaskSummary {
        id: format!("id-{n}"),
        identifier: format!("T-{n}"),
        title: title.into(),
        state,
        tracker_state: "In Progress".into(),
        priority: None,
        labels: vec![],
        attempt: 1,
        retry_kind: None,
        retry_due_at_ms: None,
        last_error: None,
        workspace_path: None,
        branch: None,
        commit: None,
        question: None,
        feedback: None,
        approvals: vec![],
        approvals_required: 0,
        verify_rounds: 0,
        verify_outcome: None,
        risk: None,
        pull_request: None,
        run_id: None,
        run_phase: None,
        pid: None,
        attempts: vec![],
        failure: None,
        metered_usage: TokenUsage::default(),
        issue: Issue {
            id: format!("id-{n}"),
            identifier: format!("T-{n}"),
            title: title.into(),
            description: None,
            priority: None,
            state: "In Progress".into(),
            branch_name: None,
            url: None,
            assignee_id: None,
            labels: vec![],
            blocked_by: vec![],
            dispatchable: true,
            created_at: None,
            updated_at: None,
            native_ref: None,
        },
        updated_at_ms: NOW - 10 * MINUTE,
    }
}

/// A daemon with nothing to do, polling the tracker right now.
pub fn empty_factory() -> Dashboard {
    Dashboard {
        generated_at_ms: NOW,
        daemon: DaemonStatus::Running { pid: Some(4242) },
        source: "/srv/shop/.takt".into(),
        max_agents: 4,
        next_poll_at_ms: Some(NOW),
        ..Dashboard::default()
    }
}

/// Two tasks running (one of them being verified), one waiting to retry, one blocked on a
/// question, one hard_stop change with one of its two approvals, and a nightly schedule.
pub fn busy_factory() -> Dashboard {
    let mut running = task(101, TaskState::Running, "Add pagination to the orders API");
    running.run_id = Some("run-101-3".into());
    running.run_phase = Some(RunPhase::StreamingTurn);
    running.pid = Some(31337);
    running.attempt = 3;

    let mut verifying = task(102, TaskState::Verifying, "Cache the product catalogue");
    verifying.verify_rounds = 1;
    verifying.updated_at_ms = NOW - 42 * SECOND;
    verifying.metered_usage = TokenUsage {
        input_tokens: 100_000,
        output_tokens: 20_400,
        total_tokens: 120_400,
    };

    let mut retrying = task(103, TaskState::RetryWait, "Fix the flaky checkout test");
    retrying.attempt = 2;
    retrying.retry_kind = Some(RetryKind::Failure);
    retrying.retry_due_at_ms = Some(NOW + 42 * SECOND + 500);
    retrying.last_error = Some("agent exited with status 1: cargo build failed".into());

    let mut blocked = task(104, TaskState::Blocked, "Drop the legacy price column");
    blocked.question = Some("Should the migration keep the old column for one release?".into());

    let mut review = task(105, TaskState::AwaitingReview, "Rotate the signing keys");
    review.risk = Some(RiskAssessment {
        tier: RiskTier::HardStop,
        rules: vec![],
        approvals_required: 2,
    });
    review.approvals_required = 2;
    review.approvals = vec!["alice".into()];

    let done = task(106, TaskState::Done, "Already merged: not on the dashboard");

    Dashboard {
        generated_at_ms: NOW,
        daemon: DaemonStatus::Running { pid: Some(4242) },
        source: "/srv/shop/.takt".into(),
        dashboard_url: Some("http://127.0.0.1:4680/".into()),
        max_agents: 4,
        tasks: vec![running, verifying, retrying, blocked, review, done],
        live_runs: vec![LiveRun {
            task_id: "id-101".into(),
            run_id: "run-101-3".into(),
            started_at_ms: NOW - 185 * SECOND,
            turns: 3,
            session_id: Some("0198c2d4-7b1e-7f00-9a3f-8c1d2e3fa2c1".into()),
            last_event: Some("notification".into()),
            last_event_at_ms: Some(NOW - 2 * SECOND),
            last_message: Some("running cargo test -p orders".into()),
            tokens: TokenUsage {
                input_tokens: 40_000,
                output_tokens: 8_210,
                total_tokens: 48_210,
            },
            spend_micros: 310_000,
        }],
        totals: Totals {
            runs_started: 12,
            runs_finished: 10,
            seconds_running: 2 * 3_600 + 15 * 60,
            metered: TokenUsage {
                input_tokens: 1_520_000,
                output_tokens: 240_500,
                total_tokens: 1_760_500,
            },
            model_calls: 412,
            model_calls_refused: 1,
        },
        spend_today: Spend {
            tokens: 380_000,
            micros: 2_345_678,
        },
        spend_month: Spend {
            tokens: 1_760_500,
            micros: 41_200_000,
        },
        rate_limits: Some(json!({
            "limitId": "codex",
            "primary": {"usedPercent": 20, "windowDurationMins": 300, "resetsAt": NOW / 1_000 + 3_900},
            "secondary": {"usedPercent": 5, "windowDurationMins": 10_080},
            "credits": {"hasCredits": true, "unlimited": false, "balance": "12.50"}
        })),
        next_poll_at_ms: Some(NOW + 12 * SECOND),
        quota_paused_until_ms: Some(NOW + 90 * SECOND),
        schedules: vec![ScheduleRow {
            name: "nightly-deps".into(),
            cron: "0 3 * * *".into(),
            timezone: Some("UTC".into()),
            next_due_ms: Some(NOW + 19 * HOUR),
            last_fired_ms: Some(NOW - 5 * HOUR),
        }],
        unreachable: None,
    }
}

/// Throughput fed once a second for ten minutes: a ramp up to 400 tokens/s, then steady.
pub fn busy_throughput() -> Throughput {
    let mut throughput = Throughput::new();
    let mut total = 0;
    for second in (0..=600).rev() {
        let at = NOW - second * SECOND;
        let elapsed = 600 - second;
        total += (elapsed.min(400) as u64).max(1);
        throughput.record(at, total);
    }
    throughput
}
