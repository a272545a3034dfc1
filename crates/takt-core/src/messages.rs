//! The state machine's vocabulary: events in (facts from the shell), records (facts the core
//! decided, journaled and applied), commands out (intentions for the shell).

use serde::{Deserialize, Serialize};
use takt_protocol::{
    AgentEvent, FailureReport, Issue, Millis, ModelCallReport, PullRequestRef, RetryKind,
    RiskAssessment, RunOutcome, RunPhase, VerificationReport,
};

/// A fact reported to the core. Every report about a run carries its `run_id`, the fencing
/// token: a report for a run that is not the task's current one is rejected, never applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Time passed; check timers (retries, stalls, wall clock, poll cadence).
    Tick,
    /// Someone asked for an immediate poll (a local submission, `POST /refresh`).
    PollRequested,
    /// `fetch_issues_by_states(active_states)` answered.
    CandidatesFetched { issues: Vec<Issue> },
    /// The candidate fetch failed: skip dispatch this tick (R-056).
    CandidatesFailed { error: String },
    /// `fetch_issues_by_ids(requested)` answered; ids missing from `issues` are gone.
    IssuesRefreshed {
        requested: Vec<String>,
        issues: Vec<Issue>,
    },
    /// The refresh failed: keep workers, try again next tick (R-095).
    RefreshFailed { error: String },
    /// The shell started the agent process of a run.
    RunLaunched {
        run_id: String,
        pid: Option<u32>,
        workspace_path: String,
        branch: String,
    },
    /// A run moved to another phase.
    RunPhaseChanged { run_id: String, phase: RunPhase },
    /// The agent reported something.
    AgentActivity { run_id: String, event: AgentEvent },
    /// A run is over.
    RunExited(RunExit),
    /// The shell finished a merge the core asked for.
    MergeFinished {
        task_id: String,
        result: MergeResult,
    },
    /// A person asked for something.
    Operator(OperatorCommand),
    /// The daemon started on existing state: every live run is gone.
    Restarted,
    /// The model endpoint finished (or refused) one call.
    ModelCall(ModelCallReport),
    /// The model endpoint holds calls until `until` (an upstream quota window), or resumed
    /// (`None`).
    QuotaChanged { until: Option<Millis> },
    /// The shell changed an issue in the tracker (write-back) and read it back: the task's
    /// snapshot follows, nothing else happens.
    IssueWritten { issue: Issue },
    /// A reviewer (or the judge) reached a verdict; only its hash is known yet. Commitments
    /// are journaled before any verdict is revealed in [`Event::VerificationFinished`].
    VerdictCommitted {
        task_id: String,
        commit: String,
        by: String,
        hash: String,
    },
    /// A webhook delivery arrived with a valid signature or token. A delivery id seen before
    /// is refused as a replay; a new one is recorded and leads to a poll at once.
    WebhookReceived {
        source: String,
        delivery: String,
        /// What it was about, for the journal (`issues opened #12`, a task title).
        summary: String,
    },
    /// A webhook request was refused before it could count (bad signature or token, malformed
    /// body): journaled for the audit trail, nothing else happens.
    WebhookRefused {
        source: String,
        delivery: Option<String>,
        reason: String,
    },
    /// The shell created the task a schedule's occurrence asked for (or found it created).
    ScheduledTaskCreated {
        schedule: String,
        occurrence_ms: Millis,
        issue_id: String,
    },
    /// The shell pushed the task's branch and opened (or found, or updated) its pull request
    /// on the forge, or could not.
    Published {
        task_id: String,
        /// The commit it was asked to publish.
        commit: String,
        result: Result<PullRequestRef, String>,
    },
    /// The shell read the pull request's reviews and checks on the forge.
    PullRequestChecked {
        task_id: String,
        number: u64,
        review: ForgeReview,
    },
    /// The shell closed a cancelled task's pull request (one already closed or gone counts),
    /// or could not (asked again at the next poll).
    PullRequestClosed {
        task_id: String,
        number: u64,
        result: Result<(), String>,
    },
    /// Verification of a task's commit finished (or could not: `report.error`).
    VerificationFinished {
        task_id: String,
        report: Box<VerificationReport>,
        /// The failure evidence for the agent, written by the verifier (failing gates, test
        /// names, trimmed logs, findings); empty when everything passed.
        feedback: String,
    },
}

