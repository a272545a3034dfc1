//! The orchestrator's state and the one function that changes it: [`apply`].

use crate::budget::Spend;
use std::collections::BTreeMap;

use takt_protocol::{
    AgentEvent, AttemptSummary, FailureReport, Issue, Millis, PullRequestRef, RetryKind,
    RiskAssessment, RunOutcome, RunPhase, TaskState, TaskSummary, TokenUsage, VerificationReport,
};

use crate::messages::{CancelReason, Record, StopReason, VerifyOutcome};
use crate::stats::Stats;

/// Everything the orchestrator knows. Owned by one component; changed only by [`apply`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Tasks by id (the tracker's issue id).
    pub tasks: BTreeMap<String, Task>,
    /// When the last candidate poll went out.
    pub last_poll_at_ms: Option<Millis>,
    /// When due retries were last looked at.
    pub retries_checked_at_ms: Option<Millis>,
    pub totals: Totals,
    /// The latest rate-limit payload any agent reported.
    pub rate_limits: Option<serde_json::Value>,
    /// Metered spend by UTC day (days since the epoch) and UTC month (`year * 12 + month0`),
    /// for the day and month budget caps.
    pub spend_by_day: BTreeMap<i64, Spend>,
    pub spend_by_month: BTreeMap<i64, Spend>,
    /// Until when the model endpoint holds calls for an upstream quota window.
    pub quota_paused_until: Option<Millis>,
    /// Where each schedule stands, by name.
    pub schedules: BTreeMap<String, ScheduleState>,
    /// Webhook deliveries already accepted, as `source:delivery`: a replay is refused.
    pub webhook_deliveries: std::collections::BTreeSet<String>,
    pub stats: Stats,
}

/// The key a webhook delivery is remembered by.
pub fn delivery_key(source: &str, delivery: &str) -> String {
    format!("{source}:{delivery}")
}

/// What the journal remembers about one schedule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScheduleState {
    /// When it was first seen: earlier occurrences are not owed.
    pub armed_at_ms: Millis,
    /// The latest occurrence it fired for.
    pub last_fired_ms: Option<Millis>,
    /// A fired occurrence whose task is not known to exist yet (created again after a crash).
    pub pending_ms: Option<Millis>,
}

impl ScheduleState {
    /// Occurrences after this are owed.
    pub fn owed_after(&self) -> Millis {
        self.last_fired_ms
            .unwrap_or(self.armed_at_ms)
            .max(self.armed_at_ms)
    }
}

/// Aggregates over all runs (R-068's `codex_totals`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub runs_started: u64,
    pub runs_finished: u64,
    pub run_ms: i64,
    /// As the agents reported them.
    pub tokens: TokenUsage,
    /// As the model endpoint metered them from the providers' responses.
    pub metered: TokenUsage,
    pub model_calls: u64,
    /// Calls the endpoint refused (bad tokens, wrong API).
    pub model_calls_refused: u64,
}

