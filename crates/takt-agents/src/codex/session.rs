//! A live `codex app-server` process: start, handshake, turns, stop.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use takt_core::ports::{
    AgentError, AgentEventSink, AgentSession, BoxFuture, SessionContext, TurnInput, TurnResult,
};
use takt_protocol::AgentEvent;
use takt_sandbox::Confined as Child;
use tokio::io::BufReader;
use tokio::net::unix::pipe::Receiver as ChildStderr;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::CodexError;
use super::events::{Tracker, TurnEnd};
use super::home::{self, TOKEN_ENV};
use super::requests::{PendingAsk, Responder};
use super::rpc::{Client, Demux, Inbound, Outbox, Pending, Reply, Shared, write_loop};
use super::{ALWAYS_REMOVED_ENV, CodexSettings};
use crate::lines::next_line;
use crate::process::{PID_FILE, ProcessMark, signal_group, terminate_group};

/// How long an interrupted turn gets to report `turn/completed` before the backend moves on
/// (capped by the turn timeout).
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);
/// How long a stopped app-server gets after stdin closes, and again after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long to wait for an exited app-server's status and the rest of its stderr.
const EXIT_WAIT: Duration = Duration::from_secs(2);
/// stderr lines kept for error messages.
const STDERR_KEEP: usize = 20;
/// Longest stderr line kept.
const STDERR_LINE_MAX: usize = 64 * 1024;

type Tail = Arc<Mutex<VecDeque<String>>>;

/// One app-server process and its thread. Dropping it kills the process group.
pub struct CodexSession {
    settings: CodexSettings,
    context: SessionContext,
    /// The canonical workspace: `cwd` of the thread and every turn.
    workspace: PathBuf,
    pgid: Option<u32>,
    child: Option<Child>,
    client: Client,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    shared: Arc<Shared>,
    stderr_tail: Tail,
    stderr_task: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    tracker: Tracker,
    /// The Codex turn that is running, if any (also after a `run_turn` future was dropped).
    live_turn: Option<String>,
    /// Once the app-server is unusable (exited, broke the protocol, timed out), every later
    /// turn fails with this.
    broken: Option<String>,
}

/// Why a turn is being wound down after `turn/interrupt`.
enum Wind {
    Timeout,
    Input(String),
}

impl CodexSession {
    /// Prepares `CODEX_HOME`, starts the app-server and does the handshake and `thread/start`.
    pub async fn start(
        settings: CodexSettings,
        context: SessionContext,
        sandbox: &takt_sandbox::Sandbox,
    ) -> Result<CodexSession, CodexError> {
        let model = context.model.clone().ok_or_else(|| {
            CodexError::Config(
                "the codex backend needs model access (SessionContext.model): the daemon's model endpoint and a run token".to_owned(),
            )
        })?;
        if settings.command.trim().is_empty() {
            return Err(CodexError::Config(
                "codex.command is empty: set it in WORKFLOW.md (default `codex app-server`)"
                    .to_owned(),
            ));
        }
        let workspace = fs_err::tokio::canonicalize(&context.workspace)
            .await
            .map_err(|error| CodexError::Config(format!("invalid_workspace_cwd: {error}")))?;
        // Codex runs in the sandbox: its cwd, writable roots and reported paths are where the
        // sandbox shows the workspace.
        let workspace = context
            .view
            .as_ref()
            .map_or(workspace, |view| view.at.clone());
        fs_err::tokio::create_dir_all(&context.run_dir)
            .await
            .map_err(|error| CodexError::Io(error.to_string()))?;
        let model_name = settings.model.clone().or_else(|| model.model.clone());
        let codex_home = home::prepare(
            &crate::process::agent_dir(&context),
            &model,
            model_name.as_deref(),
            &context.run_id,
        )
        .await?;

        let mut env = vec![
            ("CODEX_HOME".to_owned(), codex_home.display().to_string()),
            (TOKEN_ENV.to_owned(), model.token.clone()),
        ];
        env.extend(crate::process::run_env(&context));
        env.retain(|(name, _)| name != "TAKT_WORKSPACE");
        env.push(("TAKT_WORKSPACE".to_owned(), workspace.display().to_string()));
        let command_line = crate::process::resolved_command(&settings.command);
        let launch = takt_sandbox::Launch {
            program: shell().to_owned(),
            args: vec!["-lc".to_owned(), command_line.clone()],
            cwd: workspace.clone(),
            env,
            read_only: crate::process::install_paths(&command_line),
            remove_env: ALWAYS_REMOVED_ENV
                .iter()
                .map(|name| (*name).to_owned())
                .chain(settings.remove_env.iter().cloned())
                .collect(),
        };
        let mut child = crate::process::confined(sandbox, &context, launch)
            .await
            .map_err(|error| CodexError::Spawn {
                command: settings.command.clone(),
                source: std::io::Error::other(error.to_string()),
            })?;
        let pgid = child.id();
        if let Some(mark) = pgid.and_then(ProcessMark::of) {
            // Recorded so a restarted daemon can kill what a crashed one left behind.
            let _ = fs_err::tokio::write(context.run_dir.join(PID_FILE), mark.encode()).await;
        }
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            if let Some(pgid) = pgid {
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            }
            return Err(CodexError::Protocol(
                "the app-server's pipes were not set up".to_owned(),
            ));
        };

