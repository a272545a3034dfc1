//! One live Claude Code process and its turns.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use takt_core::ports::{
    AgentError, AgentEventSink, AgentSession, SessionContext, TurnInput, TurnResult,
};
use takt_protocol::{AgentEvent, OutputStream};
use takt_sandbox::Confined as Child;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::pipe::{
    Receiver as ChildStdout, Receiver as ChildStderr, Sender as ChildStdin,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ClaudeSettings;
use super::error::ClaudeError;
use super::events::{Tracker, TurnEnd};
use super::launch;
use super::policy::{Policy, Verdict, affirmative};
use super::protocol::{self, kind, short, text};
use crate::lines::{Line, next_line};
use crate::process::{PID_FILE, ProcessMark, signal_group, terminate_group};

/// Longest stdout line accepted; a longer one is a protocol error and ends the process.
pub const MAX_LINE: usize = 10 * 1024 * 1024;
/// Longest stderr line kept (longer ones are cut).
const MAX_STDERR_LINE: usize = 8 * 1024;
/// Stderr lines kept for error messages.
const STDERR_TAIL: usize = 20;
/// Stderr bytes written to the run directory's log.
const STDERR_LOG_MAX: usize = 1024 * 1024;
/// The stderr log in the run directory.
pub const STDERR_LOG: &str = "claude-stderr.log";
/// Non-JSON stdout lines journaled per turn (as `Output`); the rest are counted only.
const MAX_GARBAGE_LINES: usize = 20;
/// Between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long Claude gets to exit by itself once its stdin is closed.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long an interrupted turn gets to end with its `result`.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for an exited process's status and the rest of its stderr.
const EXIT_WAIT: Duration = Duration::from_secs(5);
/// Stdout lines buffered between the reader task and the turn (bounded memory).
const STDOUT_BUFFER: usize = 2;

/// What the model is told when nobody can answer now.
const NOBODY_ANSWERS: &str = "Nobody can answer this right now. The question was recorded for a person; stop here and wait for the answer, which will arrive with the next run.";

/// The live process.
struct Process {
    child: Child,
    pgid: u32,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<std::io::Result<Line>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stdout_task: JoinHandle<()>,
    stderr_task: JoinHandle<()>,
}

/// How the conversation part of a turn came out.
enum Outcome {
    /// Claude's `result` arrived.
    Ended(TurnEnd),
    /// A person must answer and nobody could: the request was denied and the turn
    /// interrupted. `ended` says whether Claude confirmed the end of the turn.
    InputRequired { question: String, ended: bool },
    /// No output for the turn timeout; `acknowledged` says whether Claude ended the turn after
    /// the interrupt.
    Silent { acknowledged: bool },
    /// Stdout closed: the process is gone.
    Exited,
}

/// A Claude Code session: one process, many turns.
pub struct ClaudeSession {
    settings: ClaudeSettings,
    context: SessionContext,
    policy: Policy,
    tracker: Tracker,
    process: Option<Process>,
    /// Why the process is gone, once it is.
    ended: Option<String>,
    interrupts: u64,
}

impl ClaudeSession {
    /// Prepares the run directory and starts the process (it waits for the first message).
    pub async fn start(
        settings: ClaudeSettings,
        context: SessionContext,
        sandbox: &takt_sandbox::Sandbox,
    ) -> Result<ClaudeSession, ClaudeError> {
        let model = launch::preflight(&settings, &context)?;
        let spawn_error = |source: std::io::Error| ClaudeError::Spawn {
            command: settings.command.clone(),
            source,
        };
        let agent_dir = crate::process::agent_dir(&context);
        fs_err::tokio::create_dir_all(&agent_dir)
            .await
            .map_err(spawn_error)?;
        let config_dir = launch::fresh_config_dir(&agent_dir)
            .await
            .map_err(spawn_error)?;
        let host_tools = match (&context.host_tools, sandbox.takt_binary()) {
            (Some(host), Some(binary)) => Some((host.specs(), binary)),
            _ => None,
        };
        let extra = match &host_tools {
            Some((specs, binary)) => launch::host_tools_arguments(
                &launch::HostToolsServer {
                    takt_binary: binary,
                    tool_names: specs.iter().map(|spec| spec.name).collect(),
                },
                &model,
                &config_dir,
            )
            .await
            .map_err(spawn_error)?,
            None => Vec::new(),
        };
        let mut launch = launch::launch(&settings, &context, &model, &config_dir, extra);
        if let Some((_, binary)) = host_tools {
            launch.read_only.push(binary);
        }
        let mut child = crate::process::confined(sandbox, &context, launch)
            .await
            .map_err(|error| spawn_error(std::io::Error::other(error.to_string())))?;
        let Some(pgid) = child.id() else {
            return Err(spawn_error(std::io::Error::other(
                "the process ended before it could be watched",
            )));
        };
        if let Some(mark) = ProcessMark::of(pgid) {
            // Recorded so a restarted daemon can kill what a crashed one left behind.
            let _ = fs_err::tokio::write(context.run_dir.join(PID_FILE), mark.encode()).await;
        }
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            return Err(spawn_error(std::io::Error::other("missing stdio pipes")));
        };
        let (sender, receiver) = mpsc::channel(STDOUT_BUFFER);
        let stdout_task = tokio::spawn(read_stdout(stdout, sender));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = tokio::spawn(read_stderr(
            stderr,
            stderr_tail.clone(),
            context.run_dir.join(STDERR_LOG),
        ));
        tracing::debug!(pgid, workspace = %context.workspace.display(), "claude started");
        Ok(ClaudeSession {
            policy: match &context.view {
                Some(view) => {
                    Policy::shown_at(&context.workspace, &view.at, &settings.denied_commands)
                }
                None => Policy::new(&context.workspace, &settings.denied_commands),
            },
            tracker: Tracker::new(context.agent_workspace()),
            settings,
            context,
            process: Some(Process {
                child,
                pgid,
                stdin: Some(stdin),
                stdout: receiver,
                stderr_tail,
                stdout_task,
                stderr_task,
            }),
            ended: None,
            interrupts: 0,
        })
    }

    async fn turn(
        &mut self,
        input: TurnInput,
        events: &dyn AgentEventSink,
    ) -> Result<TurnResult, ClaudeError> {
        let turn = input.turn;
        let Some(pgid) = self.process.as_ref().map(|process| process.pgid) else {
            let why = self
                .ended
                .clone()
                .unwrap_or_else(|| "it was stopped".into());
            return Err(ClaudeError::Ended(why));
        };
        // Dropping this future mid-turn (a cancelled run) must not leave Claude running.
        let mut guard = KillOnDrop { pgid, armed: true };
        events.emit(AgentEvent::TurnStarted { turn });
        let outcome = self.converse(&input.prompt, events).await;
        guard.armed = false;
        let error = match outcome {
            Ok(Outcome::Ended(TurnEnd::Completed)) => {
                events.emit(AgentEvent::TurnCompleted { turn });
                return Ok(TurnResult::Completed { finished: false });
            }
            Ok(Outcome::Ended(TurnEnd::Failed(error))) => error,
            Ok(Outcome::InputRequired { question, ended }) => {
                if !ended {
                    self.kill("it did not end the turn after a refused request")
                        .await;
                }
                self.emit_unfinished_tools(events);
                return Ok(TurnResult::InputRequired { question });
            }
            Ok(Outcome::Silent { acknowledged }) => {
                let seconds = self.settings.turn_timeout.as_secs_f64();
                let how = if acknowledged {
                    "interrupted"
                } else {
                    "interrupt unanswered"
                };
                let error = format!(
                    "Claude Code printed nothing for {seconds:.1} s: the turn timed out ({how}); the process group was killed"
                );
                self.kill(&error).await;
                error
            }
            Ok(Outcome::Exited) => self.exited().await,
            Err(error) => {
                self.kill(&error.to_string()).await;
                self.emit_unfinished_tools(events);
                events.emit(AgentEvent::TurnFailed {
                    turn,
                    error: error.to_string(),
                });
                return Err(error);
            }
        };
        self.emit_unfinished_tools(events);
        events.emit(AgentEvent::TurnFailed {
            turn,
            error: error.clone(),
        });
        Ok(TurnResult::Failed { error })
    }

    /// Writes the prompt and follows the stream until the turn ends.
    async fn converse(
        &mut self,
        prompt: &str,
        events: &dyn AgentEventSink,
    ) -> Result<Outcome, ClaudeError> {
        // A failed write shows up as a closed stdout (exited) or as silence (not reading).
        self.write(&protocol::user_message(prompt)).await;
        let mut garbage = 0usize;
        let mut input_required: Option<String> = None;
        let mut interrupt_deadline: Option<Instant> = None;
        loop {
            let mut deadline = Instant::now() + self.settings.turn_timeout;
            if let Some(interrupt_deadline) = interrupt_deadline {
                deadline = deadline.min(interrupt_deadline);
            }
            let Some(process) = self.process.as_mut() else {
                return Ok(Outcome::Exited);
            };
            let item = match tokio::time::timeout_at(deadline, process.stdout.recv()).await {
                Ok(item) => item,
                Err(_elapsed) => {
                    if let Some(question) = input_required.take() {
                        return Ok(Outcome::InputRequired {
                            question,
                            ended: false,
                        });
                    }
                    if interrupt_deadline.is_some() {
                        return Ok(Outcome::Silent {
                            acknowledged: false,
                        });
                    }
                    tracing::info!(
                        timeout_s = self.settings.turn_timeout.as_secs_f64(),
                        "claude silent: interrupting the turn"
                    );
                    self.interrupt().await;
                    interrupt_deadline =
                        Some(Instant::now() + INTERRUPT_GRACE.min(self.settings.turn_timeout));
                    continue;
                }
            };
            let line = match item {
                None => return Ok(Outcome::Exited),
                Some(Err(error)) => return Err(ClaudeError::Io(error)),
                Some(Ok(line)) if line.cut => {
                    return Err(ClaudeError::LineTooLong { limit: MAX_LINE });
                }
                Some(Ok(line)) => line.text,
            };
            if line.trim().is_empty() {
                continue;
            }
            let message: Value = match serde_json::from_str(&line) {
                Ok(message @ Value::Object(_)) => message,
                _ => {
                    garbage += 1;
                    if garbage <= MAX_GARBAGE_LINES {
                        events.emit(AgentEvent::Output {
                            stream: OutputStream::Stdout,
                            line: short(&line, 2000),
                        });
                    } else if garbage == MAX_GARBAGE_LINES + 1 {
                        events.emit(AgentEvent::Error {
                            message: format!(
                                "Claude Code printed more than {MAX_GARBAGE_LINES} lines that are not stream-json this turn; the rest are not journaled"
                            ),
                        });
                    }
                    continue;
                }
            };
            match kind(&message) {
                "control_request" => {
                    let winding_down = input_required.is_some() || interrupt_deadline.is_some();
                    if let Some(question) = self
                        .on_control_request(&message, events, winding_down)
                        .await
                    {
                        input_required = Some(question);
                        self.interrupt().await;
                        interrupt_deadline =
                            Some(Instant::now() + INTERRUPT_GRACE.min(self.settings.turn_timeout));
                    }
                }
                // Answers to our interrupts; cancellations of requests already answered.
                "control_response" | "control_cancel_request" => {}
                _ => {
                    let (found, end) = self.tracker.on_message(&message);
                    for event in found {
                        events.emit(event);
                    }
                    if let Some(end) = end {
                        if let Some(question) = input_required.take() {
                            return Ok(Outcome::InputRequired {
                                question,
                                ended: true,
                            });
                        }
                        if interrupt_deadline.is_some() {
                            return Ok(Outcome::Silent { acknowledged: true });
                        }
                        return Ok(Outcome::Ended(end));
                    }
                }
            }
        }
    }

    /// Answers one control request. Returns the question when a person had to answer and
    /// nobody could (the request was denied; the turn must end).
    async fn on_control_request(
        &mut self,
        message: &Value,
        events: &dyn AgentEventSink,
        winding_down: bool,
    ) -> Option<String> {
        let id = text(message, "request_id").to_owned();
        let request = message.get("request").unwrap_or(&Value::Null);
        let subtype = text(request, "subtype");
        if id.is_empty() {
            tracing::warn!(subtype, "claude control request without an id ignored");
            return None;
        }
        if subtype != "can_use_tool" {
            tracing::debug!(subtype, "claude control request refused");
            let reply = protocol::control_error(
                &id,
                &format!("takt does not handle control requests of subtype `{subtype}`"),
            );
            self.write(&reply).await;
            return None;
        }
        let tool = text(request, "tool_name");
        let input = request.get("input").cloned().unwrap_or_else(|| json!({}));
        if winding_down {
            self.write(&protocol::deny(&id, "The turn is ending."))
                .await;
            return None;
        }
        let mut unanswered = None;
        let reply = if tool == "AskUserQuestion" {
            let question = questions_text(&input);
            match events.ask(question.clone()).await {
                Some(answer) => protocol::allow(&id, with_answers(input, &answer)),
                None => {
                    unanswered = Some(question);
                    protocol::deny(&id, NOBODY_ANSWERS)
                }
            }
        } else {
            let blocked_path = request.get("blocked_path").and_then(Value::as_str);
            match self.policy.decide(tool, &input, blocked_path) {
                Verdict::Allow => protocol::allow(&id, input),
                Verdict::Deny(reason) => {
                    tracing::info!(tool, %reason, "claude tool use refused by policy");
                    protocol::deny(&id, &reason)
                }
                Verdict::Ask => {
                    let question = permission_question(tool, &input, request);
                    match events.ask(question.clone()).await {
                        Some(answer) if affirmative(&answer) => protocol::allow(&id, input),
                        Some(answer) => protocol::deny(
                            &id,
                            &format!("A person refused this: {}", answer.trim()),
                        ),
                        None => {
                            unanswered = Some(question);
                            protocol::deny(&id, NOBODY_ANSWERS)
                        }
                    }
                }
            }
        };
        self.write(&reply).await;
        unanswered
    }

    async fn interrupt(&mut self) {
        self.interrupts += 1;
        let id = format!("takt-interrupt-{}", self.interrupts);
        self.write(&protocol::interrupt(&id)).await;
    }

    /// Writes one line to Claude's stdin. A failure is logged only: it shows up as a closed
    /// stdout or as silence, which the turn handles.
    async fn write(&mut self, line: &str) {
        let timeout = self.settings.turn_timeout;
        let Some(stdin) = self.process.as_mut().and_then(|p| p.stdin.as_mut()) else {
            return;
        };
        let written = tokio::time::timeout(timeout, async {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::debug!(%error, "writing to claude failed"),
            Err(_) => tracing::debug!("writing to claude timed out"),
        }
    }

    fn emit_unfinished_tools(&mut self, events: &dyn AgentEventSink) {
        for event in self.tracker.flush_pending() {
            events.emit(event);
        }
    }

    /// The process closed its stdout mid-turn: its exit status and last stderr lines.
    async fn exited(&mut self) -> String {
        let Some(mut process) = self.process.take() else {
            return "Claude Code is not running".into();
        };
        drop(process.stdin.take());
        let status = match tokio::time::timeout(EXIT_WAIT, process.child.wait()).await {
            Ok(Ok(status)) => status
                .code()
                .map(|code| format!("status {code}"))
                .unwrap_or_else(|| format!("{status}")),
            Ok(Err(error)) => format!("an unknown status ({error})"),
            Err(_) => "its output closed but it kept running".to_owned(),
        };
        // Anything left of the group (children that outlived Claude) goes too.
        terminate_group(process.pgid, STOP_GRACE).await;
        let _ = tokio::time::timeout(EXIT_WAIT, &mut process.stderr_task).await;
        let tail = stderr_tail(&process.stderr_tail);
        self.finish(process).await;
        let mut error = format!("Claude Code exited with {status} before the turn ended");
        if !tail.is_empty() {
            error.push_str(": ");
            error.push_str(&tail);
        }
        self.ended = Some(error.clone());
        error
    }

    /// Kills the process group and reaps the process.
    async fn kill(&mut self, why: &str) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        drop(process.stdin.take());
        signal_group(process.pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = tokio::time::timeout(EXIT_WAIT, process.child.wait()).await;
        self.finish(process).await;
        self.ended = Some(why.to_owned());
    }

    /// Forgets a process that has been stopped (its drop kills whatever is left of the group).
    async fn finish(&self, process: Process) {
        drop(process);
        let _ = fs_err::tokio::remove_file(self.context.run_dir.join(PID_FILE)).await;
    }
}

#[async_trait]
impl AgentSession for ClaudeSession {
    fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|process| process.pgid)
    }

    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &dyn AgentEventSink,
    ) -> Result<TurnResult, AgentError> {
        Ok(self.turn(input, events).await?)
    }

    async fn stop(&mut self) {
        let Some(mut process) = self.process.take() else {
            return;
        };
        // Closing stdin lets an idle Claude exit by itself; then the group gets SIGTERM and,
        // after a grace period, SIGKILL (children it left behind included).
        drop(process.stdin.take());
        let _ = tokio::time::timeout(CLOSE_GRACE, process.child.wait()).await;
        let pgid = process.pgid;
        let (_, _) = tokio::join!(terminate_group(pgid, STOP_GRACE), async {
            tokio::time::timeout(STOP_GRACE + CLOSE_GRACE, process.child.wait()).await
        });
        self.finish(process).await;
        self.ended = Some("the session was stopped".into());
    }
}

