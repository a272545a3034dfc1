//! takt's built-in agent loop over Chat Completions and Anthropic Messages.
//!
//! [`BuiltinBackend`] (`agent.backend: builtin`) talks to the daemon's model endpoint
//! ([`takt_core::ports::ModelAccess`]: base URL + the run's token as the API key) and gives
//! the model a small set of workspace-confined [`tools`]. One session keeps one conversation
//! across turns: turn 1 sends the rendered prompt, later turns append the continuation.
//!
//! - [`client`]: the two wire APIs, streaming, tool calls, usage, retries, idle timeout.
//! - [`tools`]: `read_file`, `list_dir`, `search`, `write_file`, `edit_file`, `apply_patch`,
//!   `run`, `finish`.
//! - [`agent`]: the loop, its limits and the context budget.
//!
//! Events: `SessionStarted` (first turn), `TurnStarted`, `Message` (the model's text, the
//! `finish` summary, a limit that stopped the turn), `ToolCall {name, summary, ok}` per call,
//! `FileChange {path}` per written / deleted file, `TokenUsage` (absolute session totals) after
//! every model answer, `Error` for a failed model request that is being retried, then
//! `TurnCompleted` or `TurnFailed`.
//!
//! See `docs/agents-builtin.md`.

pub mod agent;
pub mod client;
pub mod tools;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use takt_core::ports::{
    AgentBackend, AgentError, AgentEventSink, AgentSession, HostToolSpec, SessionContext,
    TurnInput, TurnResult,
};
use takt_protocol::AgentEvent;

use self::agent::{Agent, Limits};
use self::client::{ClientSettings, DEFAULT_MODEL, Endpoint, ModelClient};
pub use self::client::{ModelApi, ModelError};
use self::tools::{RunningGroup, ToolSettings, Toolbox};
use crate::process::{PID_FILE, terminate_group};

/// Bytes of `AGENTS.md` / `CLAUDE.md` put into the system prompt.
pub const MAX_INSTRUCTIONS_BYTES: usize = 32 * 1024;
/// How long a stopped `run` command gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Commands the `run` tool refuses by default (the same list as WORKFLOW.md's default).
pub const DEFAULT_DENY_COMMANDS: &[&str] = &[
    "sudo", "su", "shutdown", "reboot", "mkfs", "dd", "curl", "wget", "ssh", "scp",
];

/// How the built-in loop is configured. The CLI maps WORKFLOW.md's `model` and `builtin`
/// sections into it; [`Default`] has the workflow's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinSettings {
    /// The wire API: `model.provider: anthropic` speaks Messages, the others Chat Completions.
    pub api: ModelApi,
    /// Model requests per turn (`builtin.max_steps`).
    pub max_steps: u32,
    /// Tokens per turn, input + output as reported (`builtin.max_tokens_per_turn`).
    pub max_tokens_per_turn: u64,
    /// Estimated context size above which old tool outputs are cut
    /// (`builtin.context_budget_tokens`).
    pub context_budget_tokens: u64,
    /// Default and maximum time of one `run` command (`builtin.command_timeout_ms`).
    pub command_timeout: Duration,
    /// Bytes of one tool output kept, head and tail (`builtin.output_limit_bytes`).
    pub output_limit_bytes: usize,
    /// Programs `run` refuses (`builtin.deny_commands`).
    pub deny_commands: Vec<String>,
    /// Retries of a failed model request.
    pub max_retries: u32,
    /// Appended to the system prompt.
    pub system_prompt_extra: Option<String>,
    /// Environment variables removed from `run` commands (provider and tracker secrets).
    pub remove_env: Vec<String>,
    /// A model request with no bytes for this long fails (and is retried).
    pub stream_idle_timeout: Duration,
    /// The first retry delay (doubled per retry, jittered) when no `Retry-After` is given.
    pub retry_base_delay: Duration,
    /// Output tokens of one answer (Messages `max_tokens`; not sent to Chat Completions).
    pub max_output_tokens: u32,
}

impl Default for BuiltinSettings {
    fn default() -> Self {
        BuiltinSettings {
            api: ModelApi::ChatCompletions,
            max_steps: 50,
            max_tokens_per_turn: 400_000,
            context_budget_tokens: 100_000,
            command_timeout: Duration::from_millis(120_000),
            output_limit_bytes: 16_384,
            deny_commands: DEFAULT_DENY_COMMANDS
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            max_retries: 4,
            system_prompt_extra: None,
            remove_env: Vec::new(),
            stream_idle_timeout: Duration::from_secs(300),
            retry_base_delay: Duration::from_secs(1),
            max_output_tokens: 8192,
        }
    }
}

