//! Budgets through the state machine: a cap reached mid-run stops the run and ends the task
//! without a retry; day caps hold dispatch until the UTC day turns; the no-progress guard; an
//! upstream quota window holds dispatch and stall detection.

use takt_core::budget::{Budget, Limit, OnExhaust};
use takt_core::{Command, Event, Policy, RunExit, State, Step, StopReason, handle};
use takt_protocol::{CapReached, Issue, ModelCallReport, RunOutcome, TaskState};

const DAY: i64 = 86_400_000;

fn issue(n: u32) -> Issue {
    super::issue(n, "todo")
}

struct Factory {
    state: State,
    policy: Policy,
    now: i64,
}

impl Factory {
    fn new(budget: Budget) -> Factory {
        Factory {
            state: State::default(),
            policy: Policy {
                budget,
                ..Policy::default()
            },
            // Noon of some UTC day.
            now: 20_000 * DAY + DAY / 2,
        }
    }

    fn feed(&mut self, event: Event) -> Step {
        handle(&mut self.state, &self.policy, event, self.now)
    }

    fn poll(&mut self, issues: Vec<Issue>) -> Vec<String> {
        let step = self.feed(Event::CandidatesFetched { issues });
        step.commands
            .iter()
            .filter_map(|c| match c {
                Command::StartRun(spec) => Some(spec.run_id.clone()),
                _ => None,
            })
            .collect()
    }

    fn call(&mut self, run_id: &str, tokens: u64, micros: u64, cap: Option<&str>) -> Step {
        self.feed(Event::ModelCall(ModelCallReport {
            run_id: Some(run_id.into()),
            api: "responses".into(),
            path: "/v1/responses".into(),
            status: 200,
            model: Some("gpt-5.5".into()),
            input_tokens: tokens / 2,
            cached_input_tokens: 0,
            output_tokens: tokens - tokens / 2,
            reasoning_tokens: 0,
            metered: true,
            latency_ms: 5,
            refused: None,
            cost_micros: Some(micros),
            estimated: false,
            cap_reached: cap.map(|scope| CapReached {
                scope: scope.into(),
                unit: "tokens".into(),
                limit: 1000,
                spent: 1100,
            }),
            transcript: None,
        }))
    }

    /// The worker's answer to a stop: it committed the work and ended the run.
    fn stopped(&mut self, run_id: &str) -> Step {
        self.feed(Event::RunExited(RunExit {
            run_id: run_id.into(),
            outcome: RunOutcome::Cancelled,
            commit: Some("c0ffee".into()),
            error: Some("stopped".into()),
            turns: 1,
            question: None,
        }))
    }
}

