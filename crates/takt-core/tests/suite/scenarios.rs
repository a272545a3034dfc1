//! Single scenarios through the state machine, named by the requirement they check.

use takt_core::{
    Command, Event, FailedCheck, ForgeReview, ForgeReviewNote, ForgeVerdict, MergeResult,
    OperatorCommand, Policy, Record, RunExit, State, Step, StopReason, handle,
};
use takt_protocol::{
    GateOutcome, GateSource, GateStatus, Issue, RetryKind, RiskTier, RunOutcome, TaskState,
    VerificationReport,
};

use super::issue;

struct Harness {
    state: State,
    policy: Policy,
    now: i64,
}

impl Harness {
    fn new(policy: Policy) -> Harness {
        Harness {
            state: State::default(),
            policy,
            now: 1_000_000,
        }
    }

    fn feed(&mut self, event: Event) -> Step {
        handle(&mut self.state, &self.policy, event, self.now)
    }

    /// Polls with `issues` as the tracker's active issues; returns the started run ids.
    fn poll(&mut self, issues: Vec<Issue>) -> Vec<String> {
        let step = self.feed(Event::CandidatesFetched { issues });
        started(&step)
    }

    fn exit(&mut self, run_id: &str, outcome: RunOutcome, commit: Option<&str>) -> Step {
        self.feed(Event::RunExited(RunExit {
            run_id: run_id.into(),
            outcome,
            commit: commit.map(String::from),
            error: (outcome != RunOutcome::Succeeded).then(|| "boom".to_string()),
            turns: 1,
            question: None,
        }))
    }

    fn launch(&mut self, run_id: &str) {
        self.feed(Event::RunLaunched {
            run_id: run_id.into(),
            pid: Some(42),
            workspace_path: "/ws/T-1".into(),
            branch: "takt/T-1".into(),
        });
    }

    fn task(&self, id: &str) -> &takt_core::Task {
        &self.state.tasks[id]
    }

    /// Reports the verification the core asked for, as `change` shapes it (a green report
    /// by default).
    fn verify(&mut self, task_id: &str, change: impl FnOnce(&mut VerificationReport)) -> Step {
        let task = self.task(task_id);
        let mut report = green_report(task.commit.clone().unwrap_or_default(), task.verify_rounds);
        change(&mut report);
        self.feed(Event::VerificationFinished {
            task_id: task_id.into(),
            report: Box::new(report),
            feedback: "evidence".into(),
        })
    }
}

fn green_report(commit: String, round: u32) -> VerificationReport {
    VerificationReport {
        base: "base".into(),
        gates: vec![gate("cargo-test", GateStatus::Passed)],
        ..VerificationReport::new(commit, round)
    }
}

fn gate(name: &str, status: GateStatus) -> GateOutcome {
    GateOutcome {
        gate: name.into(),
        source: GateSource::Detected,
        required: true,
        status,
        new_failures: if status == GateStatus::Failed {
            vec!["tests::adds".into()]
        } else {
            Vec::new()
        },
        preexisting_failures: Vec::new(),
        flaky: Vec::new(),
        runs: Vec::new(),
        baseline: None,
    }
}

/// A risk policy whose every change lands in `tier` (two approvals for hard_stop).
fn tiered(tier: RiskTier) -> takt_core::risk::RiskPolicy {
    takt_core::risk::RiskPolicy::new(takt_core::risk::RiskSettings {
        default_tier: tier,
        hard_stop_approvals: 2,
        ..Default::default()
    })
    .unwrap_or_else(|error| panic!("{error}"))
}

fn auto_ship() -> Policy {
    let mut policy = Policy::default();
    policy.verification.risk = tiered(RiskTier::AutoShip);
    policy
}

