//! `handle(state, policy, event, now) -> Step`: every decision the orchestrator makes.

use std::collections::{BTreeMap, BTreeSet};

use takt_protocol::{
    FailureReport, Issue, Millis, RetryKind, RiskRule, RiskTier, RunOutcome, TaskState,
    VerificationReport,
};

use crate::messages::{
    CancelReason, Command, Event, MergeResult, OperatorCommand, Record, RunExit, RunSpec, Step,
    StopReason, VerifyOutcome,
};
use crate::policy::{CONTINUATION_DELAY_MS, OnBlock, Policy, dispatch_order};
use crate::state::{State, Task, apply};
use crate::{budget, risk};

mod forge;

/// Decides what `event` means at time `now`. Records are applied to `state` as they are
/// decided (so later decisions in the same step see them) and returned for the journal; the
/// caller must journal `step.records` before executing `step.commands`.
pub fn handle(state: &mut State, policy: &Policy, event: Event, now: Millis) -> Step {
    let mut decider = Decider {
        state,
        policy,
        now,
        step: Step::default(),
    };
    decider.on(event);
    decider.step
}

/// The earliest time at which a [`Event::Tick`] has something to do.
pub fn next_deadline(state: &State, policy: &Policy) -> Millis {
    let poll = state.last_poll_at_ms.map_or(0, |at| {
        at.saturating_add(to_millis(policy.poll_interval_ms))
    });
    let mut deadline = poll;
    // A due retry that found no free slot is looked at again a second later, not in a loop.
    let recheck = state
        .retries_checked_at_ms
        .map_or(Millis::MIN, |at| at + CONTINUATION_DELAY_MS);
    for task in state.tasks.values() {
        if let (TaskState::RetryWait, Some(retry)) = (task.state, &task.retry) {
            deadline = deadline.min(retry.due_at_ms.max(recheck));
        }
        if let Some(run) = task.run.as_ref().filter(|run| run.stop.is_none()) {
            if policy.stall_timeout_ms > 0 && task.state != TaskState::Blocked {
                let quiet_since = run.last_event_at_ms.unwrap_or(run.started_at_ms);
                deadline = deadline.min(quiet_since + policy.stall_timeout_ms + 1);
            }
            deadline = deadline.min(run.started_at_ms + to_millis(policy.max_run_duration_ms) + 1);
        }
    }
    for schedule in &policy.schedules {
        // A schedule not armed yet is armed by the next tick.
        let next = match state.schedules.get(&schedule.name) {
            Some(seen) => schedule.next_after(seen.owed_after()),
            None => Some(0),
        };
        if let Some(next) = next {
            deadline = deadline.min(next);
        }
    }
    deadline
}

fn to_millis(ms: u64) -> Millis {
    Millis::try_from(ms).unwrap_or(Millis::MAX / 4)
}

struct Decider<'a> {
    state: &'a mut State,
    policy: &'a Policy,
    now: Millis,
    step: Step,
}

