//! One non-streaming completion from the model, for the judge and the reviewers.
//!
//! The judge and the reviewers reach the model the way agents do: through the daemon's model
//! endpoint (the gateway), with a [`ModelAccess`] grant of their own, so their calls are metered
//! and budgeted like any other and no provider key ever leaves the gateway. Two wire formats
//! cover every provider takt supports ([`Wire`]): the OpenAI Responses API (OpenAI and the mock
//! model) and the Anthropic Messages API.
//!
//! This is deliberately not the built-in agent's client: one system prompt, one user message,
//! one text answer, no tools, no streaming, no conversation.
//!
//! [`extract_json_object`] reads the structured answer the judge and the reviewers are asked for
//! out of whatever the model actually wrote (a fenced block, prose around it).

use std::time::Duration;

use serde_json::{Map, Value, json};
use takt_core::ports::ModelAccess;

/// How long one completion may take, connection to last byte, unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// The output token limit sent with each request unless set otherwise: generous, because
/// reasoning models spend part of it before they write the answer.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 8192;
/// The `anthropic-version` header the Messages API requires.
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// How much of an error body is quoted when it carries no provider error message.
const ERROR_BODY_EXCERPT: usize = 500;

/// Which wire API the model endpoint is spoken to in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Responses, `POST {openai_base_url}/responses`, `Authorization: Bearer`. For OpenAI
    /// (and compatible) providers and takt's mock model.
    Responses,
    /// Anthropic Messages, `POST {anthropic_base_url}/v1/messages`, `x-api-key`.
    Messages,
}

/// Why a completion (or reading a verdict out of it) failed. [`LlmError::is_retryable`] says
/// whether asking again may help; each variant's documentation says the same.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The grant names no model to ask for. A configuration problem: retrying does not help.
    #[error("no model to ask: the model access names none (set the review model)")]
    NoModel,
    /// The HTTP client could not be set up (its TLS configuration). Retrying does not help.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// No complete answer arrived within the timeout. Retrying may help.
    #[error("no answer from {url} within {} s", .after.as_secs())]
    TimedOut { url: String, after: Duration },
    /// The request did not reach the endpoint, or the connection broke before the answer was
    /// read. Retrying may help.
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint answered with an HTTP error; `message` is the provider's error message when
    /// the body has one, else the start of the body. Retrying helps for 408, 429 and 5xx (not
    /// 501); not for the rest (401: the grant was revoked; 402: a budget is spent; 400: the
    /// request is wrong).
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    /// A success status, but the body is not the JSON shape of the wire API. Retrying rarely
    /// helps: the endpoint speaks another API than the one configured.
    #[error("unreadable answer from {url}: {reason}")]
    Unreadable { url: String, reason: String },
    /// The answer holds no text: the model refused, was cut short, or answered with something
    /// else. Retrying may help.
    #[error("the model's answer has no text: {detail}")]
    NoText { detail: String },
    /// The answer's text holds no verdict in the requested JSON format. The caller treats this
    /// as "no verdict", never as a pass. Retrying may help (models answer differently each time).
    #[error("{by}: the answer holds no verdict ({reason}); it began: {excerpt:?}")]
    NoVerdict {
        /// `judge` or the reviewer's name.
        by: String,
        reason: String,
        /// The start of the answer, for the log.
        excerpt: String,
    },
}

impl LlmError {
    /// Whether asking again may give a different result (see each variant).
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::TimedOut { .. }
            | LlmError::Transport { .. }
            | LlmError::NoText { .. }
            | LlmError::NoVerdict { .. } => true,
            LlmError::Status { status, .. } => {
                matches!(status, 408 | 429) || (*status >= 500 && *status != 501)
            }
            LlmError::NoModel | LlmError::Setup(_) | LlmError::Unreadable { .. } => false,
        }
    }
}

/// A client for single completions from one model at one endpoint.
#[derive(Debug, Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    wire: Wire,
    url: String,
    token: String,
    model: String,
    timeout: Duration,
    max_output_tokens: u32,
}

