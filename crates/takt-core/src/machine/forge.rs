//! Publishing to a forge (`publish.forge: github | gitlab`): a verified change becomes a pull
//! request; what people and CI say there decides whether it merges, goes back to the agent or
//! fails.
//!
//! The task waits in `awaiting_review` while its pull request is open. Each poll asks the shell
//! to publish again (a failed or interrupted publish; publishing is idempotent) or to read the
//! pull request. A reading is acted on in this order: merged or closed by someone else; checks
//! that failed on the head (back to the agent with their logs, `publish.max_ci_rounds` times);
//! changes requested on the head (back to the agent with the comments); new approvals on the
//! head (recorded like approvals given in takt); and once nothing is pending and the risk tier's
//! approvals are there (none for `auto_ship`), the merge.
//!
//! A task cancelled by an operator or by its issue closing has its open pull request closed,
//! asked for again at each poll until the forge confirms. A task that only left the active
//! states keeps it: it may come back.

use takt_protocol::{PullRequestRef, RetryKind, RiskTier, TaskState};

use super::{Decider, approvals_satisfied};
use crate::messages::{CancelReason, Command, ForgeReview, ForgeVerdict, Record};

/// How much of a failed check's log goes into the agent's feedback.
const CHECK_LOG_CHARS: usize = 6_000;

