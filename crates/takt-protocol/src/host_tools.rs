//! The wire between takt's in-sandbox MCP server and the daemon's model endpoint, which runs
//! host-side tools for the run its token names. JSON over HTTP, `Authorization: Bearer <run
//! token>`; the token is the run's only credential and scopes every call to that run's task.

use serde::{Deserialize, Serialize};

/// `GET`: the run's tools, as a [`HostToolList`].
pub const HOST_TOOLS_PATH: &str = "/takt/v1/tools";
/// `POST` a [`HostToolCall`]: the answer is a [`HostToolResult`].
pub const HOST_TOOLS_CALL_PATH: &str = "/takt/v1/tools/call";

/// One tool as offered to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostToolDescriptor {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostToolList {
    pub tools: Vec<HostToolDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostToolCall {
    pub name: String,
    #[serde(default)]
    pub arguments: serde_json::Value,
}

/// A tool's answer; a failure the model should read is `is_error`, not an HTTP error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostToolResult {
    pub text: String,
    pub is_error: bool,
}