        let (out, queue) = Outbox::new();
        let pending = Pending::default();
        let (sender, inbound) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let demux = Demux {
            pending: pending.clone(),
            inbound: sender,
            shared: shared.clone(),
            responder: Responder::new(
                settings.policy.clone(),
                workspace.clone(),
                out.clone(),
                context.host_tools.clone(),
            ),
        };
        let tasks = vec![
            tokio::spawn(write_loop(stdin, queue)),
            tokio::spawn(demux.run(BufReader::new(stdout))),
        ];
        let stderr_tail = Tail::default();
        let stderr_task = tokio::spawn(read_stderr(stderr, stderr_tail.clone()));

        let mut session = CodexSession {
            settings,
            context,
            workspace,
            pgid,
            child: Some(child),
            client: Client::new(out, pending),
            inbound,
            shared,
            stderr_tail,
            stderr_task: Some(stderr_task),
            tasks,
            tracker: Tracker::default(),
            live_turn: None,
            broken: None,
        };
        match session.handshake(model_name).await {
            Ok(()) => Ok(session),
            Err(error) => {
                session.kill().await;
                Err(error)
            }
        }
    }

    async fn handshake(&mut self, model: Option<String>) -> Result<(), CodexError> {
        let init = self
            .call(
                "initialize",
                json!({
                    "clientInfo": {"name": "takt", "title": "takt", "version": env!("CARGO_PKG_VERSION")},
                    // experimentalApi: the granular approval policy needs it.
                    "capabilities": {"experimentalApi": true, "requestAttestation": false},
                }),
            )
            .await?;
        tracing::debug!(user_agent = %init["userAgent"], codex_home = %init["codexHome"], "codex app-server initialized");
        self.client.notify("initialized", None);
        let mut params = json!({
            "cwd": self.workspace,
            "approvalPolicy": self.settings.effective_approval_policy(),
            "sandbox": self.settings.effective_thread_sandbox(),
            "serviceName": "takt",
        });
        if let Some(model) = model {
            params["model"] = Value::String(model);
        }
        if let Some(host) = &self.context.host_tools {
            // Dynamic tools (experimental API): Codex sends `item/tool/call` back to takt,
            // which runs the tool with its own credentials.
            params["dynamicTools"] = host
                .specs()
                .into_iter()
                .map(|spec| {
                    json!({
                        "type": "function",
                        "name": spec.name,
                        "description": spec.description,
                        "inputSchema": spec.input_schema,
                    })
                })
                .collect();
        }
        let started = self.call("thread/start", params).await?;
        let thread_id = started["thread"]["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                CodexError::Protocol(format!(
                    "thread/start answered without thread.id: {}",
                    super::requests::short(&started.to_string(), 300)
                ))
            })?;
        tracing::info!(thread_id, run_id = %self.context.run_id, "codex thread started");
        self.tracker = Tracker::new(thread_id.to_owned());
        Ok(())
    }

    /// A synchronous request outside a turn, bounded by the read timeout.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, CodexError> {
        let mut receiver = self.client.request(method, params)?;
        let timeout = self.settings.read_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            tokio::select! {
                biased;
                reply = &mut receiver => {
                    return match reply {
                        Ok(reply) => reply_to_result(method, reply),
                        Err(_) => Err(self.exit_error().await),
                    };
                }
                inbound = self.inbound.recv() => match inbound {
                    None | Some(Inbound::Closed) => return Err(self.exit_error().await),
                    Some(Inbound::Fatal(error)) => return Err(error),
                    Some(Inbound::Ask(ask)) => ask.refuse(),
                    Some(Inbound::Decided(note)) => tracing::info!(%note, "codex request answered"),
                    Some(Inbound::Notification { method, params }) => {
                        let _ = self.tracker.on_notification(&method, &params, &self.workspace);
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(CodexError::ResponseTimeout {
                        method: method.to_owned(),
                        timeout_ms: timeout.as_millis(),
                    });
                }
            }
        }
    }

    /// The error for an app-server that closed its output: exit status and stderr tail.
    async fn exit_error(&mut self) -> CodexError {
        let status = match self.child.as_mut() {
            Some(child) => tokio::time::timeout(EXIT_WAIT, child.wait())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(EXIT_WAIT, task).await;
        }
        let what = match status {
            Some(status) => match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => format!("was killed ({status})"),
            },
            None => "closed its output".to_owned(),
        };
        let mut message = format!("the codex app-server `{}` {what}", self.settings.command);
        let tail = self.stderr_summary();
        if !tail.is_empty() {
            message.push_str(": ");
            message.push_str(&tail);
        }
        if status.and_then(|status| status.code()) == Some(127) {
            return CodexError::Spawn {
                command: self.settings.command.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, message),
            };
        }
        CodexError::Exited(message)
    }

    /// The last stderr lines, for error messages.
    fn stderr_summary(&self) -> String {
        let tail = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let lines: Vec<&str> = tail
            .iter()
            .map(String::as_str)
            .filter(|line| !line.trim().is_empty())
            .collect();
        let start = lines.len().saturating_sub(5);
        super::requests::short(&lines[start..].join(" | "), 2000)
    }

    /// Kills the process group and reaps the app-server.
    async fn kill(&mut self) {
        self.client.outbox().close();
        if let Some(pgid) = self.pgid.take() {
            let reap = async {
                if let Some(child) = self.child.as_mut() {
                    let _ = child.wait().await;
                }
            };
            tokio::join!(terminate_group(pgid, STOP_GRACE), reap);
            let _ = fs_err::tokio::remove_file(self.context.run_dir.join(PID_FILE)).await;
        }
        self.live_turn = None;
    }

    /// Answers questions left over from an earlier turn and takes in what happened between
    /// turns.
    async fn drain_between_turns(&mut self, events: &dyn AgentEventSink) {
        while let Ok(inbound) = self.inbound.try_recv() {
            match inbound {
                Inbound::Ask(ask) => ask.refuse(),
                Inbound::Decided(note) => events.emit(AgentEvent::Message { text: note }),
                Inbound::Notification { method, params } => {
                    let (found, _) =
                        self.tracker
                            .on_notification(&method, &params, &self.workspace);
                    for event in found {
                        events.emit(event);
                    }
                }
                // After a fatal error the app-server was killed: its end is no news.
                Inbound::Fatal(_) | Inbound::Closed if self.broken.is_some() => {}
                Inbound::Fatal(error) => {
                    self.broken = Some(error.to_string());
                    self.kill().await;
                }
                Inbound::Closed => {
                    let error = self.exit_error().await;
                    self.broken = Some(error.to_string());
                    self.kill().await;
                }
            }
        }
    }

    /// Ends the turn as failed; `fatal` also stops the app-server for good.
    async fn fail(
        &mut self,
        turn: u32,
        events: &dyn AgentEventSink,
        error: CodexError,
        fatal: bool,
    ) -> TurnResult {
        for event in self.tracker.finish() {
            events.emit(event);
        }
        let message = error.to_string();
        tracing::warn!(turn, category = error.category(), error = %message, "codex turn failed");
        if fatal {
            self.broken = Some(message.clone());
            self.kill().await;
        }
        self.live_turn = None;
        events.emit(AgentEvent::TurnFailed {
            turn,
            error: message.clone(),
        });
        TurnResult::Failed { error: message }
    }

    fn interrupt(&mut self) {
        let Some(turn_id) = self.live_turn.clone() else {
            return;
        };
        let params = json!({"threadId": self.tracker.thread_id, "turnId": turn_id});
        // The answer is `{}`; what matters is the `turn/completed` that follows.
        let _ = self.client.request("turn/interrupt", params);
    }

    async fn run(&mut self, input: TurnInput, events: &dyn AgentEventSink) -> TurnResult {
        let turn = input.turn;
        self.drain_between_turns(events).await;
        events.emit(AgentEvent::TurnStarted { turn });
        if let Some(error) = self.broken.clone() {
            events.emit(AgentEvent::TurnFailed {
                turn,
                error: error.clone(),
            });
            return TurnResult::Failed { error };
        }
        let _active = ActiveTurn::enter(&self.shared);
        let params = json!({
            "threadId": self.tracker.thread_id,
            "input": [{"type": "text", "text": input.prompt, "text_elements": []}],
            "cwd": self.workspace,
            "approvalPolicy": self.settings.effective_approval_policy(),
            "sandboxPolicy": self.settings.effective_turn_sandbox_policy(&self.workspace),
        });
        let mut start = match self.client.request("turn/start", params) {
            Ok(receiver) => Some(receiver),
            Err(error) => return self.fail(turn, events, error, true).await,
        };
        let read_timeout = self.settings.read_timeout;
        let turn_timeout = self.settings.turn_timeout;
        let grace = INTERRUPT_GRACE.min(turn_timeout);
        let mut start_deadline = Instant::now() + read_timeout;
        let mut silence_deadline = Instant::now() + turn_timeout;
        let mut lines_seen = self.shared.lines.load(Ordering::Relaxed);
        let mut queue: VecDeque<PendingAsk> = VecDeque::new();
        let mut asking: Option<(PendingAsk, BoxFuture<'_, Option<String>>)> = None;
        let mut winding: Option<(Wind, Instant)> = None;

        loop {
            if asking.is_none()
                && winding.is_none()
                && let Some(ask) = queue.pop_front()
            {
                if ask.approval {
                    events.emit(AgentEvent::ApprovalRequired {
                        request: ask.summary.clone(),
                    });
                }
                let question = ask.question.clone();
                asking = Some((ask, events.ask(question)));
            }
            let person = asking.is_some();
            let wind_deadline = winding.as_ref().map(|(_, at)| *at);
            tokio::select! {
                // The answer to turn/start comes before the turn's notifications, which are
                // only read after it; the wind-down deadline must not wait behind a chatty
                // stream.
                biased;
                reply = recv_opt(&mut start) => {
                    start = None;
                    let result = match reply {
                        Ok(reply) => reply_to_result("turn/start", reply),
                        Err(_) => Err(self.exit_error().await),
                    };
                    let result = match result {
                        Ok(result) => result,
                        Err(error) => {
                            let fatal = !matches!(error, CodexError::ResponseError { .. });
                            return self.fail(turn, events, error, fatal).await;
                        }
                    };
                    let Some(turn_id) = result["turn"]["id"].as_str().filter(|id| !id.is_empty()) else {
                        let error = CodexError::Protocol(format!(
                            "turn/start answered without turn.id: {}",
                            super::requests::short(&result.to_string(), 300)
                        ));
                        return self.fail(turn, events, error, true).await;
                    };
                    self.tracker.begin(turn_id.to_owned());
                    self.live_turn = Some(turn_id.to_owned());
                    // one session id per turn, on the thread the whole run reuses.
                    events.emit(AgentEvent::SessionStarted {
                        session_id: format!("{}-{turn_id}", self.tracker.thread_id),
                    });
                    silence_deadline = Instant::now() + turn_timeout;
                }
                _ = sleep_until_opt(wind_deadline), if wind_deadline.is_some() => {
                    if let Some((wind, _)) = winding.take() {
                        return self.wound_down(turn, events, wind).await;
                    }
                }
                inbound = self.inbound.recv() => {
                    // Any output resets the silence timer.
                    silence_deadline = Instant::now() + turn_timeout;
                    lines_seen = self.shared.lines.load(Ordering::Relaxed);
                    match inbound {
                        None | Some(Inbound::Closed) => {
                            if let Some((wind, _)) = winding.take() {
                                return self.wound_down(turn, events, wind).await;
                            }
                            let error = self.exit_error().await;
                            return self.fail(turn, events, error, true).await;
                        }
                        Some(Inbound::Fatal(error)) => return self.fail(turn, events, error, true).await,
                        Some(Inbound::Decided(note)) => events.emit(AgentEvent::Message { text: note }),
                        Some(Inbound::Ask(ask)) => {
                            if winding.is_some() {
                                ask.refuse();
                            } else {
                                queue.push_back(ask);
                            }
                        }
                        Some(Inbound::Notification { method, params }) => {
                            let (found, end) = self.tracker.on_notification(&method, &params, &self.workspace);
                            for event in found {
                                events.emit(event);
                            }
                            if let Some(end) = end {
                                drop(asking.take());
                                drop(queue);
                                return self.turn_ended(turn, events, end, winding.map(|(wind, _)| wind)).await;
                            }
                        }
                    }
                }
                answer = poll_ask(&mut asking) => {
                    if let Some((ask, _)) = asking.take() {
                        match answer {
                            Some(text) => {
                                let question = ask.question.clone();
                                let thread_id = ask.thread_id.clone().unwrap_or_else(|| self.tracker.thread_id.clone());
                                let turn_id = ask.turn_id.clone().or_else(|| self.live_turn.clone());
                                let answered = ask.answer(&text);
                                tracing::info!(%question, accepted = answered.accepted, "a person answered codex");
                                if let (Some(steer), Some(turn_id)) = (answered.steer, turn_id) {
                                    // A v2 decline cannot carry text: the answer reaches the
                                    // agent as input to the running turn.
                                    let params = json!({
                                        "threadId": thread_id,
                                        "expectedTurnId": turn_id,
                                        "input": [{"type": "text", "text": steer, "text_elements": []}],
                                    });
                                    let _ = self.client.request("turn/steer", params);
                                }
                            }
                            None => {
                                // Nobody answers in this session: decline, stop the turn, and let
                                // the answer reach the next run's prompt.
                                let question = ask.question.clone();
                                ask.refuse();
                                for queued in queue.drain(..) {
                                    queued.refuse();
                                }
                                self.interrupt();
                                winding = Some((Wind::Input(question), Instant::now() + grace));
                            }
                        }
                    }
                    // Time spent waiting for a person is not silence.
                    start_deadline = Instant::now() + read_timeout;
                    silence_deadline = Instant::now() + turn_timeout;
                }
                _ = tokio::time::sleep_until(start_deadline), if start.is_some() && !person => {
                    let error = CodexError::ResponseTimeout {
                        method: "turn/start".to_owned(),
                        timeout_ms: read_timeout.as_millis(),
                    };
                    return self.fail(turn, events, error, true).await;
                }
                _ = tokio::time::sleep_until(silence_deadline), if start.is_none() && winding.is_none() && !person => {
                    let now_seen = self.shared.lines.load(Ordering::Relaxed);
                    if now_seen != lines_seen {
                        lines_seen = now_seen;
                        silence_deadline = Instant::now() + turn_timeout;
                        continue;
                    }
                    tracing::warn!(turn, timeout_ms = turn_timeout.as_millis(), "codex turn silent; interrupting");
                    self.interrupt();
                    winding = Some((Wind::Timeout, Instant::now() + grace));
                }
            }
        }
    }

    /// The app-server reported the end of the turn.
    async fn turn_ended(
        &mut self,
        turn: u32,
        events: &dyn AgentEventSink,
        end: TurnEnd,
        wind: Option<Wind>,
    ) -> TurnResult {
        self.live_turn = None;
        if let Some(wind) = wind {
            return self.wound_down(turn, events, wind).await;
        }
        for event in self.tracker.finish() {
            events.emit(event);
        }
        match end {
            TurnEnd::Completed => {
                events.emit(AgentEvent::TurnCompleted { turn });
                // Whether the task is done is the daemon's call (it looks at the workspace).
                TurnResult::Completed { finished: false }
            }
            TurnEnd::Failed(message) => {
                let error = format!("turn_failed: {message}");
                events.emit(AgentEvent::TurnFailed {
                    turn,
                    error: error.clone(),
                });
                TurnResult::Failed { error }
            }
            TurnEnd::Interrupted => {
                events.emit(AgentEvent::TurnCancelled { turn });
                TurnResult::Failed {
                    error: "turn_cancelled: the app-server interrupted the turn".to_owned(),
                }
            }
        }
    }

    /// Finishes a turn the backend interrupted.
    async fn wound_down(
        &mut self,
        turn: u32,
        events: &dyn AgentEventSink,
        wind: Wind,
    ) -> TurnResult {
        match wind {
            Wind::Timeout => {
                let error = CodexError::TurnTimeout {
                    timeout_ms: self.settings.turn_timeout.as_millis(),
                };
                self.fail(turn, events, error, true).await
            }
            Wind::Input(question) => {
                for event in self.tracker.finish() {
                    events.emit(event);
                }
                TurnResult::InputRequired { question }
            }
        }
    }

    async fn shutdown(&mut self) {
        if self.pgid.is_none() {
            return;
        }
        while let Ok(inbound) = self.inbound.try_recv() {
            drop(inbound);
        }
        if self.live_turn.is_some() {
            let params = json!({"threadId": self.tracker.thread_id, "turnId": self.live_turn});
            if let Ok(receiver) = self.client.request("turn/interrupt", params) {
                let _ = tokio::time::timeout(self.settings.read_timeout.min(STOP_GRACE), receiver)
                    .await;
            }
        }
        // Closing stdin asks the app-server to exit on its own.
        self.client.outbox().close();
        if let Some(child) = self.child.as_mut() {
            let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
        }
        self.kill().await;
        for task in self.tasks.drain(..) {
            task.abort();
        }
        if let Some(task) = self.stderr_task.take() {
            task.abort();
        }
    }
}

