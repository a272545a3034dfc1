//! An in-memory daemon behind the real port: a real `takt_core::State` changed only by feeding
//! events through `takt_core::handle`, a hash-chained journal of the records, a broadcast of
//! each entry as it is "committed", and a map of artifacts.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use takt_core::{Event, OperatorCommand, Policy, RunExit, State, handle};
use takt_protocol::{
    AgentEvent, GateOutcome, GateSource, GateStatus, Issue, JournalEntry, Millis, ModelCallReport,
    RunOutcome, TokenUsage, VerificationReport,
};
use takt_server::{
    DaemonPort, NewTask, PortError, RefreshQueued, Snapshot, WebhookDelivery, WebhookOutcome,
};
use tokio::sync::broadcast;

/// Everything the fake was asked to do, for assertions.
#[derive(Debug, Default)]
pub struct Calls {
    pub submitted: Vec<OperatorCommand>,
    pub created: Vec<NewTask>,
    pub refreshes: u32,
    pub subscriptions: u32,
    /// Webhook deliveries the fake acted on (not the duplicates).
    pub webhooks: Vec<WebhookDelivery>,
    /// Refused webhook requests, as journaled.
    pub refusals: Vec<Refusal>,
}

/// One `webhook_refused` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub source: String,
    pub delivery: Option<String>,
    pub reason: String,
}

pub struct FakeDaemon {
    inner: Mutex<Inner>,
    live: broadcast::Sender<JournalEntry>,
    available: AtomicBool,
    /// Commands never get an answer (a stuck daemon loop).
    stalled: AtomicBool,
    pub calls: Mutex<Calls>,
}

struct Inner {
    state: State,
    policy: Policy,
    journal: Vec<JournalEntry>,
    artifacts: HashMap<String, Vec<u8>>,
    issues: Vec<Issue>,
    poll_in_flight: bool,
    /// Entries sent on each new subscription right after it is made: as if they committed
    /// between the subscription and the replay (they are in the journal too).
    echo_on_subscribe: Vec<JournalEntry>,
    /// (source, delivery id) of the webhook deliveries acted on: the daemon's durable
    /// deduplication, in memory here.
    deliveries: HashSet<(String, String)>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Now, on the wall clock (the server computes ages against it).
pub fn now_ms() -> Millis {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since.as_millis()).unwrap_or(Millis::MAX)
}

/// A tracker issue `TAKT-<n>` (id `id-<n>`) in `Todo`.
pub fn issue(n: u32, priority: Option<i64>) -> Issue {
    Issue {
        id: format!("id-{n}"),
        identifier: format!("TAKT-{n}"),
        title: format!("task {n}"),
        description: Some(format!("do thing {n}")),
        priority,
        state: "Todo".into(),
        branch_name: None,
        url: Some(format!("https://tracker.example/TAKT-{n}")),
        assignee_id: None,
        labels: vec![],
        blocked_by: vec![],
        dispatchable: true,
        created_at: None,
        updated_at: None,
        native_ref: None,
    }
}

impl FakeDaemon {
    /// An empty daemon whose broadcast holds `capacity` entries.
    pub fn empty(capacity: usize) -> FakeDaemon {
        let policy = Policy {
            max_concurrent_agents: 2,
            ..Policy::default()
        };
        FakeDaemon {
            inner: Mutex::new(Inner {
                state: State::default(),
                policy,
                journal: Vec::new(),
                artifacts: HashMap::new(),
                issues: Vec::new(),
                poll_in_flight: false,
                echo_on_subscribe: Vec::new(),
                deliveries: HashSet::new(),
            }),
            live: broadcast::channel(capacity).0,
            available: AtomicBool::new(true),
            stalled: AtomicBool::new(false),
            calls: Mutex::new(Calls::default()),
        }
    }

