//! One run of one task: workspace, prompt, agent turns, commit. Reports facts to the engine
//! through a channel; never touches the journal or the state itself.

use std::sync::Arc;

use takt_core::ports::{
    AgentBackend, AgentEventSink, BoxFuture, SessionContext, Tracker, TurnInput, TurnResult,
};
use takt_core::{Event, Policy, RunExit, RunSpec, StopReason};
use takt_protocol::{AgentEvent, RunOutcome, RunPhase};
use takt_workflow::{PromptContext, Workflow};
use takt_workspace::{BaseRef, HookKind, Workspace, WorkspaceManager};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::warm_view::AgentView;

/// Everything a run needs, snapshotted when it starts (R-048: a reload never changes a live
/// session's configuration).
pub struct RunContext {
    pub spec: RunSpec,
    /// The run's access to the model endpoint, for backends that use a model.
    pub model: Option<takt_core::ports::ModelAccess>,
    pub workflow: Arc<Workflow>,
    pub policy: Policy,
    pub backend: Arc<dyn AgentBackend>,
    pub tracker: Arc<dyn Tracker>,
    pub workspaces: Arc<WorkspaceManager>,
    /// Where the agent's processes run.
    pub sandbox: Arc<takt_sandbox::Sandbox>,
    pub run_dir: std::path::PathBuf,
    pub events: mpsc::UnboundedSender<Event>,
    pub stop: watch::Receiver<Option<StopReason>>,
    /// Answers a person gave to this run's questions.
    pub answers: mpsc::UnboundedReceiver<String>,
    /// The run's host-side tools (its issue, its pull request).
    pub host_tools: Option<Arc<dyn takt_core::ports::HostTools>>,
    /// Where the base's frozen build caches come from, when `verify.warm_cache` is on.
    pub build_caches: Option<Arc<takt_verify::Verifier>>,
}

struct Sink {
    run_id: String,
    events: mpsc::UnboundedSender<Event>,
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    stop: watch::Receiver<Option<StopReason>>,
}

impl AgentEventSink for Sink {
    fn emit(&self, event: AgentEvent) {
        let _ = self.events.send(Event::AgentActivity {
            run_id: self.run_id.clone(),
            event,
        });
    }

    /// The task shows the question; the session waits until a person answers (`takt answer`)
    /// or the run is stopped.
    fn ask(&self, question: String) -> BoxFuture<'_, Option<String>> {
        self.emit(AgentEvent::InputRequired { question });
        Box::pin(async move {
            let mut answers = self.answers.lock().await;
            let mut stop = self.stop.clone();
            tokio::select! {
                answer = answers.recv() => answer,
                _ = stopped(&mut stop) => None,
            }
        })
    }
}

/// What the run came to, before it is reported.
struct Ending {
    outcome: RunOutcome,
    error: Option<String>,
    question: Option<String>,
    turns: u32,
}

impl Ending {
    fn failed(error: impl Into<String>, turns: u32) -> Ending {
        Ending {
            outcome: RunOutcome::Failed,
            error: Some(error.into()),
            question: None,
            turns,
        }
    }
}

pub async fn run(ctx: RunContext) {
    // If the worker dies without reporting (a panic, an abort), the engine still hears that
    // the run is over; otherwise the task would look live forever.
    let mut guard = ExitGuard {
        run_id: ctx.spec.run_id.clone(),
        events: ctx.events.clone(),
        armed: true,
    };
    attempt(ctx).await;
    guard.armed = false;
}

struct ExitGuard {
    run_id: String,
    events: mpsc::UnboundedSender<Event>,
    armed: bool,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let _ = self.events.send(Event::RunExited(RunExit {
            run_id: self.run_id.clone(),
            outcome: RunOutcome::Failed,
            commit: None,
            error: Some("the run's worker stopped unexpectedly".into()),
            turns: 0,
            question: None,
        }));
    }
}