fn started(step: &Step) -> Vec<String> {
    step.commands
        .iter()
        .filter_map(|command| match command {
            Command::StartRun(spec) => Some(spec.run_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn r080_global_slots_limit_dispatch_in_priority_order() {
    let mut h = Harness::new(Policy {
        max_concurrent_agents: 2,
        ..Policy::default()
    });
    let mut a = issue(1, "Todo");
    a.priority = Some(3);
    let mut b = issue(2, "Todo");
    b.priority = Some(1);
    let mut c = issue(3, "Todo");
    c.priority = Some(2);
    assert_eq!(h.poll(vec![a, b, c]), ["T-2#1", "T-3#1"]);
    assert_eq!(h.task("id-1").state, TaskState::Queued);
}

#[test]
fn r081_per_state_limit_counts_running_issues_by_state() {
    let mut h = Harness::new(Policy {
        max_concurrent_agents_by_state: [("todo".to_string(), 1)].into_iter().collect(),
        ..Policy::default()
    });
    let started = h.poll(vec![
        issue(1, "Todo"),
        issue(2, "Todo"),
        issue(3, "In Progress"),
    ]);
    assert_eq!(started, ["T-1#1", "T-3#1"]);
}

#[test]
fn r075_non_dispatchable_and_non_active_issues_are_not_started() {
    let mut h = Harness::new(Policy::default());
    let mut blocked = issue(1, "Todo");
    blocked.dispatchable = false;
    let mut nameless = issue(3, "Todo");
    nameless.title = "  ".into();
    assert!(
        h.poll(vec![blocked, issue(2, "Backlog"), nameless])
            .is_empty()
    );
    assert!(h.state.tasks.is_empty());
}

#[test]
fn r088_run_without_change_continues_after_one_second() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    h.exit("T-1#1", RunOutcome::Succeeded, None);
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    let retry = task.retry.clone().expect("retry scheduled");
    assert_eq!(retry.kind, RetryKind::Continuation);
    assert_eq!(retry.due_at_ms, h.now + 1_000);
}

#[test]
fn r089_failures_back_off_exponentially_and_fail_after_max_attempts() {
    let mut h = Harness::new(Policy {
        max_attempts: 3,
        ..Policy::default()
    });
    h.poll(vec![issue(1, "Todo")]);
    let mut delays = Vec::new();
    for n in 1..=3 {
        h.exit(&format!("T-1#{n}"), RunOutcome::Failed, None);
        if n == 3 {
            break;
        }
        let due = h.task("id-1").retry.clone().expect("retry").due_at_ms;
        delays.push(due - h.now);
        // Not yet due: a refresh must not start it.
        let early = h.feed(Event::IssuesRefreshed {
            requested: vec!["id-1".into()],
            issues: vec![issue(1, "In Progress")],
        });
        assert!(started(&early).is_empty());
        h.now = due;
        let step = h.feed(Event::IssuesRefreshed {
            requested: vec!["id-1".into()],
            issues: vec![issue(1, "In Progress")],
        });
        assert_eq!(started(&step), [format!("T-1#{}", n + 1)]);
    }
    assert_eq!(delays, [10_000, 20_000]);
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Failed);
    let report = task.failure.clone().expect("failure report");
    assert_eq!(report.attempts.len(), 3);
    assert!(report.suggested_action.contains("takt task retry T-1"));
}

#[test]
fn r094_terminal_tracker_state_stops_the_run_and_cleans_up() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    h.launch("T-1#1");
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "Done")],
    });
    assert!(step.commands.contains(&Command::StopRun {
        run_id: "T-1#1".into(),
        reason: StopReason::TrackerTerminal
    }));
    let step = h.exit("T-1#1", RunOutcome::Cancelled, None);
    assert_eq!(h.task("id-1").state, TaskState::Cancelled);
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::CleanWorkspace { path: Some(p), .. } if p == "/ws/T-1"))
    );
}

#[test]
fn r094_missing_issue_stops_the_run_without_cleanup() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![],
    });
    assert!(step.commands.contains(&Command::StopRun {
        run_id: "T-1#1".into(),
        reason: StopReason::LeftActive
    }));
    let step = h.exit("T-1#1", RunOutcome::Cancelled, None);
    assert!(
        !step
            .commands
            .iter()
            .any(|c| matches!(c, Command::CleanWorkspace { .. }))
    );
    // It comes back when the issue is active again (Symphony's release semantics).
    assert_eq!(h.poll(vec![issue(1, "Todo")]), ["T-1#2"]);
}

#[test]
fn r093_stalled_run_is_stopped_and_retried_as_a_failure() {
    let mut h = Harness::new(Policy {
        stall_timeout_ms: 60_000,
        ..Policy::default()
    });
    h.feed(Event::Tick);
    h.poll(vec![issue(1, "Todo")]);
    h.now += 60_001;
    let step = h.feed(Event::Tick);
    assert!(step.commands.contains(&Command::StopRun {
        run_id: "T-1#1".into(),
        reason: StopReason::Stalled
    }));
    // The shell reports whatever it saw; the core records the stall.
    h.exit("T-1#1", RunOutcome::Cancelled, None);
    let task = h.task("id-1");
    assert_eq!(task.history[0].outcome, RunOutcome::Stalled);
    assert_eq!(task.retry.clone().expect("retry").kind, RetryKind::Failure);
}

#[test]
fn review_approve_merges_and_reject_sends_feedback() {
    let mut h = Harness::new(Policy {
        on_done_state: Some("Done".into()),
        ..Policy::default()
    });
    h.poll(vec![issue(1, "Todo"), issue(2, "Todo")]);
    h.launch("T-1#1");
    h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    assert_eq!(h.task("id-1").state, TaskState::Verifying);
    h.verify("id-1", |_| {});
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);

    let step = h.feed(Event::Operator(OperatorCommand::Approve {
        task: "t-1".into(),
        by: "alice".into(),
        comment: None,
    }));
    assert!(step.refusal.is_none());
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Merge { commit, .. } if commit == "abc"))
    );
    assert_eq!(h.task("id-1").state, TaskState::Merging);
    let step = h.feed(Event::MergeFinished {
        task_id: "id-1".into(),
        result: MergeResult::Merged { sha: "def".into() },
    });
    assert_eq!(h.task("id-1").state, TaskState::Done);
    assert!(step.commands.contains(&Command::TransitionIssue {
        issue_id: "id-1".into(),
        state: "Done".into()
    }));

    h.exit("T-2#1", RunOutcome::Succeeded, Some("123"));
    h.verify("id-2", |_| {});
    h.feed(Event::Operator(OperatorCommand::Reject {
        task: "T-2".into(),
        by: "alice".into(),
        comment: "add a test".into(),
    }));
    let task = h.task("id-2");
    assert_eq!(task.state, TaskState::RetryWait);
    assert_eq!(task.feedback.as_deref(), Some("add a test"));
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-2".into()],
        issues: vec![issue(2, "In Progress")],
    });
    let spec = step
        .commands
        .iter()
        .find_map(|c| match c {
            Command::StartRun(spec) => Some((**spec).clone()),
            _ => None,
        })
        .expect("second run");
    assert_eq!(spec.feedback.as_deref(), Some("add a test"));
    assert_eq!(spec.retry_kind, Some(RetryKind::Rejection));
    assert_eq!(spec.attempt, Some(1));
}

