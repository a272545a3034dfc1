//! The Codex backend: `codex app-server` over stdio JSON-RPC.
//!
//! One app-server process per run: [`CodexBackend::start_session`] starts it through
//! `bash -lc <command>` in the workspace (its own process group), with a per-run `CODEX_HOME`
//! under the run directory whose generated `config.toml` points Codex at the daemon's model
//! endpoint ([`takt_core::ports::ModelAccess`]) and switches off everything that phones home.
//! It then does the handshake (`initialize`, `initialized`) and `thread/start`. Each
//! [`AgentSession::run_turn`] sends `turn/start` on the same thread and follows the turn's
//! notifications until `turn/completed`.
//!
//! Server requests (approvals, questions, dynamic tool calls) are always answered: by
//! [`ApprovalRules`] when they can decide, by a person through
//! [`AgentEventSink::ask`](takt_core::ports::AgentEventSink::ask) when they cannot, and with
//! a refusal when nobody can answer. See `docs/agents-codex.md` for the whole picture.

mod error;
mod events;
mod home;
mod policy;
mod requests;
mod rpc;
mod session;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use takt_core::ports::{AgentBackend, AgentError, AgentSession, SessionContext};

pub use error::CodexError;
pub use home::{CODEX_HOME_DIR, PROVIDER_ID, TOKEN_ENV, config_toml};
pub use policy::{
    ApprovalRules, CommandRule, DEFAULT_DENIED_COMMANDS, RuleAction, Verdict, is_approval,
};
pub use rpc::MAX_LINE;
pub use session::CodexSession;

/// The default `codex.command`.
pub const DEFAULT_COMMAND: &str = "codex app-server";
/// The default `codex.thread_sandbox`.
pub const DEFAULT_THREAD_SANDBOX: &str = "workspace-write";
/// The default `codex.read_timeout_ms`.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_millis(5_000);
/// The default `codex.turn_timeout_ms`.
pub const DEFAULT_TURN_TIMEOUT: Duration = Duration::from_millis(3_600_000);

/// Environment variables the app-server never inherits, whatever `remove_env` says: real
/// provider credentials and endpoints would bypass the daemon's model endpoint.
pub const ALWAYS_REMOVED_ENV: &[&str] = &[
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_API_KEY",
];

/// How the Codex backend runs; the CLI maps WORKFLOW.md's `codex` section onto it.
#[derive(Debug, Clone, PartialEq)]
pub struct CodexSettings {
    /// `codex.command`: a shell command run with `bash -lc` (`sh -lc` where there is no bash)
    /// in the workspace; it must speak the app-server protocol on stdio. Default
    /// [`DEFAULT_COMMAND`].
    pub command: String,
    /// `codex.approval_policy`: a Codex `AskForApproval` value, sent as `approvalPolicy` on
    /// `thread/start` and every `turn/start`. `None`: [`default_approval_policy`] (Codex
    /// rejects every escalation itself). A Symphony-style `{"reject": {...}}` value is
    /// translated to Codex 0.169's `{"granular": {...}}`.
    pub approval_policy: Option<Value>,
    /// `codex.thread_sandbox`: a Codex `SandboxMode` (`read-only`, `workspace-write`,
    /// `danger-full-access`). `None`: [`DEFAULT_THREAD_SANDBOX`].
    pub thread_sandbox: Option<String>,
    /// `codex.turn_sandbox_policy`: a Codex `SandboxPolicy` object, sent unchanged as
    /// `sandboxPolicy` on every `turn/start`. `None`: [`default_turn_sandbox_policy`].
    pub turn_sandbox_policy: Option<Value>,
    /// `codex.read_timeout_ms`: how long `initialize`, `thread/start` and `turn/start` may
    /// take to answer. Default [`DEFAULT_READ_TIMEOUT`].
    pub read_timeout: Duration,
    /// `codex.turn_timeout_ms`: how long a running turn may stay silent (no output line at
    /// all) before it is interrupted and the app-server stopped. Not a cap on the turn's
    /// length. Time spent waiting for a person's answer does not count. Default
    /// [`DEFAULT_TURN_TIMEOUT`].
    pub turn_timeout: Duration,
    /// The model to ask for; overrides `ModelAccess::model`. `None` with no model in the
    /// context: Codex's own default.
    pub model: Option<String>,
    /// Environment variables removed from the app-server's environment (tracker and provider
    /// secrets, R-066/R-140), on top of [`ALWAYS_REMOVED_ENV`].
    pub remove_env: Vec<String>,
    /// How approval requests are decided.
    pub policy: ApprovalRules,
}