async fn attempt(mut ctx: RunContext) {
    let run_id = ctx.spec.run_id.clone();
    let identifier = ctx.spec.issue.identifier.clone();

    let phase_events = ctx.events.clone();
    let phase_run = run_id.clone();
    let phase = move |phase: RunPhase| {
        let _ = phase_events.send(Event::RunPhaseChanged {
            run_id: phase_run.clone(),
            phase,
        });
    };

    // the issue may have changed since the candidate list was read.
    match still_eligible(&ctx).await {
        Ok(true) => {}
        Ok(false) => {
            return report(
                &ctx,
                RunOutcome::Cancelled,
                None,
                Some("the issue is no longer eligible".into()),
                0,
                None,
            );
        }
        Err(error) => {
            return report(&ctx, RunOutcome::Failed, None, Some(error), 0, None);
        }
    }

    phase(RunPhase::PreparingWorkspace);
    let (base, workspace) = match prepare(&ctx).await {
        Ok(ready) => ready,
        Err(error) => return report(&ctx, RunOutcome::Failed, None, Some(error), 0, None),
    };
    let _ = ctx.events.send(Event::RunLaunched {
        run_id: run_id.clone(),
        pid: None,
        workspace_path: workspace.path.display().to_string(),
        branch: workspace.branch.clone(),
    });
    info!(issue_identifier = %identifier, workspace = %workspace.path.display(), "workspace ready");

    // Where the agent sees its workspace, and the build cache below it (held for the run: the
    // cache is not pruned while the agent or its hooks build on it). The sandboxed hooks see
    // the same.
    let shown = crate::warm_view::agent_view(
        ctx.build_caches.as_deref(),
        &ctx.sandbox,
        &ctx.workspaces,
        &workspace,
    )
    .await;
    let ending = if let Err(error) = ctx
        .workspaces
        .run_hook_in_view(HookKind::BeforeRun, &workspace, shown.view.as_ref())
        .await
    {
        Ending::failed(format!("before_run hook failed: {error}"), 0)
    } else {
        phase(RunPhase::BuildingPrompt);
        match render(&ctx) {
            Err(error) => Ending::failed(error, 0),
            Ok(prompt) => converse(&mut ctx, &workspace, &shown, &base, prompt, &phase).await,
        }
    };
    let ending = contained(&ctx, ending);

    phase(RunPhase::Finishing);
    let message = format!("{}: {}", identifier, ctx.spec.issue.title);
    let attempt_ref = format!(
        "refs/takt/runs/{}/{}",
        takt_workspace::workspace_key(&identifier),
        run_id.rsplit('#').next().unwrap_or("0")
    );
    let commit = match ctx
        .workspaces
        .commit_all(&workspace, &message, &identifier, Some(&attempt_ref))
        .await
    {
        Ok(commit) => commit,
        Err(error) => {
            warn!(issue_identifier = %identifier, %error, "could not commit the agent's work");
            let ending = Ending::failed(
                format!("committing the agent's work failed: {error}"),
                ending.turns,
            );
            finish_hooks(&ctx, &workspace, &shown).await;
            return report(&ctx, ending.outcome, None, ending.error, ending.turns, None);
        }
    };
    finish_hooks(&ctx, &workspace, &shown).await;
    report(
        &ctx,
        ending.outcome,
        commit,
        ending.error,
        ending.turns,
        ending.question,
    );
}

