//! OpenAPI schemas of the `takt-protocol` types the API returns as they are.
//!
//! `takt-protocol` stays free of OpenAPI machinery, so the document describes these types
//! through schema-only mirrors: same names, same fields, never constructed. The unit tests
//! below serialize real values and fail when a field or variant is added to, renamed in or
//! removed from a protocol type without its mirror following.

// The mirrors only feed `utoipa`'s derive; nothing constructs them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// takt's lifecycle of one issue (DESIGN §2).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Running,
    Verifying,
    AwaitingReview,
    Merging,
    Done,
    RetryWait,
    Blocked,
    Rejected,
    Failed,
    Cancelled,
}

/// Where a run is in its lifetime.
#[derive(Serialize, ToSchema)]
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

/// How a run ended.
#[derive(Serialize, ToSchema)]
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
    Interrupted,
}

/// Why the next run of a task happens.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryKind {
    Continuation,
    Failure,
    Rejection,
    Conflict,
    Verification,
    Interrupted,
    Answer,
    Operator,
    Checks,
}

/// The pull (merge) request takt opened on the forge for a task's change.
#[derive(Serialize, ToSchema)]
pub struct PullRequestRef {
    pub number: u64,
    pub url: String,
    /// The commit the branch was pushed at.
    pub head: String,
}

/// Risk tiers, from least to most guarded.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    AutoShip,
    Review,
    HardStop,
}

/// Where a gate came from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateSource {
    Configured,
    Detected,
    Hidden,
}

/// A gate's verdict on the change after baseline and flaky re-runs.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Passed,
    PreExisting,
    Flaky,
    Failed,
    Skipped,
}

/// How one test case ended.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Passed,
    Failed,
    Skipped,
}

/// How a changed file changed.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
}

/// How severe a finding is; `blocking` stops the change.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Minor,
    Major,
    Blocking,
}

/// Token counts.
#[derive(Serialize, ToSchema)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
}

/// One blocker of an issue; every field is best effort.
#[derive(Serialize, ToSchema)]
pub struct BlockerRef {
    pub id: Option<String>,
    pub identifier: Option<String>,
    pub state: Option<String>,
}

/// A tracker item normalized to Symphony's field set. Every field is always present.
#[derive(Serialize, ToSchema)]
pub struct Issue {
    pub id: String,
    /// Human key such as `TAKT-12`.
    pub identifier: String,
    pub title: String,
    pub description: Option<String>,
    /// 0-4, 1 most urgent; 0 or null sort last.
    pub priority: Option<i64>,
    /// The tracker's own spelling of the state.
    pub state: String,
    pub branch_name: Option<String>,
    pub url: Option<String>,
    pub assignee_id: Option<String>,
    pub labels: Vec<String>,
    pub blocked_by: Vec<BlockerRef>,
    pub dispatchable: bool,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub updated_at: Option<String>,
    /// Provider reference (JSON, no secrets).
    pub native_ref: Option<serde_json::Value>,
}

/// One finished run of a task.
#[derive(Serialize, ToSchema)]
pub struct AttemptSummary {
    pub run_id: String,
    pub attempt: u32,
    pub retry_kind: Option<RetryKind>,
    pub outcome: RunOutcome,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub turns: u32,
    pub commit: Option<String>,
    pub error: Option<String>,
}

/// What a failed task tells its operator.
#[derive(Serialize, ToSchema)]
pub struct FailureReport {
    pub reason: String,
    pub identifier: String,
    pub title: String,
    pub attempts: Vec<AttemptSummary>,
    pub workspace_path: Option<String>,
    pub branch: Option<String>,
    pub suggested_action: String,
    /// Present when the task was verified.
    pub verification: Option<Box<VerificationReport>>,
    pub spend_micros: u64,
    pub tokens: u64,
}

/// One risk rule that fired.
#[derive(Serialize, ToSchema)]
pub struct RiskRule {
    pub rule: String,
    pub tier: RiskTier,
    pub detail: String,
}

/// The risk policy's answer for one change.
#[derive(Serialize, ToSchema)]
pub struct RiskAssessment {
    pub tier: RiskTier,
    pub rules: Vec<RiskRule>,
    pub approvals_required: u32,
}