/// How a run ended, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunExit {
    pub run_id: String,
    pub outcome: RunOutcome,
    /// The commit holding the run's changes, when it made any.
    pub commit: Option<String>,
    pub error: Option<String>,
    pub turns: u32,
    /// For `InputRequired`: what the agent asked.
    pub question: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum MergeResult {
    Merged { sha: String },
    Conflict { details: String },
    Failed { error: String },
}

/// A pull request as the forge reports it: what people and CI said about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeReview {
    /// The commit the pull request's branch points at now.
    pub head: String,
    pub merged: bool,
    /// Closed without being merged.
    pub closed: bool,
    /// Each reviewer's latest review.
    pub reviews: Vec<ForgeReviewNote>,
    /// Checks on the head that have not finished (takt's own status excluded).
    pub checks_pending: u32,
    /// Checks on the head that failed, with their logs' tails.
    pub checks_failed: Vec<FailedCheck>,
}

/// One reviewer's latest review on the forge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgeReviewNote {
    /// The forge login, prefixed with the forge (`github:alice`).
    pub by: String,
    pub verdict: ForgeVerdict,
    /// The review's text with its inline comments.
    pub body: String,
    /// The commit reviewed; a review of an older commit does not count.
    pub commit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeVerdict {
    Approved,
    ChangesRequested,
}

/// A failed check on a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCheck {
    pub name: String,
    /// The tail of its log (bounded by the shell).
    pub log: String,
}

/// What people can ask of the daemon (CLI, API, dashboard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OperatorCommand {
    Approve {
        task: String,
        by: String,
        comment: Option<String>,
    },
    Reject {
        task: String,
        by: String,
        comment: String,
    },
    Cancel {
        task: String,
        by: String,
    },
    Answer {
        task: String,
        by: String,
        text: String,
    },
    Retry {
        task: String,
        by: String,
    },
}

impl OperatorCommand {
    /// The task reference as the operator typed it (id or identifier).
    pub fn task_ref(&self) -> &str {
        match self {
            OperatorCommand::Approve { task, .. }
            | OperatorCommand::Reject { task, .. }
            | OperatorCommand::Cancel { task, .. }
            | OperatorCommand::Answer { task, .. }
            | OperatorCommand::Retry { task, .. } => task,
        }
    }
}

/// What a verification came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// Gates green, judge and reviewers satisfied: the risk tier decides what happens.
    Passed,
    /// A required gate failed in a way the base commit did not.
    GatesFailed,
    /// The judge found the change off-task or out of scope.
    JudgeVetoed,
    /// A reviewer blocked the change.
    ReviewersBlocked,
    /// A revealed verdict does not match the hash committed for it.
    VerdictMismatch,
    /// Verification itself could not finish; nothing is known about the change.
    Error,
}

impl VerifyOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyOutcome::Passed => "passed",
            VerifyOutcome::GatesFailed => "gates_failed",
            VerifyOutcome::JudgeVetoed => "judge_vetoed",
            VerifyOutcome::ReviewersBlocked => "reviewers_blocked",
            VerifyOutcome::VerdictMismatch => "verdict_mismatch",
            VerifyOutcome::Error => "error",
        }
    }
}

/// Why the core wants a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// No agent activity for `stall_timeout_ms` (R-093).
    Stalled,
    /// Past `agent.max_run_duration_ms`.
    WallClock,
    /// The issue reached a terminal tracker state (R-094): stop and clean up.
    TrackerTerminal,
    /// The issue left the active states, became unroutable or vanished: stop, keep workspace.
    LeftActive,
    /// An operator cancelled the task.
    Operator,
    /// A budget cap was reached (the model endpoint refuses the run's next call).
    Budget,
    /// `budget.max_tokens_without_progress` tokens went by without a workspace change.
    NoProgress,
}

/// Why a task was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The tracker moved the issue to a terminal state.
    TrackerTerminal,
    /// The issue left the active states or vanished; it is picked up again if it comes back.
    LeftActive,
    Operator,
}

/// Everything the shell needs to run one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSpec {
    pub run_id: String,
    pub task_id: String,
    pub issue: Issue,
    /// The 1-based run number of this task; `None` on its first run (R-038).
    pub attempt: Option<u32>,
    pub retry_kind: Option<RetryKind>,
    pub last_error: Option<String>,
    /// What a reviewer, a merge conflict or an answer said, for the next prompt.
    pub feedback: Option<String>,
}

