//! A project: one WORKFLOW.md, its state directory, and the adapters its configuration builds.
//! This is the composition root's one place where validated configuration becomes runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use takt_core::Policy;
use takt_core::ports::Tracker;
use takt_protocol::normalize_state;
use takt_store::{LocalTracker, Store};
use takt_workflow::{ProcessEnv, RepoSource, Workflow};
use takt_workspace::{Hooks, WorkspaceManager, WorkspaceSettings};

/// The directory beside WORKFLOW.md that holds takt's state.
pub const STATE_DIR: &str = ".takt";

pub struct Project {
    pub workflow: Arc<Workflow>,
    pub state_dir: PathBuf,
}

impl Project {
    /// Finds and loads WORKFLOW.md (R-001: the explicit path, else `./WORKFLOW.md`).
    pub fn locate(explicit: Option<&Path>) -> Result<Project> {
        let cwd = std::env::current_dir().context("reading the current directory")?;
        let path = takt_workflow::discover(explicit, &cwd)?;
        let workflow = takt_workflow::load(&path, &ProcessEnv)?;
        Ok(Project::from_workflow(Arc::new(workflow)))
    }

    pub fn from_workflow(workflow: Arc<Workflow>) -> Project {
        let state_dir = workflow.dir.join(STATE_DIR);
        Project {
            workflow,
            state_dir,
        }
    }

    pub async fn store(&self) -> Result<Store> {
        Store::open(&self.state_dir)
            .await
            .with_context(|| format!("opening takt's state in {}", self.state_dir.display()))
    }

    /// The local tracker, when this workflow uses it.
    pub fn local_tracker(&self, store: &Store) -> Result<LocalTracker> {
        let tracker = &self.workflow.tracker;
        if tracker.kind != "local" {
            bail!(
                "this workflow's tracker is `{}`; `takt task add` manages the local tracker only \
                 (set `tracker: {{kind: local}}` in {} or add the issue in {})",
                tracker.kind,
                self.workflow.path.display(),
                tracker.kind
            );
        }
        Ok(LocalTracker::new(
            store.clone(),
            tracker.active_states.clone(),
            tracker.terminal_states.clone(),
        ))
    }

    pub fn tracker(&self, store: &Store) -> Result<Arc<dyn Tracker>> {
        match self.workflow.tracker.kind.as_str() {
            "local" => Ok(Arc::new(self.local_tracker(store)?)),
            kind if takt_trackers::KINDS.contains(&kind) => {
                takt_trackers::build(&self.workflow.tracker, &ProcessEnv).map_err(|error| {
                    anyhow::anyhow!(
                        "{error} (tracker.kind `{kind}` in {}; see docs/trackers.md)",
                        self.workflow.path.display()
                    )
                })
            }
            other => bail!(
                "unsupported_tracker_kind: tracker.kind `{other}` in {} is not available in this \
                 build yet; use `local`, `linear`, `github` or `gitlab`",
                self.workflow.path.display()
            ),
        }
    }

    pub fn workspaces(&self) -> Result<WorkspaceManager> {
        workspaces_for(&self.workflow, &self.state_dir)
    }

    pub fn policy(&self) -> Policy {
        policy_for(&self.workflow)
    }
}

/// Where a run keeps its private files (prompts, logs, the agent's pid).
/// Run ids are `<identifier>#<n>`; their directories `runs/<workspace key>/<n>`.
pub fn run_dir(state_dir: &Path, run_id: &str) -> PathBuf {
    let runs = state_dir.join("runs");
    match run_id.rsplit_once('#') {
        Some((identifier, number)) if number.chars().all(|c| c.is_ascii_digit()) => runs
            .join(takt_workspace::workspace_key(identifier))
            .join(number),
        _ => runs.join(takt_workspace::workspace_key(run_id)),
    }
}

pub fn workspaces_for(workflow: &Workflow, state_dir: &Path) -> Result<WorkspaceManager> {
    let source = match &workflow.workspace.repo {
        RepoSource::Path(path) => takt_workspace::RepoSource::Path(path.clone()),
        RepoSource::Url(url) => takt_workspace::RepoSource::Url(url.clone()),
    };
    let hooks = &workflow.hooks;
    let settings = WorkspaceSettings {
        root: workflow.workspace.root.clone(),
        mirror_dir: state_dir.join("mirror.git"),
        source,
        base_branch: workflow.workspace.base_branch.clone(),
        branch_prefix: workflow.publish.branch_prefix.clone(),
        hooks: Hooks {
            after_create: hooks.after_create.clone(),
            before_run: hooks.before_run.clone(),
            after_run: hooks.after_run.clone(),
            before_remove: hooks.before_remove.clone(),
        },
        hook_timeout: Duration::from_millis(hooks.timeout_ms),
        overlay: overlay_for(workflow, state_dir),
    };
    Ok(WorkspaceManager::new(settings)?)
}

/// Overlay workspaces when `workspace.overlay` asks for them (the default) and this daemon can
/// mount them; otherwise plain worktrees, with a warning saying why.
fn overlay_for(workflow: &Workflow, state_dir: &Path) -> Option<takt_workspace::OverlaySettings> {
    match overlay_support(workflow, state_dir) {
        Ok(settings) => settings,
        Err(reason) => {
            tracing::warn!("{reason}; workspaces are git worktrees");
            None
        }
    }
}