impl Default for CodexSettings {
    fn default() -> Self {
        CodexSettings {
            command: DEFAULT_COMMAND.to_owned(),
            approval_policy: None,
            thread_sandbox: None,
            turn_sandbox_policy: None,
            read_timeout: DEFAULT_READ_TIMEOUT,
            turn_timeout: DEFAULT_TURN_TIMEOUT,
            model: None,
            remove_env: Vec::new(),
            policy: ApprovalRules::default(),
        }
    }
}

impl CodexSettings {
    /// The `approvalPolicy` sent to Codex.
    pub fn effective_approval_policy(&self) -> Value {
        match &self.approval_policy {
            Some(value) => translate_reject(value),
            None => default_approval_policy(),
        }
    }

    /// The `sandbox` sent on `thread/start`.
    pub fn effective_thread_sandbox(&self) -> String {
        self.thread_sandbox
            .clone()
            .unwrap_or_else(|| DEFAULT_THREAD_SANDBOX.to_owned())
    }

    /// The `sandboxPolicy` sent on `turn/start` for `workspace` (absolute).
    pub fn effective_turn_sandbox_policy(&self, workspace: &std::path::Path) -> Value {
        self.turn_sandbox_policy
            .clone()
            .unwrap_or_else(|| default_turn_sandbox_policy(workspace))
    }
}

/// The safe default approval policy (R-022's "reject" default in Codex 0.169's form): Codex
/// declines every request to leave the sandbox, every execpolicy prompt, skill script prompt,
/// permission request and MCP elicitation on its own. Needs `experimentalApi`, which the
/// backend always declares.
pub fn default_approval_policy() -> Value {
    json!({"granular": {
        "sandbox_approval": false,
        "rules": false,
        "skill_approval": false,
        "request_permissions": false,
        "mcp_elicitations": false,
    }})
}

/// The default per-turn sandbox: write access to the workspace only, no network.
pub fn default_turn_sandbox_policy(workspace: &std::path::Path) -> Value {
    json!({
        "type": "workspaceWrite",
        "writableRoots": [workspace],
        "networkAccess": false,
        "excludeTmpdirEnvVar": false,
        "excludeSlashTmp": false,
    })
}

/// Symphony's `{"reject": {"sandbox_approval": true, …}}` (true = reject) becomes Codex
/// 0.169's `{"granular": {"sandbox_approval": false, …}}` (false = reject); any other value
/// is passed through unchanged.
fn translate_reject(value: &Value) -> Value {
    let Some(reject) = value.get("reject").and_then(Value::as_object) else {
        return value.clone();
    };
    let mut granular = serde_json::Map::new();
    for key in [
        "sandbox_approval",
        "rules",
        "skill_approval",
        "request_permissions",
        "mcp_elicitations",
    ] {
        let rejected = reject.get(key).and_then(Value::as_bool).unwrap_or(false);
        granular.insert(key.to_owned(), Value::Bool(!rejected));
    }
    json!({ "granular": granular })
}

/// The `codex` agent backend.
#[derive(Debug, Clone)]
pub struct CodexBackend {
    settings: CodexSettings,
    sandbox: std::sync::Arc<takt_sandbox::Sandbox>,
}

impl CodexBackend {
    pub fn new(settings: CodexSettings, sandbox: std::sync::Arc<takt_sandbox::Sandbox>) -> Self {
        CodexBackend { settings, sandbox }
    }

    pub fn settings(&self) -> &CodexSettings {
        &self.settings
    }
}

#[async_trait]
impl AgentBackend for CodexBackend {
    fn name(&self) -> &'static str {
        "codex"
    }

    async fn start_session(
        &self,
        context: SessionContext,
    ) -> Result<Box<dyn AgentSession>, AgentError> {
        let session = CodexSession::start(self.settings.clone(), context, &self.sandbox).await?;
        Ok(Box::new(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_symphony_and_reject_translates() {
        let settings = CodexSettings::default();
        assert_eq!(settings.command, "codex app-server");
        assert_eq!(settings.effective_thread_sandbox(), "workspace-write");
        assert_eq!(
            settings.effective_approval_policy(),
            default_approval_policy()
        );
        let ws = std::path::Path::new("/srv/ws");
        assert_eq!(
            settings.effective_turn_sandbox_policy(ws)["writableRoots"],
            json!(["/srv/ws"])
        );
        let symphony = CodexSettings {
            approval_policy: Some(
                json!({"reject": {"sandbox_approval": true, "rules": true, "mcp_elicitations": true}}),
            ),
            ..CodexSettings::default()
        };
        assert_eq!(
            symphony.effective_approval_policy(),
            json!({"granular": {"sandbox_approval": false, "rules": false, "skill_approval": true, "request_permissions": true, "mcp_elicitations": false}})
        );
        let plain = CodexSettings {
            approval_policy: Some(json!("untrusted")),
            ..CodexSettings::default()
        };
        assert_eq!(plain.effective_approval_policy(), json!("untrusted"));
    }
}