impl Drop for ClaudeSession {
    fn drop(&mut self) {
        // A dropped session (cancelled run, daemon shutdown) must not leave Claude behind:
        // dropping the process kills its group.
        drop(self.process.take());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Also covers a future dropped while it holds the process (stopping, reaping).
        signal_group(self.pgid, nix::sys::signal::Signal::SIGKILL);
        self.stdout_task.abort();
        self.stderr_task.abort();
    }
}

/// Kills the group when a turn future is dropped before the turn ended.
struct KillOnDrop {
    pgid: u32,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

async fn read_stdout(pipe: ChildStdout, sender: mpsc::Sender<std::io::Result<Line>>) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    loop {
        match next_line(&mut reader, MAX_LINE).await {
            Ok(Some(line)) => {
                let cut = line.cut;
                if sender.send(Ok(line)).await.is_err() || cut {
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                let _ = sender.send(Err(error)).await;
                break;
            }
        }
    }
}

async fn read_stderr(pipe: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>, log: PathBuf) {
    let mut reader = BufReader::new(pipe);
    let mut file = fs_err::tokio::File::create(&log).await.ok();
    let mut written = 0usize;
    while let Ok(Some(line)) = next_line(&mut reader, MAX_STDERR_LINE).await {
        if written < STDERR_LOG_MAX
            && let Some(file) = file.as_mut()
        {
            written += line.text.len() + 1;
            let _ = file.write_all(line.text.as_bytes()).await;
            let _ = file.write_all(b"\n").await;
        }
        if !line.text.trim().is_empty() {
            let mut lines = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            lines.push_back(line.text);
            while lines.len() > STDERR_TAIL {
                lines.pop_front();
            }
        }
    }
    if let Some(mut file) = file {
        let _ = file.flush().await;
    }
}

/// The last stderr lines, joined, at most 2000 bytes.
fn stderr_tail(tail: &Mutex<VecDeque<String>>) -> String {
    let lines = tail.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let joined = lines.iter().cloned().collect::<Vec<_>>().join("\n");
    if joined.len() <= 2000 {
        return joined;
    }
    let mut start = joined.len() - 2000;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &joined[start..])
}

