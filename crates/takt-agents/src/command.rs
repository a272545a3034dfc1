//! The `command` backend: runs `command.run` through `sh -lc` in the workspace, the rendered
//! prompt on stdin. Exit 0 completes the turn, anything else fails it. Useful on its own for
//! codemods, migrations and scripted fixes.
//!
//! A command that needs a person's answer writes its question to `$TAKT_QUESTION_FILE` and
//! exits 0; the task then waits in `blocked` and the answer reaches the next run's prompt.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use takt_core::ports::{
    AgentBackend, AgentError, AgentEventSink, AgentSession, SessionContext, TurnInput, TurnResult,
};
use takt_protocol::{AgentEvent, OutputStream};
use takt_sandbox::Confined as Child;
use tokio::io::AsyncWriteExt;

use crate::lines::next_line;

type Pipe = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

use crate::process::{PID_FILE, ProcessMark, terminate_group};

/// Longest output line kept whole; longer lines are cut, never buffered without bound.
const MAX_LINE: usize = 64 * 1024;
/// How long a stopped command gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Configuration of the command backend.
#[derive(Debug, Clone)]
pub struct CommandBackend {
    /// The shell command (`command.run`), passed to `sh -lc` unchanged.
    pub run: String,
    /// Environment variables removed from the agent's environment (tracker and provider
    /// secrets, R-066/R-140).
    pub remove_env: Vec<String>,
    /// Where the command runs.
    pub sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
}

#[async_trait]
impl AgentBackend for CommandBackend {
    fn name(&self) -> &'static str {
        "command"
    }

    async fn start_session(
        &self,
        context: SessionContext,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        if self.run.trim().is_empty() {
            return Err(AgentError::Spawn(
                "command.run is empty: set it in WORKFLOW.md".into(),
            ));
        }
        fs_err::tokio::create_dir_all(crate::process::agent_dir(&context))
            .await
            .map_err(|error| AgentError::Io(error.to_string()))?;
        Ok(Box::new(CommandSession {
            run: self.run.clone(),
            remove_env: self.remove_env.clone(),
            sandbox: self.sandbox.clone(),
            context,
            pgid: None,
        }))
    }
}

struct CommandSession {
    run: String,
    remove_env: Vec<String>,
    sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
    context: SessionContext,
    pgid: Option<u32>,
}

/// Questions longer than this are cut: a person reads them.
const MAX_QUESTION_BYTES: u64 = 64 * 1024;

impl CommandSession {
    fn prompt_file(&self, turn: u32) -> PathBuf {
        crate::process::agent_dir(&self.context).join(format!("prompt-{turn}.md"))
    }

    fn question_file(&self, turn: u32) -> PathBuf {
        crate::process::agent_dir(&self.context).join(format!("question-{turn}.txt"))
    }

    async fn spawn(&self, turn: u32) -> Result<Child, AgentError> {
        let context = &self.context;
        let mut env = crate::process::run_env(context);
        env.extend([
            ("TAKT_TURN".to_owned(), turn.to_string()),
            (
                "TAKT_PROMPT_FILE".to_owned(),
                self.prompt_file(turn).display().to_string(),
            ),
            (
                "TAKT_QUESTION_FILE".to_owned(),
                self.question_file(turn).display().to_string(),
            ),
        ]);
        let launch = takt_sandbox::Launch {
            program: "sh".into(),
            args: vec!["-lc".into(), self.run.clone()],
            cwd: context.workspace.clone(),
            env,
            read_only: Vec::new(),
            remove_env: self.remove_env.clone(),
        };
        crate::process::confined(&self.sandbox, context, launch)
            .await
            .map_err(|error| {
                AgentError::Spawn(format!("could not run `sh -lc {}`: {error}", self.run))
            })
    }
}

