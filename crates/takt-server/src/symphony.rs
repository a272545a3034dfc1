//! Symphony's status shapes (R-135, R-136) built from takt's state.
//!
//! Symphony's field names are kept exactly; takt's additions (`task_state`, `run_id`, `phase`,
//! `workspace_path`, `polling`, the full `task`, ...) only add fields, as R-138 asks. The
//! mapping: `running` are tasks with a live agent run that is not waiting for a person,
//! `retrying` are tasks in `retry_wait`, `blocked` are tasks in `blocked` (live run or not), so
//! the three lists never overlap.

use serde::Serialize;
use takt_core::{LiveRun, Task};
use takt_protocol::{JournalEntry, Millis, TaskState};
use utoipa::ToSchema;

use crate::port::Snapshot;
use crate::schemas;
use crate::time::rfc3339;

/// How many journal entries `recent_events` shows.
pub const RECENT_EVENTS: usize = 20;
/// Longest `message` of a recent event, in characters.
const MESSAGE_CHARS: usize = 500;

/// `GET /api/v1/state` (R-135).
#[derive(Debug, Serialize, ToSchema)]
pub struct StateView {
    /// When this answer was generated (RFC 3339, UTC).
    pub generated_at: String,
    pub counts: Counts,
    pub running: Vec<RunningRow>,
    pub retrying: Vec<RetryingRow>,
    pub blocked: Vec<BlockedRow>,
    pub codex_totals: CodexTotals,
    /// The latest rate-limit payload any agent reported, verbatim; null before the first.
    pub rate_limits: Option<serde_json::Value>,
    pub polling: Polling,
    /// `agent.max_concurrent_agents` (takt addition).
    pub max_concurrent_agents: u32,
    /// Runs since the journal began (takt addition).
    pub runs: RunCounts,
    /// The model endpoint holds calls until then for a provider's quota window; null when not
    /// paused (takt addition).
    pub quota_paused_until: Option<String>,
    /// The workflow's cron schedules (takt addition).
    pub schedules: Vec<ScheduleRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunCounts {
    pub started: u64,
    pub finished: u64,
    /// Wall-clock seconds of the finished runs (`codex_totals.seconds_running` adds the live
    /// ones).
    pub finished_seconds: i64,
    /// Tokens the model endpoint metered from the providers' responses (`codex_totals` are
    /// the agents' own reports).
    pub metered_tokens: TokensRow,
}

/// One cron schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleRow {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    /// The next occurrence; null when the expression has none.
    pub next_due_at: Option<String>,
    pub last_fired_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    pub running: usize,
    pub retrying: usize,
    pub blocked: usize,
}

/// One live run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunningRow {
    pub issue_id: String,
    pub issue_identifier: String,
    pub issue_url: Option<String>,
    /// The tracker's state of the issue.
    pub state: String,
    pub session_id: Option<String>,
    pub turn_count: u32,
    pub last_event: Option<String>,
    pub last_message: Option<String>,
    pub started_at: String,
    pub last_event_at: Option<String>,
    pub tokens: TokensRow,
    pub workspace_path: Option<String>,
    /// takt's state of the task (`running`).
    #[schema(value_type = schemas::TaskState)]
    pub task_state: TaskState,
    pub run_id: String,
    /// `preparing_workspace`, `streaming_turn`, ...; null before the first phase report.
    #[schema(value_type = Option<schemas::RunPhase>)]
    pub phase: Option<takt_protocol::RunPhase>,
    pub pid: Option<u32>,
    /// Metered model spend of this run, micro-dollars.
    pub spend_micros: u64,
}

/// A live run's tokens as its agent reported them (absolute per session, R-126).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokensRow {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// One task waiting for its retry timer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetryingRow {
    pub issue_id: String,
    pub issue_identifier: String,
    pub issue_url: Option<String>,
    /// The number of the run that will start (runs so far + 1).
    pub attempt: u32,
    pub due_at: Option<String>,
    pub error: Option<String>,
    /// `continuation`, `failure`, `verification`, ... (takt addition).
    #[schema(value_type = Option<schemas::RetryKind>)]
    pub retry_kind: Option<takt_protocol::RetryKind>,
    pub workspace_path: Option<String>,
}

/// One task waiting for a person's answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BlockedRow {
    pub issue_id: String,
    pub issue_identifier: String,
    pub issue_url: Option<String>,
    pub state: String,
    /// What the agent asked; answer with `POST /api/v1/tasks/{id}/answer`.
    pub question: Option<String>,
    /// Whether the agent's session is still live and waits in place for the answer.
    pub live: bool,
    pub session_id: Option<String>,
    pub since: String,
    pub workspace_path: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodexTotals {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Ended runs' durations plus live runs' elapsed time, in whole seconds (R-127).
    pub seconds_running: i64,
}

/// When the tracker is polled (R-131's IMPL addition).
#[derive(Debug, Serialize, ToSchema)]
pub struct Polling {
    /// A poll is in flight now.
    pub checking: bool,
    /// Milliseconds until the next poll; null when none is scheduled.
    pub next_poll_in_ms: Option<i64>,
    pub poll_interval_ms: u64,
}

