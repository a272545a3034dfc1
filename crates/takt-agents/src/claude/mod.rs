//! The Claude Code backend: `claude -p` with stream-json in and out, one process per session.
//!
//! [`ClaudeBackend::start_session`] launches
//!
//! ```text
//! sh -c '<command> "$@"' claude -p --input-format stream-json --output-format stream-json \
//!     --verbose --permission-prompt-tool stdio --strict-mcp-config --permission-mode <mode> \
//!     [--model M] [--allowedTools T]... [--disallowedTools T]... [--disallowedTools Bash(<denied>:*)]... \
//!     [--mcp-config <config dir>/mcp.json --allowedTools mcp__takt__<tool>...]
//! ```
//!
//! in the workspace, in its own process group, with a fresh `CLAUDE_CONFIG_DIR` under the run
//! directory, `ANTHROPIC_BASE_URL` / `ANTHROPIC_API_KEY` taken from the session's
//! [`ModelAccess`](takt_core::ports::ModelAccess) (the run token, never a provider key) and
//! `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`. Every turn is one user message written on the
//! same process's stdin; the turn ends with Claude's `result` line. Permission prompts arrive
//! as `control_request`/`can_use_tool` and are answered by takt's [policy](policy) (see
//! `docs/agents-claude.md`).

mod error;
mod events;
mod launch;
pub mod policy;
mod protocol;
mod session;

use std::time::Duration;

use async_trait::async_trait;
use takt_core::ports::{AgentBackend, AgentError, AgentSession, SessionContext};

pub use error::ClaudeError;

/// How Claude Code is launched and governed: the CLI maps WORKFLOW.md's `claude` section (and
/// takt's own limits) into this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeSettings {
    /// The command that starts Claude Code, run through `sh -c` with the arguments appended
    /// (so `env FOO=1 /opt/claude` works). Default `claude`.
    pub command: String,
    /// `--model`; when unset, the model of the session's `ModelAccess`, else Claude's default.
    pub model: Option<String>,
    /// `--permission-mode`. Default `acceptEdits`.
    pub permission_mode: String,
    /// `--allowedTools` entries, passed through.
    pub allowed_tools: Vec<String>,
    /// `--disallowedTools` entries, passed through.
    pub disallowed_tools: Vec<String>,
    /// Bash commands takt's policy refuses (`rm`, `git push`, ...): matched as leading words of
    /// every command in a Bash line, and also passed as `--disallowedTools Bash(<cmd>:*)` so
    /// Claude refuses them even where it would not ask.
    pub denied_commands: Vec<String>,
    /// How long a turn may go without a single line from Claude before it is interrupted and
    /// the process group killed (the meaning of `codex.turn_timeout_ms`). Time spent waiting
    /// for a person's answer does not count. Default 1 h.
    pub turn_timeout: Duration,
    /// Environment variables removed from Claude's environment (tracker and provider secrets).
    pub remove_env: Vec<String>,
}

impl Default for ClaudeSettings {
    fn default() -> Self {
        ClaudeSettings {
            command: "claude".into(),
            model: None,
            permission_mode: "acceptEdits".into(),
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            denied_commands: Vec::new(),
            turn_timeout: Duration::from_secs(3600),
            remove_env: Vec::new(),
        }
    }
}

/// The `claude` agent backend.
#[derive(Debug, Clone)]
pub struct ClaudeBackend {
    settings: ClaudeSettings,
    sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
}

impl ClaudeBackend {
    pub fn new(settings: ClaudeSettings, sandbox: std::sync::Arc<takt_sandbox::Sandbox>) -> Self {
        ClaudeBackend { settings, sandbox }
    }

    pub fn settings(&self) -> &ClaudeSettings {
        &self.settings
    }
}

#[async_trait]
impl AgentBackend for ClaudeBackend {
    fn name(&self) -> &'static str {
        "claude"
    }

    async fn start_session(
        &self,
        context: SessionContext,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        let session =
            session::ClaudeSession::start(self.settings.clone(), context, &self.sandbox).await?;
        Ok(Box::new(session))
    }
}
