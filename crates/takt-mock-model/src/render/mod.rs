//! Turning one planned model turn into the wire format of each API.

pub(crate) mod chat;
pub(crate) mod messages;
pub(crate) mod responses;

use axum::body::Bytes;
use serde_json::Value;

use crate::scenario::UsageSpec;

/// What the model "says" in one turn.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Output {
    Text(String),
    Call {
        name: String,
        namespace: Option<String>,
        /// The arguments as a JSON string (sent verbatim).
        arguments: String,
    },
    Patch(String),
}

impl Output {
    /// Characters of model output, for the usage estimate.
    pub(crate) fn chars(&self) -> usize {
        match self {
            Output::Text(t) | Output::Patch(t) => t.chars().count(),
            Output::Call {
                name, arguments, ..
            } => name.chars().count() + arguments.chars().count(),
        }
    }

    /// Chat and Messages have no freeform tools: a patch becomes `apply_patch {"patch": …}`.
    pub(crate) fn as_function(&self) -> Option<(String, String)> {
        match self {
            Output::Text(_) => None,
            Output::Call {
                name, arguments, ..
            } => Some((name.clone(), arguments.clone())),
            Output::Patch(patch) => Some((
                "apply_patch".to_owned(),
                serde_json::json!({ "patch": patch }).to_string(),
            )),
        }
    }
}

/// Token figures reported for one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub reasoning: u64,
    pub cache_creation: u64,
}

impl Usage {
    /// Estimates (request bytes / 4, reply characters / 4 + 10) overridden by the scenario.
    pub(crate) fn compute(
        spec: Option<&UsageSpec>,
        request_len: usize,
        reply_chars: usize,
    ) -> Self {
        let spec = spec.cloned().unwrap_or_default();
        Usage {
            input: spec.input_tokens.unwrap_or((request_len as u64 / 4).max(1)),
            output: spec.output_tokens.unwrap_or(reply_chars as u64 / 4 + 10),
            cached: spec.cached_tokens.unwrap_or(0),
            reasoning: spec.reasoning_tokens.unwrap_or(0),
            cache_creation: spec.cache_creation_input_tokens.unwrap_or(0),
        }
    }
}

/// Everything the renderers need besides the output.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// A server-wide sequence number used in every id of this response.
    pub id: u64,
    pub model: String,
    /// Seconds since the epoch.
    pub created: u64,
    pub usage: Usage,
}

/// `event: NAME` + `data: JSON` (Responses and Messages).
pub(crate) fn sse_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `data: JSON` only (Chat Completions).
pub(crate) fn sse_data(data: &Value) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

/// Splits `text` into up to `n` non-empty pieces on character boundaries, so that clients have
/// to accumulate deltas.
pub(crate) fn pieces(text: &str, n: usize) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    if chars.is_empty() {
        return vec![text];
    }
    let n = n.clamp(1, chars.len());
    let size = chars.len().div_ceil(n);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for chunk in chars.chunks(size).skip(1) {
        let end = chunk[0].0;
        out.push(&text[start..end]);
        start = end;
    }
    out.push(&text[start..]);
    out
}

/// Removes every `usage` object from a JSON value (a scenario with `usage.omit`).
pub(crate) fn strip_usage(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("usage");
            map.values_mut().for_each(strip_usage);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_usage),
        _ => {}
    }
}

/// Removes every `usage` object from the `data:` lines of one SSE event.
pub(crate) fn strip_usage_event(event: &Bytes) -> Bytes {
    let text = String::from_utf8_lossy(event);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let parsed = line
            .strip_prefix("data: ")
            .and_then(|data| serde_json::from_str::<Value>(data.trim_end()).ok());
        match parsed {
            Some(mut value) => {
                strip_usage(&mut value);
                out.push_str("data: ");
                out.push_str(&value.to_string());
                out.push('\n');
            }
            None => out.push_str(line),
        }
    }
    Bytes::from(out)
}

/// The error `type`/`code` OpenAI uses for a status.
pub(crate) fn openai_error(status: u16, message: &str) -> Value {
    let (kind, code) = match status {
        401 => ("invalid_request_error", Value::from("invalid_api_key")),
        403 => ("permission_error", Value::Null),
        404 => ("invalid_request_error", Value::from("not_found")),
        429 => ("rate_limit_error", Value::from("rate_limit_exceeded")),
        503 => ("server_error", Value::from("server_is_overloaded")),
        500..=599 => ("server_error", Value::from("server_error")),
        _ => ("invalid_request_error", Value::Null),
    };
    serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// The error body Anthropic uses for a status.
pub(crate) fn anthropic_error(status: u16, message: &str) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn pieces_cover_the_text() {
        assert_eq!(pieces("abcdefg", 3), ["abc", "def", "g"]);
        assert_eq!(pieces("ab", 3), ["a", "b"]);
        assert_eq!(pieces("", 3), [""]);
        assert_eq!(pieces("héllo wörld", 4).concat(), "héllo wörld");
        assert_eq!(pieces("x", 1), ["x"]);
    }

    #[test]
    fn omitted_usage_is_stripped_everywhere() {
        let event = Bytes::from(
            "event: message_start\ndata: {\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":1}},\"usage\":{}}\n\n",
        );
        assert_eq!(
            strip_usage_event(&event),
            Bytes::from("event: message_start\ndata: {\"message\":{\"id\":\"m\"}}\n\n")
        );
        let done = Bytes::from("data: [DONE]\n\n");
        assert_eq!(strip_usage_event(&done), done);
    }

    #[test]
    fn usage_estimates_and_overrides() {
        let u = Usage::compute(None, 400, 8);
        assert_eq!((u.input, u.output, u.cached), (100, 12, 0));
        let spec = UsageSpec {
            input_tokens: Some(7),
            cached_tokens: Some(3),
            ..UsageSpec::default()
        };
        let u = Usage::compute(Some(&spec), 400, 8);
        assert_eq!((u.input, u.output, u.cached), (7, 12, 3));
    }
}