    /// The standard fixture, built by real core events (two agent slots):
    ///
    /// - TAKT-6 went through review and merged (`done`);
    /// - TAKT-3's run failed (`retry_wait`);
    /// - TAKT-4's change passed its gates (`awaiting_review`, with evidence);
    /// - TAKT-1 runs (session, a turn, a message, tokens, a metered model call, rate limits);
    /// - TAKT-2's live agent asked a question (`blocked`);
    /// - TAKT-5 waits for a slot (`queued`).
    pub fn fixture() -> FakeDaemon {
        let daemon = FakeDaemon::empty(1024);
        daemon.poll(&[issue(6, Some(1))]);
        daemon.launch(6);
        daemon.succeed("TAKT-6#1", "c0ffee");
        daemon.verify_green("id-6");
        daemon.operate(OperatorCommand::Approve {
            task: "TAKT-6".into(),
            by: "alice".into(),
            comment: None,
        });
        daemon.feed(Event::MergeFinished {
            task_id: "id-6".into(),
            result: takt_core::MergeResult::Merged {
                sha: "merged6".into(),
            },
        });

        daemon.poll(&[issue(6, Some(1)), issue(3, Some(3)), issue(4, Some(4))]);
        daemon.launch(3);
        daemon.launch(4);
        daemon.feed(Event::RunExited(RunExit {
            run_id: "TAKT-3#1".into(),
            outcome: RunOutcome::Failed,
            commit: None,
            error: Some("agent exited with 1".into()),
            turns: 2,
            question: None,
        }));
        daemon.succeed("TAKT-4#1", "abc123");
        daemon.verify_green("id-4");

        let all: Vec<Issue> = [(1, Some(1)), (2, Some(2)), (3, Some(3)), (4, Some(4))]
            .into_iter()
            .map(|(n, priority)| issue(n, priority))
            .chain([issue(5, None), issue(6, Some(1))])
            .collect();
        daemon.poll(&all);
        daemon.launch(1);
        daemon.launch(2);
        for event in [
            AgentEvent::SessionStarted {
                session_id: "sess-1".into(),
            },
            AgentEvent::TurnStarted { turn: 1 },
            AgentEvent::Message {
                text: "editing src/lib.rs".into(),
            },
            AgentEvent::TokenUsage {
                usage: TokenUsage {
                    input_tokens: 120,
                    output_tokens: 30,
                    total_tokens: 150,
                },
            },
            AgentEvent::RateLimits {
                limits: serde_json::json!({"limit_id": "codex", "primary": {"used_percent": 12}}),
            },
        ] {
            daemon.feed(Event::AgentActivity {
                run_id: "TAKT-1#1".into(),
                event,
            });
        }
        daemon.feed(Event::ModelCall(model_call("TAKT-1#1")));
        daemon.feed(Event::AgentActivity {
            run_id: "TAKT-2#1".into(),
            event: AgentEvent::InputRequired {
                question: "Which database?".into(),
            },
        });
        daemon.store_artifact(b"test result: ok. 3 passed\n");
        daemon
    }

    /// Feeds one event through the core and journals its durable records.
    pub fn feed(&self, event: Event) -> takt_core::Step {
        let mut inner = lock(&self.inner);
        let now = now_ms();
        let Inner { state, policy, .. } = &mut *inner;
        let step = handle(state, policy, event, now);
        for record in step.records.iter().filter(|record| record.is_durable()) {
            let payload = serde_json::to_value(record).unwrap_or_else(|e| panic!("{e}"));
            let entry = inner.seal(now, record.kind(), record.task_id(), payload);
            inner.journal.push(entry.clone());
            let _ = self.live.send(entry);
        }
        step
    }

    /// Appends an entry to the journal without broadcasting it (a gap the stream must fill).
    pub fn journal_silently(&self, kind: &str) -> JournalEntry {
        let mut inner = lock(&self.inner);
        let entry = inner.seal(
            now_ms(),
            kind.into(),
            None,
            serde_json::json!({"kind": kind}),
        );
        inner.journal.push(entry.clone());
        entry
    }

    /// Appends an entry to the journal and broadcasts it.
    pub fn journal_live(&self, kind: &str, task_id: Option<&str>) -> JournalEntry {
        let mut inner = lock(&self.inner);
        let payload = serde_json::json!({"kind": kind});
        let entry = inner.seal(now_ms(), kind.into(), task_id, payload);
        inner.journal.push(entry.clone());
        let _ = self.live.send(entry.clone());
        entry
    }