impl Decider<'_> {
    fn record(&mut self, record: Record) {
        apply(self.state, &record, self.now);
        self.step.records.push(record);
    }

    fn command(&mut self, command: Command) {
        self.step.commands.push(command);
    }

    fn refuse(&mut self, why: String) {
        self.step.refusal = Some(why);
    }

    fn on(&mut self, event: Event) {
        match event {
            Event::Tick => self.on_tick(),
            Event::PollRequested => self.poll(),
            Event::CandidatesFetched { issues } => self.on_candidates(issues),
            Event::CandidatesFailed { .. } | Event::RefreshFailed { .. } => {}
            Event::IssuesRefreshed { requested, issues } => self.on_refreshed(requested, issues),
            Event::RunLaunched {
                run_id,
                pid,
                workspace_path,
                branch,
            } => {
                if let Some(task_id) = self.live_task(&run_id, "run_launched") {
                    self.record(Record::RunLaunched {
                        task_id,
                        run_id,
                        pid,
                        workspace_path,
                        branch,
                    });
                }
            }
            Event::RunPhaseChanged { run_id, phase } => {
                if let Some(task_id) = self.live_task(&run_id, "run_phase_changed") {
                    self.record(Record::RunPhaseChanged {
                        task_id,
                        run_id,
                        phase,
                    });
                }
            }
            Event::AgentActivity { run_id, event } => {
                if let Some(task_id) = self.live_task(&run_id, "agent_activity") {
                    self.record(Record::AgentEventRecorded {
                        task_id,
                        run_id,
                        event,
                    });
                }
            }
            Event::RunExited(exit) => self.on_run_exit(exit),
            Event::MergeFinished { task_id, result } => self.on_merge_finished(task_id, result),
            Event::Published {
                task_id,
                commit,
                result,
            } => self.on_published(task_id, commit, result),
            Event::PullRequestChecked {
                task_id,
                number,
                review,
            } => self.on_pull_request_checked(task_id, number, review),
            Event::PullRequestClosed {
                task_id,
                number,
                result,
            } => self.on_pull_request_closed(task_id, number, result),
            Event::Operator(command) => self.on_operator(command),
            Event::Restarted => self.on_restarted(),
            Event::IssueWritten { issue } => {
                let changed = self
                    .state
                    .tasks
                    .get(&issue.id)
                    .is_some_and(|task| task.issue != issue);
                if changed {
                    self.record(Record::IssueUpdated {
                        task_id: issue.id.clone(),
                        issue,
                    });
                }
            }
            Event::ModelCall(call) => {
                let task_id = call
                    .run_id
                    .as_deref()
                    .and_then(|run_id| {
                        self.state.task_of_run(run_id).or_else(|| {
                            run_task_hint(self.state, run_id)
                                .and_then(|id| self.state.tasks.get(&id))
                        })
                    })
                    .map(|task| task.id.clone());
                let run_id = call.run_id.clone();
                let cap_reached = call.cap_reached.is_some();
                self.record(Record::ModelCallMetered { task_id, call });
                if let Some(run_id) = run_id {
                    self.guard_spend(&run_id, cap_reached);
                }
            }
            Event::QuotaChanged { until } => {
                self.record(Record::QuotaPaused { until });
            }
            Event::VerdictCommitted {
                task_id,
                commit,
                by,
                hash,
            } => {
                if self.verifying(&task_id, &commit) {
                    self.record(Record::VerdictCommitted { task_id, by, hash });
                } else {
                    self.stale_verification(task_id, "verdict_committed");
                }
            }
            Event::VerificationFinished {
                task_id,
                report,
                feedback,
            } => self.on_verified(task_id, *report, feedback),
            Event::WebhookReceived {
                source,
                delivery,
                summary,
            } => {
                if self
                    .state
                    .webhook_deliveries
                    .contains(&crate::state::delivery_key(&source, &delivery))
                {
                    self.record(Record::WebhookRefused {
                        source,
                        delivery: Some(delivery.clone()),
                        reason: "replayed delivery".into(),
                    });
                    return self.refuse(format!(
                        "delivery {delivery} was already received; a replay is ignored"
                    ));
                }
                self.record(Record::WebhookAccepted {
                    source,
                    delivery,
                    summary,
                });
                // A dispatch decision now, not at the next poll.
                self.poll();
            }
            Event::WebhookRefused {
                source,
                delivery,
                reason,
            } => self.record(Record::WebhookRefused {
                source,
                delivery,
                reason,
            }),
            Event::ScheduledTaskCreated {
                schedule,
                occurrence_ms,
                issue_id,
            } => {
                self.record(Record::ScheduledTaskCreated {
                    schedule,
                    occurrence_ms,
                    issue_id,
                });
                self.poll();
            }
        }
    }

    /// Stops a live run whose call reached a budget cap, or that has spent
    /// `budget.max_tokens_without_progress` tokens without changing its workspace.
    fn guard_spend(&mut self, run_id: &str, cap_reached: bool) {
        let Some(task) = self.state.task_of_run(run_id) else {
            return;
        };
        let Some(run) = task.run.as_ref().filter(|run| run.stop.is_none()) else {
            return;
        };
        let reason = if cap_reached {
            StopReason::Budget
        } else if self.policy.budget.stalled(run.tokens_since_progress) {
            StopReason::NoProgress
        } else {
            return;
        };
        self.stop_run(task.id.clone(), run_id.to_owned(), reason);
    }

    /// Whether the budget leaves room for one more run of `task` now: the task's own caps and
    /// today's and this month's must cover at least one model call, estimated at the average
    /// metered call so far.
    fn budget_admits(&self, task: &Task) -> Result<(), budget::Exhaustion> {
        let (day, month) = self.state.period_spend(self.now);
        let spent = budget::Spent {
            run: budget::Spend::default(),
            task: budget::Spend::new(task.metered.total_tokens, task.spend_micros),
            day,
            month,
        };
        if let Some(hit) = budget::exhausted_by(&self.policy.budget, &spent) {
            return Err(hit);
        }
        let calls = self
            .state
            .totals
            .model_calls
            .saturating_sub(self.state.totals.model_calls_refused)
            .max(1);
        let metered = self.state.totals.metered.total_tokens;
        let micros: u64 = self.state.tasks.values().map(|t| t.spend_micros).sum();
        let estimate = budget::Spend::new((metered / calls).max(1), micros / calls);
        let room = budget::headroom(&self.policy.budget, &spent);
        if room.covers(estimate) {
            return Ok(());
        }
        // The tightest cap cannot cover an average run: report it as reached.
        let left = room
            .tokens
            .filter(|left| left.left < estimate.tokens)
            .map(|left| (left, budget::Unit::Tokens))
            .or_else(|| room.micros.map(|left| (left, budget::Unit::Micros)));
        match left {
            Some((left, unit)) => {
                let cap = budget::Cap {
                    scope: left.scope,
                    unit,
                };
                let limit = self.policy.budget.cap(cap).unwrap_or(0);
                Err(budget::Exhaustion {
                    cap,
                    limit,
                    spent: limit.saturating_sub(left.left),
                    overshoot: 0,
                })
            }
            None => Ok(()),
        }
    }

    /// Arms schedules seen for the first time and fires those with an occurrence due (once,
    /// for the latest one, however many were missed).
    fn check_schedules(&mut self) {
        for schedule in &self.policy.schedules {
            let Some(seen) = self.state.schedules.get(&schedule.name).copied() else {
                self.record(Record::ScheduleArmed {
                    schedule: schedule.name.clone(),
                    at_ms: self.now,
                });
                continue;
            };
            let Some(occurrence_ms) = schedule.due(seen.owed_after(), self.now) else {
                continue;
            };
            self.record(Record::ScheduleFired {
                schedule: schedule.name.clone(),
                occurrence_ms,
            });
            self.command(Command::CreateScheduledTask {
                schedule: schedule.name.clone(),
                occurrence_ms,
                template: schedule.template.clone(),
            });
        }
    }

    /// The fencing check: the id of the task whose *current* run is `run_id`, or a journaled
    /// rejection of the stale report.
    fn live_task(&mut self, run_id: &str, what: &str) -> Option<String> {
        if let Some(task) = self.state.task_of_run(run_id) {
            return Some(task.id.clone());
        }
        let task_id = run_task_hint(self.state, run_id);
        self.record(Record::StaleReportRejected {
            task_id,
            run_id: run_id.to_owned(),
            what: what.to_owned(),
        });
        None
    }

    fn on_tick(&mut self) {
        self.check_schedules();
        let now = self.now;
        let mut stops = Vec::new();
        for task in self.state.running() {
            let Some(run) = task.run.as_ref().filter(|run| run.stop.is_none()) else {
                continue;
            };
            let quiet_since = run.last_event_at_ms.unwrap_or(run.started_at_ms);
            // An agent waiting for a person, or for the model endpoint during an upstream quota
            // window, is quiet by design: no stall, only the wall clock.
            let waiting = task.state == TaskState::Blocked
                || self
                    .state
                    .quota_paused_until
                    .is_some_and(|until| until > now);
            if !waiting
                && self.policy.stall_timeout_ms > 0
                && now - quiet_since > self.policy.stall_timeout_ms
            {
                stops.push((task.id.clone(), run.run_id.clone(), StopReason::Stalled));
            } else if now - run.started_at_ms > to_millis(self.policy.max_run_duration_ms) {
                stops.push((task.id.clone(), run.run_id.clone(), StopReason::WallClock));
            }
        }
        for (task_id, run_id, reason) in stops {
            self.stop_run(task_id, run_id, reason);
        }

        let poll_due = self
            .state
            .last_poll_at_ms
            .is_none_or(|at| now >= at.saturating_add(to_millis(self.policy.poll_interval_ms)));
        if poll_due {
            self.poll();
        } else {
            let due: Vec<String> = self
                .state
                .tasks
                .values()
                .filter(|task| is_due(task, now))
                .map(|task| task.id.clone())
                .collect();
            if !due.is_empty() {
                self.record(Record::RetriesChecked);
                self.command(Command::RefreshIssues { ids: due });
            }
        }
    }

    /// Reconcile everything held (R-078: before dispatch), then fetch candidates.
    fn poll(&mut self) {
        self.record(Record::PollIssued);
        let held: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|task| !task.state.is_terminal())
            .map(|task| task.id.clone())
            .collect();
        if !held.is_empty() {
            self.command(Command::RefreshIssues { ids: held });
        }
        self.follow_pull_requests();
        self.command(Command::FetchCandidates);
    }

    fn stop_run(&mut self, task_id: String, run_id: String, reason: StopReason) {
        self.record(Record::RunStopRequested {
            task_id,
            run_id: run_id.clone(),
            reason,
        });
        self.command(Command::StopRun { run_id, reason });
    }

    fn on_candidates(&mut self, issues: Vec<Issue>) {
        let mut active = BTreeSet::new();
        for issue in &issues {
            if !issue.has_required_fields() || !self.policy.is_active(&issue.state) {
                continue;
            }
            active.insert(issue.id.clone());
            let routable = self.policy.is_routable(issue);
            match self.state.tasks.get(&issue.id) {
                None if routable => self.record(Record::TaskQueued {
                    issue: issue.clone(),
                }),
                Some(task)
                    if task.state == TaskState::Cancelled
                        && task.cancel_reason == Some(CancelReason::LeftActive)
                        && routable =>
                {
                    self.record(Record::TaskReopened {
                        task_id: issue.id.clone(),
                        issue: issue.clone(),
                    });
                }
                Some(task) if task.state == TaskState::Queued && task.issue != *issue => {
                    self.record(Record::IssueUpdated {
                        task_id: issue.id.clone(),
                        issue: issue.clone(),
                    });
                }
                _ => {}
            }
        }
        // A queued task whose issue is no longer among the active ones left the active states.
        let gone: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|task| task.state == TaskState::Queued && !active.contains(&task.id))
            .map(|task| task.id.clone())
            .collect();
        for task_id in gone {
            self.record(Record::TaskCancelled {
                task_id,
                reason: CancelReason::LeftActive,
            });
        }
        self.dispatch(&issues);
    }

    fn on_refreshed(&mut self, requested: Vec<String>, issues: Vec<Issue>) {
        let by_id: BTreeMap<&str, &Issue> = issues
            .iter()
            .map(|issue| (issue.id.as_str(), issue))
            .collect();
        for id in &requested {
            let Some(task) = self.state.tasks.get(id) else {
                continue;
            };
            let current = by_id.get(id.as_str()).copied();
            let terminal = current.is_some_and(|issue| self.policy.is_terminal(&issue.state));
            let usable = current.is_some_and(|issue| {
                self.policy.is_active(&issue.state) && self.policy.is_routable(issue)
            });
            let changed = current.filter(|issue| **issue != task.issue).cloned();

            if let Some(run) = task.run.as_ref() {
                // reconcile a live run.
                if run.stop.is_some() {
                    continue;
                }
                let run_id = run.run_id.clone();
                if terminal {
                    self.stop_run(id.clone(), run_id, StopReason::TrackerTerminal);
                } else if !usable {
                    self.stop_run(id.clone(), run_id, StopReason::LeftActive);
                } else if let Some(issue) = changed {
                    self.record(Record::IssueUpdated {
                        task_id: id.clone(),
                        issue,
                    });
                }
                continue;
            }
            match task.state {
                TaskState::Queued | TaskState::RetryWait | TaskState::Rejected => {
                    if terminal {
                        self.cancel(id.clone(), CancelReason::TrackerTerminal);
                    } else if !usable {
                        self.cancel(id.clone(), CancelReason::LeftActive);
                    } else if let Some(issue) = changed {
                        self.record(Record::IssueUpdated {
                            task_id: id.clone(),
                            issue,
                        });
                    }
                }
                TaskState::Blocked | TaskState::AwaitingReview | TaskState::Verifying => {
                    if terminal {
                        self.cancel(id.clone(), CancelReason::TrackerTerminal);
                    } else if current.is_none() {
                        self.cancel(id.clone(), CancelReason::LeftActive);
                    } else if let Some(issue) = changed {
                        self.record(Record::IssueUpdated {
                            task_id: id.clone(),
                            issue,
                        });
                    }
                }
                // A merge in flight finishes first; finished tasks only follow their issue.
                _ => {
                    if let Some(issue) = changed {
                        self.record(Record::IssueUpdated {
                            task_id: id.clone(),
                            issue,
                        });
                    }
                }
            }
        }
        let requested: BTreeSet<&String> = requested.iter().collect();
        let due: Vec<Issue> = issues
            .into_iter()
            .filter(|issue| requested.contains(&issue.id))
            .collect();
        self.dispatch(&due);
    }

    fn cancel(&mut self, task_id: String, reason: CancelReason) {
        let clean = reason == CancelReason::TrackerTerminal;
        let identifier = self.identifier(&task_id);
        let path = self
            .state
            .tasks
            .get(&task_id)
            .and_then(|task| task.workspace_path.clone());
        self.record(Record::TaskCancelled {
            task_id: task_id.clone(),
            reason,
        });
        self.close_pull_request(&task_id);
        if clean {
            self.command(Command::CleanWorkspace {
                task_id,
                identifier,
                path,
            });
        }
    }

    fn identifier(&self, task_id: &str) -> String {
        self.state
            .tasks
            .get(task_id)
            .map(|task| task.issue.identifier.clone())
            .unwrap_or_default()
    }

    /// Starts runs for eligible tasks among `issues`, in dispatch order, while slots remain
    /// (R-075, R-079..R-082).
    fn dispatch(&mut self, issues: &[Issue]) {
        let now = self.now;
        let mut eligible: Vec<&Issue> = issues
            .iter()
            .filter(|issue| {
                issue.has_required_fields()
                    && self.policy.is_active(&issue.state)
                    && self.policy.is_routable(issue)
                    && self.state.tasks.get(&issue.id).is_some_and(|task| {
                        task.run.is_none() && (task.state == TaskState::Queued || is_due(task, now))
                    })
            })
            .collect();
        eligible.sort_by(|a, b| dispatch_order(a, b));
        // Slots are counted once and kept current as runs start (not rescanned per issue).
        let mut running = self.state.running_count();
        let mut per_state: BTreeMap<String, usize> = BTreeMap::new();
        for task in self.state.running() {
            *per_state
                .entry(takt_protocol::normalize_state(&task.issue.state))
                .or_default() += 1;
        }
        // An upstream quota window holds every dispatch until it opens.
        if self
            .state
            .quota_paused_until
            .is_some_and(|until| until > now)
        {
            return;
        }
        let mut started = BTreeSet::new();
        for issue in eligible {
            if !started.insert(issue.id.clone()) {
                continue;
            }
            let verdict = match self.state.tasks.get(&issue.id) {
                Some(task) => self.budget_admits(task),
                None => Ok(()),
            };
            if let Err(hit) = verdict {
                // The task's own cap never reopens: the task ends (or waits for a person);
                // a day or month cap holds the task until the period turns.
                if hit.cap.scope == budget::Scope::Task {
                    self.budget_exhausted(issue.id.clone(), &hit);
                }
                continue;
            }
            if running >= self.policy.max_concurrent_agents as usize {
                break;
            }
            let state_key = takt_protocol::normalize_state(&issue.state);
            let in_state = per_state.get(&state_key).copied().unwrap_or(0);
            if in_state >= self.policy.state_limit(&issue.state) as usize {
                continue;
            }
            self.start_run(issue.clone());
            running += 1;
            *per_state.entry(state_key).or_default() += 1;
        }
    }

    fn start_run(&mut self, issue: Issue) {
        let Some(task) = self.state.tasks.get(&issue.id) else {
            return;
        };
        let run_number = task.runs_started + 1;
        let run_id = format!("{}#{run_number}", issue.identifier);
        let retry_kind = task.retry.as_ref().map(|retry| retry.kind);
        let spec = RunSpec {
            run_id: run_id.clone(),
            task_id: task.id.clone(),
            issue: issue.clone(),
            attempt: (run_number > 1).then(|| run_number - 1),
            retry_kind,
            last_error: task.last_error.clone(),
            feedback: task.feedback.clone(),
        };
        if task.issue != issue {
            self.record(Record::IssueUpdated {
                task_id: issue.id.clone(),
                issue: issue.clone(),
            });
        }
        self.record(Record::RunDispatched {
            task_id: issue.id.clone(),
            run_id,
            run_number,
            retry_kind,
        });
        if let Some(state) = self.policy.on_start_state.clone()
            && takt_protocol::normalize_state(&state)
                != takt_protocol::normalize_state(&issue.state)
        {
            self.command(Command::TransitionIssue {
                issue_id: issue.id.clone(),
                state,
            });
        }
        self.command(Command::StartRun(Box::new(spec)));
    }

    fn on_run_exit(&mut self, exit: RunExit) {
        let Some(task_id) = self.live_task(&exit.run_id, "run_exited") else {
            return;
        };
        self.finish_run(task_id, exit);
        // A freed slot goes to waiting work now rather than at the next poll.
        let now = self.now;
        let waiting = self
            .state
            .tasks
            .values()
            .any(|task| task.state == TaskState::Queued || is_due(task, now));
        let free = self.state.running_count() < self.policy.max_concurrent_agents as usize;
        if waiting && free && !self.step.commands.contains(&Command::FetchCandidates) {
            self.poll();
        }
    }

    fn finish_run(&mut self, task_id: String, exit: RunExit) {
        let stop = self
            .state
            .tasks
            .get(&task_id)
            .and_then(|task| task.run.as_ref())
            .and_then(|run| run.stop);
        let finish =
            |outcome: RunOutcome, error: Option<String>, counted: bool| Record::RunFinished {
                task_id: task_id.clone(),
                run_id: exit.run_id.clone(),
                outcome,
                commit: exit.commit.clone(),
                error,
                turns: exit.turns,
                counted,
            };
        let cancel_reason = match stop {
            Some(StopReason::TrackerTerminal) => Some(CancelReason::TrackerTerminal),
            Some(StopReason::LeftActive) => Some(CancelReason::LeftActive),
            Some(StopReason::Operator) => Some(CancelReason::Operator),
            _ => None,
        };
        if let Some(reason) = cancel_reason {
            self.record(finish(RunOutcome::Cancelled, exit.error.clone(), false));
            self.cancel(task_id.clone(), reason);
            if reason == CancelReason::Operator {
                self.transition_issue(&task_id, self.policy.on_cancel_state.clone());
            }
            return;
        }
        let (outcome, error) = match stop {
            Some(StopReason::Stalled) => (
                RunOutcome::Stalled,
                Some(format!(
                    "stalled for more than {} ms without agent activity",
                    self.policy.stall_timeout_ms
                )),
            ),
            Some(StopReason::WallClock) => (
                RunOutcome::TimedOut,
                Some(format!(
                    "ran longer than agent.max_run_duration_ms ({} ms)",
                    self.policy.max_run_duration_ms
                )),
            ),
            Some(StopReason::NoProgress) => (
                RunOutcome::Stalled,
                Some(format!(
                    "spent more than budget.max_tokens_without_progress ({} tokens) without \
                     changing the workspace",
                    self.policy
                        .budget
                        .max_tokens_without_progress
                        .unwrap_or_default()
                )),
            ),
            Some(StopReason::Budget) => {
                let report = self.spend_report(&task_id);
                self.record(finish(
                    RunOutcome::BudgetExhausted,
                    Some(report.clone()),
                    true,
                ));
                self.budget_stop(task_id, report);
                return;
            }
            _ => (exit.outcome, exit.error.clone()),
        };
        match outcome {
            RunOutcome::Succeeded => {
                self.record(finish(outcome, None, true));
                match exit.commit.clone() {
                    Some(commit) => self.deliver(task_id, commit),
                    None => self.retry_or_fail(
                        task_id,
                        RetryKind::Continuation,
                        CONTINUATION_DELAY_MS,
                        Some("the agent finished without changing anything".into()),
                        None,
                    ),
                }
            }
            RunOutcome::InputRequired => {
                self.record(finish(outcome, error, false));
                let question = exit
                    .question
                    .clone()
                    .unwrap_or_else(|| "the agent needs input to continue".into());
                self.record(Record::TaskBlocked { task_id, question });
            }
            RunOutcome::Interrupted => {
                self.record(finish(outcome, error.clone(), false));
                self.schedule(task_id, RetryKind::Interrupted, 0, error, None);
            }
            RunOutcome::Cancelled => {
                // Cancelled without a stop request: the shell found the issue ineligible just
                // before launch (stale dispatch, R-083).
                self.record(finish(outcome, error, false));
                self.cancel(task_id, CancelReason::LeftActive);
            }
            RunOutcome::Failed
            | RunOutcome::TimedOut
            | RunOutcome::Stalled
            | RunOutcome::BudgetExhausted
            | RunOutcome::SandboxViolation => {
                self.record(finish(outcome, error.clone(), true));
                let attempt = self
                    .state
                    .tasks
                    .get(&task_id)
                    .map_or(1, |task| task.attempt);
                let delay = to_millis(self.policy.failure_backoff_ms(attempt));
                self.retry_or_fail(task_id, RetryKind::Failure, delay, error, None);
            }
        }
    }

    /// What a task spent and where its work is, for a budget stop.
    fn spend_report(&self, task_id: &str) -> String {
        let Some(task) = self.state.tasks.get(task_id) else {
            return "a budget cap was reached".into();
        };
        let run = task.run.as_ref().map(|run| run.spend).unwrap_or_default();
        let (day, _) = self.state.period_spend(self.now);
        format!(
            "a budget cap was reached; this run spent {} tokens ({}), the task {} tokens ({}), \
             today {} tokens ({}); the work so far is committed on {}",
            run.tokens,
            budget::usd(run.micros),
            task.metered.total_tokens,
            budget::usd(task.spend_micros),
            day.tokens,
            budget::usd(day.micros),
            task.branch.as_deref().unwrap_or("the task branch"),
        )
    }

    /// Ends a task whose budget is spent: failed (`on_exhaust: stop`) or blocked with the
    /// spend as its question (`pause`), never retried into the same wall.
    fn budget_stop(&mut self, task_id: String, report: String) {
        match self.policy.budget.on_exhaust {
            budget::OnExhaust::Stop => self.fail(task_id, report),
            budget::OnExhaust::Pause => self.record(Record::TaskBlocked {
                task_id,
                question: format!(
                    "{report}. Raise `budget` in WORKFLOW.md, then answer to resume."
                ),
            }),
        }
    }

    fn budget_exhausted(&mut self, task_id: String, hit: &budget::Exhaustion) {
        let unit = match hit.cap.unit {
            budget::Unit::Tokens => format!("{} of {} tokens", hit.spent, hit.limit),
            budget::Unit::Micros => {
                format!("{} of {}", budget::usd(hit.spent), budget::usd(hit.limit))
            }
        };
        let report = format!("the {} cannot cover another run ({unit} spent)", hit.cap);
        self.budget_stop(task_id, report);
    }

    /// A run produced a commit: verify it. What happens next is the verification's call.
    fn deliver(&mut self, task_id: String, commit: String) {
        let Some(task) = self.state.tasks.get(&task_id) else {
            return;
        };
        let round = task.verify_rounds + 1;
        self.verify(task_id, commit, round);
    }

    /// Starts (or, after a restart, restarts) the `round`-th verification of `commit`.
    fn verify(&mut self, task_id: String, commit: String, round: u32) {
        let identifier = self.identifier(&task_id);
        self.record(Record::VerificationStarted {
            task_id: task_id.clone(),
            commit: commit.clone(),
            round,
        });
        self.command(Command::Verify {
            task_id,
            identifier,
            commit,
            round,
        });
    }

    /// Whether `task_id` is verifying `commit` right now (a report about anything else is
    /// stale).
    fn verifying(&self, task_id: &str, commit: &str) -> bool {
        self.state.tasks.get(task_id).is_some_and(|task| {
            task.state == TaskState::Verifying && task.commit.as_deref() == Some(commit)
        })
    }

    fn stale_verification(&mut self, task_id: String, what: &str) {
        self.record(Record::StaleReportRejected {
            task_id: Some(task_id),
            run_id: String::new(),
            what: what.into(),
        });
    }

    /// Verification is over: decide from the evidence. Red gates and reviewer blocks send the
    /// change back while rounds remain; the judge's first veto sends it back once; a change
    /// that passes goes where its risk tier says.
    fn on_verified(&mut self, task_id: String, report: VerificationReport, feedback: String) {
        let current_round = self
            .state
            .tasks
            .get(&task_id)
            .map_or(0, |task| task.verify_rounds);
        if !self.verifying(&task_id, &report.commit) || report.round != current_round {
            return self.stale_verification(task_id, "verification_finished");
        }
        let Some(task) = self.state.tasks.get(&task_id) else {
            return;
        };
        let identifier = task.issue.identifier.clone();
        let last_round = task.failed_rounds + 1 >= self.policy.verification.max_rounds;
        let first_veto = task.judge_vetoes == 0;
        let mismatched = mismatched_verdicts(&task.commitments, &report);
        let judge_vetoed = report.judge.as_ref().is_some_and(|judge| !judge.pass);
        let blocked = report.reviewers.iter().any(|verdict| !verdict.pass);
        let outcome = if report.error.is_some() {
            VerifyOutcome::Error
        } else if !report.gates_green() {
            VerifyOutcome::GatesFailed
        } else if !mismatched.is_empty() {
            VerifyOutcome::VerdictMismatch
        } else if judge_vetoed {
            VerifyOutcome::JudgeVetoed
        } else if blocked {
            VerifyOutcome::ReviewersBlocked
        } else {
            VerifyOutcome::Passed
        };
        let send_back = match outcome {
            VerifyOutcome::GatesFailed => !last_round,
            VerifyOutcome::JudgeVetoed => first_veto,
            VerifyOutcome::ReviewersBlocked => {
                self.policy.verification.on_block == OnBlock::SendBack && !last_round
            }
            _ => false,
        };
        let reaches_people = matches!(
            outcome,
            VerifyOutcome::Passed
                | VerifyOutcome::VerdictMismatch
                | VerifyOutcome::JudgeVetoed
                | VerifyOutcome::ReviewersBlocked
        ) && !send_back;
        let risk = reaches_people.then(|| {
            let mut risk = risk::assess(
                &self.policy.verification.risk,
                &report,
                outcome == VerifyOutcome::JudgeVetoed,
            );
            for by in &mismatched {
                risk::escalate(
                    &mut risk,
                    &self.policy.verification.risk,
                    RiskRule {
                        rule: "verdict_mismatch".into(),
                        tier: RiskTier::Review,
                        detail: format!(
                            "{by}'s revealed verdict does not match the hash committed for it"
                        ),
                    },
                );
            }
            if outcome == VerifyOutcome::ReviewersBlocked {
                risk::escalate(
                    &mut risk,
                    &self.policy.verification.risk,
                    RiskRule {
                        rule: "reviewer_block".into(),
                        tier: RiskTier::Review,
                        detail: blocked_by(&report),
                    },
                );
            }
            risk
        });
        let error = report.error.clone();
        let summary = verification_summary(&report, outcome);
        self.record(Record::Verified {
            task_id: task_id.clone(),
            report: Box::new(report),
            outcome,
            risk: risk.clone(),
        });
        if send_back {
            return self.retry_or_fail(
                task_id,
                RetryKind::Verification,
                0,
                Some(summary),
                Some(feedback),
            );
        }
        match (outcome, risk) {
            (VerifyOutcome::Error, _) => self.fail(
                task_id,
                format!(
                    "verification could not finish: {}. Fix the cause (`takt doctor` checks the \
                     sandbox), then run `takt task retry {identifier}`",
                    error.unwrap_or_default()
                ),
            ),
            (VerifyOutcome::GatesFailed, _) => self.fail(
                task_id,
                format!(
                    "{summary}; the last of {} verification rounds (review.max_rounds)",
                    self.policy.verification.max_rounds
                ),
            ),
            (_, Some(risk)) if risk.tier == RiskTier::AutoShip && !self.policy.publish.forge => {
                self.start_merge(task_id)
            }
            (_, _) => {
                let commit = self
                    .state
                    .tasks
                    .get(&task_id)
                    .and_then(|task| task.commit.clone())
                    .unwrap_or_default();
                self.record(Record::ReviewRequested {
                    task_id: task_id.clone(),
                    commit,
                });
                self.transition_issue(&task_id, self.policy.on_review_state.clone());
                if self.policy.publish.forge {
                    self.publish(&task_id);
                }
            }
        }
    }

    fn start_merge(&mut self, task_id: String) {
        let Some(task) = self.state.tasks.get(&task_id) else {
            return;
        };
        let (Some(branch), Some(commit)) = (task.branch.clone(), task.commit.clone()) else {
            return;
        };
        let identifier = task.issue.identifier.clone();
        let pull_request = self.forge_pull_request(task);
        self.record(Record::MergeStarted {
            task_id: task_id.clone(),
        });
        self.command(Command::Merge {
            task_id,
            identifier,
            branch,
            commit,
            pull_request,
        });
    }

    /// The pull request a merge goes through, when changes are published to a forge.
    fn forge_pull_request(&self, task: &Task) -> Option<u64> {
        task.pull_request
            .as_ref()
            .filter(|_| self.policy.publish.forge)
            .map(|pr| pr.number)
    }

    fn retry_or_fail(
        &mut self,
        task_id: String,
        kind: RetryKind,
        delay: Millis,
        error: Option<String>,
        feedback: Option<String>,
    ) {
        let exhausted = self
            .state
            .tasks
            .get(&task_id)
            .is_some_and(|task| task.attempt >= self.policy.max_attempts);
        if exhausted {
            let reason = error.unwrap_or_else(|| "the task ran out of attempts".into());
            self.fail(task_id, reason);
        } else {
            self.schedule(task_id, kind, delay, error, feedback);
        }
    }

    fn schedule(
        &mut self,
        task_id: String,
        kind: RetryKind,
        delay: Millis,
        error: Option<String>,
        feedback: Option<String>,
    ) {
        self.record(Record::RetryScheduled {
            task_id: task_id.clone(),
            due_at_ms: self.now + delay,
            retry_kind: kind,
            error,
            feedback,
        });
        if delay == 0 {
            self.command(Command::RefreshIssues { ids: vec![task_id] });
        }
    }

    fn fail(&mut self, task_id: String, reason: String) {
        let Some(task) = self.state.tasks.get(&task_id) else {
            return;
        };
        let report = failure_report(task, reason, self.policy.max_attempts);
        self.record(Record::TaskFailed {
            task_id: task_id.clone(),
            report,
        });
        self.transition_issue(&task_id, self.policy.on_failed_state.clone());
    }

    fn transition_issue(&mut self, task_id: &str, state: Option<String>) {
        if let (Some(state), Some(task)) = (state, self.state.tasks.get(task_id)) {
            self.command(Command::TransitionIssue {
                issue_id: task.issue.id.clone(),
                state,
            });
        }
    }

    fn on_merge_finished(&mut self, task_id: String, result: MergeResult) {
        let merging = self
            .state
            .tasks
            .get(&task_id)
            .is_some_and(|task| task.state == TaskState::Merging);
        if !merging {
            self.record(Record::StaleReportRejected {
                task_id: Some(task_id),
                run_id: String::new(),
                what: "merge_finished".into(),
            });
            return;
        }
        match result {
            MergeResult::Merged { sha } => {
                let identifier = self.identifier(&task_id);
                let path = self
                    .state
                    .tasks
                    .get(&task_id)
                    .and_then(|task| task.workspace_path.clone());
                self.record(Record::Merged {
                    task_id: task_id.clone(),
                    sha,
                });
                self.transition_issue(&task_id, self.policy.on_done_state.clone());
                self.command(Command::CleanWorkspace {
                    task_id,
                    identifier,
                    path,
                });
            }
            MergeResult::Conflict { details } => {
                self.record(Record::MergeConflicted {
                    task_id: task_id.clone(),
                    details: details.clone(),
                });
                let feedback = format!(
                    "Merging your change into the base branch conflicted. Update the branch so it \
                     merges cleanly.\n{details}"
                );
                self.retry_or_fail(
                    task_id,
                    RetryKind::Conflict,
                    0,
                    Some(format!("merge conflict: {details}")),
                    Some(feedback),
                );
            }
            MergeResult::Failed { error } => {
                self.record(Record::MergeFailed { task_id, error });
            }
        }
    }

    fn on_operator(&mut self, command: OperatorCommand) {
        let Some(task) = self.state.find(command.task_ref()) else {
            self.refuse(format!(
                "no task {}: `takt task list` shows the known tasks",
                command.task_ref()
            ));
            return;
        };
        let task_id = task.id.clone();
        let identifier = task.issue.identifier.clone();
        let state = task.state;
        let running = task.run.as_ref().map(|run| run.run_id.clone());
        match command {
            OperatorCommand::Approve { by, comment, .. } => {
                if state != TaskState::AwaitingReview {
                    return self.refuse(format!(
                        "{identifier} is {state}, not awaiting_review; only a task awaiting review can be approved"
                    ));
                }
                if task.approvals.contains(&by) {
                    return self.refuse(format!(
                        "{by} already approved {identifier}; it needs {} approvals from distinct people",
                        task.approvals_required.max(1)
                    ));
                }
                self.record(Record::Approved {
                    task_id: task_id.clone(),
                    by,
                    comment,
                });
                let Some(task) = self.state.tasks.get(&task_id) else {
                    return;
                };
                if !approvals_satisfied(task) {
                    return;
                }
                match (self.policy.publish.forge, self.forge_pull_request(task)) {
                    // On a forge the checks must be green too: look at the pull request now.
                    (true, Some(number)) => {
                        self.command(Command::CheckPullRequest { task_id, number })
                    }
                    (true, None) => self.publish(&task_id),
                    (false, _) => self.start_merge(task_id),
                }
            }
            OperatorCommand::Reject { by, comment, .. } => {
                if state != TaskState::AwaitingReview {
                    return self.refuse(format!(
                        "{identifier} is {state}, not awaiting_review; only a task awaiting review can be rejected"
                    ));
                }
                self.record(Record::Rejected {
                    task_id: task_id.clone(),
                    by,
                    comment: comment.clone(),
                });
                self.retry_or_fail(
                    task_id,
                    RetryKind::Rejection,
                    0,
                    Some(format!("rejected in review: {comment}")),
                    Some(comment),
                );
            }
            OperatorCommand::Cancel { .. } => {
                if state.is_terminal() {
                    return self.refuse(format!("{identifier} is already {state}"));
                }
                if state == TaskState::Merging {
                    return self.refuse(format!(
                        "{identifier} is being merged; cancel after the merge finishes"
                    ));
                }
                match running {
                    Some(run_id) => self.stop_run(task_id, run_id, StopReason::Operator),
                    None => {
                        self.cancel(task_id.clone(), CancelReason::Operator);
                        self.transition_issue(&task_id, self.policy.on_cancel_state.clone());
                    }
                }
            }
            OperatorCommand::Answer { by, text, .. } => {
                if state != TaskState::Blocked {
                    return self.refuse(format!(
                        "{identifier} is {state}, not blocked; there is no question to answer"
                    ));
                }
                self.record(Record::Answered {
                    task_id: task_id.clone(),
                    by,
                    text: text.clone(),
                });
                match running {
                    // The agent that asked is still there: the answer goes into its session.
                    Some(run_id) => self.command(Command::DeliverAnswer { run_id, text }),
                    None => self.schedule(task_id, RetryKind::Answer, 0, None, Some(text)),
                }
            }
            OperatorCommand::Retry { by, .. } => {
                if !matches!(state, TaskState::Failed | TaskState::Cancelled) {
                    return self.refuse(format!(
                        "{identifier} is {state}; only failed or cancelled tasks can be retried"
                    ));
                }
                let reopen = self
                    .state
                    .tasks
                    .get(&task_id)
                    .is_some_and(|task| self.policy.is_terminal(&task.issue.state));
                self.record(Record::TaskRetried {
                    task_id: task_id.clone(),
                    by,
                });
                if reopen {
                    self.transition_issue(&task_id, self.policy.on_reopen_state.clone());
                }
                self.poll();
            }
        }
    }

    fn on_restarted(&mut self) {
        let live: Vec<String> = self
            .state
            .running()
            .filter_map(|task| task.run.as_ref().map(|run| run.run_id.clone()))
            .collect();
        for run_id in live {
            let Some(task_id) = self.live_task(&run_id, "restart") else {
                continue;
            };
            // A session that was waiting for a person keeps its question: the task stays
            // blocked and the answer goes into the next run's prompt.
            let question = self
                .state
                .tasks
                .get(&task_id)
                .filter(|task| task.state == TaskState::Blocked)
                .and_then(|task| task.question.clone());
            let outcome = if question.is_some() {
                RunOutcome::InputRequired
            } else {
                RunOutcome::Interrupted
            };
            self.finish_run(
                task_id,
                RunExit {
                    run_id,
                    outcome,
                    commit: None,
                    error: Some("the daemon stopped while this run was live".into()),
                    turns: 0,
                    question,
                },
            );
        }
        // A fired occurrence whose task was not confirmed is created again (the shell finds it
        // if it exists).
        let pending: Vec<(String, Millis)> = self
            .state
            .schedules
            .iter()
            .filter_map(|(name, seen)| Some((name.clone(), seen.pending_ms?)))
            .collect();
        for (name, occurrence_ms) in pending {
            if let Some(schedule) = self.policy.schedules.iter().find(|s| s.name == name) {
                self.command(Command::CreateScheduledTask {
                    schedule: name,
                    occurrence_ms,
                    template: schedule.template.clone(),
                });
            }
        }
        self.check_schedules();
        // A verification the daemon was running is started again (its checkouts are gone).
        let verifying: Vec<(String, String, u32)> = self
            .state
            .tasks
            .values()
            .filter(|task| task.state == TaskState::Verifying)
            .filter_map(|task| Some((task.id.clone(), task.commit.clone()?, task.verify_rounds)))
            .collect();
        for (task_id, commit, round) in verifying {
            self.verify(task_id, commit, round);
        }
        let merging: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|task| task.state == TaskState::Merging)
            .map(|task| task.id.clone())
            .collect();
        for task_id in merging {
            // Merges are idempotent: a merge that landed before the crash reports as merged.
            if let Some(task) = self.state.tasks.get(&task_id)
                && let (Some(branch), Some(commit)) = (task.branch.clone(), task.commit.clone())
            {
                let identifier = task.issue.identifier.clone();
                let pull_request = self.forge_pull_request(task);
                self.command(Command::Merge {
                    task_id,
                    identifier,
                    branch,
                    commit,
                    pull_request,
                });
            }
        }
        self.poll();
    }
}

