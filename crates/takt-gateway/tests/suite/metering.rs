//! Metering beyond the happy path: price overrides, unpriced models, streams cut midway, and
//! providers that report no usage.

use std::collections::BTreeMap;

use takt_gateway::{GatewayConfig, ModelPrice, PriceTable, Upstream, UpstreamKind};
use takt_mock_model::{Scenario, Step, UsageSpec};

use super::{
    KEY, call, client, config, fixed_usage, gateway, gateway_with, mock, mock_upstream, next,
};

#[tokio::test]
async fn the_cost_comes_from_an_override_and_an_unpriced_model_has_none() {
    let mock = mock(vec![
        Scenario::new("metered", vec![Step::text("ok")]).with_usage(fixed_usage()),
    ])
    .await;
    let overrides = BTreeMap::from([(
        "local-coder".to_owned(),
        ModelPrice {
            input: 1.0,
            cached_input: Some(0.5),
            output: 10.0,
            cache_write: None,
        },
    )]);
    let (gw, mut calls) = gateway_with(
        mock_upstream(&mock),
        GatewayConfig {
            prices: PriceTable::with_overrides(&overrides).expect("prices"),
            ..config()
        },
    )
    .await;
    let access = gw.grant("R#1", "t", None);
    // A dated variant of the overridden name: 1000 × $1 + 200 × $0.50 + 80 × $10 per million.
    assert_eq!(
        call(&access, "metered", "local-coder-2026-01-01").await.0,
        200
    );
    let priced = next(&mut calls).await;
    assert_eq!(priced.cost_micros, Some(1_000 + 100 + 800));

    assert_eq!(call(&access, "metered", "some-unknown-model").await.0, 200);
    let unpriced = next(&mut calls).await;
    assert_eq!(unpriced.usage.total(), 1_280, "tokens are still metered");
    assert_eq!(unpriced.cost_micros, None, "unpriced, not free");

    // Prices reload live.
    let overrides = BTreeMap::from([(
        "some-unknown-model".to_owned(),
        ModelPrice {
            input: 2.0,
            cached_input: None,
            output: 2.0,
            cache_write: None,
        },
    )]);
    gw.set_prices(PriceTable::with_overrides(&overrides).expect("prices"));
    assert_eq!(call(&access, "metered", "some-unknown-model").await.0, 200);
    assert_eq!(next(&mut calls).await.cost_micros, Some(2 * 1_280));
}

#[tokio::test]
async fn a_stream_cut_midway_is_metered_with_what_the_provider_reported() {
    let mock = mock(vec![
        Scenario::new("cut", vec![Step::CutStream(true)]).with_usage(fixed_usage()),
    ])
    .await;
    let (gw, mut calls) = gateway(Upstream {
        kind: UpstreamKind::Anthropic,
        base_url: mock.base_url(),
        api_key: Some(KEY.into()),
    })
    .await;
    let access = gw.grant("R#1", "t", None);
    let response = client()
        .post(format!("{}/v1/messages", access.anthropic_base_url))
        .header("x-api-key", &access.token)
        .json(&serde_json::json!({
            "model": "claude-haiku-4-5", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "[[scenario:cut]] hi"}],
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    // The body ends with an error: the provider dropped the connection.
    let received = response.bytes().await;
    let call = next(&mut calls).await;
    // message_start reported the input (1200 fresh + 200 cache reads); the output never came
    // and is estimated from the bytes that did.
    assert_eq!(call.usage.input_tokens, 1_400);
    assert_eq!(call.usage.cached_input_tokens, 200);
    assert!(
        call.usage.reported,
        "the provider's own input figure is kept"
    );
    assert!(
        call.usage.estimated,
        "the missing output is estimated and flagged"
    );
    assert!(
        call.usage.output_tokens > 1,
        "more than message_start's placeholder"
    );
    if let Ok(bytes) = received {
        assert!(call.usage.output_tokens >= (bytes.len() as u64).div_ceil(4));
    }
    assert!(call.cost_micros.is_some_and(|cost| cost > 0));
}

#[tokio::test]
async fn a_provider_that_omits_usage_is_metered_by_estimate_and_flagged() {
    let mock = mock(vec![
        Scenario::new("quiet", vec![Step::text("an answer with no usage")]).with_usage(UsageSpec {
            omit: true,
            ..UsageSpec::default()
        }),
    ])
    .await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("R#1", "t", None);
    let body = serde_json::json!({
        "model": "gpt-5",
        "stream": false,
        "messages": [{"role": "user", "content": format!("[[scenario:quiet]] {}", "x".repeat(4_000))}],
    });
    let response = super::post(
        &format!("{}/chat/completions", access.openai_base_url),
        &access.token,
        &body,
    )
    .await;
    assert_eq!(response.status(), 200);
    let received = response.bytes().await.expect("body");
    let answer: serde_json::Value = serde_json::from_slice(&received).expect("json");
    assert!(
        answer.get("usage").is_none(),
        "the provider really reported nothing"
    );
    let call = next(&mut calls).await;
    let request_bytes = serde_json::to_vec(&body).expect("json").len() as u64;
    assert_eq!(call.usage.input_tokens, request_bytes.div_ceil(4));
    assert_eq!(
        call.usage.output_tokens,
        (received.len() as u64).div_ceil(4)
    );
    assert!(call.usage.estimated && !call.usage.reported);
    assert_eq!(call.model.as_deref(), Some("gpt-5"));
    assert!(call.cost_micros.is_some_and(|cost| cost > 0));
}

#[tokio::test]
async fn a_responses_stream_cut_before_its_usage_is_estimated() {
    let mock = mock(vec![Scenario::new("cut", vec![Step::CutStream(true)])]).await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("R#1", "t", None);
    let (status, _) = call(&access, "cut", "gpt-5").await;
    assert_eq!(status, 200);
    let cut = next(&mut calls).await;
    assert!(cut.usage.estimated && !cut.usage.reported);
    assert!(cut.usage.input_tokens > 0 && cut.usage.output_tokens > 0);
    assert!(cut.cost_micros.is_some_and(|cost| cost > 0));
}

#[tokio::test]
async fn error_statuses_use_no_tokens() {
    let mock = mock(vec![Scenario::new(
        "bad",
        vec![Step::error(400, "bad request")],
    )])
    .await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("R#1", "t", None);
    assert_eq!(call(&access, "bad", "gpt-5").await.0, 400);
    let call = next(&mut calls).await;
    assert_eq!(call.usage.total(), 0);
    assert!(!call.usage.estimated);
    assert_eq!(call.cost_micros, Some(0));
    assert_eq!(call.attempts, 1, "a client error is not retried");

    // A model list is not a model turn: nothing is estimated for it.
    let models = client()
        .get(format!("{}/models", access.openai_base_url))
        .bearer_auth(&access.token)
        .send()
        .await
        .expect("request");
    assert_eq!(models.status(), 200);
    let _ = models.bytes().await;
    let listed = next(&mut calls).await;
    assert_eq!(listed.api, takt_gateway::Api::Other);
    assert_eq!((listed.usage.total(), listed.usage.estimated), (0, false));
}