/// Reads the sandbox's reports of this run: every violation becomes an agent event, and a run
/// that failed because of one ends as `sandbox_violation` (or `timed_out` at the wall clock)
/// with the report as its error.
fn contained(ctx: &RunContext, mut ending: Ending) -> Ending {
    let Ok(launches) = fs_err::read_dir(ctx.run_dir.join("sandbox")) else {
        return ending;
    };
    let mut violations = Vec::new();
    for launch in launches.flatten() {
        match takt_sandbox::ContainmentReport::read(&launch.path().join("report.json")) {
            Ok(Some(report)) => violations.extend(report.violations),
            Ok(None) => {}
            Err(error) => warn!(%error, "unreadable sandbox report"),
        }
    }
    for violation in &violations {
        let _ = ctx.events.send(Event::AgentActivity {
            run_id: ctx.spec.run_id.clone(),
            event: AgentEvent::SandboxViolation {
                kind: violation.kind.as_str().to_owned(),
                detail: violation.detail.clone(),
            },
        });
    }
    if ending.outcome == RunOutcome::Failed
        && let Some(first) = violations.first()
    {
        ending.outcome = if first.kind == takt_sandbox::ViolationKind::WallClock {
            RunOutcome::TimedOut
        } else {
            RunOutcome::SandboxViolation
        };
        let details: Vec<&str> = violations.iter().map(|v| v.detail.as_str()).collect();
        ending.error = Some(format!(
            "the sandbox stopped the agent: {}{}",
            details.join("; "),
            ending
                .error
                .as_deref()
                .map(|error| format!(" ({error})"))
                .unwrap_or_default()
        ));
    }
    ending
}

async fn finish_hooks(ctx: &RunContext, workspace: &Workspace, shown: &AgentView) {
    // after_run: best effort, after every attempt once the workspace exists.
    if let Err(error) = ctx
        .workspaces
        .run_hook_in_view(HookKind::AfterRun, workspace, shown.view.as_ref())
        .await
    {
        warn!(issue_identifier = %ctx.spec.issue.identifier, %error, "after_run hook failed (ignored)");
    }
}

fn report(
    ctx: &RunContext,
    outcome: RunOutcome,
    commit: Option<String>,
    error: Option<String>,
    turns: u32,
    question: Option<String>,
) {
    info!(
        issue_id = %ctx.spec.task_id,
        issue_identifier = %ctx.spec.issue.identifier,
        run_id = %ctx.spec.run_id,
        outcome = %outcome,
        error = error.as_deref().unwrap_or(""),
        "run finished"
    );
    let _ = ctx.events.send(Event::RunExited(RunExit {
        run_id: ctx.spec.run_id.clone(),
        outcome,
        commit,
        error,
        turns,
        question,
    }));
}

async fn still_eligible(ctx: &RunContext) -> Result<bool, String> {
    let ids = [ctx.spec.task_id.clone()];
    let issues = ctx
        .tracker
        .fetch_issues_by_ids(&ids)
        .await
        .map_err(|error| format!("stale-dispatch check failed: {error}"))?;
    Ok(issues
        .first()
        .is_some_and(|issue| ctx.policy.is_active(&issue.state) && ctx.policy.is_routable(issue)))
}

async fn prepare(ctx: &RunContext) -> Result<(BaseRef, Workspace), String> {
    let base = ctx
        .workspaces
        .sync_mirror()
        .await
        .map_err(|error| format!("updating the repository mirror failed: {error}"))?;
    let workspace = ctx
        .workspaces
        .ensure(&ctx.spec.issue.identifier, &base)
        .await
        .map_err(|error| format!("preparing the workspace failed: {error}"))?;
    Ok((base, workspace))
}

fn render(ctx: &RunContext) -> Result<String, String> {
    let spec = &ctx.spec;
    let context = PromptContext {
        issue: &spec.issue,
        attempt: spec.attempt,
        retry_kind: spec.retry_kind,
        last_error: spec.last_error.as_deref(),
        feedback: spec.feedback.as_deref(),
    };
    ctx.workflow
        .render_prompt(&context)
        .map_err(|error| error.to_string())
}

