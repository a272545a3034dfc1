//! Deterministic simulation of the orchestrator (DESIGN §3).
//!
//! A seeded fake world — clock, tracker that flips states, agents with random outcomes and
//! durations, operators, random crash-restarts that rebuild state from the journal — drives the
//! pure core through thousands of scenarios. Invariants are checked after every step. A failing
//! seed is reproducible: `TAKT_SIM_SEED=<seed> cargo test -p takt-core simulation`.

use std::collections::{BTreeMap, VecDeque};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use takt_core::journal::{ChainVerifier, seal};
use takt_core::{
    Command, Event, MergeResult, OperatorCommand, Policy, Record, RunExit, State, StopReason,
    handle, next_deadline, replay,
};
use takt_protocol::{
    AgentEvent, GENESIS_HASH, GateOutcome, GateSource, GateStatus, Issue, JournalEntry, Millis,
    RiskTier, RunOutcome, TaskState, TokenUsage, Verdict, VerificationReport,
};

const STATES: [&str; 5] = ["Todo", "In Progress", "Backlog", "Done", "Cancelled"];

struct World {
    rng: SmallRng,
    seed: u64,
    now: Millis,
    policy: Policy,
    tracker: BTreeMap<String, Issue>,
    next_issue: u32,
    state: State,
    journal: Vec<JournalEntry>,
    /// The journal's records decoded back from their JSON payloads (decoded once, on append).
    decoded: Vec<(Record, Millis)>,
    verifier: ChainVerifier,
    pending: VecDeque<Command>,
    /// Live agent processes: run id -> (task id, finishes at).
    live: BTreeMap<String, (String, Millis)>,
    /// Run ids that existed once (for stale reports).
    old_runs: Vec<String>,
    steps: u64,
    crashes: u32,
    /// The fake forge's pull requests by task id (`publish.forge` seeds): one per task, ever.
    pull_requests: BTreeMap<String, u64>,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = SmallRng::seed_from_u64(seed);
        let policy = Policy {
            max_concurrent_agents: rng.random_range(1..=4),
            max_attempts: rng.random_range(1..=4),
            max_retry_backoff_ms: 40_000,
            stall_timeout_ms: if rng.random_bool(0.5) { 60_000 } else { 0 },
            max_run_duration_ms: 200_000,
            poll_interval_ms: 5_000,
            on_start_state: Some("In Progress".into()),
            on_done_state: Some("Done".into()),
            on_cancel_state: Some("Cancelled".into()),
            max_concurrent_agents_by_state: if rng.random_bool(0.3) {
                [("todo".to_string(), 1)].into_iter().collect()
            } else {
                BTreeMap::new()
            },
            ..Policy::default()
        };
        let mut policy = policy;
        policy.verification.max_rounds = rng.random_range(1..=3);
        policy.publish.forge = rng.random_bool(0.5);
        policy.publish.max_ci_rounds = rng.random_range(0..=2);
        let default_tier = match rng.random_range(0..10) {
            0..=2 => RiskTier::AutoShip,
            3..=7 => RiskTier::Review,
            _ => RiskTier::HardStop,
        };
        policy.verification.risk =
            takt_core::risk::RiskPolicy::new(takt_core::risk::RiskSettings {
                default_tier,
                hard_stop_approvals: 2,
                ..Default::default()
            })
            .unwrap_or_else(|error| panic!("a policy without globs compiles: {error}"));
        let mut world = World {
            rng,
            seed,
            now: 1_700_000_000_000,
            policy,
            tracker: BTreeMap::new(),
            next_issue: 0,
            state: State::default(),
            journal: Vec::new(),
            decoded: Vec::new(),
            verifier: ChainVerifier::default(),
            pending: VecDeque::new(),
            live: BTreeMap::new(),
            old_runs: Vec::new(),
            steps: 0,
            crashes: 0,
            pull_requests: BTreeMap::new(),
        };
        let initial = world.rng.random_range(1..=8);
        for _ in 0..initial {
            world.add_issue();
        }
        world
    }

    fn add_issue(&mut self) {
        self.next_issue += 1;
        let n = self.next_issue;
        let blocked = self.rng.random_bool(0.1);
        let issue = Issue {
            id: format!("id-{n}"),
            identifier: format!("SIM-{n}"),
            title: format!("task {n}"),
            description: None,
            priority: Some(self.rng.random_range(0..=4)),
            state: "Todo".into(),
            branch_name: None,
            url: None,
            assignee_id: None,
            labels: vec![],
            blocked_by: vec![],
            dispatchable: !blocked,
            created_at: Some(format!("2026-01-01T00:00:{:02}Z", n % 60)),
            updated_at: None,
            native_ref: None,
        };
        self.tracker.insert(issue.id.clone(), issue);
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "simulation seed {} failed after {} steps ({} crashes): {what}\n\
             replay with: TAKT_SIM_SEED={} cargo test -p takt-core simulation",
            self.seed, self.steps, self.crashes, self.seed
        );
    }

    /// Feeds one event through the core the way the shell does: decide, journal, then queue
    /// the commands.
    fn feed(&mut self, event: Event) {
        self.steps += 1;
        let step = handle(&mut self.state, &self.policy, event, self.now);
        for record in step.records.iter().filter(|record| record.is_durable()) {
            let (seq, hash) = self
                .journal
                .last()
                .map(|entry| (entry.seq, entry.hash.clone()))
                .unwrap_or((0, GENESIS_HASH.to_owned()));
            let payload =
                serde_json::to_value(record).unwrap_or_else(|e| self.fail(&e.to_string()));
            if payload["kind"] != serde_json::Value::String(record.kind()) {
                self.fail(&format!(
                    "{} is journaled as {}",
                    payload["kind"],
                    record.kind()
                ));
            }
            let entry = seal(
                seq,
                &hash,
                self.now,
                record.kind(),
                record.task_id().map(String::from),
                payload,
            );
            if let Err(broken) = self.verifier.push(&entry) {
                self.fail(&format!("journal chain broke: {broken}"));
            }
            let decoded: Record =
                serde_json::from_value(entry.payload.clone()).unwrap_or_else(|e| {
                    self.fail(&format!("journal entry {} unreadable: {e}", entry.seq))
                });
            if decoded != *record {
                self.fail(&format!("{record:?} does not survive its JSON round trip"));
            }
            self.decoded.push((decoded, self.now));
            self.journal.push(entry);
        }
        self.pending.extend(step.commands);
        self.check_invariants();
    }

    fn check_invariants(&mut self) {
        // Never two live runs for one task, and every live process is its task's current run.
        let mut per_task: BTreeMap<&str, u32> = BTreeMap::new();
        for (run_id, (task_id, _)) in &self.live {
            *per_task.entry(task_id.as_str()).or_default() += 1;
            let current = self
                .state
                .tasks
                .get(task_id)
                .and_then(|task| task.run.as_ref())
                .map(|run| run.run_id.as_str());
            if current != Some(run_id.as_str()) {
                self.fail(&format!(
                    "agent process {run_id} is alive but {task_id}'s current run is {current:?}"
                ));
            }
        }
        if let Some((task, n)) = per_task.iter().find(|(_, n)| **n > 1) {
            self.fail(&format!("{task} has {n} live runs"));
        }
        let running = self.state.running_count();
        if running > self.policy.max_concurrent_agents as usize {
            self.fail(&format!(
                "{running} runs exceed max_concurrent_agents {}",
                self.policy.max_concurrent_agents
            ));
        }
        for task in self.state.tasks.values() {
            if task.attempt > self.policy.max_attempts {
                self.fail(&format!(
                    "{} used {} attempts, more than max_attempts {}",
                    task.id, task.attempt, self.policy.max_attempts
                ));
            }
            // Verification is the daemon's, not a run's: a verifying task has a commit and no run.
            if task.state == TaskState::Verifying && (task.run.is_some() || task.commit.is_none()) {
                self.fail(&format!(
                    "{} is verifying with run {:?} and commit {:?}",
                    task.id, task.run, task.commit
                ));
            }
            let live_state = task.state == TaskState::Running;
            let may_hold_run = live_state || task.state == TaskState::Blocked;
            if (task.run.is_some() && !may_hold_run) || (live_state && task.run.is_none()) {
                self.fail(&format!(
                    "{} is {} but has run {:?}",
                    task.id, task.state, task.run
                ));
            }
            if task.state == TaskState::RetryWait && task.retry.is_none() {
                self.fail(&format!("{} waits for a retry without a due time", task.id));
            }
        }
    }

    /// The journal alone must rebuild what matters of the live state.
    fn check_replay(&self) {
        let rebuilt = replay(self.decoded.iter().map(|(record, at)| (record, *at)));
        let project = |state: &State| -> Vec<String> {
            state
                .tasks
                .values()
                .map(|task| {
                    format!(
                        "{} {} a={} retry={:?} run={:?} commit={:?} hist={}",
                        task.id,
                        task.state,
                        task.attempt,
                        task.retry,
                        task.run.as_ref().map(|run| (&run.run_id, run.stop)),
                        task.commit,
                        task.history.len()
                    )
                })
                .collect()
        };
        if project(&rebuilt) != project(&self.state) {
            self.fail(&format!(
                "replaying the journal does not rebuild the state\nlive:    {:#?}\nreplay:  {:#?}",
                project(&self.state),
                project(&rebuilt)
            ));
        }
    }

    fn crash_and_restart(&mut self) {
        self.crashes += 1;
        // The process dies: memory, queued commands and its agents (die-with-parent) are gone.
        self.check_replay();
        self.pending.clear();
        for run_id in std::mem::take(&mut self.live).into_keys() {
            self.old_runs.push(run_id);
        }
        self.state = replay(self.decoded.iter().map(|(record, at)| (record, *at)));
        self.feed(Event::Restarted);
    }

    fn execute_next_command(&mut self) {
        let Some(command) = self.pending.pop_front() else {
            return;
        };
        match command {
            Command::FetchCandidates => {
                if self.rng.random_bool(0.05) {
                    self.feed(Event::CandidatesFailed {
                        error: "tracker down".into(),
                    });
                } else {
                    let issues = self
                        .tracker
                        .values()
                        .filter(|issue| self.policy.is_active(&issue.state))
                        .cloned()
                        .collect();
                    self.feed(Event::CandidatesFetched { issues });
                }
            }
            Command::RefreshIssues { ids } => {
                if self.rng.random_bool(0.05) {
                    self.feed(Event::RefreshFailed {
                        error: "tracker down".into(),
                    });
                } else {
                    let issues = ids
                        .iter()
                        .filter_map(|id| self.tracker.get(id).cloned())
                        .collect();
                    self.feed(Event::IssuesRefreshed {
                        requested: ids,
                        issues,
                    });
                }
            }
            Command::StartRun(spec) => {
                if self.live.contains_key(&spec.run_id) {
                    self.fail(&format!("run {} started twice", spec.run_id));
                }
                if self.rng.random_bool(0.05) {
                    self.feed(Event::RunExited(RunExit {
                        run_id: spec.run_id,
                        outcome: RunOutcome::Failed,
                        commit: None,
                        error: Some("failed to spawn agent".into()),
                        turns: 0,
                        question: None,
                    }));
                    return;
                }
                let duration = self.rng.random_range(100..120_000);
                self.live.insert(
                    spec.run_id.clone(),
                    (spec.task_id.clone(), self.now + duration),
                );
                let pid = self.rng.random_range(2..60_000);
                self.feed(Event::RunLaunched {
                    run_id: spec.run_id,
                    pid: Some(pid),
                    workspace_path: format!("/ws/{}", spec.issue.identifier),
                    branch: format!("takt/{}", spec.issue.identifier),
                });
            }
            Command::StopRun { run_id, reason } => {
                if self.live.remove(&run_id).is_some() {
                    self.old_runs.push(run_id.clone());
                    let outcome = match reason {
                        StopReason::Stalled => RunOutcome::Stalled,
                        StopReason::WallClock => RunOutcome::TimedOut,
                        _ => RunOutcome::Cancelled,
                    };
                    self.feed(Event::RunExited(RunExit {
                        run_id,
                        outcome,
                        commit: None,
                        error: None,
                        turns: 1,
                        question: None,
                    }));
                }
            }
            Command::Merge {
                task_id,
                pull_request,
                ..
            } => {
                let expected = self
                    .policy
                    .publish
                    .forge
                    .then(|| self.pull_requests.get(&task_id).copied())
                    .flatten();
                if pull_request != expected {
                    self.fail(&format!(
                        "{task_id} merges through pull request {pull_request:?}, expected {expected:?}"
                    ));
                }
                let result = match self.rng.random_range(0..10) {
                    0 => MergeResult::Conflict {
                        details: "CONFLICT in src/lib.rs".into(),
                    },
                    1 => MergeResult::Failed {
                        error: "source tree dirty".into(),
                    },
                    _ => MergeResult::Merged {
                        sha: format!("{:040x}", self.rng.random::<u64>()),
                    },
                };
                self.feed(Event::MergeFinished { task_id, result });
            }
            Command::Verify {
                task_id,
                commit,
                round,
                ..
            } => {
                let report = self.random_verification(&task_id, commit, round);
                self.feed(Event::VerificationFinished {
                    task_id,
                    report: Box::new(report),
                    feedback: "gate cargo-test failed: tests::adds".into(),
                });
            }
            Command::Publish {
                task_id,
                commit,
                pull_request,
                ..
            } => {
                if !self.policy.publish.forge {
                    self.fail(&format!("{task_id} published without a forge"));
                }
                let known = self.pull_requests.get(&task_id).copied();
                if let (Some(given), Some(known)) = (&pull_request, known)
                    && given.number != known
                {
                    self.fail(&format!(
                        "{task_id} names pull request {} of {known}",
                        given.number
                    ));
                }
                let result = if self.rng.random_bool(0.1) {
                    Err("forge_status: 502".to_string())
                } else {
                    let next = self.pull_requests.len() as u64 + 1;
                    let number = *self.pull_requests.entry(task_id.clone()).or_insert(next);
                    Ok(takt_protocol::PullRequestRef {
                        number,
                        url: format!("https://forge.example/pull/{number}"),
                        head: commit.clone(),
                    })
                };
                self.feed(Event::Published {
                    task_id,
                    commit,
                    result,
                });
            }
            Command::ClosePullRequest {
                task_id, number, ..
            } => {
                let task = self.state.tasks.get(&task_id);
                if task.map(|task| task.state) != Some(TaskState::Cancelled)
                    || self.pull_requests.get(&task_id) != Some(&number)
                {
                    self.fail(&format!(
                        "{task_id} closes pull request {number} while not cancelled or not its own"
                    ));
                }
                let result = if self.rng.random_bool(0.2) {
                    Err("forge_request: connection reset".to_string())
                } else {
                    Ok(())
                };
                self.feed(Event::PullRequestClosed {
                    task_id,
                    number,
                    result,
                });
            }
            Command::CheckPullRequest { task_id, number } => {
                if self.pull_requests.get(&task_id) != Some(&number) {
                    self.fail(&format!(
                        "{task_id} checks pull request {number} it does not have"
                    ));
                }
                let head = self
                    .state
                    .tasks
                    .get(&task_id)
                    .and_then(|task| task.commit.clone())
                    .unwrap_or_default();
                let roll = self.rng.random_range(0..100);
                let login = format!("github:user{}", self.rng.random_range(0..3));
                let review = takt_core::ForgeReview {
                    head: head.clone(),
                    merged: roll < 3,
                    closed: (3..5).contains(&roll),
                    reviews: match roll {
                        5..=14 => vec![takt_core::ForgeReviewNote {
                            by: login,
                            verdict: takt_core::ForgeVerdict::ChangesRequested,
                            body: "please add a test".into(),
                            commit: Some(head),
                        }],
                        15..=69 => vec![takt_core::ForgeReviewNote {
                            by: login,
                            verdict: takt_core::ForgeVerdict::Approved,
                            body: String::new(),
                            commit: Some(head),
                        }],
                        _ => Vec::new(),
                    },
                    checks_pending: u32::from((70..80).contains(&roll)),
                    checks_failed: if (80..92).contains(&roll) {
                        vec![takt_core::FailedCheck {
                            name: "ci".into(),
                            log: "test failed".into(),
                        }]
                    } else {
                        Vec::new()
                    },
                };
                self.feed(Event::PullRequestChecked {
                    task_id,
                    number,
                    review,
                });
            }
            Command::CreateScheduledTask { .. } => {}
            Command::CleanWorkspace { .. } => {}
            Command::DeliverAnswer { run_id, .. } => {
                if !self.live.contains_key(&run_id) {
                    // The run ended meanwhile: the answer is lost to the session, which is the
                    // shell's problem to report; the core must not have sent it to a dead run
                    // it knew about.
                    let current = self
                        .state
                        .tasks
                        .values()
                        .any(|task| task.run.as_ref().is_some_and(|run| run.run_id == run_id));
                    if current {
                        self.fail(&format!("answer for {run_id} whose process is gone"));
                    }
                }
            }
            Command::TransitionIssue { issue_id, state } => {
                if let Some(issue) = self.tracker.get_mut(&issue_id) {
                    issue.state = state;
                }
            }
        }
    }

    /// A verification with a random result; reviewers commit to their verdicts first (and now
    /// and then a revealed verdict does not match its commitment).
    fn random_verification(
        &mut self,
        task_id: &str,
        commit: String,
        round: u32,
    ) -> VerificationReport {
        let roll = self.rng.random_range(0..20);
        let verdict = |by: &str, pass: bool| Verdict {
            by: by.into(),
            pass,
            summary: if pass { "fine" } else { "out of scope" }.into(),
            findings: Vec::new(),
            model: None,
        };
        let reviewer = verdict("qa", roll != 3);
        let hash = if roll == 4 {
            "0".repeat(64)
        } else {
            reviewer.commitment()
        };
        self.feed(Event::VerdictCommitted {
            task_id: task_id.to_owned(),
            commit: commit.clone(),
            by: "qa".into(),
            hash,
        });
        let gate = GateOutcome {
            gate: "cargo-test".into(),
            source: GateSource::Detected,
            required: true,
            status: if roll < 3 {
                GateStatus::Failed
            } else {
                GateStatus::Passed
            },
            new_failures: if roll < 3 {
                vec!["tests::adds".into()]
            } else {
                Vec::new()
            },
            preexisting_failures: Vec::new(),
            flaky: Vec::new(),
            runs: Vec::new(),
            baseline: None,
        };
        VerificationReport {
            base: "base".into(),
            gates: vec![gate],
            judge: Some(verdict("judge", roll != 5)),
            reviewers: vec![reviewer],
            error: (roll == 6).then(|| "the sandbox would not start".to_string()),
            ..VerificationReport::new(commit, round)
        }
    }

    fn finish_a_run(&mut self, force_success: bool) {
        let due: Vec<String> = self
            .live
            .iter()
            .filter(|(_, (_, at))| *at <= self.now || force_success)
            .map(|(run, _)| run.clone())
            .collect();
        let Some(run_id) = due.first().cloned() else {
            return;
        };
        self.live.remove(&run_id);
        self.old_runs.push(run_id.clone());
        let roll = if force_success {
            0
        } else {
            self.rng.random_range(0..10)
        };
        let (outcome, commit, question) = match roll {
            0..=4 => (
                RunOutcome::Succeeded,
                Some(format!("{:040x}", self.rng.random::<u64>())),
                None,
            ),
            5 => (RunOutcome::Succeeded, None, None),
            6 => (
                RunOutcome::InputRequired,
                None,
                Some("which API?".to_string()),
            ),
            7 => (RunOutcome::TimedOut, None, None),
            _ => (RunOutcome::Failed, None, None),
        };
        self.feed(Event::RunExited(RunExit {
            run_id,
            outcome,
            commit,
            error: (outcome != RunOutcome::Succeeded).then(|| "agent error".to_string()),
            turns: 1,
            question,
        }));
    }

    fn random_operator(&mut self, helpful: bool) {
        let tasks: Vec<(String, TaskState)> = self
            .state
            .tasks
            .values()
            .map(|task| (task.issue.identifier.clone(), task.state))
            .collect();
        if tasks.is_empty() {
            return;
        }
        let (task, state) = tasks[self.rng.random_range(0..tasks.len())].clone();
        let command = match (state, self.rng.random_range(0..10)) {
            (TaskState::AwaitingReview, 0..=6) => OperatorCommand::Approve {
                task,
                by: "alice".into(),
                comment: None,
            },
            (TaskState::AwaitingReview, _) if !helpful => OperatorCommand::Reject {
                task,
                by: "alice".into(),
                comment: "add a test".into(),
            },
            (TaskState::AwaitingReview, _) => OperatorCommand::Approve {
                task,
                by: "bob".into(),
                comment: None,
            },
            (TaskState::Blocked, _) => OperatorCommand::Answer {
                task,
                by: "alice".into(),
                text: "use v2".into(),
            },
            (TaskState::Failed, 0..=2) if !helpful => OperatorCommand::Retry {
                task,
                by: "alice".into(),
            },
            (_, 0) if !helpful => OperatorCommand::Cancel {
                task,
                by: "alice".into(),
            },
            // Commands that do not apply must be refused without changing anything.
            (_, _) => OperatorCommand::Approve {
                task,
                by: "mallory".into(),
                comment: None,
            },
        };
        let before = self.state.clone();
        let refused_expected = matches!(&command, OperatorCommand::Approve { by, .. } if by == "mallory")
            && state != TaskState::AwaitingReview;
        let step = handle(
            &mut self.state,
            &self.policy,
            Event::Operator(command.clone()),
            self.now,
        );
        if refused_expected && (step.refusal.is_none() || self.state != before) {
            self.fail(&format!(
                "{command:?} on a {state} task was not refused cleanly"
            ));
        }
        // Put the step through the journal like any other.
        self.state = before;
        self.feed(Event::Operator(command));
    }

    fn stale_report(&mut self) {
        if self.old_runs.is_empty() {
            return;
        }
        let run_id = self.old_runs[self.rng.random_range(0..self.old_runs.len())].clone();
        let before: Vec<(String, TaskState, u32)> = self
            .state
            .tasks
            .values()
            .map(|task| (task.id.clone(), task.state, task.attempt))
            .collect();
        self.feed(Event::RunExited(RunExit {
            run_id: run_id.clone(),
            outcome: RunOutcome::Succeeded,
            commit: Some("f".repeat(40)),
            error: None,
            turns: 1,
            question: None,
        }));
        let after: Vec<(String, TaskState, u32)> = self
            .state
            .tasks
            .values()
            .map(|task| (task.id.clone(), task.state, task.attempt))
            .collect();
        if before != after {
            self.fail(&format!("a stale report for {run_id} changed task state"));
        }
    }

    fn flip_tracker(&mut self) {
        let ids: Vec<String> = self.tracker.keys().cloned().collect();
        if ids.is_empty() {
            return;
        }
        let id = ids[self.rng.random_range(0..ids.len())].clone();
        let state = STATES[self.rng.random_range(0..STATES.len())].to_string();
        if let Some(issue) = self.tracker.get_mut(&id) {
            issue.state = state;
            if self.rng.random_bool(0.2) {
                issue.dispatchable = !issue.dispatchable;
            }
        }
    }

    fn advance(&mut self, max: Millis) {
        let deadline = next_deadline(&self.state, &self.policy);
        let step = self.rng.random_range(1..max);
        self.now = if deadline > self.now && self.rng.random_bool(0.5) {
            deadline.min(self.now + max)
        } else {
            self.now + step
        };
        self.feed(Event::Tick);
    }

    fn chaos_step(&mut self) {
        match self.rng.random_range(0..100) {
            0..=29 => self.execute_next_command(),
            30..=44 => self.advance(30_000),
            45..=59 => self.finish_a_run(false),
            60..=64 => self.flip_tracker(),
            65..=67 => self.add_issue(),
            68..=77 => self.random_operator(false),
            78..=81 => self.stale_report(),
            82..=84 => self.crash_and_restart(),
            85..=86 => {
                let runs: Vec<String> = self.live.keys().cloned().collect();
                if !runs.is_empty() {
                    let run_id = runs[self.rng.random_range(0..runs.len())].clone();
                    self.feed(Event::AgentActivity {
                        run_id,
                        event: AgentEvent::InputRequired {
                            question: "which API?".into(),
                        },
                    });
                }
            }
            87..=89 => {
                if let Some(run_id) = self.live.keys().next().cloned() {
                    self.feed(Event::AgentActivity {
                        run_id,
                        event: AgentEvent::TokenUsage {
                            usage: TokenUsage {
                                input_tokens: 10,
                                output_tokens: 5,
                                total_tokens: 15,
                            },
                        },
                    });
                }
            }
            _ => {
                if self.rng.random_bool(0.5) {
                    self.feed(Event::PollRequested);
                } else {
                    self.advance(2_000);
                }
            }
        }
    }

    /// Stop the chaos; a calm world must bring every task to a terminal or waiting state.
    fn settle(&mut self) {
        for _ in 0..5_000 {
            if self.pending.is_empty() && self.live.is_empty() && self.settled() {
                return;
            }
            if !self.pending.is_empty() {
                self.execute_next_command();
            } else if !self.live.is_empty() {
                self.finish_a_run(true);
            } else {
                self.random_operator(true);
                self.now = next_deadline(&self.state, &self.policy).max(self.now + 1);
                self.feed(Event::Tick);
            }
        }
        let unsettled: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|task| !(task.state.is_terminal() || task.state.is_waiting_on_human()))
            .map(|task| format!("{} {} retry={:?}", task.id, task.state, task.retry))
            .collect();
        self.fail(&format!("the world never settled: {unsettled:?}"));
    }

    fn settled(&self) -> bool {
        self.state.tasks.values().all(|task| {
            // A task whose issue is no longer active in the tracker may rest in any
            // non-running state; everything else must end or wait for a person.
            let tracker_active = self
                .tracker
                .get(&task.id)
                .is_some_and(|issue| self.policy.is_active(&issue.state) && issue.dispatchable);
            task.state.is_terminal()
                || task.state.is_waiting_on_human()
                || (!tracker_active && task.run.is_none() && task.state != TaskState::Merging)
        })
    }
}

