//! What every handler shares: the daemon port, the auth settings, the shutdown signal, and the
//! small request helpers (the current snapshot, task lookup, the operator header, JSON bodies).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use takt_core::Task;
use tokio::sync::watch;

use crate::auth::TokenDigest;
use crate::error::ApiError;
use crate::port::{DaemonPort, PortError, Snapshot};

/// The header naming the person behind a command (`approve`, `reject`, ...) or a new task.
pub const OPERATOR_HEADER: &str = "x-takt-operator";
/// Who acts when a request does not say.
pub const DEFAULT_OPERATOR: &str = "api";
/// Longest operator name accepted.
const MAX_OPERATOR_CHARS: usize = 100;

/// The handlers' shared state. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub daemon: Arc<dyn DaemonPort>,
    /// The token's digest, when one is configured.
    pub token: Option<TokenDigest>,
    /// The server listens on an address other machines can reach: reads need the token too.
    pub reads_need_token: bool,
    pub keep_alive: Duration,
    /// How long a call into the daemon may take before the client gets 504.
    pub daemon_timeout: Duration,
    /// Turns true when the server starts shutting down; event streams end on it, so a graceful
    /// shutdown does not wait for clients that never hang up.
    pub shutdown: watch::Receiver<bool>,
}

impl App {
    /// The daemon's latest snapshot, or 503 `snapshot_unavailable`.
    pub fn snapshot(&self) -> Result<Arc<Snapshot>, ApiError> {
        self.daemon
            .snapshot()
            .ok_or_else(ApiError::snapshot_unavailable)
    }

    /// Awaits a call into the daemon, for at most `daemon_timeout`: a stuck daemon loop must
    /// not hang API clients (R-131's timeout error mode).
    pub async fn ask<T>(
        &self,
        call: impl Future<Output = Result<T, PortError>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.daemon_timeout, call).await {
            Ok(answer) => answer.map_err(ApiError::from),
            Err(_) => Err(ApiError::orchestrator_timeout(self.daemon_timeout)),
        }
    }
}

/// Finds a task by id or, case-insensitively, by identifier (as the CLI does).
pub fn find_task<'a>(snapshot: &'a Snapshot, reference: &str) -> Result<&'a Task, ApiError> {
    snapshot
        .state
        .find(reference)
        .ok_or_else(|| ApiError::task_not_found(reference))
}

/// The operator named by `X-Takt-Operator`, or `api` without the header. A header that is
/// blank, not UTF-8 or longer than 100 characters is refused rather than replaced, so an
/// action is never attributed to someone other than who the client meant.
pub fn operator(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(OPERATOR_HEADER) else {
        return Ok(DEFAULT_OPERATOR.to_owned());
    };
    let name = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|name| !name.is_empty() && name.chars().count() <= MAX_OPERATOR_CHARS)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{OPERATOR_HEADER} must be a visible name of at most {MAX_OPERATOR_CHARS} \
                 characters"
            ))
        })?;
    Ok(name.to_owned())
}

/// Parses a JSON request body; an empty body reads as `{}`. Unknown fields are errors (the
/// types deny them), so a misspelt `comment` is not silently dropped.
pub fn json_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("the request body is not valid: {error}")))
}

/// A required text field: present and not blank, returned trimmed.
pub fn required_text(value: Option<String>, field: &str) -> Result<String, ApiError> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("`{field}` is required and must not be blank")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_operator_defaults_to_api_and_is_trimmed() {
        let mut headers = HeaderMap::new();
        assert_eq!(operator(&headers), Ok("api".to_owned()));
        headers.insert(OPERATOR_HEADER, HeaderValue::from_static("  ada "));
        assert_eq!(operator(&headers), Ok("ada".to_owned()));
        headers.insert(OPERATOR_HEADER, HeaderValue::from_static("   "));
        assert_eq!(
            operator(&headers).map_err(|error| error.code),
            Err("invalid_request")
        );
    }

    #[test]
    fn an_empty_body_reads_as_the_default() {
        #[derive(Debug, Default, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            comment: Option<String>,
        }
        assert_eq!(
            json_body::<Body>(&Bytes::from_static(b" \n")),
            Ok(Body::default())
        );
        assert_eq!(
            json_body::<Body>(&Bytes::from_static(br#"{"comment":"ok"}"#)),
            Ok(Body {
                comment: Some("ok".into())
            })
        );
        let typo = json_body::<Body>(&Bytes::from_static(br#"{"coment":"ok"}"#));
        assert!(typo.is_err_and(|error| error.message.contains("coment")));
    }
}
