//! The model clients of the built-in loop: OpenAI Chat Completions and Anthropic Messages, both
//! streaming, with tool calling, usage, bounded retries and an idle timeout.
//!
//! The loop talks to a [`ModelClient`] in provider-neutral terms ([`Item`]s in, a [`Reply`]
//! out); `chat` and `messages` translate to and from the wire shapes (agent-protocols.md §3.4,
//! §4).
//!
//! # Retries
//!
//! A request is retried, at most [`ClientSettings::max_retries`] times, when it fails with a
//! retryable [`ModelError`]: HTTP 408, 409, 429 and 5xx, connection errors, a stream that broke
//! off before its final event, an idle stream, and in-stream overload / server errors. The
//! delay is exponential (`retry_base_delay * 2^n`, at most 30 s) with jitter (a random point in
//! its upper half), unless the answer carries `Retry-After: <seconds>`, which is honoured (at
//! most 120 s). Nothing is emitted for a failed attempt, so a retry never duplicates events.

mod chat;
mod messages;
pub mod sse;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use self::sse::SseParser;

/// Which wire API the loop speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelApi {
    /// OpenAI Chat Completions: `POST {openai_base_url}/chat/completions`,
    /// `Authorization: Bearer <run token>`.
    ChatCompletions,
    /// Anthropic Messages: `POST {anthropic_base_url}/v1/messages`, `x-api-key: <run token>`,
    /// `anthropic-version: 2023-06-01`.
    AnthropicMessages,
}

/// The model name sent when the workflow names none (`model.name`); an upstream that needs a
/// real name will reject it with a clear error.
pub const DEFAULT_MODEL: &str = "default";
/// Longest delay a `Retry-After` header can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// Longest exponential backoff delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest single SSE event (or unterminated line) accepted before the stream is refused.
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;
/// Longest a single request may take, however steadily its stream trickles.
const MAX_REQUEST_TIME: Duration = Duration::from_secs(30 * 60);
/// Bytes of an error body kept for the error message.
const MAX_ERROR_BODY: usize = 4 * 1024;

/// Errors of a model request. [`ModelError::is_retryable`] says which ones the client retries.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The HTTP client could not be built (TLS setup). Not retryable: a bug or a broken host.
    #[error("model client setup failed: {0}")]
    Setup(String),
    /// The endpoint answered with an error status. Retryable for 408, 409, 429 and 5xx;
    /// `retry_after` is the `Retry-After` header in seconds, when given.
    #[error("the model endpoint answered HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or its answer not received (connection refused, reset,
    /// DNS, TLS). Retryable.
    #[error("could not reach the model endpoint: {0}")]
    Connect(String),
    /// The stream broke off before its final event (`[DONE]` / `message_stop`), or reading it
    /// failed. Retryable: nothing of the partial answer was used.
    #[error("the model stream broke off: {0}")]
    Stream(String),
    /// No bytes arrived for the idle timeout (waiting for the answer or inside the stream).
    /// Retryable.
    #[error("the model stream was idle for {} ms", .0.as_millis())]
    Idle(Duration),
    /// One attempt took longer than the hard cap (30 min) although bytes kept arriving. Not
    /// retryable: the same request would likely trickle again.
    #[error("the model request took longer than {} s", .0.as_secs())]
    TooLong(Duration),
    /// The provider reported an error inside the stream. Retryable for overload and server
    /// errors.
    #[error("the model reported an error: {message}")]
    Provider { message: String, retryable: bool },
    /// The stream could not be understood (not JSON, an event too large). Not retryable.
    #[error("the model stream could not be understood: {0}")]
    Protocol(String),
    /// Retries ran out; `last` is the final attempt's error. Not retried again by this client
    /// (the orchestrator may retry the whole run).
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<ModelError>,
    },
}