/// takt's durable record of one issue.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub issue: Issue,
    pub state: TaskState,
    /// Runs that counted toward `max_attempts`.
    pub attempt: u32,
    /// Every run ever dispatched, counted or not (names run ids).
    pub runs_started: u32,
    pub history: Vec<AttemptSummary>,
    pub retry: Option<Retry>,
    pub run: Option<LiveRun>,
    pub workspace_path: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub last_error: Option<String>,
    pub feedback: Option<String>,
    pub question: Option<String>,
    pub approvals: Vec<String>,
    /// Distinct approvals the change needs (from its risk tier); 1 when no tier was assessed.
    pub approvals_required: u32,
    /// Verifications started for this task.
    pub verify_rounds: u32,
    /// Verifications that sent the change back or failed it (red gates, reviewer blocks).
    pub failed_rounds: u32,
    /// Times the judge vetoed; the first veto goes back to the agent, later ones to a person.
    pub judge_vetoes: u32,
    /// Verifications a blind reviewer blocked (also counted in `failed_rounds`).
    pub reviewer_blocks: u32,
    /// When the change landed (locally or on the forge).
    pub merged_at_ms: Option<Millis>,
    /// The change's pull request on the forge (`publish.forge`), kept across rounds.
    pub pull_request: Option<PullRequestRef>,
    /// When the pull request was last published (its head pushed): reviews older than that
    /// are about an earlier commit.
    pub published_at_ms: Option<Millis>,
    /// Rounds whose pull request checks failed.
    pub ci_rounds: u32,
    /// The pull request was closed by takt (the task was cancelled).
    pub pull_request_closed: bool,
    /// Since when the task's question has been waiting for an answer.
    pub blocked_at_ms: Option<Millis>,
    /// The latest verification and what it came to.
    pub verification: Option<Box<VerificationReport>>,
    pub verify_outcome: Option<VerifyOutcome>,
    pub risk: Option<RiskAssessment>,
    /// Verdict hashes committed during the current verification, by reviewer.
    pub commitments: BTreeMap<String, String>,
    pub failure: Option<FailureReport>,
    pub cancel_reason: Option<CancelReason>,
    /// Tokens metered for this task across its runs.
    pub metered: TokenUsage,
    /// Cost metered for this task across its runs, in micro-dollars (unpriced calls add 0).
    pub spend_micros: u64,
    pub created_at_ms: Millis,
    pub updated_at_ms: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    pub due_at_ms: Millis,
    pub kind: RetryKind,
}

/// The live run of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRun {
    pub run_id: String,
    pub run_number: u32,
    pub retry_kind: Option<RetryKind>,
    pub started_at_ms: Millis,
    pub last_event_at_ms: Option<Millis>,
    pub last_event: Option<String>,
    pub last_message: Option<String>,
    pub phase: Option<RunPhase>,
    pub pid: Option<u32>,
    pub session_id: Option<String>,
    pub turns: u32,
    pub tokens: TokenUsage,
    pub stop: Option<StopReason>,
    /// Metered spend of this run (tokens, micro-dollars).
    pub spend: Spend,
    /// Metered tokens since the workspace last changed (the no-progress guard).
    pub tokens_since_progress: u64,
}

impl State {
    /// Finds a task by id or (case-insensitively) by identifier.
    pub fn find(&self, reference: &str) -> Option<&Task> {
        self.tasks.get(reference).or_else(|| {
            self.tasks
                .values()
                .find(|task| task.issue.identifier.eq_ignore_ascii_case(reference))
        })
    }

    pub fn task_of_run(&self, run_id: &str) -> Option<&Task> {
        self.tasks
            .values()
            .find(|task| task.run.as_ref().is_some_and(|run| run.run_id == run_id))
    }

    pub fn running(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values().filter(|task| task.run.is_some())
    }

    pub fn running_count(&self) -> usize {
        self.running().count()
    }
}

impl Task {
    fn new(issue: Issue, at: Millis) -> Task {
        Task {
            id: issue.id.clone(),
            issue,
            state: TaskState::Queued,
            attempt: 0,
            runs_started: 0,
            history: Vec::new(),
            retry: None,
            run: None,
            workspace_path: None,
            branch: None,
            commit: None,
            last_error: None,
            feedback: None,
            question: None,
            approvals: Vec::new(),
            approvals_required: 1,
            verify_rounds: 0,
            failed_rounds: 0,
            judge_vetoes: 0,
            reviewer_blocks: 0,
            merged_at_ms: None,
            pull_request: None,
            published_at_ms: None,
            ci_rounds: 0,
            pull_request_closed: false,
            blocked_at_ms: None,
            verification: None,
            verify_outcome: None,
            risk: None,
            commitments: BTreeMap::new(),
            failure: None,
            cancel_reason: None,
            metered: TokenUsage::default(),
            spend_micros: 0,
            created_at_ms: at,
            updated_at_ms: at,
        }
    }