/// The `builtin` agent backend.
#[derive(Debug, Clone)]
pub struct BuiltinBackend {
    settings: BuiltinSettings,
    http: reqwest::Client,
    sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
}

impl BuiltinBackend {
    /// Builds the backend and its HTTP client (rustls with the ring provider, platform roots;
    /// no process-wide crypto provider is installed).
    pub fn new(
        settings: BuiltinSettings,
        sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
    ) -> Result<BuiltinBackend, ModelError> {
        Ok(BuiltinBackend {
            settings,
            http: client::http_client()?,
            sandbox,
        })
    }

    pub fn settings(&self) -> &BuiltinSettings {
        &self.settings
    }
}

/// The system prompt: the tools, the rules, the repository's own instructions.
pub fn system_prompt(
    settings: &BuiltinSettings,
    workspace: &Path,
    instructions: Option<(&str, &str)>,
    host_tools: &[HostToolSpec],
) -> String {
    let mut prompt = format!(
        "You are takt's built-in coding agent. You work alone on one task in a git checkout; \
nobody answers questions during the task.\n\n\
Working directory: {root}\n\
Every path you give a tool is relative to the workspace root (absolute paths must lie inside it). \
Paths outside the workspace, `..` above it and symlinks leading out of it are refused.\n\n\
Tools:\n\
- read_file {{path, start_line?, end_line?}}: read a text file or a line range of it.\n\
- list_dir {{path}}: list a directory.\n\
- search {{pattern, path?}}: regex search over the workspace's files (.gitignore respected).\n\
- write_file {{path, content}}: create or replace a whole file.\n\
- edit_file {{path, old, new}}: replace one exact, unique occurrence of `old`.\n\
- apply_patch {{patch}}: apply a `*** Begin Patch` patch (Add File / Update File with @@ hunks / Delete File).\n\
- run {{command, timeout_ms?}}: run a shell command in the workspace root (no stdin; at most {timeout} s; \
background processes are killed when it ends).\n\
- finish {{summary}}: the task is complete; say briefly what you changed and how you checked it.\n\n\
Rules:\n\
- Look before you change: read the relevant files first; keep changes within the task.\n\
- Prefer edit_file or apply_patch for changes to existing files.\n\
- Build and run the tests with `run` before you finish, when the project has them.\n\
- Do not commit, push, or change git configuration: takt commits and publishes your changes after review.\n\
- Tool output longer than {limit} bytes is cut in the middle.\n\
- A tool error comes back as the tool's result: read it and correct the call.\n\
- When the task is done, or cannot be done, call finish with a summary (say why if it cannot be done).\n",
        root = workspace.display(),
        timeout = settings.command_timeout.as_secs().max(1),
        limit = settings.output_limit_bytes,
    );
    if !host_tools.is_empty() {
        prompt.push_str(
            "\nTools takt runs for you outside the workspace; they reach only this task's issue and pull request:\n",
        );
        for tool in host_tools {
            prompt.push_str(&format!("- {}: {}\n", tool.name, tool.description));
        }
    }
    if let Some((name, text)) = instructions {
        prompt.push_str(&format!(
            "\nThe repository's {name} (instructions from its maintainers):\n<{name}>\n{text}\n</{name}>\n"
        ));
    }
    if let Some(extra) = settings
        .system_prompt_extra
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        prompt.push('\n');
        prompt.push_str(extra.trim());
        prompt.push('\n');
    }
    prompt
}