impl ModelError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Status { status, .. } => {
                matches!(status, 408 | 409 | 429) || (500..=599).contains(status)
            }
            ModelError::Connect(_) | ModelError::Stream(_) | ModelError::Idle(_) => true,
            ModelError::Provider { retryable, .. } => *retryable,
            ModelError::Setup(_)
            | ModelError::Protocol(_)
            | ModelError::TooLong(_)
            | ModelError::GaveUp { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Status { retry_after, .. } => retry_after.map(|d| d.min(MAX_RETRY_AFTER)),
            _ => None,
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

/// A tool call as the model made it; `arguments` is the raw JSON text (possibly malformed: the
/// tool reports that back to the model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// One entry of the conversation, provider-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The prompt (turn 1) or a continuation (later turns).
    User(String),
    /// What the model said: text and tool calls.
    Assistant { text: String, calls: Vec<ToolCall> },
    /// The result of one tool call.
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

impl Item {
    /// Characters this item adds to the context (for the chars/4 token estimate).
    pub fn chars(&self) -> usize {
        match self {
            Item::User(text) => text.len(),
            Item::Assistant { text, calls } => {
                text.len()
                    + calls
                        .iter()
                        .map(|c| c.id.len() + c.name.len() + c.arguments.len() + 16)
                        .sum::<usize>()
            }
            Item::ToolResult {
                call_id, content, ..
            } => call_id.len() + content.len() + 16,
        }
    }
}

/// One request: the system prompt, the conversation, the tools.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub system: &'a str,
    pub items: &'a [Item],
    pub tools: &'a [ToolSpec],
}

/// Token usage as the provider reported it for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, cached and cache-creation tokens included.
    pub input: u64,
    pub output: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }

    pub fn add(&mut self, other: Usage) {
        self.input += other.input;
        self.output += other.output;
    }
}

/// The model's answer to one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub usage: Usage,
    /// `finish_reason` / `stop_reason`, as sent.
    pub stop_reason: Option<String>,
}

/// Where and how to reach the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub api: ModelApi,
    /// OpenAI-style base URL ending in `/v1` (used by Chat Completions).
    pub openai_base_url: String,
    /// Anthropic-style base URL without `/v1` (used by Messages).
    pub anthropic_base_url: String,
    /// The run token, sent as the API key.
    pub token: String,
    pub model: String,
}

impl Endpoint {
    /// The URL requests are posted to.
    pub fn url(&self) -> String {
        match self.api {
            ModelApi::ChatCompletions => format!(
                "{}/chat/completions",
                self.openai_base_url.trim_end_matches('/')
            ),
            ModelApi::AnthropicMessages => format!(
                "{}/v1/messages",
                self.anthropic_base_url.trim_end_matches('/')
            ),
        }
    }
}

/// Retry and stream limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// No bytes for this long (before the answer's headers or inside the stream) fails the
    /// attempt.
    pub idle_timeout: Duration,
    /// The first backoff delay; doubled on every retry.
    pub retry_base_delay: Duration,
    /// Messages `max_tokens` (output tokens of one answer).
    pub max_output_tokens: u32,
}

/// Builds the shared HTTP client: rustls with the ring provider passed explicitly (no global
/// `CryptoProvider` is installed) and the platform's root certificates. When the platform has
/// no usable roots, plain `http://` endpoints (the daemon's loopback endpoint) still work and
/// `https://` ones fail with a certificate error.
pub fn http_client() -> Result<reqwest::Client, ModelError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| ModelError::Setup(error.to_string()))?;
    let mut tls = match builder.with_platform_verifier() {
        Ok(builder) => builder.with_no_client_auth(),
        Err(error) => {
            tracing::warn!(%error, "no platform root certificates; https model endpoints will fail");
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|error| ModelError::Setup(error.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        }
    };
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| ModelError::Setup(error.to_string()))
}

/// A model client for one endpoint.
#[derive(Debug, Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    endpoint: Endpoint,
    settings: ClientSettings,
}