    /// The JSON shape of the task (`docs/json.md`).
    pub fn summary(&self) -> TaskSummary {
        TaskSummary {
            id: self.id.clone(),
            identifier: self.issue.identifier.clone(),
            title: self.issue.title.clone(),
            state: self.state,
            tracker_state: self.issue.state.clone(),
            priority: self.issue.priority,
            labels: self.issue.labels.clone(),
            attempt: self.attempt,
            retry_kind: self.retry.as_ref().map(|retry| retry.kind),
            retry_due_at_ms: self.retry.as_ref().map(|retry| retry.due_at_ms),
            last_error: self.last_error.clone(),
            workspace_path: self.workspace_path.clone(),
            branch: self.branch.clone(),
            commit: self.commit.clone(),
            question: self.question.clone(),
            feedback: self.feedback.clone(),
            approvals: self.approvals.clone(),
            approvals_required: self.approvals_required,
            verify_rounds: self.verify_rounds,
            verify_outcome: self
                .verify_outcome
                .map(|outcome| outcome.as_str().to_owned()),
            risk: self.risk.clone(),
            pull_request: self.pull_request.clone(),
            run_id: self.run.as_ref().map(|run| run.run_id.clone()),
            run_phase: self.run.as_ref().and_then(|run| run.phase),
            pid: self.run.as_ref().and_then(|run| run.pid),
            attempts: self.history.clone(),
            failure: self.failure.clone(),
            metered_usage: self.metered,
            issue: self.issue.clone(),
            updated_at_ms: self.updated_at_ms,
        }
    }
}