/// A task as `takt task show --json` shows it.
#[derive(Serialize, ToSchema)]
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
    pub retry_due_at_ms: Option<i64>,
    pub last_error: Option<String>,
    pub workspace_path: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub question: Option<String>,
    pub feedback: Option<String>,
    pub approvals: Vec<String>,
    pub approvals_required: u32,
    pub verify_rounds: u32,
    /// `passed`, `gates_failed`, `judge_vetoed`, `reviewers_blocked`, `verdict_mismatch`,
    /// `error`.
    pub verify_outcome: Option<String>,
    pub risk: Option<RiskAssessment>,
    /// The pull request on the forge, once `publish.forge` opened one.
    pub pull_request: Option<PullRequestRef>,
    pub run_id: Option<String>,
    pub run_phase: Option<RunPhase>,
    pub pid: Option<u32>,
    pub attempts: Vec<AttemptSummary>,
    pub failure: Option<FailureReport>,
    pub metered_usage: TokenUsage,
    pub issue: Issue,
    pub updated_at_ms: i64,
}

/// One hash-chained row of the journal.
#[derive(Serialize, ToSchema)]
pub struct JournalEntry {
    /// 1-based, gap-free.
    pub seq: u64,
    pub at_ms: i64,
    /// The record's kind, e.g. `run_dispatched`.
    pub kind: String,
    pub task_id: Option<String>,
    /// The record itself (tagged by `kind`).
    pub payload: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// One test case parsed from a gate's output.
#[derive(Serialize, ToSchema)]
pub struct TestCase {
    pub name: String,
    pub status: TestStatus,
}

/// One execution of one gate command.
#[derive(Serialize, ToSchema)]
pub struct GateRun {
    pub gate: String,
    pub command: String,
    pub commit: String,
    pub tree: String,
    pub environment: BTreeMap<String, String>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// sha256 of the stdout artifact (`GET /api/v1/artifacts/{hash}`).
    pub stdout_hash: String,
    /// sha256 of the stderr artifact.
    pub stderr_hash: String,
    pub format: Option<String>,
    pub tests: Vec<TestCase>,
}

/// Everything known about one gate on one change.
#[derive(Serialize, ToSchema)]
pub struct GateOutcome {
    pub gate: String,
    pub source: GateSource,
    pub required: bool,
    pub status: GateStatus,
    pub new_failures: Vec<String>,
    pub preexisting_failures: Vec<String>,
    pub flaky: Vec<String>,
    pub runs: Vec<GateRun>,
    pub baseline: Option<GateRun>,
}

/// One file of the change's diff.
#[derive(Serialize, ToSchema)]
pub struct ChangedFile {
    pub path: String,
    pub old_path: Option<String>,
    pub kind: ChangeKind,
    pub added_lines: u32,
    pub removed_lines: u32,
}

/// A diff line that looks like a credential.
#[derive(Serialize, ToSchema)]
pub struct SecretHit {
    pub path: String,
    pub line: u32,
    pub kind: String,
}

/// Something in the change that weakens the checks themselves.
#[derive(Serialize, ToSchema)]
pub struct TamperFlag {
    pub rule: String,
    pub path: String,
    pub detail: String,
}

/// One finding of the judge or a reviewer.
#[derive(Serialize, ToSchema)]
pub struct Finding {
    pub severity: Severity,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub text: String,
}

/// A decision of the judge or one blind reviewer.
#[derive(Serialize, ToSchema)]
pub struct Verdict {
    pub by: String,
    pub pass: bool,
    pub summary: String,
    pub findings: Vec<Finding>,
    pub model: Option<String>,
}

/// Everything verification found about one commit of one task.
#[derive(Serialize, ToSchema)]
pub struct VerificationReport {
    pub commit: String,
    pub base: String,
    pub round: u32,
    pub gates: Vec<GateOutcome>,
    pub changed_files: Vec<ChangedFile>,
    pub secrets: Vec<SecretHit>,
    pub tamper: Vec<TamperFlag>,
    pub judge: Option<Verdict>,
    pub reviewers: Vec<Verdict>,
    /// Set when verification itself could not run.
    pub error: Option<String>,
}

#[cfg(test)]
#[path = "schemas_tests.rs"]
mod tests;