/// The question a person sees for a tool takt's policy does not cover.
fn permission_question(tool: &str, input: &Value, request: &Value) -> String {
    let mut question = format!(
        "Claude Code asks to use the tool `{tool}` with {}.",
        short(&input.to_string(), 1000)
    );
    for field in ["decision_reason", "description"] {
        let note = text(request, field);
        if !note.is_empty() {
            question.push_str(&format!(" ({note})"));
            break;
        }
    }
    question.push_str(
        " takt's policy does not cover this tool. Answer `yes` to allow it once; anything else refuses it and is passed to the agent.",
    );
    question
}

/// The questions of an `AskUserQuestion` call, as one text.
fn questions_text(input: &Value) -> String {
    let questions = input
        .get("questions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for question in &questions {
        let mut line = text(question, "question").to_owned();
        let options: Vec<String> = question
            .get("options")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|option| {
                let label = text(option, "label");
                match text(option, "description") {
                    "" => label.to_owned(),
                    description => format!("{label} ({description})"),
                }
            })
            .collect();
        if !options.is_empty() {
            line.push_str(&format!(" Options: {}.", options.join("; ")));
        }
        out.push(line);
    }
    if out.is_empty() {
        return format!("Claude Code asks: {}", short(&input.to_string(), 1000));
    }
    out.join("\n")
}