/// Enough distinct people approved; for a `hard_stop` change, not only the person who created
/// the task (separation of duties where it matters; a solo operator can still approve their
/// own `review`-tier change).
pub fn approvals_satisfied(task: &Task) -> bool {
    let enough = task.approvals.len() >= task.approvals_required.max(1) as usize;
    let hard_stop = task
        .risk
        .as_ref()
        .is_some_and(|risk| risk.tier == RiskTier::HardStop);
    let independent = match task.issue.author() {
        Some(author) if hard_stop => task.approvals.iter().any(|by| by != author),
        _ => true,
    };
    enough && independent
}

/// Reviewers whose revealed verdict differs from the hash they committed to.
fn mismatched_verdicts(
    commitments: &BTreeMap<String, String>,
    report: &VerificationReport,
) -> Vec<String> {
    report
        .reviewers
        .iter()
        .chain(report.judge.iter())
        .filter(|verdict| {
            commitments
                .get(&verdict.by)
                .is_some_and(|hash| *hash != verdict.commitment())
        })
        .map(|verdict| verdict.by.clone())
        .collect()
}

fn blocked_by(report: &VerificationReport) -> String {
    let names: Vec<&str> = report
        .reviewers
        .iter()
        .filter(|verdict| !verdict.pass)
        .map(|verdict| verdict.by.as_str())
        .collect();
    format!("blocked by {}", names.join(", "))
}

