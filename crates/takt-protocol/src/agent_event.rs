use serde::{Deserialize, Serialize};

use crate::TokenUsage;

/// What any agent backend reports while it works, normalized so the core, the journal and the
/// dashboards never look at a backend's own protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    SessionStarted {
        session_id: String,
    },
    TurnStarted {
        turn: u32,
    },
    TurnCompleted {
        turn: u32,
    },
    TurnFailed {
        turn: u32,
        error: String,
    },
    TurnCancelled {
        turn: u32,
    },
    Message {
        text: String,
    },
    ToolCall {
        name: String,
        summary: String,
        ok: bool,
    },
    FileChange {
        path: String,
    },
    /// Absolute session totals, never deltas.
    TokenUsage {
        usage: TokenUsage,
    },
    /// The provider's latest rate-limit snapshot as the agent reported it, verbatim.
    RateLimits {
        limits: serde_json::Value,
    },
    InputRequired {
        question: String,
    },
    ApprovalRequired {
        request: String,
    },
    /// A line a command-style agent printed.
    Output {
        stream: OutputStream,
        line: String,
    },
    Error {
        message: String,
    },
    /// How one launch of the run's processes was confined (mechanism, user, network, limits);
    /// an unconfined run says so too.
    Sandboxed {
        description: String,
    },
    /// Something the sandbox observed and stopped: a limit that killed or refused, the wall
    /// clock, a refused connection.
    SandboxViolation {
        kind: String,
        detail: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl AgentEvent {
    /// The snake_case kind, as stored in the journal and shown as `last_event`.
    pub fn kind(&self) -> &'static str {
        match self {
            AgentEvent::SessionStarted { .. } => "session_started",
            AgentEvent::TurnStarted { .. } => "turn_started",
            AgentEvent::TurnCompleted { .. } => "turn_completed",
            AgentEvent::TurnFailed { .. } => "turn_failed",
            AgentEvent::TurnCancelled { .. } => "turn_cancelled",
            AgentEvent::Message { .. } => "message",
            AgentEvent::ToolCall { .. } => "tool_call",
            AgentEvent::FileChange { .. } => "file_change",
            AgentEvent::TokenUsage { .. } => "token_usage",
            AgentEvent::RateLimits { .. } => "rate_limits",
            AgentEvent::InputRequired { .. } => "input_required",
            AgentEvent::ApprovalRequired { .. } => "approval_required",
            AgentEvent::Output { .. } => "output",
            AgentEvent::Error { .. } => "error",
            AgentEvent::Sandboxed { .. } => "sandboxed",
            AgentEvent::SandboxViolation { .. } => "sandbox_violation",
        }
    }
}