#[test]
fn operator_commands_that_do_not_apply_are_refused_without_change() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    let before = h.state.clone();
    let step = h.feed(Event::Operator(OperatorCommand::Approve {
        task: "T-1".into(),
        by: "alice".into(),
        comment: None,
    }));
    assert!(step.refusal.expect("refused").contains("T-1 is running"));
    assert_eq!(h.state, before);
    let step = h.feed(Event::Operator(OperatorCommand::Answer {
        task: "T-9".into(),
        by: "alice".into(),
        text: "x".into(),
    }));
    assert!(step.refusal.expect("refused").contains("no task T-9"));
}

#[test]
fn blocked_task_resumes_with_the_answer() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    h.feed(Event::RunExited(RunExit {
        run_id: "T-1#1".into(),
        outcome: RunOutcome::InputRequired,
        commit: None,
        error: None,
        turns: 1,
        question: Some("Which database?".into()),
    }));
    assert_eq!(h.task("id-1").state, TaskState::Blocked);
    assert_eq!(h.task("id-1").question.as_deref(), Some("Which database?"));
    assert_eq!(
        h.task("id-1").attempt,
        0,
        "asking a question is not a failed attempt"
    );
    let step = h.feed(Event::Operator(OperatorCommand::Answer {
        task: "T-1".into(),
        by: "alice".into(),
        text: "Postgres".into(),
    }));
    assert!(step.commands.contains(&Command::RefreshIssues {
        ids: vec!["id-1".into()]
    }));
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "In Progress")],
    });
    let spec = match &step.commands[..] {
        [Command::StartRun(spec)] => (**spec).clone(),
        other => panic!("expected one start, got {other:?}"),
    };
    assert_eq!(spec.feedback.as_deref(), Some("Postgres"));
    assert_eq!(spec.retry_kind, Some(RetryKind::Answer));
}

#[test]
fn merge_conflict_returns_the_task_to_the_agent_with_the_conflict() {
    let mut h = Harness::new(auto_ship());
    h.poll(vec![issue(1, "Todo")]);
    h.launch("T-1#1");
    h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    let step = h.verify("id-1", |_| {});
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Merge { .. })),
        "auto_merge merges"
    );
    h.feed(Event::MergeFinished {
        task_id: "id-1".into(),
        result: MergeResult::Conflict {
            details: "CONFLICT (content): src/lib.rs".into(),
        },
    });
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert_eq!(task.retry.clone().expect("retry").kind, RetryKind::Conflict);
    assert!(
        task.feedback
            .clone()
            .unwrap_or_default()
            .contains("src/lib.rs")
    );
}

#[test]
fn restart_interrupts_live_runs_without_spending_an_attempt_and_resumes_merges() {
    let mut h = Harness::new(auto_ship());
    h.poll(vec![issue(1, "Todo"), issue(2, "Todo")]);
    h.launch("T-1#1");
    h.launch("T-2#1");
    h.exit("T-2#1", RunOutcome::Succeeded, Some("abc"));
    h.verify("id-2", |_| {});
    assert_eq!(h.task("id-2").state, TaskState::Merging);
    let step = h.feed(Event::Restarted);
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert_eq!(task.attempt, 0);
    assert_eq!(task.history[0].outcome, RunOutcome::Interrupted);
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Merge { task_id, .. } if task_id == "id-2"))
    );
    assert!(step.commands.contains(&Command::FetchCandidates));
}

#[test]
fn stale_reports_are_journaled_and_ignored() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    h.exit("T-1#1", RunOutcome::Failed, None);
    let before = h.state.clone();
    let step = h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    assert_eq!(step.records.len(), 1);
    assert_eq!(step.records[0].kind(), "stale_report_rejected");
    assert_eq!(h.state.tasks, before.tasks);
}

#[test]
fn a_freed_slot_goes_to_waiting_work_without_waiting_for_the_poll() {
    let mut h = Harness::new(Policy {
        max_concurrent_agents: 1,
        ..Policy::default()
    });
    assert_eq!(h.poll(vec![issue(1, "Todo"), issue(2, "Todo")]), ["T-1#1"]);
    let step = h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    assert!(step.commands.contains(&Command::FetchCandidates));
}