    /// Makes every later subscription first receive the journal's last `count` entries again.
    pub fn echo_last_on_subscribe(&self, count: usize) {
        let mut inner = lock(&self.inner);
        let from = inner.journal.len().saturating_sub(count);
        inner.echo_on_subscribe = inner.journal[from..].to_vec();
    }

    pub fn journal(&self) -> Vec<JournalEntry> {
        lock(&self.inner).journal.clone()
    }

    pub fn set_available(&self, available: bool) {
        self.available.store(available, Ordering::SeqCst);
    }

    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn store_artifact(&self, bytes: &[u8]) -> String {
        let hash = takt_core::journal::sha256_hex(bytes);
        lock(&self.inner)
            .artifacts
            .insert(hash.clone(), bytes.to_vec());
        hash
    }

    pub fn state(&self) -> State {
        lock(&self.inner).state.clone()
    }

    /// A poll answered with `issues` (remembered as the tracker's issues).
    fn poll(&self, issues: &[Issue]) {
        {
            let mut inner = lock(&self.inner);
            for issue in issues {
                if !inner.issues.iter().any(|known| known.id == issue.id) {
                    inner.issues.push(issue.clone());
                }
            }
        }
        self.feed(Event::CandidatesFetched {
            issues: issues.to_vec(),
        });
    }

    /// The first run of `TAKT-<n>` started its agent in `/ws/TAKT-<n>`.
    fn launch(&self, n: u32) {
        self.feed(Event::RunLaunched {
            run_id: format!("TAKT-{n}#1"),
            pid: Some(4240 + n),
            workspace_path: format!("/ws/TAKT-{n}"),
            branch: format!("takt/TAKT-{n}"),
        });
    }

    fn succeed(&self, run_id: &str, commit: &str) {
        self.feed(Event::RunExited(RunExit {
            run_id: run_id.into(),
            outcome: RunOutcome::Succeeded,
            commit: Some(commit.into()),
            error: None,
            turns: 1,
            question: None,
        }));
    }

    /// Reports the verification the core asked for: every gate green.
    fn verify_green(&self, task_id: &str) {
        let state = self.state();
        let task = &state.tasks[task_id];
        let report = VerificationReport {
            base: "base".into(),
            gates: vec![GateOutcome {
                gate: "cargo-test".into(),
                source: GateSource::Detected,
                required: true,
                status: GateStatus::Passed,
                new_failures: vec![],
                preexisting_failures: vec![],
                flaky: vec![],
                runs: vec![],
                baseline: None,
            }],
            ..VerificationReport::new(task.commit.clone().unwrap_or_default(), task.verify_rounds)
        };
        self.feed(Event::VerificationFinished {
            task_id: task_id.into(),
            report: Box::new(report),
            feedback: String::new(),
        });
    }

    fn operate(&self, command: OperatorCommand) {
        let step = self.feed(Event::Operator(command));
        assert_eq!(step.refusal, None, "the fixture's command was refused");
    }
}

impl Inner {
    fn seal(
        &self,
        at: Millis,
        kind: String,
        task_id: Option<&str>,
        payload: serde_json::Value,
    ) -> JournalEntry {
        let (seq, hash) = self
            .journal
            .last()
            .map_or((0, takt_protocol::GENESIS_HASH.to_owned()), |last| {
                (last.seq, last.hash.clone())
            });
        takt_core::journal::seal(seq, &hash, at, kind, task_id.map(String::from), payload)
    }
}

fn model_call(run_id: &str) -> ModelCallReport {
    ModelCallReport {
        run_id: Some(run_id.into()),
        api: "responses".into(),
        path: "/v1/responses".into(),
        status: 200,
        model: Some("gpt-test".into()),
        input_tokens: 1000,
        cached_input_tokens: 0,
        output_tokens: 200,
        reasoning_tokens: 0,
        metered: true,
        latency_ms: 30,
        refused: None,
        cost_micros: Some(1500),
        estimated: false,
        cap_reached: None,
        transcript: None,
    }
}