/// An intention for the shell. The shell executes commands in order and reports results as
/// events.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    FetchCandidates,
    RefreshIssues {
        ids: Vec<String>,
    },
    StartRun(Box<RunSpec>),
    StopRun {
        run_id: String,
        reason: StopReason,
    },
    Merge {
        task_id: String,
        identifier: String,
        branch: String,
        commit: String,
        /// Merge this pull request on the forge (`publish.forge`) instead of merging locally.
        pull_request: Option<u64>,
    },
    /// Push the branch at `commit` and open or update its pull request (with the evidence),
    /// then report [`Event::Published`]. Idempotent: an existing branch and pull request are
    /// found, not duplicated.
    Publish {
        task_id: String,
        identifier: String,
        branch: String,
        commit: String,
        /// The pull request of an earlier round, whose branch is moved to `commit`.
        pull_request: Option<PullRequestRef>,
    },
    /// Read the pull request's reviews and checks and report [`Event::PullRequestChecked`].
    CheckPullRequest {
        task_id: String,
        number: u64,
    },
    /// Close a cancelled task's pull request with `comment` and report
    /// [`Event::PullRequestClosed`].
    ClosePullRequest {
        task_id: String,
        number: u64,
        comment: String,
    },
    /// Create the local task of a schedule's occurrence, unless it exists (the occurrence is
    /// its idempotency key), and report [`Event::ScheduledTaskCreated`].
    CreateScheduledTask {
        schedule: String,
        occurrence_ms: Millis,
        template: crate::schedule::TaskTemplate,
    },
    /// Verify `commit` (gates, judge, reviewers) and report
    /// [`Event::VerificationFinished`].
    Verify {
        task_id: String,
        identifier: String,
        commit: String,
        round: u32,
    },
    CleanWorkspace {
        task_id: String,
        identifier: String,
        path: Option<String>,
    },
    TransitionIssue {
        issue_id: String,
        state: String,
    },
    /// Hands a person's answer to the live session that asked.
    DeliverAnswer {
        run_id: String,
        text: String,
    },
}

