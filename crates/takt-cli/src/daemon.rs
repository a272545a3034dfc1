//! The daemon: the imperative shell around the core. It executes the core's commands through
//! the adapters, feeds their results back as events, and journals every decision first.
//!
//! Shape (mini-redis): [`Daemon::run`] loops until `shutdown` resolves (or, with `--once`,
//! until nothing is left to do).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use takt_core::ports::Tracker;
use takt_core::{Command, Event, MergeResult, OperatorCommand, StopReason, next_deadline};
use takt_protocol::TaskState;
use takt_store::{LockError, StateLock};
use takt_workflow::{ReloadOutcome, Workflow, WorkflowWatcher};
use takt_workspace::{MergeOutcome, WorkspaceManager};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::clock::now_ms;
use crate::engine::Engine;
use crate::models::{EndpointNews, ModelEndpoint, next_news};
use crate::project::{Project, policy_for, run_dir, workspaces_for};
use crate::worker::{self, RunContext};

/// The socket beside the state that wakes the daemon (`poll`: new local work; `inbox`: an
/// operator command is waiting).
pub const WAKE_SOCKET: &str = "daemon.sock";

/// The most worker reports journaled in one transaction.
const MAX_BURST: usize = 256;

/// How often the daemon re-checks WORKFLOW.md and the operator inbox when no wake-up
/// arrives.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// How often empty sandbox cgroups are removed.
const CGROUP_SWEEP: Duration = Duration::from_secs(10);

pub struct Daemon {
    watcher: Option<WorkflowWatcher>,
    workflow: Arc<Workflow>,
    state_dir: PathBuf,
    engine: Engine,
    tracker: Arc<dyn Tracker>,
    workspaces: Arc<WorkspaceManager>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    runs: HashMap<String, RunControl>,
    background: JoinSet<()>,
    pending: VecDeque<Command>,
    merges_in_flight: usize,
    polls_answered: u64,
    /// Applying operator commands without a daemon: polls and dispatch wait for `takt run`.
    inline: bool,
    /// The model endpoint agents reach their model through (when the backend uses one).
    models: Option<ModelEndpoint>,
    /// Where every agent process runs; rebuilt when `sandbox` changes in WORKFLOW.md.
    sandbox: Arc<takt_sandbox::Sandbox>,
    /// What confinement this host offers, probed once.
    host: Option<takt_sandbox::HostReport>,
    /// When empty launch cgroups were last removed.
    cgroups_swept_at: std::time::Instant,
    /// Runs the gates, the judge and the reviewers; `None` inline (no verification there).
    verifier: Option<Arc<takt_verify::Verifier>>,
    /// Verifications running here, by (task, round): a second request for one (a restart
    /// re-asking for a verification this process already started) is not run twice.
    verifying: std::collections::HashSet<(String, u32)>,
    /// Forge calls running, by kind and task. The core asks again at every poll until the
    /// forge's answer is in; a second call racing the first could open a second pull request
    /// (once the first merged) or comment twice, so it is not started.
    forge_calls: std::collections::HashSet<(ForgeCall, String)>,
    /// The HTTP API's channels, when `takt run` serves one.
    api: Option<crate::api::ApiChannels>,
    /// The API server, while it runs.
    server: Option<crate::api::RunningServer>,
    /// The state changed since the API's snapshot was last published.
    snapshot_stale: bool,
    /// The forge `publish.forge` names; `None` for local merges.
    publisher: Option<crate::publish::Publisher>,
    /// takt's comments on the source issues, written in order by one background task.
    writeback: Option<mpsc::UnboundedSender<(takt_protocol::Issue, String)>>,
    _lock: StateLock,
}

/// A forge call the daemon runs at most once at a time per task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ForgeCall {
    Publish,
    Close,
}

/// How much of the factory a process starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `takt run`: agents, the model endpoint, WORKFLOW.md reloads.
    Daemon,
    /// A self-contained run (the demo): agents and the model endpoint, no reloads.
    Embedded,
    /// Applying operator commands with no daemon running: no agents, no model endpoint.
    Inline,
}

/// The daemon's handles on a live run's worker.
struct RunControl {
    stop: watch::Sender<Option<StopReason>>,
    answers: mpsc::UnboundedSender<String>,
}

/// What `--once` came to.
#[derive(Debug, Default)]
pub struct Summary {
    pub tasks: Vec<takt_protocol::TaskSummary>,
}