impl ModelClient {
    pub fn new(http: reqwest::Client, endpoint: Endpoint, settings: ClientSettings) -> Self {
        ModelClient {
            http,
            endpoint,
            settings,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn max_retries(&self) -> u32 {
        self.settings.max_retries
    }

    /// The request body for `request`, in this endpoint's wire shape.
    pub fn body(&self, request: Request<'_>) -> Value {
        match self.endpoint.api {
            ModelApi::ChatCompletions => chat::body(&self.endpoint.model, request),
            ModelApi::AnthropicMessages => messages::body(
                &self.endpoint.model,
                self.settings.max_output_tokens,
                request,
            ),
        }
    }

    /// Sends `request` and collects the streamed answer, retrying as the module docs say.
    /// `on_retry` hears of every failed attempt that will be retried: the error, the retry's
    /// number (1-based) and the delay before it.
    pub async fn complete(
        &self,
        request: Request<'_>,
        on_retry: &mut (dyn FnMut(&ModelError, u32, Duration) + Send),
    ) -> Result<Reply, ModelError> {
        let body = self.body(request);
        let mut retries = 0;
        loop {
            let attempt = tokio::time::timeout(MAX_REQUEST_TIME, self.attempt(&body))
                .await
                .unwrap_or(Err(ModelError::TooLong(MAX_REQUEST_TIME)));
            match attempt {
                Ok(reply) => return Ok(reply),
                Err(error) if error.is_retryable() && retries < self.settings.max_retries => {
                    let delay = error
                        .retry_after()
                        .unwrap_or_else(|| backoff(self.settings.retry_base_delay, retries));
                    retries += 1;
                    tracing::warn!(%error, retry = retries, delay_ms = delay.as_millis() as u64, "model request failed; retrying");
                    on_retry(&error, retries, delay);
                    tokio::time::sleep(delay).await;
                }
                Err(error) if retries > 0 => {
                    return Err(ModelError::GaveUp {
                        attempts: retries + 1,
                        last: Box::new(error),
                    });
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(&self, body: &Value) -> Result<Reply, ModelError> {
        let idle = self.settings.idle_timeout;
        let request = self
            .http
            .post(self.endpoint.url())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(body);
        let request = match self.endpoint.api {
            ModelApi::ChatCompletions => request.bearer_auth(&self.endpoint.token),
            ModelApi::AnthropicMessages => request
                .header("x-api-key", &self.endpoint.token)
                .header("anthropic-version", "2023-06-01"),
        };
        let response = tokio::time::timeout(idle, request.send())
            .await
            .map_err(|_| ModelError::Idle(idle))?
            .map_err(|error| ModelError::Connect(error_chain(&error)))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = tokio::time::timeout(idle, response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(ModelError::Status {
                status: status.as_u16(),
                message: error_message(&text),
                retry_after,
            });
        }
        let mut stream = response.bytes_stream();
        let mut parser = SseParser::new();
        let mut collector = Collector::new(self.endpoint.api);
        loop {
            let chunk = match tokio::time::timeout(idle, stream.next()).await {
                Err(_) => return Err(ModelError::Idle(idle)),
                Ok(None) => return collector.at_end(),
                Ok(Some(Err(error))) => return Err(ModelError::Stream(error_chain(&error))),
                Ok(Some(Ok(chunk))) => chunk,
            };
            for event in parser.feed(&chunk) {
                if collector.event(&event)? {
                    return collector.finish();
                }
            }
            if parser.pending_len() > MAX_EVENT_BYTES {
                return Err(ModelError::Protocol(format!(
                    "an event exceeded {MAX_EVENT_BYTES} bytes"
                )));
            }
        }
    }
}

/// Accumulates one streamed answer.
enum Collector {
    Chat(chat::Collector),
    Messages(messages::Collector),
}

impl Collector {
    fn new(api: ModelApi) -> Self {
        match api {
            ModelApi::ChatCompletions => Collector::Chat(chat::Collector::default()),
            ModelApi::AnthropicMessages => Collector::Messages(messages::Collector::default()),
        }
    }

    /// Takes one event; `true` when it was the final one.
    fn event(&mut self, event: &sse::SseEvent) -> Result<bool, ModelError> {
        match self {
            Collector::Chat(c) => c.event(event),
            Collector::Messages(c) => c.event(event),
        }
    }

    fn finish(self) -> Result<Reply, ModelError> {
        Ok(match self {
            Collector::Chat(c) => c.finish(),
            Collector::Messages(c) => c.finish(),
        })
    }

    /// The body ended without the final event.
    fn at_end(self) -> Result<Reply, ModelError> {
        match self {
            Collector::Chat(c) if c.complete_enough() => Ok(c.finish()),
            Collector::Chat(_) => Err(ModelError::Stream(
                "the stream ended before `data: [DONE]`".into(),
            )),
            Collector::Messages(_) => Err(ModelError::Stream(
                "the stream ended before `message_stop`".into(),
            )),
        }
    }
}

/// The error and its sources, for messages that say why a connection failed.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

/// The message of an OpenAI (`{"error":{"message"}}`) or Anthropic
/// (`{"type":"error","error":{"message"}}`) error body, else the body itself (cut).
fn error_message(body: &str) -> String {
    let parsed = serde_json::from_str::<Value>(body).ok();
    if let Some(message) = parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str)
    {
        return message.to_owned();
    }
    let body = body.trim();
    if body.is_empty() {
        return "(no body)".to_owned();
    }
    let mut end = body.len().min(MAX_ERROR_BODY);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

/// `base * 2^retry`, at most [`MAX_BACKOFF`], jittered to a random point in its upper half.
fn backoff(base: Duration, retry: u32) -> Duration {
    let full = base
        .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    let half = full / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    let jitter = if nanos == 0 { 0 } else { random() % nanos };
    half + Duration::from_nanos(jitter)
}

/// A random number from the standard library's per-process random hash keys.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let base = Duration::from_millis(100);
        for retry in 0..6 {
            let full = base * 2u32.pow(retry);
            let delay = backoff(base, retry);
            assert!(delay >= full / 2 && delay <= full, "{retry}: {delay:?}");
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert_eq!(backoff(Duration::ZERO, 3), Duration::ZERO);
    }

    #[test]
    fn retryable_errors() {
        let status = |status| ModelError::Status {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(ModelError::Idle(Duration::from_secs(1)).is_retryable());
        assert!(ModelError::Stream("cut".into()).is_retryable());
        assert!(!ModelError::Protocol("bad".into()).is_retryable());
        let limited = ModelError::Status {
            status: 429,
            message: String::new(),
            retry_after: Some(Duration::from_secs(9999)),
        };
        assert_eq!(limited.retry_after(), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn error_messages_from_both_providers() {
        assert_eq!(
            error_message(r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#),
            "slow down"
        );
        assert_eq!(
            error_message(r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#),
            "boom"
        );
        assert_eq!(error_message("  plain text "), "plain text");
        assert_eq!(error_message(""), "(no body)");
    }

    /// An https endpoint goes through rustls with the explicitly passed ring provider: no
    /// process-wide `CryptoProvider` is needed (rustls would panic without one otherwise).
    #[tokio::test]
    async fn https_needs_no_process_wide_crypto_provider() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // Accept and hang up: the TLS handshake fails on the client side.
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        });
        let client = ModelClient::new(
            http_client().unwrap(),
            Endpoint {
                api: ModelApi::ChatCompletions,
                openai_base_url: format!("https://{addr}/v1"),
                anthropic_base_url: format!("https://{addr}"),
                token: "t".into(),
                model: "m".into(),
            },
            ClientSettings {
                max_retries: 0,
                idle_timeout: Duration::from_secs(30),
                retry_base_delay: Duration::from_millis(1),
                max_output_tokens: 100,
            },
        );
        let error = client
            .complete(
                Request {
                    system: "s",
                    items: &[],
                    tools: &[],
                },
                &mut |_, _, _| {},
            )
            .await
            .unwrap_err();
        assert!(matches!(error, ModelError::Connect(_)), "{error}");
        server.await.unwrap();
    }

    /// The run token is the credential, in the header each API expects (the mock's request
    /// log redacts credentials, so this reads the raw request).
    #[tokio::test]
    async fn the_run_token_is_sent_as_each_apis_credential() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for api in [ModelApi::ChatCompletions, ModelApi::AnthropicMessages] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                let body = "{\"error\":{\"message\":\"nope\"}}";
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                socket.write_all(answer.as_bytes()).await.unwrap();
                String::from_utf8_lossy(&seen).to_lowercase()
            });
            let client = ModelClient::new(
                http_client().unwrap(),
                Endpoint {
                    api,
                    openai_base_url: format!("http://{addr}/v1"),
                    anthropic_base_url: format!("http://{addr}"),
                    token: "run-token-123".into(),
                    model: "m".into(),
                },
                ClientSettings {
                    max_retries: 0,
                    idle_timeout: Duration::from_secs(30),
                    retry_base_delay: Duration::from_millis(1),
                    max_output_tokens: 100,
                },
            );
            let error = client
                .complete(
                    Request {
                        system: "s",
                        items: &[Item::User("hi".into())],
                        tools: &[],
                    },
                    &mut |_, _, _| {},
                )
                .await
                .unwrap_err();
            assert!(
                matches!(error, ModelError::Status { status: 400, ref message, .. } if message == "nope"),
                "{error}"
            );
            let head = server.await.unwrap();
            match api {
                ModelApi::ChatCompletions => {
                    assert!(head.starts_with("post /v1/chat/completions "), "{head}");
                    assert!(
                        head.contains("authorization: bearer run-token-123\r\n"),
                        "{head}"
                    );
                }
                ModelApi::AnthropicMessages => {
                    assert!(head.starts_with("post /v1/messages "), "{head}");
                    assert!(head.contains("x-api-key: run-token-123\r\n"), "{head}");
                    assert!(head.contains("anthropic-version: 2023-06-01\r\n"), "{head}");
                    assert!(!head.contains("authorization"), "{head}");
                }
            }
        }
    }
}