/// The turn loop: turn 1 gets the full prompt, later turns continuation
/// guidance, while the agent has changed nothing, is not finished and the issue stays active.
async fn converse(
    ctx: &mut RunContext,
    workspace: &Workspace,
    shown: &AgentView,
    base: &BaseRef,
    prompt: String,
    phase: &impl Fn(RunPhase),
) -> Ending {
    phase(RunPhase::LaunchingAgent);
    let session_context = SessionContext {
        task_id: ctx.spec.task_id.clone(),
        identifier: ctx.spec.issue.identifier.clone(),
        run_id: ctx.spec.run_id.clone(),
        attempt: ctx.spec.attempt.unwrap_or(0) + 1,
        workspace: workspace.path.clone(),
        run_dir: ctx.run_dir.clone(),
        model: ctx.model.clone(),
        git_dir: Some(ctx.workspaces.settings().mirror_dir.clone()),
        host_tools: ctx.host_tools.clone(),
        view: shown.view.clone(),
    };
    let _ = ctx.events.send(Event::AgentActivity {
        run_id: ctx.spec.run_id.clone(),
        event: AgentEvent::Sandboxed {
            description: match &shown.note {
                Some(note) => format!("{}; agent build cache {note}", ctx.sandbox.describe()),
                None => ctx.sandbox.describe(),
            },
        },
    });
    let mut session = match ctx.backend.start_session(session_context).await {
        Ok(session) => session,
        Err(error) => return Ending::failed(error.to_string(), 0),
    };
    phase(RunPhase::InitializingSession);
    let (_, no_answers) = mpsc::unbounded_channel();
    let sink = Sink {
        run_id: ctx.spec.run_id.clone(),
        events: ctx.events.clone(),
        answers: tokio::sync::Mutex::new(std::mem::replace(&mut ctx.answers, no_answers)),
        stop: ctx.stop.clone(),
    };
    let max_turns = ctx.workflow.agent.max_turns;
    let mut ending = Ending {
        outcome: RunOutcome::Succeeded,
        error: None,
        question: None,
        turns: 0,
    };
    for turn in 1..=max_turns {
        phase(RunPhase::StreamingTurn);
        ending.turns = turn;
        let input = TurnInput {
            turn,
            prompt: if turn == 1 {
                prompt.clone()
            } else {
                takt_workflow::continuation_prompt(turn, max_turns)
            },
        };
        let result = tokio::select! {
            result = session.run_turn(input, &sink) => result,
            reason = stopped(&mut ctx.stop) => {
                session.stop().await;
                return Ending {
                    outcome: RunOutcome::Cancelled,
                    error: Some(format!("stopped: {reason:?}")),
                    question: None,
                    turns: turn,
                };
            }
        };
        match result {
            Err(error) => {
                session.stop().await;
                return Ending::failed(error.to_string(), turn);
            }
            Ok(TurnResult::Failed { error }) => {
                session.stop().await;
                return Ending::failed(error, turn);
            }
            Ok(TurnResult::InputRequired { question }) => {
                session.stop().await;
                ending.outcome = RunOutcome::InputRequired;
                ending.question = Some(question);
                return ending;
            }
            Ok(TurnResult::Completed { finished }) => {
                if finished || changed(ctx, workspace, base).await {
                    break;
                }
                match still_eligible(ctx).await {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(error) => {
                        session.stop().await;
                        return Ending::failed(format!("issue state refresh error: {error}"), turn);
                    }
                }
            }
        }
    }
    session.stop().await;
    ending
}

async fn changed(ctx: &RunContext, workspace: &Workspace, base: &BaseRef) -> bool {
    let dirty = ctx
        .workspaces
        .dirty_files(workspace)
        .await
        .is_ok_and(|files| !files.is_empty());
    dirty
        || ctx
            .workspaces
            .changed_since(workspace, &base.sha)
            .await
            .unwrap_or(false)
}

async fn stopped(stop: &mut watch::Receiver<Option<StopReason>>) -> StopReason {
    loop {
        if let Some(reason) = *stop.borrow_and_update() {
            return reason;
        }
        if stop.changed().await.is_err() {
            // The engine is gone; stop the agent.
            return StopReason::Operator;
        }
    }
}