#[test]
fn a_due_retry_without_a_free_slot_does_not_make_the_daemon_spin() {
    let mut h = Harness::new(Policy {
        max_concurrent_agents: 1,
        ..Policy::default()
    });
    h.feed(Event::Tick);
    h.poll(vec![issue(1, "Todo"), issue(2, "Todo")]);
    h.exit("T-1#1", RunOutcome::Failed, None);
    // T-2 takes the slot; T-1's retry comes due while it runs.
    h.poll(vec![issue(1, "In Progress"), issue(2, "Todo")]);
    h.now += 10_000;
    let step = h.feed(Event::Tick);
    assert!(matches!(
        &step.commands[..],
        [Command::RefreshIssues { .. }]
    ));
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "In Progress")],
    });
    assert!(started(&step).is_empty(), "no slot is free");
    let next = takt_core::next_deadline(&h.state, &h.policy);
    assert!(
        next > h.now,
        "the next deadline {next} must lie ahead of {}",
        h.now
    );
}

#[test]
fn a_live_agent_that_asks_is_answered_in_its_own_session() {
    let mut h = Harness::new(Policy {
        stall_timeout_ms: 60_000,
        ..Policy::default()
    });
    h.poll(vec![issue(1, "Todo")]);
    h.feed(Event::AgentActivity {
        run_id: "T-1#1".into(),
        event: takt_protocol::AgentEvent::InputRequired {
            question: "May I delete the legacy module?".into(),
        },
    });
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Blocked);
    assert!(task.run.is_some(), "the session stays live while it waits");
    // Waiting for a person is not a stall.
    h.now += 600_000;
    let step = h.feed(Event::Tick);
    assert!(!step.commands.iter().any(|c| matches!(
        c,
        Command::StopRun {
            reason: StopReason::Stalled,
            ..
        }
    )));
    let step = h.feed(Event::Operator(OperatorCommand::Answer {
        task: "T-1".into(),
        by: "alice".into(),
        text: "yes".into(),
    }));
    assert_eq!(
        step.commands,
        [Command::DeliverAnswer {
            run_id: "T-1#1".into(),
            text: "yes".into()
        }]
    );
    assert_eq!(h.task("id-1").state, TaskState::Running);
}

#[test]
fn a_question_survives_a_restart_and_its_answer_reaches_the_next_run() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    h.feed(Event::AgentActivity {
        run_id: "T-1#1".into(),
        event: takt_protocol::AgentEvent::InputRequired {
            question: "Which region?".into(),
        },
    });
    h.feed(Event::Restarted);
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Blocked);
    assert_eq!(task.question.as_deref(), Some("Which region?"));
    assert!(task.run.is_none());
    let step = h.feed(Event::Operator(OperatorCommand::Answer {
        task: "T-1".into(),
        by: "alice".into(),
        text: "eu-west-1".into(),
    }));
    assert!(step.commands.contains(&Command::RefreshIssues {
        ids: vec!["id-1".into()]
    }));
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "In Progress")],
    });
    let spec = step
        .commands
        .iter()
        .find_map(|c| match c {
            Command::StartRun(spec) => Some((**spec).clone()),
            _ => None,
        })
        .expect("the next run");
    assert_eq!(spec.feedback.as_deref(), Some("eu-west-1"));
}

#[test]
fn r128_the_latest_rate_limit_payload_is_kept() {
    let mut h = Harness::new(Policy::default());
    h.poll(vec![issue(1, "Todo")]);
    for used in [10, 20] {
        h.feed(Event::AgentActivity {
            run_id: "T-1#1".into(),
            event: takt_protocol::AgentEvent::RateLimits {
                limits: serde_json::json!({"limit_id": "codex", "primary": {"used_percent": used}}),
            },
        });
    }
    assert_eq!(
        h.state.rate_limits,
        Some(serde_json::json!({"limit_id": "codex", "primary": {"used_percent": 20}}))
    );
}

/// Runs the first attempt of issue 1 to a verified commit and returns the harness.
fn verifying(policy: Policy) -> Harness {
    let mut h = Harness::new(policy);
    h.poll(vec![issue(1, "Todo")]);
    h.launch("T-1#1");
    let step = h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    assert!(step.commands.iter().any(|c| matches!(
        c,
        Command::Verify { commit, round: 1, .. } if commit == "abc"
    )));
    h
}

#[test]
fn a_red_gate_sends_the_change_back_with_the_evidence_then_fails_after_max_rounds() {
    let mut h = verifying(Policy::default());
    h.verify("id-1", |r| {
        r.gates = vec![gate("cargo-test", GateStatus::Failed)]
    });
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert_eq!(
        task.retry.clone().expect("retry").kind,
        RetryKind::Verification
    );
    assert_eq!(task.feedback.as_deref(), Some("evidence"));
    assert!(
        task.last_error
            .clone()
            .unwrap_or_default()
            .contains("cargo-test (tests::adds)")
    );
    // Round two fails the same way: max_rounds (2) is reached and the task fails with a report
    // that carries the verification.
    h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "In Progress")],
    });
    h.launch("T-1#2");
    let step = h.exit("T-1#2", RunOutcome::Succeeded, Some("abd"));
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Verify { round: 2, .. }))
    );
    h.verify("id-1", |r| {
        r.gates = vec![gate("cargo-test", GateStatus::Failed)]
    });
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Failed);
    let report = task.failure.clone().expect("failure report");
    assert!(report.reason.contains("gates failed"), "{}", report.reason);
    assert!(report.suggested_action.contains("takt evidence T-1"));
    let verification = report.verification.expect("verification in the report");
    assert_eq!(verification.gates[0].new_failures, ["tests::adds"]);
}