/// Applies one record at time `at`. Total and deterministic: a record about an unknown task is
/// ignored, so a journal replays the same way every time.
pub fn apply(state: &mut State, record: &Record, at: Millis) {
    match record {
        Record::WebhookAccepted {
            source, delivery, ..
        } => {
            state
                .webhook_deliveries
                .insert(delivery_key(source, delivery));
            return;
        }
        Record::WebhookRefused { .. } => return,
        Record::ScheduleArmed { schedule, at_ms } => {
            state
                .schedules
                .entry(schedule.clone())
                .or_default()
                .armed_at_ms = *at_ms;
            return;
        }
        Record::ScheduleFired {
            schedule,
            occurrence_ms,
        } => {
            let entry = state.schedules.entry(schedule.clone()).or_default();
            entry.last_fired_ms = Some(*occurrence_ms);
            entry.pending_ms = Some(*occurrence_ms);
            return;
        }
        Record::ScheduledTaskCreated {
            schedule,
            occurrence_ms,
            ..
        } => {
            if let Some(entry) = state.schedules.get_mut(schedule)
                && entry.pending_ms == Some(*occurrence_ms)
            {
                entry.pending_ms = None;
            }
            return;
        }
        Record::PollIssued => {
            state.last_poll_at_ms = Some(at);
            return;
        }
        Record::RetriesChecked => {
            state.retries_checked_at_ms = Some(at);
            return;
        }
        Record::ModelCallMetered { task_id, call } => {
            state.stats.model_call(call);
            state.totals.model_calls += 1;
            if call.refused.is_some() {
                state.totals.model_calls_refused += 1;
            }
            let usage = TokenUsage {
                input_tokens: call.input_tokens,
                output_tokens: call.output_tokens,
                total_tokens: call.input_tokens + call.output_tokens,
            };
            add_usage(&mut state.totals.metered, usage);
            let spend = Spend::new(usage.total_tokens, call.cost_micros.unwrap_or(0));
            *state.spend_by_day.entry(utc_day(at)).or_default() = state
                .spend_by_day
                .get(&utc_day(at))
                .copied()
                .unwrap_or_default()
                .plus(spend);
            *state.spend_by_month.entry(utc_month(at)).or_default() = state
                .spend_by_month
                .get(&utc_month(at))
                .copied()
                .unwrap_or_default()
                .plus(spend);
            if let Some(task) = task_id.as_ref().and_then(|id| state.tasks.get_mut(id)) {
                add_usage(&mut task.metered, usage);
                task.spend_micros += spend.micros;
                if let Some(run) = task
                    .run
                    .as_mut()
                    .filter(|run| call.run_id.as_deref() == Some(run.run_id.as_str()))
                {
                    run.spend = run.spend.plus(spend);
                    run.tokens_since_progress += spend.tokens;
                }
            }
            return;
        }
        Record::QuotaPaused { until } => {
            state.quota_paused_until = *until;
            return;
        }
        _ => {}
    }
    if let Record::TaskQueued { issue } = record {
        state
            .tasks
            .entry(issue.id.clone())
            .or_insert_with(|| Task::new(issue.clone(), at));
        return;
    }
    let Some(task_id) = record.task_id() else {
        return;
    };
    let Some(task) = state.tasks.get_mut(task_id) else {
        return;
    };
    task.updated_at_ms = at;
    match record {
        Record::TaskQueued { .. }
        | Record::PollIssued
        | Record::RetriesChecked
        | Record::ModelCallMetered { .. }
        | Record::QuotaPaused { .. }
        | Record::ScheduleArmed { .. }
        | Record::ScheduleFired { .. }
        | Record::ScheduledTaskCreated { .. }
        | Record::WebhookAccepted { .. }
        | Record::WebhookRefused { .. }
        | Record::StaleReportRejected { .. } => {}
        Record::IssueUpdated { issue, .. } => task.issue = issue.clone(),
        Record::TaskReopened { issue, .. } => {
            task.issue = issue.clone();
            task.state = TaskState::Queued;
            task.cancel_reason = None;
        }
        Record::RunDispatched {
            run_id,
            run_number,
            retry_kind,
            ..
        } => {
            task.state = TaskState::Running;
            task.retry = None;
            task.runs_started = (*run_number).max(task.runs_started);
            task.run = Some(LiveRun {
                run_id: run_id.clone(),
                run_number: *run_number,
                retry_kind: *retry_kind,
                started_at_ms: at,
                last_event_at_ms: None,
                last_event: None,
                last_message: None,
                phase: None,
                pid: None,
                session_id: None,
                turns: 0,
                tokens: TokenUsage::default(),
                stop: None,
                spend: Spend::default(),
                tokens_since_progress: 0,
            });
            state.totals.runs_started += 1;
        }
        Record::RunLaunched {
            pid,
            workspace_path,
            branch,
            ..
        } => {
            task.workspace_path = Some(workspace_path.clone());
            task.branch = Some(branch.clone());
            if let Some(run) = task.run.as_mut() {
                run.pid = *pid;
            }
        }
        Record::RunPhaseChanged { phase, .. } => {
            if let Some(run) = task.run.as_mut() {
                run.phase = Some(*phase);
            }
        }
        Record::AgentEventRecorded { event, .. } => {
            if let AgentEvent::RateLimits { limits } = event {
                state.rate_limits = Some(limits.clone());
            }
            if let AgentEvent::SandboxViolation { .. } = event {
                state.stats.sandbox_violations += 1;
            }
            if let Some(run) = task.run.as_mut() {
                observe(run, event, at, &mut state.totals);
                // A live agent waiting for a person: the run holds its slot, the task shows
                // the question.
                if let AgentEvent::InputRequired { question }
                | AgentEvent::ApprovalRequired { request: question } = event
                {
                    task.state = TaskState::Blocked;
                    task.question = Some(question.clone());
                    task.blocked_at_ms = Some(at);
                }
            }
        }
        Record::RunStopRequested { reason, .. } => {
            if let Some(run) = task.run.as_mut() {
                run.stop = Some(*reason);
            }
        }
        Record::RunFinished {
            run_id,
            outcome,
            commit,
            error,
            turns,
            counted,
            ..
        } => {
            if let Some(run) = task.run.take() {
                state.totals.run_ms += (at - run.started_at_ms).max(0);
                task.history.push(AttemptSummary {
                    run_id: run_id.clone(),
                    attempt: run.run_number,
                    retry_kind: run.retry_kind,
                    outcome: *outcome,
                    started_at_ms: run.started_at_ms,
                    finished_at_ms: at,
                    turns: *turns,
                    commit: commit.clone(),
                    error: error.clone(),
                });
            }
            state.totals.runs_finished += 1;
            if *counted {
                task.attempt += 1;
            }
            if commit.is_some() {
                task.commit = commit.clone();
            }
            if *outcome != RunOutcome::Succeeded {
                task.last_error = error.clone().or_else(|| Some(outcome.to_string()));
            }
            task.state = TaskState::Verifying;
        }
        Record::RetryScheduled {
            due_at_ms,
            retry_kind,
            error,
            feedback,
            ..
        } => {
            task.state = TaskState::RetryWait;
            task.retry = Some(Retry {
                due_at_ms: *due_at_ms,
                kind: *retry_kind,
            });
            if error.is_some() {
                task.last_error = error.clone();
            }
            task.feedback = feedback.clone();
        }
        Record::ReviewRequested { commit, .. } => {
            task.state = TaskState::AwaitingReview;
            task.commit = Some(commit.clone());
            task.approvals.clear();
        }
        Record::VerificationStarted { commit, round, .. } => {
            task.state = TaskState::Verifying;
            task.commit = Some(commit.clone());
            task.verify_rounds = *round;
            task.commitments.clear();
            task.approvals.clear();
        }
        Record::VerdictCommitted { by, hash, .. } => {
            task.commitments.insert(by.clone(), hash.clone());
        }
        Record::Verified {
            report,
            outcome,
            risk,
            ..
        } => {
            match outcome {
                VerifyOutcome::GatesFailed => task.failed_rounds += 1,
                VerifyOutcome::ReviewersBlocked => {
                    task.failed_rounds += 1;
                    task.reviewer_blocks += 1;
                }
                VerifyOutcome::JudgeVetoed => task.judge_vetoes += 1,
                VerifyOutcome::Passed | VerifyOutcome::VerdictMismatch | VerifyOutcome::Error => {}
            }
            task.verification = Some(report.clone());
            task.verify_outcome = Some(*outcome);
            task.risk = risk.clone();
            task.approvals_required = risk.as_ref().map_or(1, |risk| risk.approvals_required);
        }
        Record::TaskBlocked { question, .. } => {
            task.state = TaskState::Blocked;
            task.question = Some(question.clone());
            task.blocked_at_ms = Some(at);
        }
        Record::Answered { text, .. } => {
            state.stats.intervention(at);
            task.question = None;
            task.blocked_at_ms = None;
            task.feedback = Some(text.clone());
            if task.run.is_some() {
                task.state = TaskState::Running;
            }
        }
        Record::Approved { by, .. } => {
            state.stats.intervention(at);
            if !task.approvals.contains(by) {
                task.approvals.push(by.clone());
            }
        }
        Record::Rejected { comment, .. } => {
            state.stats.intervention(at);
            task.state = TaskState::Rejected;
            task.feedback = Some(comment.clone());
            task.approvals.clear();
        }
        Record::MergeStarted { .. } => task.state = TaskState::Merging,
        Record::PullRequestOpened { pull_request, .. } => {
            task.pull_request = Some(pull_request.clone());
            task.pull_request_closed = false;
            task.published_at_ms = Some(at);
            task.last_error = None;
        }
        Record::PublishFailed { error, .. } => {
            task.last_error = Some(format!("publishing failed: {error}"));
        }
        Record::PullRequestClosed { .. } => task.pull_request_closed = true,
        Record::ChecksFailed { .. } => task.ci_rounds += 1,
        Record::Merged { sha, .. } => {
            task.state = TaskState::Done;
            task.merged_at_ms = Some(at);
            task.commit = Some(sha.clone());
            task.last_error = None;
        }
        Record::MergeConflicted { details, .. } => {
            task.last_error = Some(format!("merge conflict: {details}"));
        }
        Record::MergeFailed { error, .. } => {
            task.state = TaskState::AwaitingReview;
            task.last_error = Some(error.clone());
            task.approvals.clear();
        }
        Record::TaskFailed { report, .. } => {
            task.state = TaskState::Failed;
            task.retry = None;
            task.failure = Some(report.clone());
        }
        Record::TaskCancelled { reason, .. } => {
            if *reason == CancelReason::Operator {
                state.stats.intervention(at);
            }
            task.state = TaskState::Cancelled;
            task.retry = None;
            task.cancel_reason = Some(*reason);
        }
        Record::TaskRetried { .. } => {
            state.stats.intervention(at);
            // Queued again; the retry entry only says why the next run happens.
            task.state = TaskState::Queued;
            task.attempt = 0;
            task.failure = None;
            task.cancel_reason = None;
            task.retry = Some(Retry {
                due_at_ms: at,
                kind: RetryKind::Operator,
            });
        }
    }
}

