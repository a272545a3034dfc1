//! Host-side tools over HTTP, for agents that reach them from inside the sandbox (takt's MCP
//! server for Claude Code). The run token authenticates the call and selects the run's own
//! tools, so a token can only ever act on its own task's issue and pull request.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use takt_core::ports::HostTools;
use takt_protocol::{HostToolCall, HostToolDescriptor, HostToolList, HostToolResult};

use crate::Shared;

/// The host tools of each live run, by run id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_run: RwLock<HashMap<String, Arc<dyn HostTools>>>,
}

impl Registry {
    pub(crate) fn attach(&self, run_id: &str, tools: Arc<dyn HostTools>) {
        self.by_run
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(run_id.to_owned(), tools);
    }

    pub(crate) fn detach(&self, run_id: &str) {
        self.by_run
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(run_id);
    }

    fn get(&self, run_id: &str) -> Option<Arc<dyn HostTools>> {
        self.by_run
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run_id)
            .cloned()
    }
}

/// Why a request gets no tools: the status and the message.
type Refusal = (StatusCode, &'static str);

/// The tools of the run `headers` authenticate, or the refusal to send.
fn tools_of(shared: &Shared, headers: &HeaderMap) -> Result<Arc<dyn HostTools>, Refusal> {
    let refuse = |status: StatusCode, message: &'static str| (status, message);
    let grant = crate::proxy::token_of(headers)
        .and_then(|token| shared.tokens.lookup(token))
        .ok_or_else(|| {
            refuse(
                StatusCode::UNAUTHORIZED,
                "no valid run token: host tools answer only a live run's own token",
            )
        })?;
    shared.host_tools.get(&grant.run_id).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            "this run has no host tools (the tracker and forge offer none)",
        )
    })
}

pub(crate) async fn list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match tools_of(&shared, &headers) {
        Ok(tools) => Json(HostToolList {
            tools: tools
                .specs()
                .into_iter()
                .map(|spec| HostToolDescriptor {
                    name: spec.name.to_owned(),
                    description: spec.description.to_owned(),
                    input_schema: spec.input_schema,
                })
                .collect(),
        })
        .into_response(),
        Err(refusal) => refused(refusal),
    }
}

fn refused((status, message): Refusal) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

pub(crate) async fn call(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(call): Json<HostToolCall>,
) -> Response {
    match tools_of(&shared, &headers) {
        Ok(tools) => {
            let output = tools.call(&call.name, call.arguments).await;
            Json(HostToolResult {
                text: output.text,
                is_error: output.is_error,
            })
            .into_response()
        }
        Err(refusal) => refused(refusal),
    }
}