impl ModelClient {
    /// A client for the model `access` names, at the endpoint `wire` selects from it.
    pub fn new(access: &ModelAccess, wire: Wire) -> Result<ModelClient, LlmError> {
        let model = access
            .model
            .clone()
            .filter(|name| !name.trim().is_empty())
            .ok_or(LlmError::NoModel)?;
        let url = match wire {
            Wire::Responses => {
                format!("{}/responses", access.openai_base_url.trim_end_matches('/'))
            }
            Wire::Messages => format!(
                "{}/v1/messages",
                access.anthropic_base_url.trim_end_matches('/')
            ),
        };
        Ok(ModelClient {
            http: http_client()?,
            wire,
            url,
            token: access.token.clone(),
            model,
            timeout: DEFAULT_TIMEOUT,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
        })
    }

    /// Sets how long one completion may take, connection to last byte.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> ModelClient {
        self.timeout = timeout;
        self
    }

    /// Sets the output token limit sent with each request.
    #[must_use]
    pub fn with_max_output_tokens(mut self, max_output_tokens: u32) -> ModelClient {
        self.max_output_tokens = max_output_tokens;
        self
    }

    /// The model asked, as verdicts record it.
    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// The endpoint requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks for one answer to `user` under the instructions `system`, and returns its text.
    pub async fn complete(&self, system: &str, user: &str) -> Result<String, LlmError> {
        let request = match self.wire {
            Wire::Responses => self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .json(&json!({
                    "model": self.model,
                    "instructions": system,
                    "input": [{"role": "user", "content": [{"type": "input_text", "text": user}]}],
                    "max_output_tokens": self.max_output_tokens,
                    "stream": false,
                    // Nothing is continued later; the provider need not keep the exchange.
                    "store": false,
                })),
            Wire::Messages => self
                .http
                .post(&self.url)
                .header("x-api-key", &self.token)
                .header("anthropic-version", ANTHROPIC_VERSION)
                .json(&json!({
                    "model": self.model,
                    "system": system,
                    "messages": [{"role": "user", "content": user}],
                    "max_tokens": self.max_output_tokens,
                    "stream": false,
                })),
        };
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|source| self.transport(source))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|source| self.transport(source))?;
        if !status.is_success() {
            return Err(LlmError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        let answer: Value = serde_json::from_str(&body).map_err(|error| LlmError::Unreadable {
            url: self.url.clone(),
            reason: format!("not JSON: {error}"),
        })?;
        let text = match self.wire {
            Wire::Responses => responses_text(&answer),
            Wire::Messages => messages_text(&answer),
        }
        .map_err(|reason| LlmError::Unreadable {
            url: self.url.clone(),
            reason,
        })?;
        text.ok_or_else(|| LlmError::NoText {
            detail: match self.wire {
                Wire::Responses => responses_why_no_text(&answer),
                Wire::Messages => messages_why_no_text(&answer),
            },
        })
    }

    fn transport(&self, source: reqwest::Error) -> LlmError {
        if source.is_timeout() {
            LlmError::TimedOut {
                url: self.url.clone(),
                after: self.timeout,
            }
        } else {
            LlmError::Transport {
                url: self.url.clone(),
                source,
            }
        }
    }
}

/// A client with its own rustls configuration (ring), so it works whether or not the process
/// installed a default crypto provider. The endpoint is normally the gateway on loopback over
/// plain http; https still verifies against the platform's roots.
fn http_client() -> Result<reqwest::Client, LlmError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let setup = |error: rustls::Error| LlmError::Setup(error.to_string());
    let tls = match rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .with_platform_verifier()
    {
        Ok(builder) => builder.with_no_client_auth(),
        Err(error) => {
            // Without root certificates https fails, but the gateway on loopback still works.
            tracing::warn!(%error, "no platform root certificates; https model endpoints will fail");
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(setup)?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| LlmError::Setup(error.to_string()))
}

/// The provider's error message (`{"error": {"message": …}}` for OpenAI and Anthropic, the
/// gateway's own errors alike), else the start of the body.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|value| {
        value
            .pointer("/error/message")
            .or_else(|| value.get("message"))
            .or_else(|| value.get("error"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    message.unwrap_or_else(|| {
        let body = body.trim();
        if body.is_empty() {
            "(empty body)".to_owned()
        } else {
            body.chars().take(ERROR_BODY_EXCERPT).collect()
        }
    })
}

/// The text of a Responses answer: every `output_text` part of every `message` item in
/// `output`. `Ok(None)` when there is none; `Err` when `output` is missing.
fn responses_text(answer: &Value) -> Result<Option<String>, String> {
    let output = answer
        .get("output")
        .and_then(Value::as_array)
        .ok_or("no `output` array")?;
    let messages: Vec<String> = output
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("message"))
        .filter_map(|item| item.get("content").and_then(Value::as_array))
        .map(|parts| {
            parts
                .iter()
                .filter(|part| part.get("type").and_then(Value::as_str) == Some("output_text"))
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<String>()
        })
        .filter(|text| !text.trim().is_empty())
        .collect();
    Ok((!messages.is_empty()).then(|| messages.join("\n\n")))
}