#[test]
fn pre_existing_and_flaky_failures_do_not_block() {
    let mut h = verifying(auto_ship());
    let step = h.verify("id-1", |r| {
        r.gates = vec![
            gate("cargo-test", GateStatus::PreExisting),
            gate("pytest", GateStatus::Flaky),
        ];
    });
    assert_eq!(h.task("id-1").state, TaskState::Merging);
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Merge { .. }))
    );
}

#[test]
fn an_optional_red_gate_is_reported_but_does_not_block() {
    let mut h = verifying(Policy::default());
    h.verify("id-1", |r| {
        let mut lint = gate("lint", GateStatus::Failed);
        lint.required = false;
        r.gates.push(lint);
    });
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);
}

fn verdict(by: &str, pass: bool) -> takt_protocol::Verdict {
    takt_protocol::Verdict {
        by: by.into(),
        pass,
        summary: if pass {
            "fine"
        } else {
            "touches billing, not asked for"
        }
        .into(),
        findings: vec![takt_protocol::Finding {
            severity: if pass {
                takt_protocol::Severity::Info
            } else {
                takt_protocol::Severity::Blocking
            },
            file: Some("src/billing.rs".into()),
            line: Some(3),
            text: "out of scope".into(),
        }],
        model: Some("judge-1".into()),
    }
}

#[test]
fn the_judges_first_veto_goes_back_to_the_agent_and_the_second_to_a_person() {
    let mut h = verifying(auto_ship());
    h.verify("id-1", |r| r.judge = Some(verdict("judge", false)));
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert!(
        task.last_error
            .clone()
            .unwrap_or_default()
            .contains("touches billing")
    );
    h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "In Progress")],
    });
    h.launch("T-1#2");
    h.exit("T-1#2", RunOutcome::Succeeded, Some("abd"));
    h.verify("id-1", |r| r.judge = Some(verdict("judge", false)));
    let task = h.task("id-1");
    // auto_ship by default, but an overruled judge always gets a human.
    assert_eq!(task.state, TaskState::AwaitingReview);
    let risk = task.risk.clone().expect("risk");
    assert!(
        risk.rules.iter().any(|rule| rule.rule == "judge_veto"),
        "{risk:?}"
    );
}

#[test]
fn a_reviewer_block_sends_the_change_back_and_a_mismatched_verdict_goes_to_a_person() {
    let mut h = verifying(auto_ship());
    h.verify("id-1", |r| {
        r.reviewers = vec![verdict("qa", true), verdict("security", false)]
    });
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert!(
        task.last_error
            .clone()
            .unwrap_or_default()
            .contains("blocked by security")
    );

    let mut h = verifying(auto_ship());
    let honest = verdict("qa", true);
    h.feed(Event::VerdictCommitted {
        task_id: "id-1".into(),
        commit: "abc".into(),
        by: "qa".into(),
        hash: verdict("qa", false).commitment(),
    });
    h.verify("id-1", |r| r.reviewers = vec![honest]);
    let task = h.task("id-1");
    assert_eq!(
        task.state,
        TaskState::AwaitingReview,
        "a swapped verdict never auto-ships"
    );
    let risk = task.risk.clone().expect("risk");
    assert!(
        risk.rules
            .iter()
            .any(|rule| rule.rule == "verdict_mismatch")
    );
}

#[test]
fn a_verdict_commitment_for_another_commit_is_stale() {
    let mut h = verifying(Policy::default());
    let step = h.feed(Event::VerdictCommitted {
        task_id: "id-1".into(),
        commit: "old".into(),
        by: "qa".into(),
        hash: "00".into(),
    });
    assert!(matches!(
        step.records.as_slice(),
        [takt_core::Record::StaleReportRejected { .. }]
    ));
    assert!(h.task("id-1").commitments.is_empty());
}

#[test]
fn a_verification_that_could_not_run_fails_the_task_with_the_reason() {
    let mut h = verifying(Policy::default());
    h.verify("id-1", |r| r.error = Some("bubblewrap is gone".into()));
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Failed);
    assert!(
        task.failure
            .clone()
            .expect("report")
            .reason
            .contains("bubblewrap is gone")
    );
}

#[test]
fn hard_stop_needs_two_distinct_approvers_and_the_author_cannot_be_the_only_one() {
    let mut policy = Policy::default();
    policy.verification.risk = tiered(RiskTier::HardStop);
    let mut h = Harness::new(policy);
    let mut authored = issue(1, "Todo");
    authored.native_ref = Some(serde_json::json!({"author": "alice"}));
    h.poll(vec![authored]);
    h.launch("T-1#1");
    h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    h.verify("id-1", |_| {});
    assert_eq!(h.task("id-1").approvals_required, 2);
    let approve = |by: &str| {
        Event::Operator(OperatorCommand::Approve {
            task: "T-1".into(),
            by: by.into(),
            comment: None,
        })
    };
    let step = h.feed(approve("alice"));
    assert!(step.refusal.is_none());
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);
    let step = h.feed(approve("alice"));
    assert!(
        step.refusal
            .unwrap_or_default()
            .contains("already approved")
    );
    let step = h.feed(approve("bob"));
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Merge { .. }))
    );
    assert_eq!(h.task("id-1").state, TaskState::Merging);
}