/// One line on what a verification found, for `last_error` and failure reports.
fn verification_summary(report: &VerificationReport, outcome: VerifyOutcome) -> String {
    match outcome {
        VerifyOutcome::GatesFailed => {
            let failed: Vec<String> = report
                .gates
                .iter()
                .filter(|gate| gate.required && !gate.status.is_green())
                .filter(|gate| gate.status != takt_protocol::GateStatus::Skipped)
                .map(|gate| {
                    if gate.new_failures.is_empty() || gate.new_failures == [gate.gate.clone()] {
                        gate.gate.clone()
                    } else {
                        format!("{} ({})", gate.gate, gate.new_failures.join(", "))
                    }
                })
                .collect();
            format!("gates failed: {}", failed.join("; "))
        }
        VerifyOutcome::JudgeVetoed => format!(
            "the judge vetoed the change: {}",
            report
                .judge
                .as_ref()
                .map_or_else(String::new, |judge| judge.summary.clone())
        ),
        VerifyOutcome::ReviewersBlocked => blocked_by(report),
        VerifyOutcome::VerdictMismatch => {
            "a reviewer's verdict did not match its commitment".into()
        }
        VerifyOutcome::Error => format!(
            "verification could not finish: {}",
            report.error.clone().unwrap_or_default()
        ),
        VerifyOutcome::Passed => "verification passed".into(),
    }
}

