//! The forwarding handler: authenticate the run token, check the budget, wait out a quota
//! window, swap in the provider key, retry what is safe to retry, and stream the answer back
//! through the usage meter.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use rand::{Rng, SeedableRng};
use takt_core::budget::{self, Exhaustion, Spend};
use tokio::time::Instant;

use crate::meter::{Api, UsageMeter};
use crate::quota::{is_quota_status, reset_after};
use crate::tokens::Grant;
use crate::transcript::{self, Capture, Transcript};
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
    "retry-after-ms",
    "x-request-id",
    "request-id",
    "openai-processing-ms",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            takt_protocol::HOST_TOOLS_PATH,
            axum::routing::get(crate::host_tools::list),
        )
        .route(
            takt_protocol::HOST_TOOLS_CALL_PATH,
            axum::routing::post(crate::host_tools::call),
        )
        .fallback(forward)
        .with_state(shared)
}

pub(crate) fn token_of(headers: &HeaderMap) -> Option<&str> {
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What is known of a call before it is forwarded, for its report.
struct Call {
    shared: Arc<Shared>,
    api: Api,
    path: String,
    started: Instant,
}

impl Call {
    /// Reports a call the gateway answered itself and returns that answer.
    fn refuse(
        &self,
        grant: Option<Grant>,
        status: StatusCode,
        kind: &str,
        why: &str,
        exhausted: Option<Exhaustion>,
        attempts: u32,
    ) -> Response {
        let _ = self.shared.calls.send(ModelCall {
            grant,
            api: self.api,
            path: self.path.clone(),
            status: status.as_u16(),
            model: None,
            usage: Default::default(),
            cost_micros: Some(0),
            attempts,
            quota_wait_ms: 0,
            latency_ms: millis(self.started.elapsed()),
            refused: Some(why.to_owned()),
            exhausted,
            transcript: None,
        });
        refusal(status, kind, why)
    }
}

/// The cap the next call of this grant would pass, if one is reached.
fn budget_refusal(shared: &Shared, grant: &Grant) -> Option<Exhaustion> {
    let budget = shared.live(|live| live.budget);
    let spent = shared
        .ledger()
        .spent(Some(&grant.run_id), &grant.task_id, shared.clock.now());
    budget::exhausted_by(&budget, &spent)
}

fn budget_message(hit: &Exhaustion) -> String {
    format!("takt model endpoint: {hit}; no further model calls are allowed for this run")
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let call = Call {
        shared: shared.clone(),
        api: Api::from_path(&path),
        path,
        started: Instant::now(),
    };
    let api = call.api;
    let query = request.uri().query().map(str::to_owned);
    let token = token_of(request.headers()).map(str::to_owned);
    let Some((grant, token)) = token.and_then(|token| Some((shared.tokens.lookup(&token)?, token)))
    else {
        return call.refuse(
            None,
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "takt model endpoint: the run token is missing, forged, or its run has ended",
            None,
            0,
        );
    };
    let upstream = shared.live(|live| live.upstream.clone());
    let Some(tail) = call.path.strip_prefix("/v1") else {
        let why = "only /v1/... model API paths are forwarded";
        return call.refuse(
            Some(grant),
            StatusCode::NOT_FOUND,
            "not_found_error",
            why,
            None,
            0,
        );
    };
    let mut url = match upstream.kind {
        UpstreamKind::OpenAi => {
            if api == Api::Messages || api == Api::CountTokens {
                let why =
                    "this workflow's model provider speaks the OpenAI API, not Anthropic Messages";
                return call.refuse(
                    Some(grant),
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    why,
                    None,
                    0,
                );
            }
            format!("{}{tail}", upstream.base_url)
        }
        UpstreamKind::Anthropic => {
            if matches!(api, Api::Responses | Api::ChatCompletions) {
                let why =
                    "this workflow's model provider speaks Anthropic Messages, not the OpenAI API";
                return call.refuse(
                    Some(grant),
                    StatusCode::BAD_REQUEST,
                    "invalid_request_error",
                    why,
                    None,
                    0,
                );
            }
            format!("{}{}", upstream.base_url, call.path)
        }
        UpstreamKind::Mock => format!("{}{}", upstream.base_url, call.path),
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
            return call.refuse(
                Some(grant),
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                &why,
                None,
                0,
            );
        }
    };
    if let Some(hit) = budget_refusal(&shared, &grant) {
        return call.refuse(
            Some(grant),
            StatusCode::PAYMENT_REQUIRED,
            "budget_exhausted",
            &budget_message(&hit),
            Some(hit),
            0,
        );
    }
    let target = Target {
        method,
        url,
        headers,
        body: body.clone(),
    };
    let sent = match send(&shared, &grant, &target).await {
        Sent::Response(sent) => sent,
        Sent::Refused(hit) => {
            return call.refuse(
                Some(grant),
                StatusCode::PAYMENT_REQUIRED,
                "budget_exhausted",
                &budget_message(&hit),
                Some(hit),
                0,
            );
        }
        Sent::Failed { error, attempts } => {
            let why = format!("the model provider could not be reached: {error}");
            return call.refuse(
                Some(grant),
                StatusCode::BAD_GATEWAY,
                "api_error",
                &why,
                None,
                attempts,
            );
        }
    };
    let upstream_response = sent.response;
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
    let transcripts = shared.transcripts;
    let metered = Metered {
        inner: Box::pin(upstream_response.bytes_stream()),
        meter: Some(UsageMeter::new(api, sse)),
        response: transcripts
            .enabled
            .then(|| Capture::new(transcripts.max_bytes)),
        charged: None,
        report: Some(Report {
            call,
            grant,
            token,
            request: body,
            status: status.as_u16(),
            attempts: sent.attempts,
            quota_wait: sent.quota_wait,
        }),
    };
    let mut response = Response::new(Body::from_stream(metered));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    *response.headers_mut() = response_headers;
    response
}