#[async_trait]
impl AgentSession for CodexSession {
    fn pid(&self) -> Option<u32> {
        self.pgid
    }

    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &dyn AgentEventSink,
    ) -> Result<TurnResult, AgentError> {
        Ok(self.run(input, events).await)
    }

    async fn stop(&mut self) {
        self.shutdown().await;
    }
}

impl Drop for CodexSession {
    fn drop(&mut self) {
        // A dropped session (the daemon's wall clock, a stall stop) must not leave the
        // app-server or anything it started behind.
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
        for task in &self.tasks {
            task.abort();
        }
        if let Some(task) = &self.stderr_task {
            task.abort();
        }
    }
}

/// Marks a turn as running while it is alive, so questions are handed to it.
struct ActiveTurn(Arc<Shared>);

impl ActiveTurn {
    fn enter(shared: &Arc<Shared>) -> ActiveTurn {
        shared.turn_active.store(true, Ordering::Release);
        ActiveTurn(shared.clone())
    }
}

impl Drop for ActiveTurn {
    fn drop(&mut self) {
        self.0.turn_active.store(false, Ordering::Release);
    }
}

fn reply_to_result(method: &str, reply: Reply) -> Result<Value, CodexError> {
    reply.map_err(|error| CodexError::ResponseError {
        method: method.to_owned(),
        code: error.code,
        message: error.message,
    })
}

async fn recv_opt(
    receiver: &mut Option<oneshot::Receiver<Reply>>,
) -> Result<Reply, oneshot::error::RecvError> {
    match receiver {
        Some(receiver) => receiver.await,
        None => std::future::pending().await,
    }
}

async fn poll_ask(
    asking: &mut Option<(PendingAsk, BoxFuture<'_, Option<String>>)>,
) -> Option<String> {
    match asking {
        Some((_, answer)) => answer.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Reads stderr to the end: logged at debug, the last lines kept for error messages.
async fn read_stderr(stderr: ChildStderr, tail: Tail) {
    let mut reader = BufReader::new(stderr);
    while let Ok(Some(line)) = next_line(&mut reader, STDERR_LINE_MAX).await {
        tracing::debug!(target: "takt_agents::codex::stderr", line = %line.text);
        let mut kept = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == STDERR_KEEP {
            kept.pop_front();
        }
        kept.push_back(super::requests::short(&line.text, 1000));
    }
}

/// `bash` as R-109 asks, `sh` where there is no bash.
fn shell() -> &'static str {
    let has_bash = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join("bash").is_file()));
    if has_bash || Path::new("/bin/bash").is_file() {
        "bash"
    } else {
        "sh"
    }
}