#[test]
fn the_author_may_approve_a_review_tier_change_alone_but_never_a_hard_stop_one() {
    let mut h = Harness::new(Policy::default());
    let mut authored = issue(1, "Todo");
    authored.native_ref = Some(serde_json::json!({"author": "alice"}));
    h.poll(vec![authored]);
    h.launch("T-1#1");
    h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    h.verify("id-1", |_| {});
    h.feed(Event::Operator(OperatorCommand::Approve {
        task: "T-1".into(),
        by: "alice".into(),
        comment: None,
    }));
    assert_eq!(h.task("id-1").state, TaskState::Merging);

    let mut policy = Policy::default();
    policy.verification.risk = tiered(RiskTier::HardStop);
    let mut h = Harness::new(policy);
    let mut authored = issue(1, "Todo");
    authored.native_ref = Some(serde_json::json!({"author": "alice"}));
    h.poll(vec![authored]);
    h.launch("T-1#1");
    h.exit("T-1#1", RunOutcome::Succeeded, Some("abc"));
    h.verify("id-1", |_| {});
    // Two approvals are needed; even if one sufficed, the author's alone would not do.
    let task = h.state.tasks.get_mut("id-1").unwrap();
    task.approvals_required = 1;
    h.feed(Event::Operator(OperatorCommand::Approve {
        task: "T-1".into(),
        by: "alice".into(),
        comment: None,
    }));
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);
    h.feed(Event::Operator(OperatorCommand::Approve {
        task: "T-1".into(),
        by: "carol".into(),
        comment: None,
    }));
    assert_eq!(h.task("id-1").state, TaskState::Merging);
}

#[test]
fn a_stale_verification_is_rejected_and_a_restart_verifies_again() {
    let mut h = verifying(Policy::default());
    let step = h.feed(Event::VerificationFinished {
        task_id: "id-1".into(),
        report: Box::new(green_report("other".into(), 1)),
        feedback: String::new(),
    });
    assert!(matches!(
        step.records.as_slice(),
        [takt_core::Record::StaleReportRejected { .. }]
    ));
    assert_eq!(h.task("id-1").state, TaskState::Verifying);
    let step = h.feed(Event::Restarted);
    assert!(step.commands.iter().any(|c| matches!(
        c,
        Command::Verify { commit, round: 1, .. } if commit == "abc"
    )));
    h.verify("id-1", |_| {});
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);
}

#[test]
fn a_webhook_delivery_polls_at_once_and_its_replay_is_refused_and_journaled() {
    let mut h = Harness::new(Policy::default());
    h.feed(Event::Tick);
    let received = || Event::WebhookReceived {
        source: "github".into(),
        delivery: "72d3162e".into(),
        summary: "issues opened #12".into(),
    };
    let step = h.feed(received());
    assert!(step.refusal.is_none());
    assert!(
        step.commands.contains(&Command::FetchCandidates),
        "a dispatch decision now"
    );
    assert!(matches!(
        step.records.as_slice(),
        [takt_core::Record::WebhookAccepted { .. }, ..]
    ));
    let step = h.feed(received());
    assert!(
        step.refusal
            .unwrap_or_default()
            .contains("already received")
    );
    assert!(!step.commands.contains(&Command::FetchCandidates));
    assert!(matches!(
        step.records.as_slice(),
        [takt_core::Record::WebhookRefused { reason, .. }] if reason == "replayed delivery"
    ));
    // The same id from another source is another delivery.
    let step = h.feed(Event::WebhookReceived {
        source: "generic".into(),
        delivery: "72d3162e".into(),
        summary: "a task".into(),
    });
    assert!(step.refusal.is_none());
}

/// A verified change of issue 1 (commit `abc`) published to a forge as pull request #7.
fn published(mut policy: Policy) -> Harness {
    policy.publish.forge = true;
    let mut h = verifying(policy);
    let step = h.verify("id-1", |_| {});
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);
    assert!(step.commands.contains(&Command::Publish {
        task_id: "id-1".into(),
        identifier: "T-1".into(),
        branch: "takt/T-1".into(),
        commit: "abc".into(),
        pull_request: None,
    }));
    assert!(
        !step
            .commands
            .iter()
            .any(|c| matches!(c, Command::Merge { .. }))
    );
    let step = h.feed(Event::Published {
        task_id: "id-1".into(),
        commit: "abc".into(),
        result: Ok(pull_request("abc")),
    });
    assert!(step.commands.contains(&Command::CheckPullRequest {
        task_id: "id-1".into(),
        number: 7
    }));
    assert_eq!(h.task("id-1").pull_request, Some(pull_request("abc")));
    h
}

fn pull_request(head: &str) -> takt_protocol::PullRequestRef {
    takt_protocol::PullRequestRef {
        number: 7,
        url: "https://forge.example/o/r/pull/7".into(),
        head: head.into(),
    }
}