/// What new workspaces will be: overlays (`Ok(Some)`), worktrees by choice (`Ok(None)`), or
/// worktrees because overlays cannot be had here (`Err`, saying why). Probes by really
/// mounting one under `<state>/overlay`.
pub fn overlay_support(
    workflow: &Workflow,
    state_dir: &Path,
) -> Result<Option<takt_workspace::OverlaySettings>, String> {
    if !workflow.workspace.overlay {
        return Ok(None);
    }
    let dir = state_dir.join("overlay");
    fs_err::create_dir_all(&dir)
        .map_err(|e| e.to_string())
        .and_then(|()| takt_workspace::overlays_work(&dir))
        .map_err(|error| {
            format!(
                "overlay workspaces cannot be mounted here ({error}): they need a root daemon \
                 and a kernel with overlayfs on a file system it accepts as an upper layer"
            )
        })?;
    let owner = takt_sandbox::user::running_as_root()
        .then(|| takt_sandbox::user::ensure(&workflow.sandbox.user).ok())
        .flatten()
        .map(|user| (user.uid, user.gid));
    Ok(Some(takt_workspace::OverlaySettings { dir, owner }))
}

/// The core's view of a workflow. Applied live on reload.
pub fn policy_for(workflow: &Workflow) -> Policy {
    let tracker = &workflow.tracker;
    let agent = &workflow.agent;
    let normalized = |states: &[String]| states.iter().map(|s| normalize_state(s)).collect();
    let active: Vec<String> = normalized(&tracker.active_states);
    let terminal: Vec<String> = normalized(&tracker.terminal_states);
    // The local tracker is takt's own, so the daemon keeps it current; other trackers are
    // moved by their agents' tools.
    let local = tracker.kind == "local";
    let pick = |wanted: &str, among: &[String]| {
        (local && among.iter().any(|state| state == &normalize_state(wanted)))
            .then(|| wanted.to_owned())
    };
    let configured = &tracker.transitions;
    let or = |set: &Option<String>, fallback: Option<String>| set.clone().or(fallback);
    Policy {
        on_start_state: or(&configured.on_start, pick("In Progress", &active)),
        on_done_state: or(&configured.on_done, pick("Done", &terminal)),
        on_cancel_state: or(&configured.on_cancel, pick("Cancelled", &terminal)),
        on_review_state: configured.on_review.clone(),
        on_failed_state: configured.on_failed.clone(),
        on_reopen_state: pick("Todo", &active),
        active_states: active,
        terminal_states: terminal,
        required_labels: tracker.required_labels.clone(),
        max_concurrent_agents: agent.max_concurrent_agents,
        max_concurrent_agents_by_state: agent.max_concurrent_agents_by_state.clone(),
        max_retry_backoff_ms: agent.max_retry_backoff_ms,
        max_attempts: agent.max_attempts,
        stall_timeout_ms: workflow.codex.stall_timeout_ms,
        max_run_duration_ms: agent.max_run_duration_ms,
        poll_interval_ms: workflow.polling.interval_ms,
        budget: budget_for(workflow),
        verification: verification_for(workflow),
        schedules: schedules_for(workflow),
        publish: takt_core::PublishPolicy {
            forge: workflow.publish.forge != takt_workflow::ForgeKind::Local,
            max_ci_rounds: workflow.publish.max_ci_rounds,
        },
    }
}

/// `schedules:` compiled for the core; the workflow validated every one, so a failure here is
/// logged and that schedule skipped rather than stopping the daemon.
pub fn schedules_for(workflow: &Workflow) -> Vec<takt_core::schedule::Schedule> {
    workflow
        .schedules
        .iter()
        .filter_map(|config| {
            let template = takt_core::schedule::TaskTemplate {
                title: config.title.clone(),
                body: config.body.clone(),
                labels: config.labels.clone(),
                priority: config.priority,
            };
            takt_core::schedule::Schedule::new(
                &config.name,
                &config.cron,
                &config.timezone,
                template,
            )
            .inspect_err(|error| tracing::error!(%error, "schedule skipped"))
            .ok()
        })
        .collect()
}

/// `review:` and `risk:` as the core decides with them.
pub fn verification_for(workflow: &Workflow) -> takt_core::VerifyPolicy {
    let risk = &workflow.risk;
    takt_core::VerifyPolicy {
        max_rounds: workflow.review.max_rounds,
        on_block: match workflow.review.on_block {
            takt_workflow::OnBlock::SendBack => takt_core::OnBlock::SendBack,
            takt_workflow::OnBlock::Human => takt_core::OnBlock::Human,
        },
        risk: takt_core::risk::RiskPolicy::new(takt_core::risk::RiskSettings {
            auto_ship: risk.auto_ship.clone(),
            review: risk.review.clone(),
            hard_stop: risk.hard_stop.clone(),
            hard_stop_approvals: risk.hard_stop_approvals,
            max_changed_lines: risk.max_changed_lines,
            builtin_rules: risk.builtin_rules,
            default_tier: risk.default_tier,
        })
        .unwrap_or_else(|error| {
            // WORKFLOW.md validation compiles the same globs, so this means a bug; the
            // strictest policy is the safe fallback.
            tracing::error!(%error, "the risk policy does not compile; every change needs review");
            takt_core::risk::RiskPolicy::default()
        }),
    }
}

/// The `budget` section in the units the arithmetic uses (dollars to micro-dollars).
pub fn budget_for(workflow: &Workflow) -> takt_core::budget::Budget {
    use takt_core::budget::{Budget, Limit, OnExhaust, micros_from_usd};
    let config = &workflow.budget;
    let limit = |limit: &takt_workflow::BudgetLimit| Limit {
        tokens: limit.tokens,
        micros: limit.usd.and_then(micros_from_usd),
    };
    Budget {
        run: limit(&config.per_run),
        task: limit(&config.per_task),
        day: limit(&config.per_day),
        month: limit(&config.per_month),
        on_exhaust: match config.on_exhaust {
            takt_workflow::OnExhaust::Stop => OnExhaust::Stop,
            takt_workflow::OnExhaust::Pause => OnExhaust::Pause,
        },
        max_tokens_without_progress: config.max_tokens_without_progress,
    }
}