impl Decider<'_> {
    /// Asks the shell to push the task's commit and open or update its pull request.
    pub(super) fn publish(&mut self, task_id: &str) {
        let Some(task) = self.state.tasks.get(task_id) else {
            return;
        };
        let (Some(branch), Some(commit)) = (task.branch.clone(), task.commit.clone()) else {
            return;
        };
        self.command(Command::Publish {
            task_id: task_id.to_owned(),
            identifier: task.issue.identifier.clone(),
            branch,
            commit,
            pull_request: task.pull_request.clone(),
        });
    }

    /// At each poll: every change waiting on the forge is published (again) or looked at.
    pub(super) fn follow_pull_requests(&mut self) {
        if !self.policy.publish.forge {
            return;
        }
        let waiting: Vec<(String, Option<u64>)> = self
            .state
            .tasks
            .values()
            .filter(|task| task.state == TaskState::AwaitingReview)
            .map(|task| {
                let current = task
                    .pull_request
                    .as_ref()
                    .filter(|pr| Some(&pr.head) == task.commit.as_ref());
                (task.id.clone(), current.map(|pr| pr.number))
            })
            .collect();
        for (task_id, number) in waiting {
            match number {
                Some(number) => self.command(Command::CheckPullRequest { task_id, number }),
                None => self.publish(&task_id),
            }
        }
        let abandoned: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|task| task.state == TaskState::Cancelled)
            .map(|task| task.id.clone())
            .collect();
        for task_id in abandoned {
            self.close_pull_request(&task_id);
        }
    }

    /// Asks the shell to close the pull request of a task cancelled for good, if it has one
    /// still open.
    pub(super) fn close_pull_request(&mut self, task_id: &str) {
        if !self.policy.publish.forge {
            return;
        }
        let Some(task) = self.state.tasks.get(task_id) else {
            return;
        };
        let for_good = match task.cancel_reason {
            Some(CancelReason::Operator) => "an operator cancelled the task",
            Some(CancelReason::TrackerTerminal) => "its issue was closed",
            Some(CancelReason::LeftActive) | None => return,
        };
        let (TaskState::Cancelled, Some(pull_request), false) = (
            task.state,
            task.pull_request.as_ref(),
            task.pull_request_closed,
        ) else {
            return;
        };
        self.command(Command::ClosePullRequest {
            task_id: task_id.to_owned(),
            number: pull_request.number,
            comment: format!(
                "takt closed this pull request: {for_good} ({}).",
                task.issue.identifier
            ),
        });
    }

    pub(super) fn on_pull_request_closed(
        &mut self,
        task_id: String,
        number: u64,
        result: Result<(), String>,
    ) {
        let current = self.state.tasks.get(&task_id).is_some_and(|task| {
            task.state == TaskState::Cancelled
                && !task.pull_request_closed
                && task.pull_request.as_ref().map(|pr| pr.number) == Some(number)
        });
        if !current {
            return self.stale(task_id, "pull_request_closed");
        }
        // A failure is asked again at the next poll; the shell logs why.
        if result.is_ok() {
            self.record(Record::PullRequestClosed { task_id, number });
        }
    }

    pub(super) fn on_published(
        &mut self,
        task_id: String,
        commit: String,
        result: Result<PullRequestRef, String>,
    ) {
        let current = self.state.tasks.get(&task_id).is_some_and(|task| {
            task.state == TaskState::AwaitingReview && task.commit.as_deref() == Some(&commit)
        });
        if !current {
            return self.stale(task_id, "published");
        }
        match result {
            Ok(pull_request) => {
                let number = pull_request.number;
                self.record(Record::PullRequestOpened {
                    task_id: task_id.clone(),
                    pull_request,
                });
                // Checks may already be green and approvals already given (a re-publish).
                self.command(Command::CheckPullRequest { task_id, number });
            }
            Err(error) => self.record(Record::PublishFailed { task_id, error }),
        }
    }

    pub(super) fn on_pull_request_checked(
        &mut self,
        task_id: String,
        number: u64,
        review: ForgeReview,
    ) {
        let Some(task) = self.state.tasks.get(&task_id) else {
            return;
        };
        let open = task
            .pull_request
            .as_ref()
            .filter(|pr| pr.number == number && Some(&pr.head) == task.commit.as_ref());
        if task.state != TaskState::AwaitingReview || open.is_none() {
            return self.stale(task_id, "pull_request_checked");
        }
        let identifier = task.issue.identifier.clone();
        if review.merged {
            // Merged on the forge (by a person, or by takt before a crash): done.
            self.record(Record::MergeStarted {
                task_id: task_id.clone(),
            });
            let merged = crate::messages::MergeResult::Merged { sha: review.head };
            return self.on_merge_finished(task_id, merged);
        }
        if review.closed {
            return self.fail(
                task_id,
                format!(
                    "pull request #{number} of {identifier} was closed without merging; reopen \
                     it on the forge and run `takt task retry {identifier}`, or cancel the task"
                ),
            );
        }
        // Anything about an older commit waits for the forge to catch up with ours.
        let head = task.commit.clone().unwrap_or_default();
        if review.head != head {
            return;
        }
        if !review.checks_failed.is_empty() {
            return self.checks_failed(task_id, head, review);
        }
        let on_head = |commit: &Option<String>| commit.as_ref().is_none_or(|c| *c == head);
        let requested: Vec<_> = review
            .reviews
            .iter()
            .filter(|note| note.verdict == ForgeVerdict::ChangesRequested && on_head(&note.commit))
            .collect();
        if let Some(first) = requested.first() {
            let by = first.by.clone();
            let comment = requested
                .iter()
                .map(|note| format!("{} requested changes:\n{}", note.by, note.body.trim()))
                .collect::<Vec<_>>()
                .join("\n\n");
            self.record(Record::Rejected {
                task_id: task_id.clone(),
                by,
                comment: comment.clone(),
            });
            return self.retry_or_fail(
                task_id,
                RetryKind::Rejection,
                0,
                Some(format!("changes requested on pull request #{number}")),
                Some(comment),
            );
        }
        let new_approvals: Vec<String> = review
            .reviews
            .iter()
            .filter(|note| note.verdict == ForgeVerdict::Approved && on_head(&note.commit))
            .map(|note| note.by.clone())
            .filter(|by| !task.approvals.contains(by))
            .collect();
        for by in new_approvals {
            self.record(Record::Approved {
                task_id: task_id.clone(),
                by,
                comment: Some(format!("approved on pull request #{number}")),
            });
        }
        if review.checks_pending > 0 {
            return;
        }
        let ready = self.state.tasks.get(&task_id).is_some_and(|task| {
            task.risk
                .as_ref()
                .is_some_and(|risk| risk.tier == RiskTier::AutoShip)
                || approvals_satisfied(task)
        });
        if ready {
            self.start_merge(task_id);
        }
    }

    fn checks_failed(&mut self, task_id: String, head: String, review: ForgeReview) {
        let rounds_used = self
            .state
            .tasks
            .get(&task_id)
            .map_or(0, |task| task.ci_rounds);
        let names: Vec<String> = review
            .checks_failed
            .iter()
            .map(|check| check.name.clone())
            .collect();
        self.record(Record::ChecksFailed {
            task_id: task_id.clone(),
            head,
            checks: names.clone(),
        });
        let summary = format!("checks failed on the pull request: {}", names.join(", "));
        if rounds_used >= self.policy.publish.max_ci_rounds {
            return self.fail(
                task_id,
                format!(
                    "{summary}; the last of {} rounds (publish.max_ci_rounds)",
                    self.policy.publish.max_ci_rounds
                ),
            );
        }
        let feedback = review
            .checks_failed
            .iter()
            .map(|check| {
                format!(
                    "Check `{}` failed. The end of its log:\n{}",
                    check.name,
                    tail(&check.log)
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n");
        self.retry_or_fail(task_id, RetryKind::Checks, 0, Some(summary), Some(feedback));
    }

    fn stale(&mut self, task_id: String, what: &str) {
        self.record(Record::StaleReportRejected {
            task_id: Some(task_id),
            run_id: String::new(),
            what: what.into(),
        });
    }
}

/// The last [`CHECK_LOG_CHARS`] characters of a log.
fn tail(log: &str) -> &str {
    let count = log.chars().count();
    if count <= CHECK_LOG_CHARS {
        return log;
    }
    let start = log
        .char_indices()
        .nth(count - CHECK_LOG_CHARS)
        .map_or(0, |(index, _)| index);
    &log[start..]
}