fn is_due(task: &Task, now: Millis) -> bool {
    task.state == TaskState::RetryWait
        && task.run.is_none()
        && task
            .retry
            .as_ref()
            .is_some_and(|retry| retry.due_at_ms <= now)
}

/// For a stale report, the task a run id names (`<identifier>#<n>`), if it still exists.
fn run_task_hint(state: &State, run_id: &str) -> Option<String> {
    let identifier = run_id.rsplit_once('#').map(|(identifier, _)| identifier)?;
    state.find(identifier).map(|task| task.id.clone())
}

fn failure_report(task: &Task, reason: String, max_attempts: u32) -> FailureReport {
    let suggested_action = if task.verify_outcome == Some(VerifyOutcome::GatesFailed) {
        format!(
            "The change failed its gates in {} verification rounds. `takt evidence {id}` shows \
             every gate run with its output; fix the task text or the gates, then run `takt task \
             retry {id}`.",
            task.failed_rounds,
            id = task.issue.identifier
        )
    } else if task.history.iter().all(|attempt| attempt.commit.is_none())
        && task
            .history
            .last()
            .is_some_and(|attempt| attempt.outcome == RunOutcome::Succeeded)
    {
        format!(
            "The agent finished {max_attempts} times without changing anything. Check the task \
             text and the agent configuration, then run `takt task retry {}`.",
            task.issue.identifier
        )
    } else {
        format!(
            "Read the last error and the run logs, fix the cause (task text, hooks, agent \
             configuration), then run `takt task retry {}`.",
            task.issue.identifier
        )
    };
    FailureReport {
        reason,
        identifier: task.issue.identifier.clone(),
        title: task.issue.title.clone(),
        attempts: task.history.clone(),
        workspace_path: task.workspace_path.clone(),
        branch: task.branch.clone(),
        suggested_action,
        verification: task.verification.clone(),
        spend_micros: task.spend_micros,
        tokens: task.metered.total_tokens,
    }
}
