//! The gateway against the scripted model server: forwarding, key custody, metering, refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use takt_gateway::{Api, Gateway, ModelCall, Upstream, UpstreamKind};
use takt_mock_model::{MockConfig, MockModel, Scenario, Step, UsageSpec};
use tokio::sync::mpsc::UnboundedReceiver;

const KEY: &str = "sk-real-provider-key-0123456789";

/// The test's own HTTP client (the gateway's client configures its TLS provider explicitly).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn mock() -> MockModel {
    let scenarios = vec![
        Scenario::new("metered", vec![Step::text("hello from the model")]).with_usage(UsageSpec {
            input_tokens: Some(1200),
            output_tokens: Some(80),
            cached_tokens: Some(200),
            reasoning_tokens: Some(12),
            cache_creation_input_tokens: None,
        }),
        Scenario::new("limited", vec![Step::error(429, "slow down")]),
        Scenario::new("cut", vec![Step::CutStream(true)]),
    ];
    MockModel::start(MockConfig::with_scenarios(scenarios))
        .await
        .expect("mock")
}

async fn gateway(upstream: Upstream) -> (Gateway, UnboundedReceiver<ModelCall>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    Gateway::start(listener, upstream).await.expect("gateway")
}

fn responses_body(scenario: &str) -> serde_json::Value {
    serde_json::json!({
        "model": "gpt-5.5",
        "stream": true,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": format!("[[scenario:{scenario}]] hi")}]}],
    })
}

async fn post(url: &str, token: &str, body: &serde_json::Value) -> reqwest::Response {
    client()
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn a_streamed_call_is_forwarded_with_the_real_key_and_metered_from_the_provider() {
    let mock = mock().await;
    let (gw, mut calls) = gateway(Upstream {
        kind: UpstreamKind::Mock,
        base_url: mock.base_url(),
        api_key: Some(KEY.into()),
    })
    .await;
    let access = gw.grant("TAKT-1#1", "task-1", Some("gpt-5.5".into()));
    assert!(access.token.starts_with("takt-run-"));
    let via_gateway = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &responses_body("metered"),
    )
    .await;
    assert_eq!(via_gateway.status(), 200);
    assert!(
        via_gateway.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = via_gateway.text().await.expect("body");
    assert!(text.contains("hello from the model"));
    assert!(text.contains("response.completed"));

    let call = calls.recv().await.expect("a metered call");
    assert_eq!(
        call.grant.as_ref().map(|g| g.run_id.as_str()),
        Some("TAKT-1#1")
    );
    assert_eq!(call.api, Api::Responses);
    assert_eq!(call.status, 200);
    assert_eq!(call.usage.input_tokens, 1200);
    assert_eq!(call.usage.output_tokens, 80);
    assert_eq!(call.usage.cached_input_tokens, 200);
    assert_eq!(call.usage.reasoning_tokens, 12);
    assert!(call.usage.reported);

    // The provider saw the real key, never the run token.
    let seen = mock.requests();
    let auth = seen
        .last()
        .and_then(|r| r.header("authorization"))
        .unwrap_or_default()
        .to_owned();
    assert!(auth.starts_with("Bearer sk-rea"), "{auth}");
    assert!(!seen.iter().any(|r| {
        r.header("authorization")
            .is_some_and(|a| a.contains("takt-run"))
    }));
}

#[tokio::test]
async fn anthropic_upstreams_get_x_api_key_and_messages_are_metered() {
    let mock = mock().await;
    let (gw, mut calls) = gateway(Upstream {
        kind: UpstreamKind::Anthropic,
        base_url: mock.base_url(),
        api_key: Some(KEY.into()),
    })
    .await;
    let access = gw.grant("TAKT-2#1", "task-2", None);
    let response = client()
        .post(format!(
            "{}/v1/messages?beta=true",
            access.anthropic_base_url
        ))
        .header("x-api-key", &access.token)
        .header("anthropic-version", "2023-06-01")
        .json(&serde_json::json!({
            "model": "claude", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "[[scenario:metered]] hi"}],
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(text.contains("event: message_stop"));
    let call = calls.recv().await.expect("call");
    assert_eq!(call.api, Api::Messages);
    assert_eq!(call.usage.output_tokens, 80);
    let seen = mock.requests();
    let last = seen.last().expect("request");
    assert!(
        last.header("x-api-key")
            .is_some_and(|k| k.starts_with("sk-rea"))
    );
    assert!(last.header("anthropic-version").is_some());
    // An OpenAI-only route is refused for an Anthropic upstream, not forwarded.
    let wrong = post(
        &format!("{}/chat/completions", access.openai_base_url),
        &access.token,
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(wrong.status(), 400);
}

#[tokio::test]
async fn forged_missing_and_revoked_tokens_are_refused_and_reported() {
    let mock = mock().await;
    let (gw, mut calls) = gateway(Upstream {
        kind: UpstreamKind::Mock,
        base_url: mock.base_url(),
        api_key: Some(KEY.into()),
    })
    .await;
    let access = gw.grant("TAKT-3#1", "task-3", None);
    let forged = post(
        &format!("{}/responses", access.openai_base_url),
        "takt-run-forged",
        &responses_body("metered"),
    )
    .await;
    assert_eq!(forged.status(), 401);
    let refused = calls.recv().await.expect("refusal reported");
    assert_eq!(refused.status, 401);
    assert!(refused.grant.is_none());
    assert!(refused.refused.is_some());

    gw.revoke("TAKT-3#1");
    let revoked = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &responses_body("metered"),
    )
    .await;
    assert_eq!(revoked.status(), 401);
    let missing = client()
        .post(format!("{}/responses", access.openai_base_url))
        .json(&responses_body("metered"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 401);
    assert!(
        mock.requests().is_empty(),
        "nothing refused reached the provider"
    );
}

#[tokio::test]
async fn provider_errors_pass_through_with_retry_after_and_cut_streams_are_flagged() {
    let mock = mock().await;
    let (gw, mut calls) = gateway(Upstream {
        kind: UpstreamKind::Mock,
        base_url: mock.base_url(),
        api_key: None,
    })
    .await;
    let access = gw.grant("TAKT-4#1", "task-4", None);
    let limited = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &responses_body("limited"),
    )
    .await;
    assert_eq!(limited.status(), 429);
    let call = calls.recv().await.expect("call");
    assert_eq!(call.status, 429);

    let cut = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &responses_body("cut"),
    )
    .await;
    let _ = cut.text().await;
    let call = calls.recv().await.expect("call");
    assert!(
        !call.usage.reported,
        "a stream cut before its usage is flagged as unmetered"
    );
}