fn forge_review(head: &str, change: impl FnOnce(&mut ForgeReview)) -> Event {
    let mut review = ForgeReview {
        head: head.into(),
        ..ForgeReview::default()
    };
    change(&mut review);
    Event::PullRequestChecked {
        task_id: "id-1".into(),
        number: 7,
        review,
    }
}

fn note(by: &str, verdict: ForgeVerdict, commit: &str) -> ForgeReviewNote {
    ForgeReviewNote {
        by: by.into(),
        verdict,
        body: format!("{by} says so"),
        commit: Some(commit.into()),
    }
}

fn merges_pull_request(step: &Step) -> bool {
    step.commands.iter().any(
        |c| matches!(c, Command::Merge { commit, pull_request: Some(7), .. } if commit == "abc"),
    )
}

#[test]
fn a_forge_change_merges_once_approved_on_the_forge_and_its_checks_are_green() {
    let mut h = published(Policy::default());
    let step = h.feed(forge_review("abc", |r| {
        r.reviews = vec![note("github:bob", ForgeVerdict::Approved, "abc")];
        r.checks_pending = 1;
    }));
    assert_eq!(h.task("id-1").approvals, ["github:bob"]);
    assert!(!merges_pull_request(&step), "checks are still running");
    // The same approval read again is not recorded twice.
    let step = h.feed(forge_review("abc", |r| {
        r.reviews = vec![note("github:bob", ForgeVerdict::Approved, "abc")];
    }));
    assert_eq!(h.task("id-1").approvals, ["github:bob"]);
    assert!(merges_pull_request(&step));
    assert_eq!(h.task("id-1").state, TaskState::Merging);
    h.feed(Event::MergeFinished {
        task_id: "id-1".into(),
        result: MergeResult::Merged { sha: "m1".into() },
    });
    assert_eq!(h.task("id-1").state, TaskState::Done);
}

#[test]
fn an_approval_in_takt_waits_for_the_forges_checks() {
    let mut h = published(Policy::default());
    let step = h.feed(Event::Operator(OperatorCommand::Approve {
        task: "T-1".into(),
        by: "alice".into(),
        comment: None,
    }));
    assert!(!merges_pull_request(&step));
    assert!(step.commands.contains(&Command::CheckPullRequest {
        task_id: "id-1".into(),
        number: 7
    }));
    assert!(!merges_pull_request(
        &h.feed(forge_review("abc", |r| r.checks_pending = 2))
    ));
    assert!(merges_pull_request(&h.feed(forge_review("abc", |_| {}))));
}

#[test]
fn an_auto_ship_change_on_a_forge_needs_no_approval_but_green_checks() {
    let mut h = published(auto_ship());
    assert!(!merges_pull_request(
        &h.feed(forge_review("abc", |r| r.checks_pending = 1))
    ));
    assert!(merges_pull_request(&h.feed(forge_review("abc", |_| {}))));
}

#[test]
fn a_red_check_goes_back_to_the_agent_with_its_log_until_the_ci_rounds_are_used() {
    let mut policy = Policy::default();
    policy.publish.max_ci_rounds = 1;
    let mut h = published(policy);
    let failed = |r: &mut ForgeReview| {
        r.checks_failed = vec![FailedCheck {
            name: "ci/test".into(),
            log: format!("{}\nerror: test adds_two failed", "noise ".repeat(5_000)),
        }];
    };
    h.feed(forge_review("abc", failed));
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert_eq!(task.ci_rounds, 1);
    let feedback = task.feedback.clone().unwrap_or_default();
    assert!(feedback.contains("Check `ci/test` failed"), "{feedback}");
    assert!(
        feedback.contains("error: test adds_two failed"),
        "{feedback}"
    );
    assert!(feedback.len() < 7_000, "the log is cut to its tail");

    // The second round pushes a new commit to the same pull request.
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "Todo")],
    });
    let spec = step
        .commands
        .iter()
        .find_map(|c| match c {
            Command::StartRun(spec) => Some((**spec).clone()),
            _ => None,
        })
        .expect("a second run");
    assert_eq!(spec.retry_kind, Some(RetryKind::Checks));
    h.launch("T-1#2");
    h.exit("T-1#2", RunOutcome::Succeeded, Some("def"));
    let step = h.verify("id-1", |_| {});
    assert!(step.commands.contains(&Command::Publish {
        task_id: "id-1".into(),
        identifier: "T-1".into(),
        branch: "takt/T-1".into(),
        commit: "def".into(),
        pull_request: Some(pull_request("abc")),
    }));
    // A reading of the old head before the new publish landed is stale.
    let step = h.feed(forge_review("abc", failed));
    assert!(
        step.records
            .iter()
            .any(|r| matches!(r, Record::StaleReportRejected { .. }))
    );
    h.feed(Event::Published {
        task_id: "id-1".into(),
        commit: "def".into(),
        result: Ok(pull_request("def")),
    });
    h.feed(forge_review("def", failed));
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Failed);
    assert!(
        task.failure
            .as_ref()
            .is_some_and(|f| f.reason.contains("publish.max_ci_rounds")),
        "{:?}",
        task.failure
    );
}