/// One upstream request, sendable again.
struct Target {
    method: Method,
    url: String,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

struct Forwarded {
    response: reqwest::Response,
    attempts: u32,
    quota_wait: Duration,
}

enum Sent {
    /// The response to pass back: a success, a client error, or the last failure after the
    /// retries ran out.
    Response(Forwarded),
    /// The budget was exhausted while the call waited for a quota window.
    Refused(Exhaustion),
    /// No response at all after the retries ran out.
    Failed {
        error: reqwest::Error,
        attempts: u32,
    },
}

/// Whether an upstream status is a server failure that another attempt may cure. 501 says the
/// server will never do it.
fn retryable(status: u16) -> bool {
    (500..=599).contains(&status) && status != 501 && !is_quota_status(status)
}

/// Sends `target`, waiting out quota windows and retrying server errors and connection
/// failures. Nothing has reached the agent yet, so every retry is invisible to it.
async fn send(shared: &Arc<Shared>, grant: &Grant, target: &Target) -> Sent {
    let quota_deadline = Instant::now() + shared.quota_policy.max_wait;
    let mut attempts = 0u32;
    let mut retries = 0u32;
    let mut quota_wait = Duration::ZERO;
    loop {
        let waited = shared.quota.wait_open(quota_deadline).await;
        quota_wait += waited;
        // Others' calls may have finished while this one waited.
        if attempts == 0
            && !waited.is_zero()
            && let Some(hit) = budget_refusal(shared, grant)
        {
            return Sent::Refused(hit);
        }
        attempts += 1;
        let sent = shared
            .client
            .request(target.method.clone(), &target.url)
            .headers(target.headers.clone())
            .body(target.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                if retries < shared.retry.max_retries {
                    retries += 1;
                    tracing::debug!(%error, retries, "model provider unreachable; retrying");
                    tokio::time::sleep(backoff(shared, retries, None)).await;
                    continue;
                }
                return Sent::Failed { error, attempts };
            }
        };
        let status = response.status().as_u16();
        if is_quota_status(status) {
            let reset = reset_after(response.headers(), shared.clock.now());
            let pause = shared.quota.pause_for(reset, &shared.quota_policy);
            shared.quota.pause(pause, status, shared.clock.now());
            if Instant::now() + pause <= quota_deadline {
                tracing::info!(
                    status,
                    pause_ms = millis(pause),
                    "model quota window; holding"
                );
                continue;
            }
        } else {
            shared.quota.success();
            if retryable(status) && retries < shared.retry.max_retries {
                retries += 1;
                let hint = reset_after(response.headers(), shared.clock.now());
                tracing::debug!(status, retries, "model provider error; retrying");
                drop(response);
                tokio::time::sleep(backoff(shared, retries, hint)).await;
                continue;
            }
        }
        return Sent::Response(Forwarded {
            response,
            attempts,
            quota_wait,
        });
    }
}