fn run_seed(seed: u64, steps: u32) -> World {
    let mut world = World::new(seed);
    world.feed(Event::Tick);
    for _ in 0..steps {
        world.chaos_step();
    }
    world.settle();
    world.check_replay();
    if let Err(broken) = takt_core::journal::verify_chain(&world.journal) {
        world.fail(&format!("journal chain invalid at the end: {broken}"));
    }
    world
}

#[test]
fn simulation_holds_invariants_across_seeds() {
    if let Some(seed) = std::env::var("TAKT_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        run_seed(seed, 400);
        return;
    }
    let seeds: u64 = std::env::var("TAKT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let mut totals = (0u64, 0u32, 0usize);
    for seed in 0..seeds {
        let world = run_seed(seed, 300);
        totals.0 += world.steps;
        totals.1 += world.crashes;
        totals.2 += world.state.tasks.len();
    }
    eprintln!(
        "simulation: {seeds} seeds, {} steps, {} crashes, {} tasks",
        totals.0, totals.1, totals.2
    );
    // The simulation must actually exercise the machine: crashes and many tasks happened.
    assert!(totals.1 > seeds as u32, "too few crashes: {}", totals.1);
    assert!(totals.2 > seeds as usize * 3, "too few tasks: {}", totals.2);
}

#[test]
fn simulation_reaches_every_outcome() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let world = run_seed(seed, 300);
        for task in world.state.tasks.values() {
            seen.insert(task.state);
        }
    }
    for state in [
        TaskState::Done,
        TaskState::Failed,
        TaskState::Cancelled,
        TaskState::AwaitingReview,
    ] {
        assert!(
            seen.contains(&state),
            "no seed ended a task in {state}: {seen:?}"
        );
    }
}