#[test]
fn changes_requested_on_the_head_go_back_with_the_comments_and_old_reviews_do_not_count() {
    let mut h = published(Policy::default());
    // A review of an earlier commit neither blocks nor approves.
    let step = h.feed(forge_review("abc", |r| {
        r.reviews = vec![
            note("github:carol", ForgeVerdict::ChangesRequested, "old"),
            note("github:dave", ForgeVerdict::Approved, "old"),
        ];
    }));
    assert_eq!(h.task("id-1").state, TaskState::AwaitingReview);
    assert!(h.task("id-1").approvals.is_empty());
    assert!(!merges_pull_request(&step));

    h.feed(forge_review("abc", |r| {
        r.reviews = vec![note("github:carol", ForgeVerdict::ChangesRequested, "abc")];
    }));
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::RetryWait);
    assert_eq!(
        task.retry.as_ref().map(|r| r.kind),
        Some(RetryKind::Rejection)
    );
    assert!(
        task.feedback
            .as_deref()
            .is_some_and(|f| f.contains("github:carol requested changes:\ngithub:carol says so"))
    );
}

#[test]
fn a_failed_publish_is_tried_again_at_the_next_poll() {
    let mut policy = Policy::default();
    policy.publish.forge = true;
    let mut h = verifying(policy);
    h.verify("id-1", |_| {});
    h.feed(Event::Published {
        task_id: "id-1".into(),
        commit: "abc".into(),
        result: Err("forge_status: 502".into()),
    });
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::AwaitingReview);
    assert!(
        task.last_error
            .as_deref()
            .is_some_and(|e| e.contains("502"))
    );
    h.now += 60_000;
    let step = h.feed(Event::Tick);
    assert!(
        step.commands
            .iter()
            .any(|c| matches!(c, Command::Publish { commit, .. } if commit == "abc"))
    );
}

#[test]
fn a_pull_request_merged_or_closed_by_a_person_ends_the_task() {
    let mut h = published(Policy::default());
    h.feed(forge_review("abc", |r| r.merged = true));
    assert_eq!(h.task("id-1").state, TaskState::Done);

    let mut h = published(Policy::default());
    h.feed(forge_review("abc", |r| r.closed = true));
    let task = h.task("id-1");
    assert_eq!(task.state, TaskState::Failed);
    assert!(
        task.failure
            .as_ref()
            .is_some_and(|f| f.reason.contains("closed without merging"))
    );
}

#[test]
fn a_restart_resumes_a_forge_merge_through_the_pull_request() {
    let mut h = published(auto_ship());
    h.feed(forge_review("abc", |_| {}));
    assert_eq!(h.task("id-1").state, TaskState::Merging);
    let step = h.feed(Event::Restarted);
    assert!(merges_pull_request(&step));
}

fn closes_pull_request(step: &Step) -> bool {
    step.commands.iter().any(|c| {
        matches!(c, Command::ClosePullRequest { task_id, number: 7, comment }
            if task_id == "id-1" && comment.contains("T-1"))
    })
}

#[test]
fn cancelling_a_published_change_closes_its_pull_request_until_the_forge_confirms() {
    let mut h = published(Policy::default());
    let step = h.feed(Event::Operator(OperatorCommand::Cancel {
        task: "T-1".into(),
        by: "ops".into(),
    }));
    assert_eq!(h.task("id-1").state, TaskState::Cancelled);
    assert!(closes_pull_request(&step), "{:?}", step.commands);

    // The forge could not be reached: the next poll asks again.
    h.feed(Event::PullRequestClosed {
        task_id: "id-1".into(),
        number: 7,
        result: Err("forge_request: connection refused".into()),
    });
    assert!(!h.task("id-1").pull_request_closed);
    let step = h.feed(Event::PollRequested);
    assert!(closes_pull_request(&step), "{:?}", step.commands);

    let step = h.feed(Event::PullRequestClosed {
        task_id: "id-1".into(),
        number: 7,
        result: Ok(()),
    });
    assert!(matches!(
        step.records.as_slice(),
        [takt_core::Record::PullRequestClosed { number: 7, .. }]
    ));
    assert!(h.task("id-1").pull_request_closed);
    let step = h.feed(Event::PollRequested);
    assert!(
        !closes_pull_request(&step),
        "closed once: {:?}",
        step.commands
    );
}

#[test]
fn a_closed_issue_closes_the_pull_request_but_leaving_the_active_states_does_not() {
    let mut h = published(Policy::default());
    h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![issue(1, "Done")],
    });
    assert_eq!(h.task("id-1").state, TaskState::Cancelled);
    let step = h.feed(Event::PollRequested);
    assert!(closes_pull_request(&step), "{:?}", step.commands);

    let mut h = published(Policy::default());
    let step = h.feed(Event::IssuesRefreshed {
        requested: vec!["id-1".into()],
        issues: vec![],
    });
    assert_eq!(h.task("id-1").state, TaskState::Cancelled);
    assert!(
        !closes_pull_request(&step),
        "it may come back: {:?}",
        step.commands
    );
    let step = h.feed(Event::PollRequested);
    assert!(!closes_pull_request(&step), "{:?}", step.commands);
}
