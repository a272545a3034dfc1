//! Shared fixtures: the mock model, a gateway in front of it, a settable clock, a client.

mod budget;
mod forwarding;
mod host_tools;
mod metering;
mod quota;
mod retries;
mod transcripts;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use takt_gateway::{Clock, Gateway, GatewayConfig, ModelCall, RetryPolicy, Upstream, UpstreamKind};
use takt_mock_model::{MockConfig, MockModel, Scenario, UsageSpec};
use tokio::sync::mpsc::UnboundedReceiver;

pub const KEY: &str = "sk-real-provider-key-0123456789";

/// The usage most scenarios report: 1200 input (200 cached), 80 output (12 reasoning), so 1280
/// tokens per call.
pub fn fixed_usage() -> UsageSpec {
    UsageSpec {
        input_tokens: Some(1200),
        output_tokens: Some(80),
        cached_tokens: Some(200),
        reasoning_tokens: Some(12),
        ..UsageSpec::default()
    }
}

pub const CALL_TOKENS: u64 = 1280;

/// The test's own HTTP client (the gateway's client configures its TLS provider explicitly).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub async fn mock(scenarios: Vec<Scenario>) -> MockModel {
    MockModel::start(MockConfig::with_scenarios(scenarios))
        .await
        .expect("mock")
}

pub fn mock_upstream(mock: &MockModel) -> Upstream {
    Upstream {
        kind: UpstreamKind::Mock,
        base_url: mock.base_url(),
        api_key: Some(KEY.into()),
    }
}

/// Fast retries, so tests that exercise them stay quick.
pub fn config() -> GatewayConfig {
    GatewayConfig {
        retry: RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        ..GatewayConfig::default()
    }
}

pub async fn gateway_with(
    upstream: Upstream,
    config: GatewayConfig,
) -> (Gateway, UnboundedReceiver<ModelCall>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    Gateway::start_with(listener, upstream, config)
        .await
        .expect("gateway")
}

pub async fn gateway(upstream: Upstream) -> (Gateway, UnboundedReceiver<ModelCall>) {
    gateway_with(upstream, config()).await
}

/// A clock the test moves by hand.
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    pub fn at(rfc3339: &str) -> Arc<FakeClock> {
        let at = DateTime::parse_from_rfc3339(rfc3339)
            .expect("time")
            .with_timezone(&Utc);
        Arc::new(FakeClock(Mutex::new(at)))
    }

    pub fn now_date(&self) -> NaiveDate {
        self.now().date_naive()
    }

    pub fn set(&self, rfc3339: &str) {
        *self.0.lock().unwrap() = DateTime::parse_from_rfc3339(rfc3339)
            .expect("time")
            .with_timezone(&Utc);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// A streamed Responses request for `scenario` asking for `model`.
pub fn responses_body(scenario: &str, model: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": true,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": format!("[[scenario:{scenario}]] hi")}]}],
    })
}

pub async fn post(url: &str, token: &str, body: &serde_json::Value) -> reqwest::Response {
    client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// One streamed Responses call for `scenario`, read to its end: (status, body; empty when the
/// body broke off).
pub async fn call(
    access: &takt_core::ports::ModelAccess,
    scenario: &str,
    model: &str,
) -> (u16, String) {
    let response = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &responses_body(scenario, model),
    )
    .await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// The next reported call, failing the test instead of hanging.
pub async fn next(calls: &mut UnboundedReceiver<ModelCall>) -> ModelCall {
    tokio::time::timeout(Duration::from_secs(10), calls.recv())
        .await
        .expect("a call is reported within 10 s")
        .expect("the gateway is running")
}
