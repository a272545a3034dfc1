use serde::{Deserialize, Serialize};

use crate::{Issue, Millis};

/// takt's durable lifecycle of one issue in one workflow (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Known and eligible; waiting for a slot.
    Queued,
    /// A run (an agent session) is live.
    Running,
    /// The agent's change is committed and being checked.
    Verifying,
    /// Waiting for a human decision.
    AwaitingReview,
    /// Approved; the merge is in progress.
    Merging,
    /// Merged. Terminal.
    Done,
    /// Waiting for a retry timer (continuation, failure backoff, feedback round).
    RetryWait,
    /// The agent asked a question; waits for `takt answer`.
    Blocked,
    /// A human rejected the change; the next step is decided from the rejection.
    Rejected,
    /// Gave up; a failure report exists. Terminal until an operator retries it.
    Failed,
    /// The tracker moved the issue away or an operator cancelled it. Terminal.
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 11] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Verifying,
        TaskState::AwaitingReview,
        TaskState::Merging,
        TaskState::Done,
        TaskState::RetryWait,
        TaskState::Blocked,
        TaskState::Rejected,
        TaskState::Failed,
        TaskState::Cancelled,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Verifying => "verifying",
            TaskState::AwaitingReview => "awaiting_review",
            TaskState::Merging => "merging",
            TaskState::Done => "done",
            TaskState::RetryWait => "retry_wait",
            TaskState::Blocked => "blocked",
            TaskState::Rejected => "rejected",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// No further work happens without an operator.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Done | TaskState::Failed | TaskState::Cancelled
        )
    }

    /// The daemon holds nothing live for the task and waits for a person.
    pub fn is_waiting_on_human(self) -> bool {
        matches!(self, TaskState::AwaitingReview | TaskState::Blocked)
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run is in its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    PreparingWorkspace,
    BuildingPrompt,
    LaunchingAgent,
    InitializingSession,
    StreamingTurn,
    Verifying,
    Finishing,
}