/// A fact the core decided. Records are journaled before their effects happen and are the
/// only way state changes; replaying them with [`crate::apply`] rebuilds the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    TaskQueued {
        issue: Issue,
    },
    IssueUpdated {
        task_id: String,
        issue: Issue,
    },
    TaskReopened {
        task_id: String,
        issue: Issue,
    },
    RunDispatched {
        task_id: String,
        run_id: String,
        /// 1-based number of this run among the task's runs.
        run_number: u32,
        retry_kind: Option<RetryKind>,
    },
    RunLaunched {
        task_id: String,
        run_id: String,
        pid: Option<u32>,
        workspace_path: String,
        branch: String,
    },
    RunPhaseChanged {
        task_id: String,
        run_id: String,
        phase: RunPhase,
    },
    AgentEventRecorded {
        task_id: String,
        run_id: String,
        event: AgentEvent,
    },
    RunStopRequested {
        task_id: String,
        run_id: String,
        reason: StopReason,
    },
    RunFinished {
        task_id: String,
        run_id: String,
        outcome: RunOutcome,
        commit: Option<String>,
        error: Option<String>,
        turns: u32,
        /// Whether this run counts toward `max_attempts` (an interruption does not).
        counted: bool,
    },
    RetryScheduled {
        task_id: String,
        due_at_ms: Millis,
        retry_kind: RetryKind,
        error: Option<String>,
        feedback: Option<String>,
    },
    ReviewRequested {
        task_id: String,
        commit: String,
    },
    /// The daemon started verifying the task's commit (its `round`-th verification).
    VerificationStarted {
        task_id: String,
        commit: String,
        round: u32,
    },
    /// A webhook delivery was accepted (its id is now used up).
    WebhookAccepted {
        source: String,
        delivery: String,
        summary: String,
    },
    /// A webhook request was refused: bad signature or token, malformed, or a replayed
    /// delivery id.
    WebhookRefused {
        source: String,
        delivery: Option<String>,
        reason: String,
    },
    /// A schedule was seen for the first time: occurrences from `at_ms` on are owed.
    ScheduleArmed {
        schedule: String,
        at_ms: Millis,
    },
    /// A schedule's occurrence is due; its task is being created.
    ScheduleFired {
        schedule: String,
        occurrence_ms: Millis,
    },
    /// The task of a fired occurrence exists.
    ScheduledTaskCreated {
        schedule: String,
        occurrence_ms: Millis,
        issue_id: String,
    },
    /// A verdict's hash, journaled before the verdict itself is known to anyone.
    VerdictCommitted {
        task_id: String,
        by: String,
        hash: String,
    },
    /// What verification found and what it means for the change.
    Verified {
        task_id: String,
        report: Box<VerificationReport>,
        outcome: VerifyOutcome,
        /// The risk policy's answer (for outcomes that reach it).
        risk: Option<RiskAssessment>,
    },
    TaskBlocked {
        task_id: String,
        question: String,
    },
    Answered {
        task_id: String,
        by: String,
        text: String,
    },
    Approved {
        task_id: String,
        by: String,
        comment: Option<String>,
    },
    Rejected {
        task_id: String,
        by: String,
        comment: String,
    },
    MergeStarted {
        task_id: String,
    },
    /// The change's pull request is open on the forge at `pull_request.head`.
    PullRequestOpened {
        task_id: String,
        pull_request: PullRequestRef,
    },
    /// Publishing to the forge failed; tried again at the next poll.
    PublishFailed {
        task_id: String,
        error: String,
    },
    /// A cancelled task's pull request was closed on the forge.
    PullRequestClosed {
        task_id: String,
        number: u64,
    },
    /// Checks on the pull request's head failed; the change goes back to the agent (or fails
    /// once `publish.max_ci_rounds` are used).
    ChecksFailed {
        task_id: String,
        head: String,
        checks: Vec<String>,
    },
    Merged {
        task_id: String,
        sha: String,
    },
    MergeConflicted {
        task_id: String,
        details: String,
    },
    MergeFailed {
        task_id: String,
        error: String,
    },
    TaskFailed {
        task_id: String,
        report: FailureReport,
    },
    TaskCancelled {
        task_id: String,
        reason: CancelReason,
    },
    TaskRetried {
        task_id: String,
        by: String,
    },
    /// A metered model call (or a refused one, with no task).
    ModelCallMetered {
        task_id: Option<String>,
        call: ModelCallReport,
    },
    /// A report about a run that is not the task's current run (a stale attempt). Kept for the
    /// audit trail; changes nothing.
    StaleReportRejected {
        task_id: Option<String>,
        run_id: String,
        what: String,
    },
    /// The model endpoint holds calls until `until` for an upstream quota window (`None`: the
    /// window opened). Journaled so `takt status` can show the countdown; a stale window
    /// simply expires.
    QuotaPaused {
        until: Option<Millis>,
    },
    /// Bookkeeping only (not journaled): a poll went out.
    PollIssued,
    /// Bookkeeping only (not journaled): due retries were looked at; if none could start (no
    /// free slot), the next look waits a little instead of spinning.
    RetriesChecked,
}