fn responses_why_no_text(answer: &Value) -> String {
    let refusal = answer
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("content").and_then(Value::as_array))
        .flatten()
        .find(|part| part.get("type").and_then(Value::as_str) == Some("refusal"))
        .and_then(|part| part.get("refusal").and_then(Value::as_str));
    if let Some(refusal) = refusal {
        return format!("the model refused: {refusal}");
    }
    if answer.get("status").and_then(Value::as_str) == Some("incomplete") {
        let reason = answer
            .pointer("/incomplete_details/reason")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        return format!("the answer was cut short ({reason})");
    }
    let kinds: Vec<&str> = answer
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("type").and_then(Value::as_str))
        .collect();
    format!(
        "no output_text in the output (items: [{}])",
        kinds.join(", ")
    )
}

/// The text of a Messages answer: every `text` block of `content`. `Ok(None)` when there is
/// none; `Err` when `content` is missing.
fn messages_text(answer: &Value) -> Result<Option<String>, String> {
    let content = answer
        .get("content")
        .and_then(Value::as_array)
        .ok_or("no `content` array")?;
    let text: String = content
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|block| block.get("text").and_then(Value::as_str))
        .collect();
    Ok((!text.trim().is_empty()).then_some(text))
}

fn messages_why_no_text(answer: &Value) -> String {
    let stop = answer
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("none");
    let kinds: Vec<&str> = answer
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|block| block.get("type").and_then(Value::as_str))
        .collect();
    format!(
        "no text block (stop_reason {stop}, blocks: [{}])",
        kinds.join(", ")
    )
}

/// The most opening braces tried when looking for the answer's JSON object, so that a long,
/// brace-heavy answer cannot make the search quadratic.
const MAX_OBJECT_STARTS: usize = 256;

/// The first JSON object in a model's answer that has the key `required_key`, however the
/// model wrapped it: the bare object, inside a ```` ```json ```` fence, or with prose before and
/// after. Objects nested in another object count too. `None` when there is no such object.
pub fn extract_json_object(answer: &str, required_key: &str) -> Option<Map<String, Value>> {
    // A fenced block is where the model put the answer on purpose: prefer it to an object that
    // merely appears in the prose around it.
    let fenced = fenced_blocks(answer).find_map(|block| first_object_with(block, required_key));
    fenced.or_else(|| first_object_with(answer, required_key))
}

/// The contents of the ```` ``` ```` fenced blocks of `text`, without the info string.
fn fenced_blocks(text: &str) -> impl Iterator<Item = &str> {
    text.split("```").skip(1).step_by(2).map(|block| {
        // The opening fence's info string (`json`) runs to the end of its line.
        match block.split_once('\n') {
            Some((info, body)) if !info.trim_start().starts_with('{') => body,
            _ => block,
        }
    })
}