/// `GET /api/v1/{issue_identifier}` (R-136).
#[derive(Debug, Serialize, ToSchema)]
pub struct IssueView {
    pub issue_identifier: String,
    pub issue_id: String,
    /// `running`, `retrying` or `blocked` as in Symphony; otherwise takt's task state
    /// (`queued`, `verifying`, `awaiting_review`, `merging`, `done`, `rejected`, `failed`,
    /// `cancelled`).
    pub status: String,
    pub workspace: WorkspaceView,
    pub attempts: AttemptsView,
    pub running: Option<RunningRow>,
    pub retry: Option<RetryingRow>,
    pub logs: LogsView,
    /// The task's latest journal entries, oldest first (at most 20).
    pub recent_events: Vec<RecentEvent>,
    pub last_error: Option<String>,
    /// Reserved by Symphony; always `{}`.
    #[schema(value_type = Object)]
    pub tracked: serde_json::Map<String, serde_json::Value>,
    /// The whole task (takt addition).
    #[schema(value_type = schemas::TaskSummary)]
    pub task: takt_protocol::TaskSummary,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub path: Option<String>,
    /// The worker host; null on a single node.
    pub host: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptsView {
    /// Runs started before the current or next one.
    pub restart_count: u32,
    /// The retry number of the live or pending run (1 for the first retry); null when the
    /// task is on its first run or has none pending.
    pub current_retry_attempt: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogsView {
    /// Agent session logs; takt keeps them in the journal (`GET /api/v1/tasks/{id}/events`),
    /// so this is empty.
    pub codex_session_logs: Vec<SessionLog>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionLog {
    pub label: String,
    pub path: String,
    pub url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecentEvent {
    pub at: String,
    /// The journal kind, or for agent events the agent event's type (`message`, `tool_call`).
    pub event: String,
    pub message: Option<String>,
}

/// Builds the `/api/v1/state` answer at time `now`.
pub fn state_view(snapshot: &Snapshot, now: Millis) -> StateView {
    let state = &snapshot.state;
    let running: Vec<RunningRow> = state
        .tasks
        .values()
        .filter(|task| task.state != TaskState::Blocked)
        .filter_map(|task| task.run.as_ref().map(|run| running_row(task, run)))
        .collect();
    let retrying: Vec<RetryingRow> = state
        .tasks
        .values()
        .filter(|task| task.state == TaskState::RetryWait)
        .map(retrying_row)
        .collect();
    let blocked: Vec<BlockedRow> = state
        .tasks
        .values()
        .filter(|task| task.state == TaskState::Blocked)
        .map(blocked_row)
        .collect();
    let live_ms: i64 = state
        .running()
        .filter_map(|task| task.run.as_ref())
        .map(|run| (now - run.started_at_ms).max(0))
        .sum();
    StateView {
        generated_at: rfc3339(now),
        counts: Counts {
            running: running.len(),
            retrying: retrying.len(),
            blocked: blocked.len(),
        },
        running,
        retrying,
        blocked,
        codex_totals: CodexTotals {
            input_tokens: state.totals.tokens.input_tokens,
            output_tokens: state.totals.tokens.output_tokens,
            total_tokens: state.totals.tokens.total_tokens,
            seconds_running: (state.totals.run_ms + live_ms) / 1000,
        },
        rate_limits: state.rate_limits.clone(),
        polling: Polling {
            checking: snapshot.poll_in_flight,
            next_poll_in_ms: snapshot.next_poll_due_at_ms.map(|due| (due - now).max(0)),
            poll_interval_ms: snapshot.poll_interval_ms,
        },
        max_concurrent_agents: snapshot.max_concurrent_agents,
        runs: RunCounts {
            started: state.totals.runs_started,
            finished: state.totals.runs_finished,
            finished_seconds: state.totals.run_ms / 1000,
            metered_tokens: TokensRow {
                input_tokens: state.totals.metered.input_tokens,
                output_tokens: state.totals.metered.output_tokens,
                total_tokens: state.totals.metered.total_tokens,
            },
        },
        quota_paused_until: state
            .quota_paused_until
            .filter(|until| *until > now)
            .map(rfc3339),
        schedules: snapshot
            .schedules
            .iter()
            .map(|schedule| ScheduleRow {
                name: schedule.name.clone(),
                cron: schedule.cron.clone(),
                timezone: schedule.timezone.clone(),
                next_due_at: schedule.next_due_at_ms.map(rfc3339),
                last_fired_at: schedule.last_fired_at_ms.map(rfc3339),
            })
            .collect(),
    }
}

/// Builds the `/api/v1/{issue_identifier}` answer from the task and its journal.
pub fn issue_view(task: &Task, journal: &[JournalEntry]) -> IssueView {
    let live = task.run.as_ref();
    let status = match task.state {
        TaskState::Blocked => "blocked",
        TaskState::RetryWait => "retrying",
        _ if live.is_some() => "running",
        other => other.as_str(),
    };
    let current_retry_attempt = match (live, task.state) {
        (Some(run), _) => run.run_number.checked_sub(1).filter(|n| *n > 0),
        (None, TaskState::RetryWait) => Some(task.runs_started),
        _ => None,
    };
    let recent_events = journal
        .iter()
        .skip(journal.len().saturating_sub(RECENT_EVENTS))
        .map(recent_event)
        .collect();
    IssueView {
        issue_identifier: task.issue.identifier.clone(),
        issue_id: task.id.clone(),
        status: status.to_owned(),
        workspace: WorkspaceView {
            path: task.workspace_path.clone(),
            host: None,
        },
        attempts: AttemptsView {
            restart_count: task.runs_started.saturating_sub(1),
            current_retry_attempt,
        },
        running: live
            .filter(|_| task.state != TaskState::Blocked)
            .map(|run| running_row(task, run)),
        retry: (task.state == TaskState::RetryWait).then(|| retrying_row(task)),
        logs: LogsView {
            codex_session_logs: Vec::new(),
        },
        recent_events,
        last_error: task.last_error.clone(),
        tracked: serde_json::Map::new(),
        task: task.summary(),
    }
}

fn running_row(task: &Task, run: &LiveRun) -> RunningRow {
    RunningRow {
        issue_id: task.id.clone(),
        issue_identifier: task.issue.identifier.clone(),
        issue_url: task.issue.url.clone(),
        state: task.issue.state.clone(),
        session_id: run.session_id.clone(),
        turn_count: run.turns,
        last_event: run.last_event.clone(),
        last_message: run.last_message.clone(),
        started_at: rfc3339(run.started_at_ms),
        last_event_at: run.last_event_at_ms.map(rfc3339),
        tokens: TokensRow {
            input_tokens: run.tokens.input_tokens,
            output_tokens: run.tokens.output_tokens,
            total_tokens: run.tokens.total_tokens,
        },
        workspace_path: task.workspace_path.clone(),
        task_state: task.state,
        run_id: run.run_id.clone(),
        phase: run.phase,
        pid: run.pid,
        spend_micros: run.spend.micros,
    }
}

fn retrying_row(task: &Task) -> RetryingRow {
    RetryingRow {
        issue_id: task.id.clone(),
        issue_identifier: task.issue.identifier.clone(),
        issue_url: task.issue.url.clone(),
        attempt: task.runs_started + 1,
        due_at: task.retry.as_ref().map(|retry| rfc3339(retry.due_at_ms)),
        error: task.last_error.clone(),
        retry_kind: task.retry.as_ref().map(|retry| retry.kind),
        workspace_path: task.workspace_path.clone(),
    }
}

fn blocked_row(task: &Task) -> BlockedRow {
    BlockedRow {
        issue_id: task.id.clone(),
        issue_identifier: task.issue.identifier.clone(),
        issue_url: task.issue.url.clone(),
        state: task.issue.state.clone(),
        question: task.question.clone(),
        live: task.run.is_some(),
        session_id: task.run.as_ref().and_then(|run| run.session_id.clone()),
        since: rfc3339(task.updated_at_ms),
        workspace_path: task.workspace_path.clone(),
    }
}

fn recent_event(entry: &JournalEntry) -> RecentEvent {
    let agent_event = (entry.kind == "agent_event_recorded")
        .then(|| entry.payload.get("event"))
        .flatten();
    let event = agent_event
        .and_then(|event| event.get("type"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&entry.kind)
        .to_owned();
    RecentEvent {
        at: rfc3339(entry.at_ms),
        event,
        message: summarize(agent_event.unwrap_or(&entry.payload)),
    }
}

/// The first human-readable field of a record or agent event, clipped: enough for a timeline
/// line without a formatter per kind (the full entry is one request away).
fn summarize(payload: &serde_json::Value) -> Option<String> {
    const FIELDS: [&str; 15] = [
        "text",
        "message",
        "question",
        "request",
        "summary",
        "line",
        "comment",
        "error",
        "reason",
        "details",
        "outcome",
        "phase",
        "path",
        "sha",
        "session_id",
    ];
    let text = FIELDS.iter().find_map(|field| {
        payload
            .get(field)
            .and_then(serde_json::Value::as_str)
            .filter(|text| !text.trim().is_empty())
    })?;
    Some(text.chars().take(MESSAGE_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_message_summarizes_as_its_text_and_type() {
        let entry = JournalEntry {
            seq: 1,
            at_ms: 0,
            kind: "agent_event_recorded".into(),
            task_id: Some("t".into()),
            payload: serde_json::json!({"kind": "agent_event_recorded", "task_id": "t",
                "run_id": "r", "event": {"type": "message", "text": "working on it"}}),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let event = recent_event(&entry);
        assert_eq!(event.event, "message");
        assert_eq!(event.message.as_deref(), Some("working on it"));
    }

    #[test]
    fn a_record_summarizes_as_its_first_readable_field() {
        let payload = serde_json::json!({"kind": "run_finished", "outcome": "failed",
            "error": "exit 1"});
        assert_eq!(summarize(&payload).as_deref(), Some("exit 1"));
        assert_eq!(
            summarize(&serde_json::json!({"kind": "merge_started"})),
            None
        );
    }
}