impl Daemon {
    /// Takes the state lock, rebuilds state from the journal, kills what a crashed predecessor
    /// left behind and cleans terminal workspaces.
    pub async fn start(project: Project, mode: Mode) -> Result<Daemon> {
        let watch_file = mode == Mode::Daemon;
        let lock = StateLock::acquire(&project.state_dir).map_err(|error| match error {
            LockError::Held { pid, state_dir } => anyhow!(
                "another takt daemon{} is using {}; stop it first (only one daemon may drive a \
                 state directory)",
                pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default(),
                state_dir.display()
            ),
            other => anyhow!(other),
        })?;
        let store = project.store().await?;
        let tracker = project.tracker(&store)?;
        let workspaces = Arc::new(project.workspaces()?);
        let publisher = match crate::publish::Publisher::from_workflow(
            &project.workflow,
            &workspaces,
        ) {
            Ok(publisher) => publisher,
            // An operator command applied without the daemon leaves forge work to it.
            Err(error) if mode == Mode::Inline => {
                warn!(error = %format!("{error:#}"), "no forge for this command; the daemon publishes");
                None
            }
            Err(error) => return Err(error),
        };
        let engine = Engine::load(store, project.policy()).await?;
        let watcher = if watch_file {
            Some(WorkflowWatcher::new(
                &project.workflow.path,
                Box::new(takt_workflow::ProcessEnv),
            )?)
        } else {
            None
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut daemon = Daemon {
            watcher,
            workflow: project.workflow.clone(),
            state_dir: project.state_dir.clone(),
            engine,
            tracker,
            workspaces,
            events_tx,
            events_rx,
            runs: HashMap::new(),
            background: JoinSet::new(),
            pending: VecDeque::new(),
            merges_in_flight: 0,
            polls_answered: 0,
            inline: false,
            models: None,
            sandbox: Arc::new(takt_sandbox::Sandbox::unconfined(
                takt_sandbox::Policy::default(),
            )),
            host: None,
            cgroups_swept_at: std::time::Instant::now(),
            verifier: None,
            verifying: std::collections::HashSet::new(),
            forge_calls: std::collections::HashSet::new(),
            api: None,
            server: None,
            snapshot_stale: false,
            publisher,
            writeback: None,
            _lock: lock,
        };
        if mode != Mode::Inline && daemon.tracker.kind() != "local" {
            daemon.writeback = Some(spawn_writeback(daemon.tracker.clone()));
        }
        if mode != Mode::Inline && crate::models::needs_model(&daemon.workflow) {
            daemon.models =
                Some(ModelEndpoint::start(&daemon.workflow, &daemon.engine.state).await?);
        }
        if mode != Mode::Inline {
            let host = crate::sandbox::probe(&daemon.workflow)?;
            let sandbox = crate::sandbox::build(
                &daemon.workflow,
                &host,
                &daemon.state_dir,
                daemon.models.as_ref().map(ModelEndpoint::addr),
            )?;
            info!(sandbox = %sandbox.describe(), "agents are confined");
            let swept = takt_sandbox::cgroup_sweep(sandbox.key(), true);
            if swept > 0 {
                info!(
                    swept,
                    "removed sandbox cgroups a previous daemon left behind"
                );
            }
            daemon.sandbox = Arc::new(sandbox);
            daemon.verifier = Some(Arc::new(crate::verification::verifier(
                &daemon.workflow,
                &host,
                &daemon.state_dir,
                daemon.workspaces.clone(),
                daemon.engine.store.clone(),
            )?));
            daemon.host = Some(host);
            crate::sandbox::confine_hooks(
                &daemon.workflow,
                &daemon.workspaces,
                &daemon.sandbox,
                &daemon.state_dir,
            );
        }
        daemon.sweep_orphans();
        daemon.recover_finished_runs().await?;
        daemon.startup_cleanup().await;
        daemon.collect_garbage().await;
        let first = if daemon.engine.state.tasks.is_empty() {
            Event::Tick
        } else {
            Event::Restarted
        };
        daemon.feed(first).await?;
        Ok(daemon)
    }

    /// Serves the HTTP API on `listener` while the daemon runs.
    pub fn serve_api(
        &mut self,
        listener: tokio::net::TcpListener,
        config: takt_server::ServerConfig,
    ) -> Result<()> {
        let tracker = takt_store::LocalTracker::new(
            self.engine.store.clone(),
            self.workflow.tracker.active_states.clone(),
            self.workflow.tracker.terminal_states.clone(),
        );
        let (port, channels) = crate::api::connect(
            self.engine.store.clone(),
            tracker,
            self.engine.journaled.clone(),
            self.workspaces.settings().mirror_dir.clone(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(takt_server::serve(
            listener,
            Arc::new(port),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        self.api = Some(channels);
        self.server = Some(crate::api::RunningServer { task: server, stop });
        self.publish_snapshot();
        Ok(())
    }

    /// Hands the API the state as journaled now.
    fn publish_snapshot(&mut self) {
        self.snapshot_stale = false;
        let Some(api) = &self.api else {
            return;
        };
        let policy = &self.engine.policy;
        let now = now_ms();
        let schedules = policy
            .schedules
            .iter()
            .map(|schedule| {
                let seen = self.engine.state.schedules.get(&schedule.name);
                takt_server::ScheduleStatus {
                    name: schedule.name.clone(),
                    cron: schedule.cron_text.clone(),
                    timezone: schedule.timezone.clone(),
                    next_due_at_ms: schedule.next_due(seen, now),
                    last_fired_at_ms: seen.and_then(|s| s.last_fired_ms),
                }
            })
            .collect();
        let snapshot = takt_server::Snapshot {
            state: Arc::new(self.engine.state.clone()),
            poll_interval_ms: policy.poll_interval_ms,
            next_poll_due_at_ms: self.engine.state.last_poll_at_ms.map(|at| {
                at.saturating_add(i64::try_from(policy.poll_interval_ms).unwrap_or(i64::MAX))
            }),
            poll_in_flight: self.pending.contains(&Command::FetchCandidates),
            max_concurrent_agents: policy.max_concurrent_agents,
            schedules,
        };
        let _ = api.snapshots.send(Some(Arc::new(snapshot)));
    }

    /// A command or a refresh from the API, answered once its step is journaled and the
    /// snapshot that shows it is published.
    async fn on_api(&mut self, request: crate::api::ApiRequest) -> Result<()> {
        match request {
            crate::api::ApiRequest::Operator(command, reply) => {
                info!(?command, "operator command (API)");
                self.note(&Event::Operator(command.clone()));
                let step = self.engine.step(Event::Operator(command)).await?;
                self.attest_after(&step.records).await;
                self.queue(step.commands);
                self.publish_snapshot();
                let _ = reply.send(step.refusal.map_or(Ok(()), Err));
            }
            crate::api::ApiRequest::Webhook(delivery, reply) => {
                let outcome = self.on_webhook(delivery).await;
                self.publish_snapshot();
                let _ = reply.send(outcome);
            }
            crate::api::ApiRequest::WebhookRefused {
                source,
                delivery,
                reason,
            } => {
                warn!(%source, delivery = delivery.as_deref().unwrap_or(""), %reason, "webhook refused");
                self.feed(Event::WebhookRefused {
                    source,
                    delivery,
                    reason,
                })
                .await?;
            }
            crate::api::ApiRequest::Refresh(reply) => {
                let coalesced = self.pending.contains(&Command::FetchCandidates);
                if !coalesced {
                    self.feed(Event::PollRequested).await?;
                }
                self.publish_snapshot();
                let _ = reply.send(takt_server::RefreshQueued { coalesced });
            }
        }
        Ok(())
    }

    /// An authenticated webhook delivery. A replayed delivery id is answered as a duplicate
    /// (the core refuses one too, should it get that far); a task delivery's issue is created before its id is used up, under an author
    /// key naming the delivery, so a crash in between finds the issue instead of making a
    /// second one.
    async fn on_webhook(
        &mut self,
        delivery: takt_server::WebhookDelivery,
    ) -> Result<takt_server::WebhookOutcome, takt_server::PortError> {
        let internal =
            |error: anyhow::Error| takt_server::PortError::Internal(format!("{error:#}"));
        let source = delivery.source().to_owned();
        let id = delivery.delivery().to_owned();
        if self
            .engine
            .state
            .webhook_deliveries
            .contains(&takt_core::delivery_key(&source, &id))
        {
            // The server reports the 409 it answers through `webhook_refused`, which journals
            // it; journaling it here too would record one replay twice.
            return Ok(takt_server::WebhookOutcome {
                duplicate: true,
                task: None,
            });
        }
        let (summary, task) = match delivery {
            takt_server::WebhookDelivery::Trigger(trigger) => (
                format!(
                    "{} {}{}{}",
                    trigger.event,
                    trigger.action.as_deref().unwrap_or(""),
                    trigger.number.map(|n| format!(" #{n}")).unwrap_or_default(),
                    trigger
                        .repository
                        .as_deref()
                        .map(|r| format!(" in {r}"))
                        .unwrap_or_default()
                ),
                None,
            ),
            takt_server::WebhookDelivery::Task { task, .. } => {
                let title = task.title.clone();
                let issue =
                    self.webhook_task(&source, &id, task)
                        .await
                        .map_err(|error| match error.downcast::<takt_store::StoreError>() {
                            Ok(takt_store::StoreError::Invalid(message)) => {
                                takt_server::PortError::Invalid(message)
                            }
                            Ok(other) => takt_server::PortError::Internal(other.to_string()),
                            Err(error) => internal(error),
                        })?;
                (format!("task {}: {title}", issue.identifier), Some(issue))
            }
        };
        self.feed(Event::WebhookReceived {
            source,
            delivery: id,
            summary,
        })
        .await
        .map_err(internal)?;
        Ok(takt_server::WebhookOutcome {
            duplicate: false,
            task,
        })
    }

    /// The local issue of a task delivery, found again when an earlier try created it.
    async fn webhook_task(
        &self,
        source: &str,
        delivery: &str,
        task: takt_server::NewTask,
    ) -> Result<takt_protocol::Issue> {
        let key = format!("webhook:{source}:{delivery}");
        let tracker = takt_store::LocalTracker::new(
            self.engine.store.clone(),
            self.workflow.tracker.active_states.clone(),
            self.workflow.tracker.terminal_states.clone(),
        );
        if let Some(existing) = tracker
            .list(None)
            .await?
            .into_iter()
            .find(|issue| issue.author() == Some(key.as_str()))
        {
            return Ok(existing);
        }
        Ok(tracker
            .create_issue(
                takt_store::NewIssue {
                    title: task.title,
                    description: task.body,
                    priority: task.priority,
                    labels: task.labels,
                    blocked_by: task.blocked_by,
                    state: None,
                    author: Some(key),
                },
                now_ms(),
            )
            .await?)
    }

    /// Processes the operator inbox without running any agent: used by CLI commands when no
    /// daemon is running, so `takt review approve` works either way.
    pub async fn settle_inbox(&mut self) -> Result<()> {
        self.inline = true;
        self.pending.clear();
        self.process_inbox().await?;
        loop {
            self.execute_pending().await?;
            if self.merges_in_flight == 0 && self.background.is_empty() {
                return Ok(());
            }
            tokio::select! {
                Some(event) = self.events_rx.recv() => self.feed(event).await?,
                Some(_) = self.background.join_next() => {}
            }
        }
    }

    /// Queues the core's commands; inline, only what an operator command leads to (merges,
    /// cleanups, write-back) is kept.
    fn queue(&mut self, commands: Vec<Command>) {
        let inline = self.inline;
        self.pending.extend(commands.into_iter().filter(|command| {
            !inline
                || !matches!(
                    command,
                    Command::FetchCandidates
                        | Command::RefreshIssues { .. }
                        | Command::StartRun(_)
                        | Command::Verify { .. }
                )
        }));
    }

    pub async fn run(mut self, once: bool, shutdown: impl Future<Output = ()>) -> Result<Summary> {
        let listener = self.bind_wake_socket();
        tokio::pin!(shutdown);
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            self.execute_pending().await?;
            if self.snapshot_stale {
                self.publish_snapshot();
            }
            if once && self.idle() {
                break;
            }
            let deadline = next_deadline(&self.engine.state, &self.engine.policy);
            let wait = Duration::from_millis(u64::try_from(deadline - now_ms()).unwrap_or(0));
            tokio::select! {
                Some(event) = self.events_rx.recv() => self.feed_burst(event).await?,
                Some(news) = next_news(self.models.as_mut()) => self.on_endpoint_news(news).await?,
                () = tokio::time::sleep(wait) => self.feed(Event::Tick).await?,
                Some(_) = self.background.join_next(), if !self.background.is_empty() => {}
                wake = accept(listener.as_ref()) => self.on_wake(wake).await?,
                Some(request) = next_api_request(self.api.as_mut()) => self.on_api(request).await?,
                _ = housekeeping.tick() => {
                    // Launch cgroups are left for the daemon to remove once empty; a few
                    // seconds late is fine, a scan every tick is not.
                    if self.cgroups_swept_at.elapsed() >= CGROUP_SWEEP {
                        takt_sandbox::cgroup_sweep(self.sandbox.key(), false);
                        self.cgroups_swept_at = std::time::Instant::now();
                    }
                    self.reload();
                    self.process_inbox().await?;
                }
                () = &mut shutdown => {
                    info!("shutting down: live runs are stopped and resume on the next start");
                    break;
                }
            }
        }
        // Dropping the workers kills their agents' process groups; the journal still shows the
        // runs live, so the next start marks them interrupted and retries them.
        self.background.shutdown().await;
        if let Some(server) = self.server.take() {
            let _ = server.stop.send(());
            match tokio::time::timeout(Duration::from_secs(5), server.task).await {
                Ok(Ok(Err(error))) => warn!(%error, "the API server stopped with an error"),
                Err(_) => warn!("the API server did not stop within 5 s"),
                _ => {}
            }
        }
        takt_sandbox::cgroup_sweep(self.sandbox.key(), true);
        if let Some(models) = self.models.take() {
            models.shutdown().await;
        }
        let _ = fs_err::remove_file(self.state_dir.join(WAKE_SOCKET));
        Ok(Summary {
            tasks: self
                .engine
                .state
                .tasks
                .values()
                .map(takt_core::Task::summary)
                .collect(),
        })
    }

    /// `--once`: nothing live, nothing queued, nothing about to retry.
    fn idle(&self) -> bool {
        self.polls_answered > 0
            && self.pending.is_empty()
            && self.runs.is_empty()
            && self.merges_in_flight == 0
            && self.verifying.is_empty()
            && self.engine.state.tasks.values().all(|task| {
                !matches!(
                    task.state,
                    TaskState::Queued
                        | TaskState::Running
                        | TaskState::Verifying
                        | TaskState::RetryWait
                        | TaskState::Merging
                )
            })
    }

    async fn feed(&mut self, event: Event) -> Result<()> {
        self.snapshot_stale = true;
        self.note(&event);
        let step = self.engine.step(event).await?;
        self.attest_after(&step.records).await;
        self.queue(step.commands);
        Ok(())
    }

    /// Where frozen build caches come from, when `verify.warm_cache` is on.
    fn build_caches(&self) -> Option<Arc<takt_verify::Verifier>> {
        self.verifier
            .clone()
            .filter(|_| self.workflow.verify.warm_cache)
    }

    async fn on_endpoint_news(&mut self, news: EndpointNews) -> Result<()> {
        match news {
            EndpointNews::Call(mut call, transcript) => {
                call.transcript = self.store_transcript(transcript).await;
                self.feed(Event::ModelCall(*call)).await
            }
            EndpointNews::Quota(until) => {
                match until {
                    Some(until) => warn!(
                        until_ms = until,
                        "the model provider's quota window is closed; calls are held and dispatch waits"
                    ),
                    None => info!("the model provider's quota window opened; resuming"),
                }
                self.feed(Event::QuotaChanged { until }).await
            }
        }
    }

    /// Feeds `first` and whatever else the workers have already reported, journaled together.
    async fn feed_burst(&mut self, first: Event) -> Result<()> {
        let mut events = vec![first];
        while events.len() < MAX_BURST {
            match self.events_rx.try_recv() {
                Ok(event) => events.push(event),
                Err(_) => break,
            }
        }
        // The endpoint reports a call before its answer reaches the agent, so the calls behind
        // a run's exit are already queued: taken first, a run whose call was refused at a
        // budget cap ends as stopped by the budget rather than as a failed agent.
        if events
            .iter()
            .any(|event| matches!(event, Event::RunExited(_)))
        {
            for news in crate::models::reported_calls(self.models.as_mut()) {
                self.on_endpoint_news(news).await?;
            }
        }
        self.snapshot_stale = true;
        for event in &events {
            self.note(event);
        }
        for step in self.engine.step_all(events).await? {
            self.attest_after(&step.records).await;
            self.queue(step.commands);
        }
        Ok(())
    }

    /// The shell's own bookkeeping about an event (which workers and merges are still out).
    fn note(&mut self, event: &Event) {
        if let Event::RunExited(exit) = event {
            self.runs.remove(&exit.run_id);
            if let Some(models) = &self.models {
                models.revoke(&exit.run_id);
            }
        }
        if let Event::MergeFinished { .. } = event {
            self.merges_in_flight = self.merges_in_flight.saturating_sub(1);
        }
        match event {
            Event::Published { task_id, .. } => {
                self.forge_calls
                    .remove(&(ForgeCall::Publish, task_id.clone()));
            }
            Event::PullRequestClosed { task_id, .. } => {
                self.forge_calls
                    .remove(&(ForgeCall::Close, task_id.clone()));
            }
            _ => {}
        }
        if let Event::VerificationFinished {
            task_id, report, ..
        } = event
        {
            self.verifying.remove(&(task_id.clone(), report.round));
            if let (Some(models), Some(task)) = (&self.models, self.engine.state.tasks.get(task_id))
            {
                models.revoke(&crate::verification::grant_id(
                    &task.issue.identifier,
                    report.round,
                ));
            }
        }
    }

    async fn execute_pending(&mut self) -> Result<()> {
        while let Some(command) = self.pending.pop_front() {
            self.execute(command).await?;
        }
        Ok(())
    }

    async fn execute(&mut self, command: Command) -> Result<()> {
        match command {
            Command::FetchCandidates => {
                let states = self.workflow.tracker.active_states.clone();
                let event = match self.tracker.fetch_issues_by_states(&states).await {
                    Ok(issues) => Event::CandidatesFetched { issues },
                    Err(error) => {
                        warn!(%error, category = error.category(), "candidate fetch failed; skipping dispatch this tick");
                        Event::CandidatesFailed {
                            error: error.to_string(),
                        }
                    }
                };
                self.polls_answered += 1;
                self.collect_answers();
                self.feed(event).await?;
            }
            Command::RefreshIssues { ids } => {
                let event = match self.tracker.fetch_issues_by_ids(&ids).await {
                    Ok(issues) => Event::IssuesRefreshed {
                        requested: ids,
                        issues,
                    },
                    Err(error) => {
                        warn!(%error, "issue refresh failed; keeping workers, retrying next tick");
                        Event::RefreshFailed {
                            error: error.to_string(),
                        }
                    }
                };
                self.feed(event).await?;
            }
            Command::StartRun(spec) => self.start_run(*spec),
            Command::StopRun { run_id, reason } => match self.runs.get(&run_id) {
                Some(control) => {
                    info!(run_id = %run_id, ?reason, "stopping run");
                    let _ = control.stop.send(Some(reason));
                }
                None => {
                    // No worker holds it (it never started here): report it over.
                    let _ = self.events_tx.send(Event::RunExited(takt_core::RunExit {
                        run_id,
                        outcome: takt_protocol::RunOutcome::Cancelled,
                        commit: None,
                        error: Some("stopped before it started".into()),
                        turns: 0,
                        question: None,
                    }));
                }
            },
            Command::Publish {
                task_id,
                branch,
                commit,
                pull_request,
                ..
            } => {
                let (Some(publisher), Some(task)) = (
                    self.publisher.clone(),
                    self.engine.state.tasks.get(&task_id).cloned(),
                ) else {
                    return Ok(());
                };
                if !self
                    .forge_calls
                    .insert((ForgeCall::Publish, task_id.clone()))
                {
                    return Ok(());
                }
                let events = self.events_tx.clone();
                self.background.spawn(async move {
                    let result = publisher
                        .publish(&task, &branch, &commit, pull_request.as_ref())
                        .await;
                    if let Err(error) = &result {
                        warn!(issue_identifier = %task.issue.identifier, %error, "publishing failed; trying again at the next poll");
                    }
                    let _ = events.send(Event::Published {
                        task_id,
                        commit,
                        result,
                    });
                });
            }
            Command::CheckPullRequest { task_id, number } => {
                let Some(publisher) = self.publisher.clone() else {
                    return Ok(());
                };
                let published_at = self
                    .engine
                    .state
                    .tasks
                    .get(&task_id)
                    .and_then(|task| task.published_at_ms);
                let events = self.events_tx.clone();
                self.background.spawn(async move {
                    match publisher.check(number, published_at).await {
                        Ok(review) => {
                            let _ = events.send(Event::PullRequestChecked {
                                task_id,
                                number,
                                review,
                            });
                        }
                        // Read again at the next poll.
                        Err(error) => warn!(task_id = %task_id, number, %error, "reading the pull request failed"),
                    }
                });
            }
            Command::ClosePullRequest {
                task_id,
                number,
                comment,
            } => {
                // An inline cancel leaves the forge to the daemon's next poll.
                let Some(publisher) = self.publisher.clone() else {
                    return Ok(());
                };
                if !self.forge_calls.insert((ForgeCall::Close, task_id.clone())) {
                    return Ok(());
                }
                let events = self.events_tx.clone();
                self.background.spawn(async move {
                    let result = publisher.close(number, &comment).await;
                    match &result {
                        Ok(()) => info!(task_id = %task_id, number, "closed the cancelled task's pull request"),
                        Err(error) => warn!(task_id = %task_id, number, %error, "closing the pull request failed; trying again at the next poll"),
                    }
                    let _ = events.send(Event::PullRequestClosed {
                        task_id,
                        number,
                        result,
                    });
                });
            }
            Command::Merge {
                task_id,
                identifier,
                branch,
                commit,
                pull_request,
            } => {
                let forge = match (pull_request, self.publisher.clone()) {
                    (Some(number), Some(publisher)) => Some((number, publisher)),
                    // The daemon publishes; an inline command leaves the merge to it.
                    (Some(_), None) => return Ok(()),
                    (None, _) => None,
                };
                self.merges_in_flight += 1;
                let workspaces = self.workspaces.clone();
                let events = self.events_tx.clone();
                // An operator command waits for its background work; a daemon has the time.
                let prepare = !self.inline;
                let build_caches = self
                    .build_caches()
                    .map(|verifier| (verifier, self.workflow.clone()));
                self.background.spawn(async move {
                    let result = match forge {
                        Some((number, publisher)) => publisher.merge(number, &commit).await,
                        None => merge(&workspaces, &identifier, &branch, &commit).await,
                    };
                    info!(issue_identifier = %identifier, ?result, "merge finished");
                    let merged = matches!(result, MergeResult::Merged { .. });
                    let _ = events.send(Event::MergeFinished { task_id, result });
                    if merged && prepare {
                        prepare_next_base(&workspaces, build_caches).await;
                    }
                });
            }
            Command::Verify {
                task_id,
                identifier,
                commit,
                round,
            } => self.start_verification(task_id, identifier, commit, round),
            Command::CreateScheduledTask {
                schedule,
                occurrence_ms,
                template,
            } => {
                match self
                    .create_scheduled_task(&schedule, occurrence_ms, template)
                    .await
                {
                    Ok(issue_id) => {
                        self.feed(Event::ScheduledTaskCreated {
                            schedule,
                            occurrence_ms,
                            issue_id,
                        })
                        .await?;
                    }
                    // The occurrence stays pending; the next start creates it.
                    Err(error) => {
                        warn!(schedule = %schedule, %error, "creating a scheduled task failed")
                    }
                }
            }
            Command::CleanWorkspace {
                identifier, path, ..
            } => {
                let workspaces = self.workspaces.clone();
                self.background.spawn(async move {
                    let removed = match path.as_deref().map(Path::new) {
                        Some(path) => workspaces.remove(path).await,
                        None => workspaces.remove(identifier.as_str()).await,
                    };
                    if let Err(error) = removed {
                        warn!(issue_identifier = %identifier, %error, "workspace cleanup failed");
                    }
                });
            }
            Command::DeliverAnswer { run_id, text } => {
                let delivered = self
                    .runs
                    .get(&run_id)
                    .is_some_and(|control| control.answers.send(text).is_ok());
                if !delivered {
                    warn!(run_id = %run_id, "the run that asked is gone; the answer waits in the task's feedback");
                }
            }
            Command::TransitionIssue { issue_id, state } => {
                if let Err(error) = self.tracker.transition(&issue_id, &state).await {
                    warn!(issue_id = %issue_id, %error, "tracker write-back failed");
                    return Ok(());
                }
                // The task's snapshot follows what takt itself just wrote.
                if let Ok(issues) = self.tracker.fetch_issues_by_ids(&[issue_id]).await {
                    for issue in issues {
                        self.feed(Event::IssueWritten { issue }).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The local task of a schedule's occurrence: found by its author key when a previous try
    /// created it before a crash, else created.
    async fn create_scheduled_task(
        &self,
        schedule: &str,
        occurrence_ms: i64,
        template: takt_core::schedule::TaskTemplate,
    ) -> Result<String> {
        let key = format!("schedule:{schedule}@{occurrence_ms}");
        let tracker = takt_store::LocalTracker::new(
            self.engine.store.clone(),
            self.workflow.tracker.active_states.clone(),
            self.workflow.tracker.terminal_states.clone(),
        );
        if let Some(existing) = tracker
            .list(None)
            .await?
            .into_iter()
            .find(|issue| issue.author() == Some(key.as_str()))
        {
            return Ok(existing.id);
        }
        let issue = tracker
            .create_issue(
                takt_store::NewIssue {
                    title: template.title,
                    description: template.body,
                    priority: template.priority,
                    labels: template.labels,
                    blocked_by: Vec::new(),
                    state: None,
                    author: Some(key),
                },
                now_ms(),
            )
            .await?;
        info!(schedule, issue_identifier = %issue.identifier, "scheduled task created");
        Ok(issue.id)
    }

    fn start_verification(
        &mut self,
        task_id: String,
        identifier: String,
        commit: String,
        round: u32,
    ) {
        let (Some(verifier), Some(task)) =
            (self.verifier.clone(), self.engine.state.tasks.get(&task_id))
        else {
            return;
        };
        if !self.verifying.insert((task_id.clone(), round)) {
            info!(issue_identifier = %identifier, round, "this verification is already running");
            return;
        }
        let issue = task.issue.clone();
        let review = crate::verification::review_panel(
            &self.workflow,
            self.models.as_ref(),
            &task_id,
            &crate::verification::grant_id(&identifier, round),
        );
        let workflow = self.workflow.clone();
        let workspaces = self.workspaces.clone();
        let events = self.events_tx.clone();
        self.background.spawn(async move {
            let base = match workspaces.sync_mirror().await {
                Ok(base) => base.sha,
                Err(error) => {
                    let report = takt_verify::runner::failed_report(
                        &commit,
                        round,
                        format!("updating the repository mirror failed: {error}"),
                    );
                    let _ = events.send(Event::VerificationFinished {
                        task_id,
                        report: Box::new(report),
                        feedback: String::new(),
                    });
                    return;
                }
            };
            let request = crate::verification::Request {
                task_id,
                issue,
                commit,
                round,
                base,
                review,
            };
            crate::verification::run(verifier, workflow, request, events).await;
        });
    }

    /// Attestations follow the journal: written when a change is verified, rewritten with the
    /// approvals when it merges. Written in line (a git note takes milliseconds, and happens
    /// once per verification or merge) so the note and the merge it describes are ordered and
    /// never lost to a shutdown.
    async fn attest_after(&self, records: &[takt_core::Record]) {
        self.write_back(records);
        for record in records {
            let (task_id, publish) = match record {
                takt_core::Record::Verified { task_id, .. } => (task_id, false),
                takt_core::Record::Merged { task_id, .. } => (task_id, true),
                _ => continue,
            };
            let Some(task) = self.engine.state.tasks.get(task_id) else {
                continue;
            };
            let head = self
                .engine
                .store
                .journal_head()
                .await
                .ok()
                .map(|(_, hash)| hash);
            crate::verification::attest(
                &self.workspaces,
                task,
                &self.sandbox.describe(),
                head,
                publish,
            )
            .await;
        }
    }

    /// Comments on blocked tasks' issues that mention `tracker.answer_mention` become their
    /// answers, as if given with `takt answer` (by `<tracker>:<login>`). Remote trackers only.
    fn collect_answers(&mut self) {
        if self.writeback.is_none() {
            return;
        }
        let mention = self.workflow.tracker.answer_mention.to_lowercase();
        for task in self.engine.state.tasks.values() {
            let (TaskState::Blocked, Some(since), Some(_)) =
                (task.state, task.blocked_at_ms, &task.question)
            else {
                continue;
            };
            let tracker = self.tracker.clone();
            let issue = task.issue.clone();
            let task_id = task.id.clone();
            let events = self.events_tx.clone();
            let mention = mention.clone();
            self.background.spawn(async move {
                let comments = match tracker.comments_since(&issue, since).await {
                    Ok(comments) => comments,
                    Err(error) => {
                        warn!(issue_identifier = %issue.identifier, %error, "reading the issue's comments failed");
                        return;
                    }
                };
                let answer = comments.iter().find_map(|comment| {
                    // takt's own comments (its status, its agents') never answer anything.
                    if comment.body.contains(crate::writeback::MARKER)
                        || comment.body.contains(crate::host_tools::AGENT_MARKER)
                    {
                        return None;
                    }
                    let at = comment.body.to_lowercase().find(&mention)?;
                    let text = format!(
                        "{}{}",
                        comment.body.get(..at)?,
                        comment.body.get(at + mention.len()..)?
                    );
                    Some((comment.author.clone(), text.trim().to_owned()))
                });
                if let Some((author, text)) = answer.filter(|(_, text)| !text.is_empty()) {
                    info!(issue_identifier = %issue.identifier, %author, "answer taken from an issue comment");
                    let _ = events.send(Event::Operator(takt_core::OperatorCommand::Answer {
                        task: task_id,
                        by: format!("{}:{author}", tracker.kind()),
                        text,
                    }));
                }
            });
        }
    }

    /// Queues takt's comment on the source issue of every task a record moved somewhere its
    /// readers care about.
    fn write_back(&self, records: &[takt_core::Record]) {
        let Some(writeback) = &self.writeback else {
            return;
        };
        for record in records.iter().filter(|r| crate::writeback::is_milestone(r)) {
            if let Some(task) = record
                .task_id()
                .and_then(|id| self.engine.state.tasks.get(id))
            {
                let _ =
                    writeback.send((task.issue.clone(), crate::writeback::status_comment(task)));
            }
        }
    }

    fn start_run(&mut self, spec: takt_core::RunSpec) {
        let (stop_tx, stop_rx) = watch::channel(None);
        let (answers_tx, answers_rx) = mpsc::unbounded_channel();
        self.runs.insert(
            spec.run_id.clone(),
            RunControl {
                stop: stop_tx,
                answers: answers_tx,
            },
        );
        let backend =
            match crate::backends::backend_for(&self.workflow, &spec.issue, self.sandbox.clone()) {
                Ok(backend) => backend,
                Err(error) => {
                    let _ = self.events_tx.send(Event::RunExited(takt_core::RunExit {
                        run_id: spec.run_id,
                        outcome: takt_protocol::RunOutcome::Failed,
                        commit: None,
                        error: Some(format!("failed to spawn agent: {error}")),
                        turns: 0,
                        question: None,
                    }));
                    return;
                }
            };
        info!(issue_id = %spec.task_id, issue_identifier = %spec.issue.identifier, run_id = %spec.run_id, "dispatching");
        let model = self.models.as_ref().map(|models| {
            models.grant(
                &spec.run_id,
                &spec.task_id,
                self.workflow.model.name.clone(),
            )
        });
        let host_tools: Arc<dyn takt_core::ports::HostTools> =
            Arc::new(crate::host_tools::RunTools::new(
                &spec.run_id,
                spec.issue.clone(),
                self.tracker.clone(),
                self.publisher
                    .as_ref()
                    .map(crate::publish::Publisher::forge),
                self.engine
                    .state
                    .tasks
                    .get(&spec.task_id)
                    .and_then(|task| task.pull_request.clone()),
                crate::host_tools::secret_values(&self.workflow),
            ));
        if let Some(models) = &self.models {
            models.attach_host_tools(&spec.run_id, host_tools.clone());
        }
        let context = RunContext {
            host_tools: Some(host_tools),
            build_caches: self.build_caches(),
            model,
            run_dir: run_dir(&self.state_dir, &spec.run_id),
            spec,
            workflow: self.workflow.clone(),
            policy: self.engine.policy.clone(),
            backend,
            tracker: self.tracker.clone(),
            workspaces: self.workspaces.clone(),
            sandbox: self.sandbox.clone(),
            events: self.events_tx.clone(),
            stop: stop_rx,
            answers: answers_rx,
        };
        self.background.spawn(worker::run(context));
    }

    async fn process_inbox(&mut self) -> Result<()> {
        let items = self.engine.store.pending_commands().await?;
        for item in items {
            let result = match serde_json::from_value::<OperatorCommand>(item.payload.clone()) {
                Ok(command) => {
                    info!(?command, "operator command");
                    let step = self.engine.step(Event::Operator(command)).await?;
                    self.queue(step.commands);
                    match step.refusal {
                        None => serde_json::json!({"ok": true}),
                        Some(why) => serde_json::json!({"ok": false, "message": why}),
                    }
                }
                Err(error) => serde_json::json!({
                    "ok": false,
                    "message": format!("unreadable operator command ({error}); upgrade the CLI to the daemon's version"),
                }),
            };
            self.engine
                .store
                .complete_command(item.id, result, now_ms())
                .await?;
        }
        Ok(())
    }

    async fn on_wake(&mut self, wake: Option<String>) -> Result<()> {
        match wake.as_deref() {
            Some("poll") => self.feed(Event::PollRequested).await,
            Some("inbox") => self.process_inbox().await,
            _ => Ok(()),
        }
    }

    /// R-043..R-046: apply a changed WORKFLOW.md to future work; keep the last good one when
    /// the new one is invalid.
    fn reload(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        match watcher.check() {
            ReloadOutcome::Unchanged => {}
            ReloadOutcome::Reloaded(workflow) => {
                info!(path = %workflow.path.display(), "WORKFLOW.md reloaded");
                if workflow.workspace != self.workflow.workspace
                    || workflow.hooks != self.workflow.hooks
                    || workflow.publish.branch_prefix != self.workflow.publish.branch_prefix
                {
                    match workspaces_for(&workflow, &self.state_dir) {
                        Ok(manager) => self.workspaces = Arc::new(manager),
                        Err(error) => {
                            error!(%error, "the reloaded workspace settings are unusable; keeping the previous ones");
                        }
                    }
                }
                if workflow.tracker.kind != self.workflow.tracker.kind {
                    warn!("tracker.kind changed; restart takt to switch trackers");
                }
                let mut policy = policy_for(&workflow);
                let forge_changed = (
                    workflow.publish.forge,
                    &workflow.publish.repo,
                    &workflow.publish.api_url,
                    &workflow.publish.token,
                    &workflow.publish.remote,
                ) != (
                    self.workflow.publish.forge,
                    &self.workflow.publish.repo,
                    &self.workflow.publish.api_url,
                    &self.workflow.publish.token,
                    &self.workflow.publish.remote,
                );
                if forge_changed {
                    warn!("publish.forge settings changed; restart takt to publish elsewhere");
                    // Until then changes keep going where the running daemon can take them.
                    policy.publish.forge = self.publisher.is_some();
                }
                self.engine.policy = policy;
                if let Some(models) = &self.models {
                    models.reload(&workflow);
                }
                let hooks_changed = workflow.workspace != self.workflow.workspace
                    || workflow.hooks != self.workflow.hooks
                    || workflow.publish.branch_prefix != self.workflow.publish.branch_prefix;
                if workflow.sandbox != self.workflow.sandbox
                    && let Some(host) = &self.host
                {
                    let model = self.models.as_ref().map(ModelEndpoint::addr);
                    match crate::sandbox::build(&workflow, host, &self.state_dir, model) {
                        Ok(sandbox) => {
                            info!(sandbox = %sandbox.describe(), "sandbox settings reloaded");
                            self.sandbox = Arc::new(sandbox);
                            match crate::verification::verifier(
                                &workflow,
                                host,
                                &self.state_dir,
                                self.workspaces.clone(),
                                self.engine.store.clone(),
                            ) {
                                Ok(verifier) => self.verifier = Some(Arc::new(verifier)),
                                Err(error) => {
                                    error!("{error:#}; keeping the previous gate sandbox")
                                }
                            }
                            crate::sandbox::confine_hooks(
                                &workflow,
                                &self.workspaces,
                                &self.sandbox,
                                &self.state_dir,
                            );
                        }
                        Err(error) => {
                            error!("{error:#}; keeping the previous sandbox settings");
                        }
                    }
                }
                if hooks_changed && self.host.is_some() {
                    crate::sandbox::confine_hooks(
                        &workflow,
                        &self.workspaces,
                        &self.sandbox,
                        &self.state_dir,
                    );
                }
                self.workflow = workflow;
            }
            ReloadOutcome::Invalid(error) | ReloadOutcome::Missing(error) => {
                error!(
                    category = error.category(),
                    "{error}; keeping the last good configuration"
                );
            }
        }
    }

    /// Stores a call's redacted transcript as a content-addressed artifact; its hash goes into
    /// the journal with the call.
    async fn store_transcript(
        &self,
        transcript: Option<takt_gateway::Transcript>,
    ) -> Option<String> {
        let transcript = transcript?;
        let body = serde_json::json!({
            "request": String::from_utf8_lossy(&transcript.request),
            "response": String::from_utf8_lossy(&transcript.response),
            "request_truncated": transcript.request_truncated,
            "response_truncated": transcript.response_truncated,
        });
        match self
            .engine
            .store
            .put_artifact(body.to_string().as_bytes())
            .await
        {
            Ok(hash) => Some(hash),
            Err(error) => {
                warn!(%error, "could not store a model call's transcript");
                None
            }
        }
    }

    fn bind_wake_socket(&self) -> Option<UnixListener> {
        let path = self.state_dir.join(WAKE_SOCKET);
        let _ = fs_err::remove_file(&path);
        match UnixListener::bind(&path) {
            Ok(listener) => Some(listener),
            Err(error) => {
                warn!(path = %path.display(), %error, "no wake socket; local submissions wait for the next housekeeping pass");
                None
            }
        }
    }

    /// Kills agent process groups that a daemon killed with SIGKILL left behind.
    fn sweep_orphans(&self) {
        for task in self.engine.state.running() {
            if let Some(run) = &task.run
                && takt_agents::process::sweep_orphans(&run_dir(&self.state_dir, &run.run_id))
            {
                info!(run_id = %run.run_id, "killed an agent left behind by a previous daemon");
            }
        }
    }

    /// A run whose worker committed its result before the previous daemon died, but whose
    /// exit never reached the journal, is reported as the success it was, so a retry does not
    /// do (and commit) the work a second time.
    async fn recover_finished_runs(&mut self) -> Result<()> {
        let live: Vec<(String, String, Option<String>)> = self
            .engine
            .state
            .running()
            .filter_map(|task| {
                let run = task.run.as_ref()?;
                Some((
                    run.run_id.clone(),
                    task.issue.identifier.clone(),
                    task.commit.clone(),
                ))
            })
            .collect();
        for (run_id, identifier, known) in live {
            match self
                .workspaces
                .unreported_commit(&identifier, known.as_deref())
                .await
            {
                Ok(Some(commit)) => {
                    info!(run_id = %run_id, commit = %commit, "recovered the result of a run that finished just before the last stop");
                    let step = self
                        .engine
                        .step(Event::RunExited(takt_core::RunExit {
                            run_id,
                            outcome: takt_protocol::RunOutcome::Succeeded,
                            commit: Some(commit),
                            error: None,
                            turns: 0,
                            question: None,
                        }))
                        .await?;
                    self.queue(step.commands);
                }
                Ok(None) => {}
                Err(error) => warn!(run_id = %run_id, %error, "could not check the run's branch"),
            }
        }
        Ok(())
    }

    /// Removes workspace directories no task owns any more (left by crashes or deleted state).
    /// A failed or cancelled task keeps its workspace for inspection and retries.
    async fn collect_garbage(&self) {
        // Empty cgroups of launches whose supervisor was killed before it could clean up.
        takt_sandbox::cgroup_sweep(self.sandbox.key(), false);
        let live: std::collections::HashSet<String> = self
            .engine
            .state
            .tasks
            .values()
            .filter(|task| task.state != TaskState::Done)
            .map(|task| takt_workspace::workspace_key(&task.issue.identifier))
            .collect();
        match self.workspaces.gc(&live).await {
            Ok(removed) if !removed.is_empty() => {
                info!(count = removed.len(), "removed orphaned workspaces");
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "workspace garbage collection failed"),
        }
    }

    /// remove the workspaces of issues that are already terminal.
    async fn startup_cleanup(&self) {
        let terminal = self.workflow.tracker.terminal_states.clone();
        match self.tracker.fetch_issues_by_states(&terminal).await {
            Ok(issues) => {
                for issue in issues {
                    let Ok(path) = self.workspaces.path_for(&issue.identifier) else {
                        continue;
                    };
                    if path.exists()
                        && let Err(error) = self.workspaces.remove(issue.identifier.as_str()).await
                    {
                        warn!(issue_identifier = %issue.identifier, %error, "startup cleanup failed");
                    }
                }
            }
            Err(error) => {
                warn!(%error, "startup terminal cleanup skipped: the tracker did not answer")
            }
        }
    }
}

/// After a merge: the new base's golden tree, then (with `verify.warm_cache`) its frozen build
/// cache, so the next tasks start from both instead of paying for them on their critical path.
async fn prepare_next_base(
    workspaces: &WorkspaceManager,
    build_caches: Option<(Arc<takt_verify::Verifier>, Arc<Workflow>)>,
) {
    let prepared = match workspaces.sync_mirror().await {
        Ok(base) => workspaces
            .prepare_golden(&base.sha)
            .await
            .map(|()| base.sha),
        Err(error) => Err(error),
    };
    let sha = match prepared {
        Ok(sha) => {
            debug!(base = %sha, "the new base's golden tree is ready");
            sha
        }
        Err(error) => {
            warn!(%error, "could not prepare the new base's golden tree; the next task makes it");
            return;
        }
    };
    let Some((verifier, workflow)) = build_caches else {
        return;
    };
    let job = crate::verification::base_job(&workflow, &sha);
    match verifier.prepare_build_cache(&job).await {
        Ok(note) => info!(%note, "the new base's build cache is ready"),
        Err(reason) => info!(%reason, "no build cache made for the new base"),
    }
}

async fn merge(
    workspaces: &WorkspaceManager,
    identifier: &str,
    branch: &str,
    commit: &str,
) -> MergeResult {
    let base = match workspaces.sync_mirror().await {
        Ok(base) => base,
        Err(error) => {
            return MergeResult::Failed {
                error: error.to_string(),
            };
        }
    };
    let message = format!("Merge {branch} ({identifier})");
    match workspaces
        .merge_to_source(branch, commit, &base.branch, &message)
        .await
    {
        Ok(MergeOutcome::Merged { sha, .. } | MergeOutcome::AlreadyMerged { sha }) => {
            MergeResult::Merged { sha }
        }
        Ok(MergeOutcome::Conflict { files, details }) => MergeResult::Conflict {
            details: format!("conflicting files: {}\n{details}", files.join(", ")),
        },
        Err(error) => MergeResult::Failed {
            error: error.to_string(),
        },
    }
}

async fn accept(listener: Option<&UnixListener>) -> Option<String> {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    let (stream, _) = listener.accept().await.ok()?;
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read);
    let read = tokio::time::timeout(Duration::from_millis(200), reader.read_line(&mut line)).await;
    let _ = write.write_all(b"ok\n").await;
    read.ok()?.ok()?;
    Some(line.trim().to_owned())
}

/// Tells a running daemon that something is waiting; silently does nothing without one.
pub async fn wake(state_dir: &Path, what: &str) {
    let path = state_dir.join(WAKE_SOCKET);
    if let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::net::UnixStream::connect(&path),
    )
    .await
    {
        let _ = stream.write_all(format!("{what}\n").as_bytes()).await;
        let _ = stream.shutdown().await;
    }
}

/// The next request from the API, or never when no API is served.
async fn next_api_request(
    api: Option<&mut crate::api::ApiChannels>,
) -> Option<crate::api::ApiRequest> {
    match api {
        Some(api) => api.requests.recv().await,
        None => std::future::pending().await,
    }
}

/// The task that writes takt's issue comments, one after the other (so a later status never
/// loses to an earlier one); it ends when the daemon drops the sender.
fn spawn_writeback(
    tracker: Arc<dyn Tracker>,
) -> mpsc::UnboundedSender<(takt_protocol::Issue, String)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(takt_protocol::Issue, String)>();
    tokio::spawn(async move {
        while let Some((issue, body)) = rx.recv().await {
            if let Err(error) = tracker
                .upsert_comment(&issue, crate::writeback::MARKER, &body)
                .await
            {
                warn!(issue_identifier = %issue.identifier, %error, "commenting on the issue failed");
            }
        }
    });
    tx
}