/// How a run ended. Distinct reasons are kept apart for retries and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    Failed,
    TimedOut,
    Stalled,
    Cancelled,
    BudgetExhausted,
    InputRequired,
    SandboxViolation,
    /// The daemon died while the run was live; found on restart.
    Interrupted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::TimedOut => "timed_out",
            RunOutcome::Stalled => "stalled",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::BudgetExhausted => "budget_exhausted",
            RunOutcome::InputRequired => "input_required",
            RunOutcome::SandboxViolation => "sandbox_violation",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the next run of a task happens; exposed to the prompt as `retry_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    /// The previous run ended normally without a result; keep going.
    Continuation,
    /// The previous run failed; exponential backoff.
    Failure,
    /// A reviewer rejected the change; the comment is the feedback.
    Rejection,
    /// Merging conflicted with the base branch; the conflict is the feedback.
    Conflict,
    /// Verification sent the change back: a gate failed, the judge vetoed or a reviewer
    /// blocked; the evidence is the feedback.
    Verification,
    /// The daemon restarted while the run was live.
    Interrupted,
    /// A blocked task received its answer.
    Answer,
    /// An operator asked for another try.
    Operator,
    /// A check on the change's pull request failed; its log is the feedback.
    Checks,
}

/// The pull (merge) request takt opened on the forge for a task's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestRef {
    /// GitHub's pull request number, GitLab's merge request iid.
    pub number: u64,
    pub url: String,
    /// The commit the branch was pushed at.
    pub head: String,
}

impl RetryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryKind::Continuation => "continuation",
            RetryKind::Failure => "failure",
            RetryKind::Rejection => "rejection",
            RetryKind::Conflict => "conflict",
            RetryKind::Verification => "verification",
            RetryKind::Interrupted => "interrupted",
            RetryKind::Answer => "answer",
            RetryKind::Operator => "operator",
            RetryKind::Checks => "checks",
        }
    }
}

/// Token counts as absolute totals for a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// One finished run of a task, as the failure report and `takt task show` list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptSummary {
    pub run_id: String,
    pub attempt: u32,
    pub retry_kind: Option<RetryKind>,
    pub outcome: RunOutcome,
    pub started_at_ms: Millis,
    pub finished_at_ms: Millis,
    pub turns: u32,
    /// The commit the run produced, if it changed anything.
    pub commit: Option<String>,
    pub error: Option<String>,
}

/// What a failed task tells its operator: what was asked, what was tried, where to look, and
/// what to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    pub reason: String,
    pub identifier: String,
    pub title: String,
    pub attempts: Vec<AttemptSummary>,
    pub workspace_path: Option<String>,
    pub branch: Option<String>,
    pub suggested_action: String,
    /// The last verification: gate results with their evidence hashes, judge and reviewer
    /// findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Box<crate::VerificationReport>>,
    /// What the task spent: micro-dollars and tokens.
    #[serde(default)]
    pub spend_micros: u64,
    #[serde(default)]
    pub tokens: u64,
}

/// A task as `takt task list --json`, `takt status --json` and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSummary {
    pub id: String,
    pub identifier: String,
    pub title: String,
    pub state: TaskState,
    pub tracker_state: String,
    pub priority: Option<i64>,
    pub labels: Vec<String>,
    /// Runs that counted toward `agent.max_attempts`.
    pub attempt: u32,
    pub retry_kind: Option<RetryKind>,
    pub retry_due_at_ms: Option<Millis>,
    pub last_error: Option<String>,
    pub workspace_path: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub question: Option<String>,
    pub feedback: Option<String>,
    pub approvals: Vec<String>,
    /// Distinct human approvals the change needs before it merges.
    #[serde(default)]
    pub approvals_required: u32,
    /// Verifications started so far.
    #[serde(default)]
    pub verify_rounds: u32,
    /// What the latest verification came to (`passed`, `gates_failed`, ...).
    #[serde(default)]
    pub verify_outcome: Option<String>,
    /// The risk tier of the latest verified change and the rules that fired.
    #[serde(default)]
    pub risk: Option<crate::RiskAssessment>,
    /// The pull request on the forge, once `publish.forge` opened one.
    #[serde(default)]
    pub pull_request: Option<PullRequestRef>,
    pub run_id: Option<String>,
    pub run_phase: Option<RunPhase>,
    pub pid: Option<u32>,
    pub attempts: Vec<AttemptSummary>,
    pub failure: Option<FailureReport>,
    /// Tokens the model endpoint metered for this task across all its runs (from the
    /// provider's responses, not the agent's word).
    pub metered_usage: TokenUsage,
    pub issue: Issue,
    pub updated_at_ms: Millis,
}

/// One model call through the daemon's model endpoint, metered from the provider's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCallReport {
    /// The run whose token made the call; `None` when the token was not valid.
    pub run_id: Option<String>,
    /// `responses`, `chat_completions`, `messages`, ...
    pub api: String,
    pub path: String,
    pub status: u16,
    pub model: Option<String>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// False when the response carried no usage (a cut stream, a provider that omits it).
    pub metered: bool,
    pub latency_ms: u64,
    /// Why the endpoint refused the call itself (bad token, wrong API, budget), if it did.
    pub refused: Option<String>,
    /// Cost from the price table in micro-dollars; `None` when the model has no price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<u64>,
    /// The usage was estimated from the bytes (the provider reported none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
    /// A budget cap this call was refused at or reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_reached: Option<CapReached>,
    /// The content-addressed artifact holding the call's redacted request and response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// A budget cap reached by a model call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapReached {
    /// `run`, `task`, `day` or `month`.
    pub scope: String,
    /// `tokens` or `micros` (micro-dollars).
    pub unit: String,
    pub limit: u64,
    pub spent: u64,
}

impl CapReached {
    /// "the per-task money cap ($5.000000): $5.120000 spent".
    pub fn describe(&self) -> String {
        let amount = |value: u64| match self.unit.as_str() {
            "micros" => format!("${}.{:06}", value / 1_000_000, value % 1_000_000),
            _ => format!("{value} tokens"),
        };
        let unit = if self.unit == "micros" {
            "money"
        } else {
            "tokens"
        };
        format!(
            "the per-{} {unit} cap ({}): {} spent",
            self.scope,
            amount(self.limit),
            amount(self.spent)
        )
    }
}