#[async_trait]
impl DaemonPort for FakeDaemon {
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        if !self.available.load(Ordering::SeqCst) {
            return None;
        }
        let inner = lock(&self.inner);
        Some(Arc::new(Snapshot {
            state: Arc::new(inner.state.clone()),
            poll_interval_ms: inner.policy.poll_interval_ms,
            next_poll_due_at_ms: Some(now_ms() + 10_000),
            poll_in_flight: inner.poll_in_flight,
            max_concurrent_agents: inner.policy.max_concurrent_agents,
            schedules: vec![takt_server::ScheduleStatus {
                name: "nightly".into(),
                cron: "0 3 * * *".into(),
                timezone: "UTC".into(),
                next_due_at_ms: Some(1_800_000_000_000),
                last_fired_at_ms: None,
            }],
        }))
    }

    fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        lock(&self.calls).subscriptions += 1;
        let receiver = self.live.subscribe();
        for entry in lock(&self.inner).echo_on_subscribe.clone() {
            let _ = self.live.send(entry);
        }
        receiver
    }

    async fn refresh(&self) -> Result<RefreshQueued, PortError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("the daemon is stopping".into()));
        }
        lock(&self.calls).refreshes += 1;
        let mut inner = lock(&self.inner);
        let coalesced = inner.poll_in_flight;
        inner.poll_in_flight = true;
        Ok(RefreshQueued { coalesced })
    }

    async fn submit(&self, command: OperatorCommand) -> Result<(), PortError> {
        lock(&self.calls).submitted.push(command.clone());
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let step = self.feed(Event::Operator(command));
        match step.refusal {
            Some(refusal) => Err(PortError::Refused(refusal)),
            None => Ok(()),
        }
    }

    async fn create_task(&self, task: NewTask) -> Result<Issue, PortError> {
        lock(&self.calls).created.push(task.clone());
        let known: Vec<Issue> = lock(&self.inner).issues.clone();
        for blocker in &task.blocked_by {
            if !known
                .iter()
                .any(|issue| issue.identifier.eq_ignore_ascii_case(blocker) || issue.id == *blocker)
            {
                return Err(PortError::Invalid(format!(
                    "no issue {blocker} to wait for"
                )));
            }
        }
        let n = u32::try_from(known.len()).unwrap_or(0) + 100;
        let mut created = issue(n, task.priority);
        created.title = task.title;
        created.description = task.body;
        created.labels = task.labels;
        created.native_ref = Some(serde_json::json!({"author": task.author}));
        let mut all = known;
        all.push(created.clone());
        self.poll(&all);
        Ok(created)
    }

    async fn webhook(&self, delivery: WebhookDelivery) -> Result<WebhookOutcome, PortError> {
        if !self.available.load(Ordering::SeqCst) {
            return Err(PortError::Unavailable("the daemon is stopping".into()));
        }
        let key = (delivery.source().to_owned(), delivery.delivery().to_owned());
        if lock(&self.inner).deliveries.contains(&key) {
            return Ok(WebhookOutcome {
                duplicate: true,
                task: None,
            });
        }
        let task = match &delivery {
            WebhookDelivery::Trigger(_) => {
                self.refresh().await?;
                None
            }
            WebhookDelivery::Task { task, .. } => Some(self.create_task(task.clone()).await?),
        };
        // Only a delivery acted on is remembered, so a failed one can be redelivered.
        lock(&self.inner).deliveries.insert(key);
        lock(&self.calls).webhooks.push(delivery);
        Ok(WebhookOutcome {
            duplicate: false,
            task,
        })
    }

    async fn webhook_refused(&self, source: &str, delivery: Option<String>, reason: String) {
        lock(&self.calls).refusals.push(Refusal {
            source: source.to_owned(),
            delivery,
            reason,
        });
    }

    async fn journal_since(
        &self,
        after_seq: u64,
        limit: u32,
    ) -> Result<Vec<JournalEntry>, PortError> {
        Ok(lock(&self.inner)
            .journal
            .iter()
            .filter(|entry| entry.seq > after_seq)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn task_journal(&self, task_id: &str) -> Result<Vec<JournalEntry>, PortError> {
        Ok(lock(&self.inner)
            .journal
            .iter()
            .filter(|entry| entry.task_id.as_deref() == Some(task_id))
            .cloned()
            .collect())
    }

    async fn artifact(&self, sha256: &str) -> Result<Option<Vec<u8>>, PortError> {
        Ok(lock(&self.inner).artifacts.get(sha256).cloned())
    }
}