fn stop_reason(step: &Step) -> Option<StopReason> {
    step.commands.iter().find_map(|c| match c {
        Command::StopRun { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_cap_reached_mid_run_stops_it_and_fails_the_task_with_a_spend_report() {
    let mut f = Factory::new(Budget {
        run: Limit {
            tokens: Some(1000),
            micros: None,
        },
        ..Budget::default()
    });
    let runs = f.poll(vec![issue(1)]);
    assert_eq!(runs, ["T-1#1"]);
    assert_eq!(stop_reason(&f.call("T-1#1", 600, 0, None)), None);
    let step = f.call("T-1#1", 500, 0, Some("run"));
    assert_eq!(stop_reason(&step), Some(StopReason::Budget));
    f.stopped("T-1#1");
    let task = &f.state.tasks["id-1"];
    assert_eq!(task.state, TaskState::Failed, "no retry into the same wall");
    let report = task.failure.as_ref().expect("a failure report");
    assert!(report.reason.contains("1100 tokens"), "{}", report.reason);
    assert_eq!(task.history[0].outcome, RunOutcome::BudgetExhausted);
    assert_eq!(
        task.history[0].commit.as_deref(),
        Some("c0ffee"),
        "work kept"
    );
}

#[test]
fn on_exhaust_pause_blocks_the_task_with_the_spend_as_its_question() {
    let mut f = Factory::new(Budget {
        task: Limit {
            tokens: Some(1000),
            micros: None,
        },
        on_exhaust: OnExhaust::Pause,
        ..Budget::default()
    });
    f.poll(vec![issue(1)]);
    f.call("T-1#1", 1100, 0, Some("task"));
    f.stopped("T-1#1");
    let task = &f.state.tasks["id-1"];
    assert_eq!(task.state, TaskState::Blocked);
    assert!(
        task.question
            .as_deref()
            .unwrap_or("")
            .contains("Raise `budget`")
    );
}

#[test]
fn a_spent_task_cap_is_not_dispatched_again() {
    let mut f = Factory::new(Budget {
        task: Limit {
            tokens: Some(1000),
            micros: None,
        },
        ..Budget::default()
    });
    f.poll(vec![issue(1)]);
    // The call reached the cap but the run ended on its own before a stop (say, it failed).
    f.call("T-1#1", 1200, 0, None);
    f.feed(Event::RunExited(RunExit {
        run_id: "T-1#1".into(),
        outcome: RunOutcome::Failed,
        commit: None,
        error: Some("boom".into()),
        turns: 1,
        question: None,
    }));
    f.now += 3_600_000;
    let started = f.poll(vec![issue(1)]);
    assert!(started.is_empty(), "{started:?}");
    let task = &f.state.tasks["id-1"];
    assert_eq!(task.state, TaskState::Failed);
    assert!(
        task.failure
            .as_ref()
            .unwrap()
            .reason
            .contains("per-task tokens cap"),
        "{:?}",
        task.failure
    );
}

#[test]
fn a_day_cap_holds_new_dispatches_until_the_next_utc_day() {
    let mut f = Factory::new(Budget {
        day: Limit {
            tokens: None,
            micros: Some(5_000_000),
        },
        ..Budget::default()
    });
    f.poll(vec![issue(1)]);
    f.call("T-1#1", 1000, 200_000, None);
    f.call("T-1#1", 1000, 5_000_000, None);
    f.feed(Event::RunExited(RunExit {
        run_id: "T-1#1".into(),
        outcome: RunOutcome::Succeeded,
        commit: Some("abc".into()),
        error: None,
        turns: 1,
        question: None,
    }));
    assert!(
        f.poll(vec![issue(2)]).is_empty(),
        "the day's money is spent"
    );
    assert_eq!(
        f.state.tasks["id-2"].state,
        TaskState::Queued,
        "held, not failed"
    );
    f.now = (f.now / DAY + 1) * DAY + 1; // just past midnight UTC
    assert_eq!(f.poll(vec![issue(2)]), ["T-2#1"]);
}

#[test]
fn tokens_without_progress_stop_the_run_as_stalled() {
    let mut f = Factory::new(Budget {
        max_tokens_without_progress: Some(1000),
        ..Budget::default()
    });
    f.poll(vec![issue(1)]);
    f.call("T-1#1", 800, 0, None);
    f.feed(Event::AgentActivity {
        run_id: "T-1#1".into(),
        event: takt_protocol::AgentEvent::FileChange {
            path: "src/lib.rs".into(),
        },
    });
    assert_eq!(
        stop_reason(&f.call("T-1#1", 800, 0, None)),
        None,
        "progress reset it"
    );
    let step = f.call("T-1#1", 300, 0, None);
    assert_eq!(stop_reason(&step), Some(StopReason::NoProgress));
    f.stopped("T-1#1");
    let task = &f.state.tasks["id-1"];
    assert_eq!(task.history[0].outcome, RunOutcome::Stalled);
}

#[test]
fn a_quota_window_holds_dispatch_and_stall_detection_until_it_opens() {
    let mut f = Factory::new(Budget::default());
    f.policy.stall_timeout_ms = 60_000;
    f.poll(vec![issue(1)]);
    let until = f.now + 120_000;
    f.feed(Event::QuotaChanged { until: Some(until) });
    assert!(
        f.poll(vec![issue(1), issue(2)]).is_empty(),
        "held during the window"
    );
    f.now += 90_000;
    let tick = f.feed(Event::Tick);
    assert_eq!(
        stop_reason(&tick),
        None,
        "waiting on the quota is not a stall"
    );
    f.feed(Event::QuotaChanged { until: None });
    assert_eq!(f.poll(vec![issue(1), issue(2)]), ["T-2#1"]);
}