/// Days since the Unix epoch of `at` (UTC).
pub fn utc_day(at: Millis) -> i64 {
    at.div_euclid(86_400_000)
}

/// `year * 12 + month0` of `at` (UTC), from the civil calendar.
pub fn utc_month(at: Millis) -> i64 {
    // Howard Hinnant's civil_from_days.
    let z = utc_day(at) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + (month - 1)
}

impl State {
    /// Spend so far in `at`'s UTC day and month.
    pub fn period_spend(&self, at: Millis) -> (Spend, Spend) {
        (
            self.spend_by_day
                .get(&utc_day(at))
                .copied()
                .unwrap_or_default(),
            self.spend_by_month
                .get(&utc_month(at))
                .copied()
                .unwrap_or_default(),
        )
    }
}

fn add_usage(total: &mut TokenUsage, more: TokenUsage) {
    total.input_tokens += more.input_tokens;
    total.output_tokens += more.output_tokens;
    total.total_tokens += more.total_tokens;
}

/// Folds an agent event into the live run's observable fields.
fn observe(run: &mut LiveRun, event: &AgentEvent, at: Millis, totals: &mut Totals) {
    run.last_event_at_ms = Some(at);
    run.last_event = Some(event.kind().to_owned());
    match event {
        AgentEvent::SessionStarted { session_id } => run.session_id = Some(session_id.clone()),
        AgentEvent::TurnStarted { turn } => run.turns = (*turn).max(run.turns),
        AgentEvent::Message { text } => run.last_message = Some(text.clone()),
        AgentEvent::Output { line, .. } => run.last_message = Some(line.clone()),
        // The workspace changed: progress, for the no-progress guard.
        AgentEvent::FileChange { .. } => run.tokens_since_progress = 0,
        AgentEvent::TokenUsage { usage } => {
            // Totals are absolute per session: add only the growth.
            totals.tokens.input_tokens +=
                usage.input_tokens.saturating_sub(run.tokens.input_tokens);
            totals.tokens.output_tokens +=
                usage.output_tokens.saturating_sub(run.tokens.output_tokens);
            totals.tokens.total_tokens +=
                usage.total_tokens.saturating_sub(run.tokens.total_tokens);
            run.tokens = *usage;
        }
        _ => {}
    }
}

/// Rebuilds state from journaled records, in order.
pub fn replay<'a>(records: impl IntoIterator<Item = (&'a Record, Millis)>) -> State {
    let mut state = State::default();
    for (record, at) in records {
        apply(&mut state, record, at);
    }
    state
}