/// `AGENTS.md`, else `CLAUDE.md`, from the workspace root, cut to
/// [`MAX_INSTRUCTIONS_BYTES`].
/// A file that resolves outside the workspace (a symlink out) is ignored.
pub fn repository_instructions(workspace: &Path) -> Option<(&'static str, String)> {
    let workspace = tools::paths::Workspace::new(workspace).ok()?;
    for name in ["AGENTS.md", "CLAUDE.md"] {
        let Ok(resolved) = workspace.resolve(name) else {
            continue;
        };
        let Ok(text) = fs_err::read_to_string(&resolved.real) else {
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let mut text = text;
        if text.len() > MAX_INSTRUCTIONS_BYTES {
            let mut end = MAX_INSTRUCTIONS_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("\n[... cut]");
        }
        return Some((name, text));
    }
    None
}

#[async_trait]
impl AgentBackend for BuiltinBackend {
    fn name(&self) -> &'static str {
        "builtin"
    }

    async fn start_session(
        &self,
        context: SessionContext,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        let Some(access) = context.model.clone() else {
            return Err(AgentError::Spawn(
                "the builtin backend needs a model endpoint, and this session has none: \
                 configure the `model` section of WORKFLOW.md"
                    .into(),
            ));
        };
        fs_err::tokio::create_dir_all(&context.run_dir)
            .await
            .map_err(|error| AgentError::Io(error.to_string()))?;
        let settings = &self.settings;
        let toolbox = Toolbox::new(
            &context.workspace,
            ToolSettings {
                command_timeout: settings.command_timeout,
                output_limit_bytes: settings.output_limit_bytes,
                deny_commands: settings.deny_commands.clone(),
                remove_env: settings.remove_env.clone(),
                env: crate::process::run_env(&context),
                sandbox: self.sandbox.clone(),
                scope: Some(crate::process::scope(&context)),
            },
        )
        .map_err(|error| {
            AgentError::Spawn(format!(
                "the workspace {} cannot be used: {error}",
                context.workspace.display()
            ))
        })?
        .with_host_tools(context.host_tools.clone());
        let instructions = repository_instructions(toolbox.root());
        let system = system_prompt(
            settings,
            toolbox.agent_root(),
            instructions
                .as_ref()
                .map(|(name, text)| (*name, text.as_str())),
            &context
                .host_tools
                .as_ref()
                .map(|host| host.specs())
                .unwrap_or_default(),
        );
        let client = ModelClient::new(
            self.http.clone(),
            Endpoint {
                api: settings.api,
                openai_base_url: access.openai_base_url,
                anthropic_base_url: access.anthropic_base_url,
                token: access.token,
                model: access.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            },
            ClientSettings {
                max_retries: settings.max_retries,
                idle_timeout: settings.stream_idle_timeout,
                retry_base_delay: settings.retry_base_delay,
                max_output_tokens: settings.max_output_tokens,
            },
        );
        let running = toolbox.running().clone();
        let agent = Agent::new(
            client,
            toolbox,
            system,
            Limits {
                max_steps: settings.max_steps.max(1),
                max_tokens_per_turn: settings.max_tokens_per_turn,
                context_budget_tokens: settings.context_budget_tokens,
            },
        );
        Ok(Box::new(BuiltinSession {
            session_id: format!("builtin-{}", context.run_id),
            context,
            agent,
            running,
            announced: false,
        }))
    }
}

struct BuiltinSession {
    session_id: String,
    context: SessionContext,
    agent: Agent,
    running: RunningGroup,
    announced: bool,
}

#[async_trait]
impl AgentSession for BuiltinSession {
    /// The loop runs inside the daemon; the process group of a running `run` command, if any.
    fn pid(&self) -> Option<u32> {
        self.running.get()
    }

    async fn run_turn(
        &mut self,
        input: TurnInput,
        events: &dyn AgentEventSink,
    ) -> Result<TurnResult, AgentError> {
        if !self.announced {
            self.announced = true;
            events.emit(AgentEvent::SessionStarted {
                session_id: self.session_id.clone(),
            });
        }
        let turn = input.turn;
        events.emit(AgentEvent::TurnStarted { turn });
        let result = self.agent.run_turn(input.prompt, events).await;
        match &result {
            TurnResult::Completed { .. } => events.emit(AgentEvent::TurnCompleted { turn }),
            TurnResult::Failed { error } => events.emit(AgentEvent::TurnFailed {
                turn,
                error: error.clone(),
            }),
            TurnResult::InputRequired { question } => events.emit(AgentEvent::InputRequired {
                question: question.clone(),
            }),
        }
        Ok(result)
    }

    async fn stop(&mut self) {
        if let Some(pgid) = self.running.get() {
            terminate_group(pgid, STOP_GRACE).await;
            self.running.kill();
            let _ = fs_err::tokio::remove_file(self.context.run_dir.join(PID_FILE)).await;
        }
    }
}

impl Drop for BuiltinSession {
    fn drop(&mut self) {
        // A dropped session must not leave a `run` command behind.
        self.running.kill();
    }
}