#[async_trait]
impl AgentSession for CommandSession {
    fn pid(&self) -> Option<u32> {
        self.pgid
    }

    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &dyn AgentEventSink,
    ) -> Result<TurnResult, AgentError> {
        let turn = input.turn;
        // The agent may have planted a link under this name during an earlier turn.
        let (path, prompt) = (self.prompt_file(turn), input.prompt.clone());
        tokio::task::spawn_blocking(move || {
            takt_sandbox::shared::write_fresh(&path, prompt.as_bytes())
        })
        .await
        .map_err(|error| AgentError::Io(error.to_string()))?
        .map_err(|error| AgentError::Io(format!("writing the prompt file: {error}")))?;
        let mut child = self.spawn(turn).await?;
        let pid = child.id();
        self.pgid = pid;
        if let Some(mark) = pid.and_then(ProcessMark::of) {
            // Recorded so a restarted daemon can kill what a crashed one left behind.
            let _ = fs_err::tokio::write(self.context.run_dir.join(PID_FILE), mark.encode()).await;
        }
        events.emit(AgentEvent::TurnStarted { turn });

        if let Some(mut stdin) = child.stdin.take() {
            let prompt = input.prompt.clone();
            // A command that never reads stdin must not block the turn: write from a task and
            // ignore a closed pipe.
            tokio::spawn(async move {
                let _ = stdin.write_all(prompt.as_bytes()).await;
                let _ = stdin.shutdown().await;
            });
        }
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        for (stream, pipe) in [
            (
                OutputStream::Stdout,
                child.stdout.take().map(|p| Box::new(p) as Pipe),
            ),
            (
                OutputStream::Stderr,
                child.stderr.take().map(|p| Box::new(p) as Pipe),
            ),
        ] {
            let Some(pipe) = pipe else { continue };
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(pipe);
                loop {
                    let line = next_line(&mut reader, MAX_LINE).await;
                    let stop = !matches!(line, Ok(Some(_)));
                    if sender.send((stream, line)).is_err() || stop {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut last_stderr = String::new();
        let mut log = Vec::new();
        while let Some((stream, line)) = receiver.recv().await {
            let line = match line {
                Ok(Some(line)) if line.cut => {
                    format!("{} [line longer than {MAX_LINE} bytes cut]", line.text)
                }
                Ok(Some(line)) => line.text,
                Ok(None) => continue,
                Err(error) => return Err(AgentError::Io(format!("reading agent output: {error}"))),
            };
            if stream == OutputStream::Stderr && !line.trim().is_empty() {
                last_stderr.clone_from(&line);
            }
            log.extend_from_slice(line.as_bytes());
            log.push(b'\n');
            events.emit(AgentEvent::Output { stream, line });
        }
        let status = child
            .wait()
            .await
            .map_err(|error| AgentError::Io(format!("waiting for the command: {error}")))?;
        self.pgid = None;
        let _ = fs_err::tokio::remove_file(self.context.run_dir.join(PID_FILE)).await;
        let _ =
            fs_err::tokio::write(self.context.run_dir.join(format!("turn-{turn}.log")), &log).await;

        if status.success() {
            let path = self.question_file(turn);
            let question = tokio::task::spawn_blocking(move || {
                takt_sandbox::shared::read_plain(&path, MAX_QUESTION_BYTES)
            })
            .await
            .ok()
            .flatten();
            if let Some(question) = question
                && !question.trim().is_empty()
            {
                let question = question.trim().to_owned();
                events.emit(AgentEvent::InputRequired {
                    question: question.clone(),
                });
                return Ok(TurnResult::InputRequired { question });
            }
            events.emit(AgentEvent::TurnCompleted { turn });
            return Ok(TurnResult::Completed { finished: true });
        }
        let code = status
            .code()
            .map_or_else(|| "a signal".to_owned(), |code| format!("status {code}"));
        let mut error = format!("`{}` exited with {code}", self.run);
        if !last_stderr.is_empty() {
            error.push_str(": ");
            error.push_str(&last_stderr);
        }
        events.emit(AgentEvent::TurnFailed {
            turn,
            error: error.clone(),
        });
        Ok(TurnResult::Failed { error })
    }

    async fn stop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            terminate_group(pgid, STOP_GRACE).await;
            let _ = fs_err::tokio::remove_file(self.context.run_dir.join(PID_FILE)).await;
        }
    }
}

impl Drop for CommandSession {
    fn drop(&mut self) {
        // A dropped turn (timeout, cancellation) must not leave the command's children behind.
        if let Some(pgid) = self.pgid.take() {
            crate::process::signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
