//! From the workflow's `sandbox` section to the daemon's [`Sandbox`]: the policy, the host's
//! mechanisms (probed once per daemon), the agent user.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use takt_sandbox::{HostReport, Limits, Mode, Network, Policy, Sandbox};
use takt_workflow::{SandboxMode, SandboxNetwork, Workflow};
use tracing::warn;

/// The sandbox policy a workflow asks for. Secret variables (provider, tracker, forge keys)
/// are dropped from `sandbox.env` even when listed, with a warning.
pub fn policy_for(workflow: &Workflow) -> Policy {
    let config = &workflow.sandbox;
    let secrets = crate::backends::secret_env_names(workflow);
    let env = config
        .env
        .iter()
        .filter(|name| {
            let secret = secrets.contains(name);
            if secret {
                warn!(variable = %name, "sandbox.env lists a secret; it is not passed to agents");
            }
            !secret
        })
        .cloned()
        .collect();
    Policy {
        mode: match config.mode {
            SandboxMode::Auto => Mode::Auto,
            SandboxMode::Bwrap => Mode::Bwrap,
            SandboxMode::Landlock => Mode::Landlock,
            SandboxMode::None => Mode::None,
        },
        network: match config.network {
            SandboxNetwork::None => Network::None,
            SandboxNetwork::Model => Network::Model,
            SandboxNetwork::Allowlist => Network::Allowlist(config.allow_hosts.clone()),
        },
        env,
        limits: Limits {
            memory_mb: config.memory_mb,
            pids: config.pids,
            cpu_seconds: config.cpu_seconds,
            file_size_mb: config.file_size_mb,
            open_files: config.open_files,
            wall_clock_ms: config.wall_clock_ms,
        },
        read_only: config.read_only.clone(),
        read_write: config.read_write.clone(),
        user: config.user.clone(),
    }
}

/// This binary, which serves the sandbox helper stages.
pub fn helper() -> Result<PathBuf> {
    std::env::current_exe().context("cannot find the takt binary to use as the sandbox helper")
}

/// The small inner-stage binary beside this one, looked up once per process.
fn inner_stage() -> Option<PathBuf> {
    static INNER: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    INNER
        .get_or_init(|| takt_sandbox::inner_stage_beside(&helper().ok()?))
        .clone()
}

/// Which binary runs the inner stage, for `takt doctor`.
pub fn inner_stage_line() -> String {
    match inner_stage() {
        Some(inner) => format!("{} (the small binary beside takt)", inner.display()),
        None => format!(
            "takt itself: no {} of this build beside it (`cargo build --release -p takt-cli` \
             builds both); each sandbox launch takes about 1 ms longer",
            takt_sandbox::INNER_BINARY
        ),
    }
}

fn with_inner_stage(sandbox: Sandbox) -> Sandbox {
    match inner_stage() {
        Some(inner) => sandbox.with_inner_stage(inner),
        None => sandbox,
    }
}

/// Probes what confinement works here, as the workflow's agent user.
pub fn probe(workflow: &Workflow) -> Result<HostReport> {
    Ok(takt_sandbox::probe(&helper()?, &workflow.sandbox.user))
}

/// The sandbox for `workflow` on a probed host; an error when its mode cannot be had (takt
/// never falls back to running agents unconfined).
pub fn build(
    workflow: &Workflow,
    host: &HostReport,
    state_dir: &Path,
    model: Option<std::net::SocketAddr>,
) -> Result<Sandbox> {
    let sandbox = Sandbox::new(policy_for(workflow), host, helper()?, &key(state_dir))
        .map(with_inner_stage)
        .with_context(|| {
            format!(
                "{}: the sandbox cannot start (`takt doctor` shows what works on this host)",
                workflow.path.display()
            )
        })?;
    if sandbox.mechanism() == takt_sandbox::Mechanism::Unconfined {
        warn!("sandbox.mode is none: agents run unconfined, as the daemon's user");
    }
    Ok(match model {
        Some(addr) => sandbox.with_model_endpoint(addr),
        None => sandbox,
    })
}

/// The sandbox gates run in: the agents' filesystem and limits, no network at all (not even
/// the model endpoint), and a key of its own so its cgroups are told apart.
pub fn build_for_gates(
    workflow: &Workflow,
    host: &HostReport,
    state_dir: &Path,
) -> Result<Sandbox> {
    let mut policy = policy_for(workflow);
    policy.network = Network::None;
    Sandbox::new(policy, host, helper()?, &key(state_dir))
        .map(with_inner_stage)
        .with_context(|| {
            format!(
                "{}: the gate sandbox cannot start (`takt doctor` shows what works on this host)",
                workflow.path.display()
            )
        })
}

/// A short stable name for a state directory: the prefix of its sandboxes' cgroups, so a
/// restart sweeps only its own.
pub fn key(state_dir: &Path) -> String {
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in state_dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:08x}", hash >> 32)
}

/// Starts the hooks that run over agent-written files (`before_run`, `after_run`,
/// `before_remove`) in the agent sandbox; `after_create` runs on a fresh checkout of the
/// repository and stays the daemon's.
#[derive(Debug)]
pub struct SandboxedHooks {
    pub sandbox: std::sync::Arc<Sandbox>,
    pub state_dir: PathBuf,
    pub mirror: PathBuf,
}

impl takt_workspace::HookLauncher for SandboxedHooks {
    fn command(
        &self,
        kind: takt_workspace::HookKind,
        ctx: &takt_workspace::HookContext,
        script: &str,
    ) -> Result<Option<tokio::process::Command>, String> {
        if kind == takt_workspace::HookKind::AfterCreate
            || self.sandbox.mechanism() == takt_sandbox::Mechanism::Unconfined
        {
            return Ok(None);
        }
        let scope = takt_sandbox::RunScope {
            run_id: format!("hook-{}-{}", ctx.key, kind.name()),
            workspace: ctx.workspace.clone(),
            run_dir: self
                .state_dir
                .join("hooks")
                .join(&ctx.key)
                .join(kind.name()),
            git_dirs: vec![self.mirror.clone()],
            view: ctx.view.clone(),
        };
        let shown = ctx.view.as_ref().map_or(&ctx.workspace, |view| &view.at);
        let launch = takt_sandbox::Launch {
            program: "sh".into(),
            args: vec!["-lc".into(), script.into()],
            cwd: ctx.workspace.clone(),
            env: vec![
                ("TAKT_WORKSPACE".into(), shown.display().to_string()),
                ("TAKT_ISSUE_IDENTIFIER".into(), ctx.identifier.clone()),
                ("TAKT_WORKSPACE_KEY".into(), ctx.key.clone()),
            ],
            read_only: Vec::new(),
            remove_env: Vec::new(),
        };
        self.sandbox
            .command(&scope, launch)
            .map(Some)
            .map_err(|error| error.to_string())
    }
}

/// Points `workspaces`' hooks at `sandbox`, unless `hooks.sandbox` is off.
pub fn confine_hooks(
    workflow: &Workflow,
    workspaces: &takt_workspace::WorkspaceManager,
    sandbox: &std::sync::Arc<Sandbox>,
    state_dir: &Path,
) {
    let launcher: Option<std::sync::Arc<dyn takt_workspace::HookLauncher>> =
        workflow.hooks.sandbox.then(|| {
            std::sync::Arc::new(SandboxedHooks {
                sandbox: sandbox.clone(),
                state_dir: state_dir.to_path_buf(),
                mirror: workspaces.settings().mirror_dir.clone(),
            }) as std::sync::Arc<dyn takt_workspace::HookLauncher>
        });
    workspaces.set_hook_launcher(launcher);
}