impl Record {
    /// The task the record is about.
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Record::TaskQueued { issue } => Some(&issue.id),
            Record::IssueUpdated { task_id, .. }
            | Record::TaskReopened { task_id, .. }
            | Record::RunDispatched { task_id, .. }
            | Record::RunLaunched { task_id, .. }
            | Record::RunPhaseChanged { task_id, .. }
            | Record::AgentEventRecorded { task_id, .. }
            | Record::RunStopRequested { task_id, .. }
            | Record::RunFinished { task_id, .. }
            | Record::RetryScheduled { task_id, .. }
            | Record::ReviewRequested { task_id, .. }
            | Record::VerificationStarted { task_id, .. }
            | Record::VerdictCommitted { task_id, .. }
            | Record::Verified { task_id, .. }
            | Record::TaskBlocked { task_id, .. }
            | Record::Answered { task_id, .. }
            | Record::Approved { task_id, .. }
            | Record::Rejected { task_id, .. }
            | Record::MergeStarted { task_id }
            | Record::PullRequestOpened { task_id, .. }
            | Record::PublishFailed { task_id, .. }
            | Record::PullRequestClosed { task_id, .. }
            | Record::ChecksFailed { task_id, .. }
            | Record::Merged { task_id, .. }
            | Record::MergeConflicted { task_id, .. }
            | Record::MergeFailed { task_id, .. }
            | Record::TaskFailed { task_id, .. }
            | Record::TaskCancelled { task_id, .. }
            | Record::TaskRetried { task_id, .. } => Some(task_id),
            Record::StaleReportRejected { task_id, .. }
            | Record::ModelCallMetered { task_id, .. } => task_id.as_deref(),
            Record::PollIssued
            | Record::RetriesChecked
            | Record::QuotaPaused { .. }
            | Record::ScheduleArmed { .. }
            | Record::ScheduleFired { .. }
            | Record::ScheduledTaskCreated { .. }
            | Record::WebhookAccepted { .. }
            | Record::WebhookRefused { .. } => None,
        }
    }

    /// The snake_case kind stored in the journal's `kind` column (the serde tag).
    pub fn kind(&self) -> String {
        match self {
            Record::TaskQueued { .. } => "task_queued",
            Record::IssueUpdated { .. } => "issue_updated",
            Record::TaskReopened { .. } => "task_reopened",
            Record::RunDispatched { .. } => "run_dispatched",
            Record::RunLaunched { .. } => "run_launched",
            Record::RunPhaseChanged { .. } => "run_phase_changed",
            Record::AgentEventRecorded { .. } => "agent_event_recorded",
            Record::RunStopRequested { .. } => "run_stop_requested",
            Record::RunFinished { .. } => "run_finished",
            Record::RetryScheduled { .. } => "retry_scheduled",
            Record::ReviewRequested { .. } => "review_requested",
            Record::VerificationStarted { .. } => "verification_started",
            Record::ScheduleArmed { .. } => "schedule_armed",
            Record::WebhookAccepted { .. } => "webhook_accepted",
            Record::WebhookRefused { .. } => "webhook_refused",
            Record::ScheduleFired { .. } => "schedule_fired",
            Record::ScheduledTaskCreated { .. } => "scheduled_task_created",
            Record::VerdictCommitted { .. } => "verdict_committed",
            Record::Verified { .. } => "verified",
            Record::TaskBlocked { .. } => "task_blocked",
            Record::Answered { .. } => "answered",
            Record::Approved { .. } => "approved",
            Record::Rejected { .. } => "rejected",
            Record::MergeStarted { .. } => "merge_started",
            Record::PullRequestOpened { .. } => "pull_request_opened",
            Record::PublishFailed { .. } => "publish_failed",
            Record::PullRequestClosed { .. } => "pull_request_closed",
            Record::ChecksFailed { .. } => "checks_failed",
            Record::Merged { .. } => "merged",
            Record::MergeConflicted { .. } => "merge_conflicted",
            Record::MergeFailed { .. } => "merge_failed",
            Record::TaskFailed { .. } => "task_failed",
            Record::TaskCancelled { .. } => "task_cancelled",
            Record::TaskRetried { .. } => "task_retried",
            Record::ModelCallMetered { .. } => "model_call_metered",
            Record::StaleReportRejected { .. } => "stale_report_rejected",
            Record::PollIssued => "poll_issued",
            Record::QuotaPaused { .. } => "quota_paused",
            Record::RetriesChecked => "retries_checked",
        }
        .to_owned()
    }

    /// Whether the record belongs in the journal. Bookkeeping that only matters while the
    /// daemon lives (polls, chatty output lines) is applied but not persisted.
    pub fn is_durable(&self) -> bool {
        match self {
            Record::PollIssued | Record::RetriesChecked => false,
            Record::AgentEventRecorded { event, .. } => !matches!(event, AgentEvent::Output { .. }),
            _ => true,
        }
    }
}

/// What one call of [`crate::handle`] decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub records: Vec<Record>,
    pub commands: Vec<Command>,
    /// Set when an operator command could not be applied, saying why.
    pub refusal: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_kind_is_its_serde_tag() {
        let records = [
            Record::PollIssued,
            Record::RetriesChecked,
            Record::MergeStarted {
                task_id: "t".into(),
            },
            Record::PullRequestOpened {
                task_id: "t".into(),
                pull_request: PullRequestRef {
                    number: 1,
                    url: "u".into(),
                    head: "h".into(),
                },
            },
            Record::ChecksFailed {
                task_id: "t".into(),
                head: "h".into(),
                checks: vec!["ci".into()],
            },
            Record::TaskRetried {
                task_id: "t".into(),
                by: "a".into(),
            },
            Record::StaleReportRejected {
                task_id: None,
                run_id: "r".into(),
                what: "w".into(),
            },
        ];
        for record in records {
            let tag = serde_json::to_value(&record).expect("json")["kind"].clone();
            assert_eq!(tag, serde_json::Value::String(record.kind()));
        }
    }
}
