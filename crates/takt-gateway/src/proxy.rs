//! The forwarding handler: authenticate the run token, swap in the provider key, stream the
//! answer back through the usage meter.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};

use crate::meter::{Api, UsageMeter};
use crate::tokens::Grant;
use crate::{ModelCall, Shared, UpstreamKind};

/// Largest request body forwarded (agents resend whole conversations).
const MAX_REQUEST: usize = 64 * 1024 * 1024;

/// Request headers forwarded upstream; everything else (the agent's credentials included)
/// stays behind.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "anthropic-version",
    "anthropic-beta",
    "openai-beta",
    "user-agent",
];

/// Response headers passed back to the agent.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    "x-request-id",
    "request-id",
    "openai-processing-ms",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(forward).with_state(shared)
}

fn token_of(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
}

/// An error body in the shape both OpenAI and Anthropic clients display.
fn refusal(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": kind, "code": kind, "message": message},
    });
    (status, axum::Json(body)).into_response()
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let api = Api::from_path(&path);
    let report_refusal = |grant: Option<Grant>, status: StatusCode, why: &str| {
        let _ = shared.calls.send(ModelCall {
            grant,
            api,
            path: path.clone(),
            status: status.as_u16(),
            model: None,
            usage: Default::default(),
            latency_ms: 0,
            refused: Some(why.to_owned()),
        });
    };
    let Some(grant) = token_of(request.headers()).and_then(|token| shared.tokens.lookup(token))
    else {
        let why = "missing, unknown or revoked run token";
        report_refusal(None, StatusCode::UNAUTHORIZED, why);
        return refusal(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "takt model endpoint: the run token is missing, forged, or its run has ended",
        );
    };
    let upstream = match shared.upstream.read() {
        Ok(upstream) => upstream.clone(),
        Err(_) => {
            return refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "upstream unavailable",
            );
        }
    };
    let Some(tail) = path.strip_prefix("/v1") else {
        let why = "only /v1/... model API paths are forwarded";
        report_refusal(Some(grant), StatusCode::NOT_FOUND, why);
        return refusal(StatusCode::NOT_FOUND, "not_found_error", why);
    };
    let mut url = match upstream.kind {
        UpstreamKind::OpenAi => {
            if api == Api::Messages || api == Api::CountTokens {
                let why =
                    "this workflow's model provider speaks the OpenAI API, not Anthropic Messages";
                report_refusal(Some(grant), StatusCode::BAD_REQUEST, why);
                return refusal(StatusCode::BAD_REQUEST, "invalid_request_error", why);
            }
            format!("{}{tail}", upstream.base_url)
        }
        UpstreamKind::Anthropic => {
            if matches!(api, Api::Responses | Api::ChatCompletions) {
                let why =
                    "this workflow's model provider speaks Anthropic Messages, not the OpenAI API";
                report_refusal(Some(grant), StatusCode::BAD_REQUEST, why);
                return refusal(StatusCode::BAD_REQUEST, "invalid_request_error", why);
            }
            format!("{}{path}", upstream.base_url)
        }
        UpstreamKind::Mock => format!("{}{path}", upstream.base_url),
    };
    if let Some(query) = &query {
        url.push('?');
        url.push_str(query);
    }
    let method = request.method().clone();
    let mut headers = reqwest::header::HeaderMap::new();
    for name in FORWARDED_REQUEST_HEADERS {
        if let Some(value) = request.headers().get(*name) {
            headers.insert(*name, value.clone());
        }
    }
    if let Some(key) = &upstream.api_key {
        let (name, value) = match upstream.kind {
            UpstreamKind::Anthropic => ("x-api-key", key.clone()),
            UpstreamKind::OpenAi | UpstreamKind::Mock => ("authorization", format!("Bearer {key}")),
        };
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_REQUEST).await {
        Ok(body) => body,
        Err(error) => {
            let why = format!("request body unreadable or over {MAX_REQUEST} bytes: {error}");
            report_refusal(Some(grant), StatusCode::PAYLOAD_TOO_LARGE, &why);
            return refusal(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request_error", &why);
        }
    };
    let sent = shared
        .client
        .request(method, &url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream_response = match sent {
        Ok(response) => response,
        Err(error) => {
            let why = format!("the model provider could not be reached: {error}");
            report_refusal(Some(grant), StatusCode::BAD_GATEWAY, &why);
            return refusal(StatusCode::BAD_GATEWAY, "api_error", &why);
        }
    };
    let status = upstream_response.status();
    let mut response_headers = HeaderMap::new();
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(value) = upstream_response.headers().get(*name) {
            response_headers.insert(*name, value.clone());
        }
    }
    let sse = upstream_response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let metered = Metered {
        inner: Box::pin(upstream_response.bytes_stream()),
        meter: Some(UsageMeter::new(api, sse)),
        report: Some(Report {
            shared: shared.clone(),
            grant,
            api,
            path,
            status: status.as_u16(),
            started,
        }),
    };
    let mut response = Response::new(Body::from_stream(metered));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = response_headers;
    response
}

struct Report {
    shared: Arc<Shared>,
    grant: Grant,
    api: Api,
    path: String,
    status: u16,
    started: Instant,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The upstream body on its way to the agent, metered as it passes. The call is reported when
/// the body ends, fails, or the agent hangs up (drop).
struct Metered {
    inner: ByteStream,
    meter: Option<UsageMeter>,
    report: Option<Report>,
}

impl Metered {
    fn report(&mut self) {
        let (Some(meter), Some(report)) = (self.meter.take(), self.report.take()) else {
            return;
        };
        let (usage, model) = meter.finish();
        let _ = report.shared.calls.send(ModelCall {
            grant: Some(report.grant),
            api: report.api,
            path: report.path,
            status: report.status,
            model,
            usage,
            latency_ms: u64::try_from(report.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            refused: None,
        });
    }
}

impl Stream for Metered {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(bytes))) => {
                if let Some(meter) = self.meter.as_mut() {
                    meter.feed(bytes);
                }
            }
            Poll::Ready(Some(Err(_)) | None) => self.report(),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.report();
    }
}