/// The delay before retry number `retry` (from 1): exponential, capped, with jitter so that
/// many runs failing together do not retry together; at least the provider's hint (capped).
fn backoff(shared: &Shared, retry: u32, hint: Option<Duration>) -> Duration {
    let policy = &shared.retry;
    let doublings = retry.saturating_sub(1).min(16);
    let full = policy
        .base_delay
        .saturating_mul(1u32 << doublings)
        .min(policy.max_delay);
    let jitter = rand::rngs::SmallRng::from_os_rng().random_range(0.5..=1.0);
    let delay = full.mul_f64(jitter);
    match hint {
        Some(hint) => delay.max(hint.min(policy.max_delay)),
        None => delay,
    }
}

struct Report {
    call: Call,
    grant: Grant,
    /// The run token the agent presented, for redaction.
    token: String,
    request: Bytes,
    status: u16,
    attempts: u32,
    quota_wait: Duration,
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The upstream body on its way to the agent, metered as it passes. The call is reported when
/// the body ends, fails, or the agent hangs up (drop); the report happens before the body's end
/// reaches the agent, so the ledger already counts a call when the agent sends its next one.
struct Metered {
    inner: ByteStream,
    meter: Option<UsageMeter>,
    response: Option<Capture>,
    report: Option<Report>,
    /// What the call was charged when the provider's final usage arrived, before the rest of
    /// the answer reached the agent: its next request must already see this one's spend.
    charged: Option<Charge>,
}

/// A call's spend as recorded in the ledger.
struct Charge {
    usage: crate::meter::Usage,
    model: Option<String>,
    cost_micros: Option<u64>,
    exhausted: Option<Exhaustion>,
}

/// The `model` field of a request, when the response did not name one.
fn requested_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Model {
        model: Option<String>,
    }
    serde_json::from_slice::<Model>(body).ok()?.model
}

impl Metered {
    fn report(&mut self) {
        let (Some(meter), Some(report)) = (self.meter.take(), self.report.take()) else {
            return;
        };
        let shared = &report.call.shared;
        let Charge {
            usage,
            model,
            cost_micros,
            exhausted,
        } = match self.charged.take() {
            Some(charge) => charge,
            None => {
                // Only a successful model turn spent tokens the provider may have failed to
                // report; an error, a model list or a token count did not.
                let turn = matches!(
                    report.call.api,
                    Api::Responses | Api::ChatCompletions | Api::Messages
                );
                let (usage, model) = if turn && (200..300).contains(&report.status) {
                    meter.finish_estimating(report.request.len() as u64)
                } else {
                    meter.finish()
                };
                charge(&report, usage, model)
            }
        };
        let transcript = self.response.take().map(|response| {
            let needles = shared.live(|live| {
                transcript::needles(
                    live.upstream
                        .api_key
                        .iter()
                        .chain(live.secrets.iter())
                        .map(String::as_str)
                        .chain([report.token.as_str()]),
                )
            });
            let request = Capture::of(&report.request, shared.transcripts.max_bytes);
            Transcript {
                request: transcript::redact(&request.bytes, &needles, request.truncated),
                response: transcript::redact(&response.bytes, &needles, response.truncated),
                request_truncated: request.truncated,
                response_truncated: response.truncated,
            }
        });
        let _ = shared.calls.send(ModelCall {
            grant: Some(report.grant),
            api: report.call.api,
            path: report.call.path,
            status: report.status,
            model,
            usage,
            cost_micros,
            attempts: report.attempts,
            quota_wait_ms: millis(report.quota_wait),
            latency_ms: millis(report.call.started.elapsed()),
            refused: None,
            exhausted,
            transcript,
        });
    }
}

/// Records `usage` in the ledger for the call `report` describes.
fn charge(report: &Report, usage: crate::meter::Usage, model: Option<String>) -> Charge {
    let shared = &report.call.shared;
    let model = model.or_else(|| requested_model(&report.request));
    let (prices, budget) = shared.live(|live| (live.prices.clone(), live.budget));
    let cost_micros = prices.cost_micros(model.as_deref(), &usage);
    let spend = Spend::new(usage.total(), cost_micros.unwrap_or(0));
    let (_, after) = shared.ledger().record(
        &report.grant.run_id,
        &report.grant.task_id,
        shared.clock.now(),
        spend,
    );
    Charge {
        usage,
        model,
        cost_micros,
        exhausted: budget::exhausted_by(&budget, &after),
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
                if let Some(capture) = self.response.as_mut() {
                    capture.push(bytes);
                }
                if self.charged.is_none()
                    && let (Some(meter), Some(report)) = (&self.meter, &self.report)
                    && let Some((usage, model)) = meter.final_usage()
                {
                    self.charged = Some(charge(report, usage, model));
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
