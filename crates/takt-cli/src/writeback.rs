//! Write-back: one takt comment on the source issue, edited in place as the task moves (work
//! started, pull request opened, merged, failed, waiting for an answer) rather than piled up.
//! The text is rendered from the task as a whole, so writing it again is harmless.

use takt_core::{Record, Task};
use takt_protocol::{AgentEvent, TaskState};

/// The hidden marker that finds takt's comment again.
pub const MARKER: &str = "<!-- takt:status -->";

/// Whether `record` moves the task somewhere the issue's readers care about.
pub fn is_milestone(record: &Record) -> bool {
    match record {
        Record::RunDispatched { run_number, .. } => *run_number == 1,
        Record::PullRequestOpened { .. }
        | Record::ReviewRequested { .. }
        | Record::Merged { .. }
        | Record::TaskFailed { .. }
        | Record::TaskBlocked { .. } => true,
        Record::AgentEventRecorded { event, .. } => matches!(
            event,
            AgentEvent::InputRequired { .. } | AgentEvent::ApprovalRequired { .. }
        ),
        _ => false,
    }
}

/// The comment for `task` as it stands.
pub fn status_comment(task: &Task) -> String {
    let id = &task.issue.identifier;
    let mut lines = vec![
        MARKER.to_owned(),
        format!(
            "**takt** is working on this issue as `{id}`: **{}**",
            task.state
        ),
        String::new(),
    ];
    if task.runs_started > 0 {
        let latest = task
            .history
            .last()
            .map(|run| format!(", the latest {}", run.outcome))
            .unwrap_or_default();
        lines.push(format!("- Agent runs: {}{latest}", task.runs_started));
    }
    if let Some(risk) = &task.risk {
        lines.push(format!(
            "- Risk tier: `{}` ({} approval(s) needed, {} given)",
            risk.tier.as_str(),
            task.approvals_required,
            task.approvals.len()
        ));
    }
    if let Some(pr) = &task.pull_request {
        lines.push(format!(
            "- Pull request: {} (head `{}`)",
            pr.url,
            short(&pr.head)
        ));
    }
    match task.state {
        TaskState::Done => {
            if let Some(commit) = &task.commit {
                lines.push(format!("- Merged: `{}`", short(commit)));
            }
        }
        TaskState::Blocked => {
            if let Some(question) = &task.question {
                lines.push(format!(
                    "- The agent is waiting for an answer: {}\n  Answer with `takt answer {id} \"...\"` \
                     or from the task page of takt's dashboard.",
                    one_line(question)
                ));
            }
        }
        TaskState::Failed => {
            if let Some(failure) = &task.failure {
                lines.push(format!("- Failed: {}", one_line(&failure.reason)));
                lines.push(format!("- Next: {}", one_line(&failure.suggested_action)));
            }
        }
        _ => {}
    }
    lines.join("\n")
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Agent text on one line, bounded, without markup that could fake takt's marker.
fn one_line(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat = flat.replace("<!--", "< !--");
    match flat.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use takt_core::{Event, Policy, RunExit, State, handle};
    use takt_protocol::{Issue, PullRequestRef, RunOutcome};

    fn issue() -> Issue {
        Issue {
            id: "gh-1".into(),
            identifier: "GH-1".into(),
            title: "Fix it".into(),
            description: None,
            priority: None,
            state: "open".into(),
            branch_name: None,
            url: None,
            assignee_id: None,
            labels: vec![],
            blocked_by: vec![],
            dispatchable: true,
            created_at: None,
            updated_at: None,
            native_ref: None,
        }
    }

    fn policy() -> Policy {
        Policy {
            active_states: vec!["open".into()],
            terminal_states: vec!["closed".into()],
            ..Policy::default()
        }
    }

    #[test]
    fn the_comment_follows_the_task_and_carries_the_marker_once() {
        let mut state = State::default();
        let policy = policy();
        let step = handle(
            &mut state,
            &policy,
            Event::CandidatesFetched {
                issues: vec![issue()],
            },
            1_000,
        );
        assert!(
            step.records.iter().any(is_milestone),
            "the first run starts"
        );
        let task = &state.tasks["gh-1"];
        let comment = status_comment(task);
        assert!(comment.starts_with(MARKER));
        assert!(comment.contains("`GH-1`: **running**"), "{comment}");

        handle(
            &mut state,
            &policy,
            Event::RunExited(RunExit {
                run_id: "GH-1#1".into(),
                outcome: RunOutcome::InputRequired,
                commit: None,
                error: None,
                turns: 1,
                question: Some("Which <!-- takt:status --> API?\nv1 or v2".into()),
            }),
            2_000,
        );
        let task = &state.tasks["gh-1"];
        let comment = status_comment(task);
        assert_eq!(comment.matches(MARKER).count(), 1, "{comment}");
        assert!(comment.contains("**blocked**"), "{comment}");
        assert!(
            comment.contains("waiting for an answer: Which"),
            "{comment}"
        );
        assert!(comment.contains("takt answer GH-1"), "{comment}");
    }

    #[test]
    fn a_pull_request_and_a_merge_are_shown() {
        let mut state = State::default();
        handle(
            &mut state,
            &policy(),
            Event::CandidatesFetched {
                issues: vec![issue()],
            },
            1_000,
        );
        let mut task = state.tasks["gh-1"].clone();
        task.pull_request = Some(PullRequestRef {
            number: 9,
            url: "https://github.example/acme/w/pull/9".into(),
            head: "0123456789abcdef0123".into(),
        });
        task.state = TaskState::Done;
        task.commit = Some("fedcba9876543210fedc".into());
        let comment = status_comment(&task);
        assert!(comment.contains("https://github.example/acme/w/pull/9 (head `0123456789ab`)"));
        assert!(comment.contains("Merged: `fedcba987654`"), "{comment}");
    }
}
