//! The data the dashboard shows: a plain snapshot the CLI fills, locally from the state
//! directory or remotely from the HTTP API, and hands to [`crate::render`].
//!
//! Every field is data, never a handle: the view reads no clock, file or socket, so the same
//! snapshot always draws the same frame. Times are milliseconds since the Unix epoch
//! ([`Millis`]). Text that came from an agent or a tracker is stored as received; the view
//! sanitizes it when it draws it.

use serde::{Deserialize, Serialize};
use takt_protocol::{Millis, TaskState, TaskSummary, TokenUsage};

/// One snapshot of the factory, as `takt status --watch` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    /// When the snapshot was read.
    pub generated_at_ms: Millis,
    /// Whether the daemon holds the state lock.
    pub daemon: DaemonStatus,
    /// Where the snapshot comes from: the state directory, or the daemon's URL when remote.
    pub source: String,
    /// The daemon's web dashboard, when its HTTP server is enabled.
    pub dashboard_url: Option<String>,
    /// `agent.max_concurrent_agents`.
    pub max_agents: u32,
    /// Every task the daemon knows; the view picks the running, retrying, blocked and
    /// awaiting-review ones.
    pub tasks: Vec<TaskSummary>,
    /// The live agent sessions, one per task with a run (matched by [`LiveRun::task_id`]).
    pub live_runs: Vec<LiveRun>,
    /// Counters since the journal began.
    pub totals: Totals,
    /// Metered spend in the current UTC day.
    pub spend_today: Spend,
    /// Metered spend in the current UTC month.
    pub spend_month: Spend,
    /// The latest rate-limit report an agent relayed (Codex's `account/rateLimits/updated`
    /// payload), as received.
    pub rate_limits: Option<serde_json::Value>,
    /// When the daemon next polls the tracker; at or before now means it is polling.
    /// `None` when unknown (no daemon).
    pub next_poll_at_ms: Option<Millis>,
    /// The provider's quota window is closed until then: model calls are held and dispatch
    /// waits. `None` when not paused.
    pub quota_paused_until_ms: Option<Millis>,
    /// The workflow's cron schedules.
    pub schedules: Vec<ScheduleRow>,
    /// Set by the interactive loop, not by the fetcher: the source stopped answering, and the
    /// rest of this snapshot is the last one it gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<Unreachable>,
}

impl Dashboard {
    /// The live session of a task, if it has one.
    pub fn live_run(&self, task_id: &str) -> Option<&LiveRun> {
        self.live_runs.iter().find(|run| run.task_id == task_id)
    }

    /// Tasks in `state`, in the order the fetcher gave them.
    pub fn tasks_in(&self, state: TaskState) -> impl Iterator<Item = &TaskSummary> {
        self.tasks.iter().filter(move |task| task.state == state)
    }

    /// Tasks holding an agent slot or being verified: the running table's rows.
    pub fn active_tasks(&self) -> impl Iterator<Item = &TaskSummary> {
        self.tasks
            .iter()
            .filter(|task| matches!(task.state, TaskState::Running | TaskState::Verifying))
    }
}

/// Whether the daemon is up, as the state lock (or the API answering) says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum DaemonStatus {
    /// Running; the pid is known when the dashboard reads the local state directory.
    Running { pid: Option<u32> },
    /// Nobody holds the state lock: nothing is dispatched until `takt run` starts.
    #[default]
    NotRunning,
}

/// The live agent session of one task: what the running table shows beyond [`TaskSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRun {
    /// [`TaskSummary::id`] of the task the run belongs to.
    pub task_id: String,
    pub run_id: String,
    pub started_at_ms: Millis,
    /// Turns the agent has finished in this session.
    pub turns: u32,
    /// The agent's session (thread) id, when its protocol has one.
    pub session_id: Option<String>,
    /// The name of the latest agent event (`turn_completed`, `notification`, ...).
    pub last_event: Option<String>,
    pub last_event_at_ms: Option<Millis>,
    /// The latest human-readable message from the agent, as received (sanitized when drawn).
    pub last_message: Option<String>,
    /// Tokens this session used, as the agent reported them (absolute totals).
    pub tokens: TokenUsage,
    /// Metered cost of this run in micro-dollars.
    pub spend_micros: u64,
}

/// Counters since the journal began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub runs_started: u64,
    pub runs_finished: u64,
    /// Seconds the finished runs ran; the header adds the ages of the live runs.
    pub seconds_running: u64,
    /// Tokens the model endpoint metered from the providers' responses. The throughput
    /// tracker is fed `metered.total_tokens`.
    pub metered: TokenUsage,
    pub model_calls: u64,
    /// Calls the endpoint refused (bad tokens, wrong API, budget caps).
    pub model_calls_refused: u64,
}

/// Metered spend over a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub tokens: u64,
    /// Micro-dollars; calls to unpriced models add 0.
    pub micros: u64,
}

/// One cron schedule of the workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRow {
    pub name: String,
    /// The cron expression as written in WORKFLOW.md.
    pub cron: String,
    pub timezone: Option<String>,
    /// The next occurrence; `None` when the expression never fires again.
    pub next_due_ms: Option<Millis>,
    /// The occurrence it last fired for.
    pub last_fired_ms: Option<Millis>,
}

/// The source stopped answering: since when, and the latest error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The first failed fetch after the last good one.
    pub since_ms: Millis,
    /// The latest fetch error (sanitized when drawn).
    pub error: String,
}
