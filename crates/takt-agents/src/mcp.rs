//! takt's MCP server for the run's host-side tools, the way Claude Code reaches them.
//!
//! Claude Code spawns it inside the sandbox (`takt __host-tools-mcp`, the staged takt binary)
//! and speaks MCP over stdio; `rmcp` handles both protocol eras (`server/discover` and the
//! `initialize` handshake). The server holds no tracker or forge credential: it lists and calls
//! tools over HTTP at the daemon's model endpoint ([`takt_protocol::HOST_TOOLS_PATH`]), with the
//! run token from its environment, which names the run and so the only issue and pull request
//! a call can touch. In the sandbox that endpoint is the model relay on loopback.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use takt_protocol::{
    HOST_TOOLS_CALL_PATH, HOST_TOOLS_PATH, HostToolCall, HostToolList, HostToolResult,
};

/// The hidden subcommand that runs the server (`argv[1]`).
pub const MCP_ARG: &str = "__host-tools-mcp";
/// The daemon's model endpoint as the agent reaches it (no trailing `/v1`).
pub const URL_ENV: &str = "TAKT_HOST_TOOLS_URL";
/// The run token.
pub const TOKEN_ENV: &str = "TAKT_HOST_TOOLS_TOKEN";
/// The MCP server's name: Claude Code calls its tools `mcp__takt__<tool>`.
pub const SERVER_NAME: &str = "takt";

/// Forwards MCP tool requests to the daemon.
#[derive(Debug, Clone)]
pub struct Forwarder {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl Forwarder {
    pub fn new(http: reqwest::Client, base_url: &str, token: String) -> Forwarder {
        Forwarder {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
        }
    }

    async fn tools(&self) -> Result<HostToolList, String> {
        let response = self
            .http
            .get(format!("{}{HOST_TOOLS_PATH}", self.base_url))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|error| format!("takt's endpoint cannot be reached: {error}"))?;
        read_json(response).await
    }

    async fn call(
        &self,
        name: &str,
        arguments: serde_json::Value,
    ) -> Result<HostToolResult, String> {
        let response = self
            .http
            .post(format!("{}{HOST_TOOLS_CALL_PATH}", self.base_url))
            .bearer_auth(&self.token)
            .json(&HostToolCall {
                name: name.to_owned(),
                arguments,
            })
            .send()
            .await
            .map_err(|error| format!("takt's endpoint cannot be reached: {error}"))?;
        read_json(response).await
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, String> {
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|error| format!("reading takt's answer failed: {error}"))?;
    if !status.is_success() {
        return Err(format!("takt answered {status}: {}", body.trim()));
    }
    serde_json::from_str(&body).map_err(|error| format!("takt's answer is not understood: {error}"))
}

impl ServerHandler for Forwarder {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Tools takt runs for you outside the sandbox. They reach only this task's issue \
                 and pull request.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let list = self
            .tools()
            .await
            .map_err(|error| ErrorData::internal_error(error, None))?;
        let tools = list
            .tools
            .into_iter()
            .map(|tool| {
                let schema = match tool.input_schema {
                    serde_json::Value::Object(map) => map,
                    _ => serde_json::Map::new(),
                };
                Tool::new(tool.name, tool.description, Arc::new(schema))
            })
            .collect();
        Ok(ListToolsResult {
            tools,
            ..ListToolsResult::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        // A failure reaching takt is the tool's error result, so the model reads why.
        let result = match self.call(&request.name, arguments).await {
            Ok(result) => result,
            Err(error) => HostToolResult {
                text: error,
                is_error: true,
            },
        };
        let content = vec![ContentBlock::text(result.text)];
        let result = if result.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        Ok(result.into())
    }
}

/// Runs the server on stdin/stdout until the client closes it; the exit code for `main`.
pub fn main() -> i32 {
    let (Ok(base_url), Ok(token)) = (std::env::var(URL_ENV), std::env::var(TOKEN_ENV)) else {
        eprintln!(
            "takt host tools: {URL_ENV} and {TOKEN_ENV} must be set (takt sets them for Claude Code)"
        );
        return 2;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("takt host tools: cannot start the async runtime: {error}");
            return 1;
        }
    };
    runtime.block_on(async move {
        let http = match crate::builtin::client::http_client() {
            Ok(http) => http,
            Err(error) => {
                eprintln!("takt host tools: {error}");
                return 1;
            }
        };
        let server = Forwarder::new(http, &base_url, token);
        match server.serve(rmcp::transport::stdio()).await {
            Ok(running) => match running.waiting().await {
                Ok(_) => 0,
                Err(error) => {
                    eprintln!("takt host tools: {error}");
                    1
                }
            },
            Err(error) => {
                eprintln!("takt host tools: the MCP session did not start: {error}");
                1
            }
        }
    })
}