/// `AskUserQuestion`'s input with the person's answer for every question (verified shape:
/// `updatedInput.answers` maps question text to answer).
fn with_answers(mut input: Value, answer: &str) -> Value {
    let answers: serde_json::Map<String, Value> = input
        .get("questions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|question| (text(question, "question").to_owned(), json!(answer.trim())))
        .collect();
    if let Value::Object(map) = &mut input {
        map.insert("answers".into(), Value::Object(answers));
    }
    input
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn ask_user_question_texts_and_answers() {
        let input = json!({"questions": [
            {"question": "Which database?", "header": "DB", "multiSelect": false,
             "options": [{"label": "Postgres", "description": "pg"}, {"label": "SQLite"}]},
            {"question": "Keep the old API?"},
        ]});
        assert_eq!(
            questions_text(&input),
            "Which database? Options: Postgres (pg); SQLite.\nKeep the old API?"
        );
        let answered = with_answers(input, " SQLite, keep it \n");
        assert_eq!(answered["answers"]["Which database?"], "SQLite, keep it");
        assert_eq!(answered["answers"]["Keep the old API?"], "SQLite, keep it");
        assert_eq!(answered["questions"][0]["header"], "DB");
    }

    #[test]
    fn permission_questions_name_the_tool_and_claudes_reason() {
        let question = permission_question(
            "WebFetch",
            &json!({"url": "https://docs.rs"}),
            &json!({"description": "https://docs.rs"}),
        );
        assert!(question.contains("`WebFetch`"), "{question}");
        assert!(question.contains("https://docs.rs"), "{question}");
        assert!(question.contains("`yes`"), "{question}");
    }

    #[test]
    fn the_stderr_tail_is_bounded() {
        let tail = Mutex::new(VecDeque::from(vec!["é".repeat(3000)]));
        let text = stderr_tail(&tail);
        assert!(text.len() <= 2000 + "…".len() + 1);
        assert!(text.starts_with('…'));
    }
}