fn first_object_with(text: &str, required_key: &str) -> Option<Map<String, Value>> {
    text.match_indices('{')
        .take(MAX_OBJECT_STARTS)
        .find_map(|(start, _)| {
            // A streaming deserializer reads one value and ignores whatever follows it.
            let mut values =
                serde_json::Deserializer::from_str(&text[start..]).into_iter::<Value>();
            match values.next() {
                Some(Ok(Value::Object(map))) if map.contains_key(required_key) => Some(map),
                _ => None,
            }
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn verdict_of(answer: &str) -> Option<String> {
        extract_json_object(answer, "verdict").and_then(|map| {
            map.get("verdict")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }

    #[test]
    fn finds_the_object_bare_fenced_or_in_prose() {
        assert_eq!(
            verdict_of(r#"{"verdict": "pass"}"#).as_deref(),
            Some("pass")
        );
        assert_eq!(
            verdict_of(
                "Here you go:\n```json\n{\"verdict\": \"veto\", \"summary\": \"x\"}\n```\nThanks."
            )
            .as_deref(),
            Some("veto")
        );
        assert_eq!(
            verdict_of("```\n{\"verdict\": \"pass\"}\n```").as_deref(),
            Some("pass")
        );
        assert_eq!(
            verdict_of("After reading the diff {carefully}, my answer is {\"verdict\": \"veto\", \"findings\": [{\"text\": \"a } brace\"}]} and that is all.")
                .as_deref(),
            Some("veto")
        );
        // Nested in a wrapper object.
        assert_eq!(
            verdict_of(r#"{"result": {"verdict": "pass"}}"#).as_deref(),
            Some("pass")
        );
    }

    #[test]
    fn a_fenced_answer_wins_over_an_example_in_the_prose() {
        let answer = "The format {\"verdict\": \"pass\"} was asked for. My answer:\n```json\n{\"verdict\": \"veto\"}\n```";
        assert_eq!(verdict_of(answer).as_deref(), Some("veto"));
    }

    #[test]
    fn no_object_with_the_key_is_none() {
        assert_eq!(verdict_of("I think it is fine."), None);
        assert_eq!(verdict_of(r#"{"summary": "no verdict key"}"#), None);
        assert_eq!(verdict_of(r#"{"verdict": "pass""#), None);
        assert_eq!(verdict_of(&"{".repeat(10_000)), None);
    }

    #[test]
    fn answer_text_per_wire() {
        let responses = json!({"output": [
            {"type": "reasoning", "summary": []},
            {"type": "message", "content": [
                {"type": "output_text", "text": "{\"verdict\":"},
                {"type": "output_text", "text": " \"pass\"}"},
            ]},
        ]});
        assert_eq!(
            responses_text(&responses).unwrap().as_deref(),
            Some("{\"verdict\": \"pass\"}")
        );
        let refused = json!({"output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}]});
        assert_eq!(responses_text(&refused).unwrap(), None);
        assert_eq!(responses_why_no_text(&refused), "the model refused: no");
        let cut = json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []});
        assert!(responses_why_no_text(&cut).contains("max_output_tokens"));
        assert!(responses_text(&json!({"choices": []})).is_err());

        let messages = json!({"content": [
            {"type": "thinking", "thinking": "hmm"},
            {"type": "text", "text": "answer"},
        ]});
        assert_eq!(messages_text(&messages).unwrap().as_deref(), Some("answer"));
        let tool_only = json!({"content": [{"type": "tool_use"}], "stop_reason": "tool_use"});
        assert_eq!(messages_text(&tool_only).unwrap(), None);
        assert!(messages_why_no_text(&tool_only).contains("tool_use"));
        assert!(messages_text(&json!({})).is_err());
    }

    #[test]
    fn error_messages_come_from_the_body() {
        assert_eq!(
            error_message(r#"{"error": {"message": "budget spent", "type": "x"}}"#),
            "budget spent"
        );
        assert_eq!(
            error_message(
                r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(error_message("plain text"), "plain text");
        assert_eq!(error_message(""), "(empty body)");
    }

    #[test]
    fn retryable_errors() {
        let status = |status| LlmError::Status {
            url: String::new(),
            status,
            message: String::new(),
        };
        assert!(status(429).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(501).is_retryable());
        assert!(!status(402).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(!LlmError::NoModel.is_retryable());
    }

    #[test]
    fn a_grant_without_a_model_is_refused() {
        let access = ModelAccess {
            openai_base_url: "http://127.0.0.1:1/v1".into(),
            anthropic_base_url: "http://127.0.0.1:1".into(),
            token: "t".into(),
            model: None,
        };
        assert!(matches!(
            ModelClient::new(&access, Wire::Responses),
            Err(LlmError::NoModel)
        ));
        let access = ModelAccess {
            model: Some("m".into()),
            ..access
        };
        let responses = ModelClient::new(&access, Wire::Responses).unwrap();
        assert_eq!(responses.url(), "http://127.0.0.1:1/v1/responses");
        let messages = ModelClient::new(&access, Wire::Messages).unwrap();
        assert_eq!(messages.url(), "http://127.0.0.1:1/v1/messages");
    }
}
