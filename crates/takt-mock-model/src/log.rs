//! The request log: every request the server saw, in memory and optionally as JSON lines.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One request as the server saw it. Serialised as one JSON line of the log file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Milliseconds since the Unix epoch when the request arrived.
    pub ts_ms: u64,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string, for example `/v1/messages`.
    pub path: String,
    /// The query string without `?`, for example `beta=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Headers with lower-case names; repeated headers are joined with `, `. Credentials
    /// (`authorization`, `x-api-key`, ...) keep only their first 6 characters.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, or as a string when it is not JSON (`null` when empty).
    pub body: Value,
    /// `responses`, `chat` or `messages` for model requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// The scenario that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// The index of the step in the scenario's `steps` that answered; `steps.len()` means the
    /// synthesised final `DONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The number of tool results counted in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_results: Option<usize>,
    /// The HTTP status of the answer.
    pub status: u16,
}

impl LoggedRequest {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
];

/// Keeps the scheme (`Bearer `, `Basic `) and the first 6 characters of a credential, enough
/// for a test to tell which credential arrived without the log holding it.
pub(crate) fn redact(value: &str) -> String {
    let (scheme, credential) = match value.split_once(' ') {
        Some((scheme, rest)) if matches!(scheme, "Bearer" | "Basic") => {
            (format!("{scheme} "), rest)
        }
        _ => (String::new(), value),
    };
    let keep: String = credential.chars().take(6).collect();
    format!("{scheme}{keep}…REDACTED")
}

pub(crate) fn headers_for_log(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str().to_ascii_lowercase();
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        let text = if SECRET_HEADERS.contains(&name.as_str()) {
            redact(&text)
        } else {
            text
        };
        out.entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&text);
            })
            .or_insert(text);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn secrets_are_redacted_and_repeats_joined() {
        let mut h = HeaderMap::new();
        h.insert(
            "Authorization",
            HeaderValue::from_static("Bearer sk-secret-123"),
        );
        h.insert("x-api-key", HeaderValue::from_static("sk-ant-xyz"));
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        let logged = headers_for_log(&h);
        assert_eq!(logged["authorization"], "Bearer sk-sec…REDACTED");
        assert_eq!(logged["x-api-key"], "sk-ant…REDACTED");
        assert_eq!(logged["x-multi"], "a, b");
        assert!(!format!("{logged:?}").contains("secret"));
    }
}
