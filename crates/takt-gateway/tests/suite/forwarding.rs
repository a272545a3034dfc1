//! Forwarding and key custody: the provider sees the real key, the agent only its run token;
//! forged, revoked and missing tokens and other paths are refused and reported.

use takt_gateway::{Api, Upstream, UpstreamKind};
use takt_mock_model::{Scenario, Step};

use super::{
    KEY, call, client, fixed_usage, gateway, mock, mock_upstream, next, post, responses_body,
};

fn metered() -> Scenario {
    Scenario::new("metered", vec![Step::text("hello from the model")]).with_usage(fixed_usage())
}

#[tokio::test]
async fn a_streamed_call_is_forwarded_with_the_real_key_metered_and_priced() {
    let mock = mock(vec![metered()]).await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("TAKT-1#1", "task-1", Some("gpt-5.5".into()));
    assert!(access.token.starts_with("takt-run-"));
    let via_gateway = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &responses_body("metered", "gpt-5.5"),
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

    let call = next(&mut calls).await;
    assert_eq!(
        call.grant.as_ref().map(|g| g.run_id.as_str()),
        Some("TAKT-1#1")
    );
    assert_eq!(call.api, Api::Responses);
    assert_eq!(call.status, 200);
    assert_eq!(call.model.as_deref(), Some("gpt-5.5"));
    assert_eq!(call.usage.input_tokens, 1200);
    assert_eq!(call.usage.output_tokens, 80);
    assert_eq!(call.usage.cached_input_tokens, 200);
    assert_eq!(call.usage.reasoning_tokens, 12);
    assert!(call.usage.reported && !call.usage.estimated);
    // gpt-5.5 from the built-in table: 1000 fresh × $5 + 200 cached × $0.50 + 80 out × $30
    // per million = 5000 + 100 + 2400 micro-dollars.
    assert_eq!(call.cost_micros, Some(7_500));
    assert_eq!(call.attempts, 1);
    assert_eq!(call.exhausted, None);
    assert!(call.refused.is_none());

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
    let mock = mock(vec![metered()]).await;
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
            "model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "[[scenario:metered]] hi"}],
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    assert!(text.contains("event: message_stop"));
    let call = next(&mut calls).await;
    assert_eq!(call.api, Api::Messages);
    assert_eq!(call.usage.output_tokens, 80);
    // Anthropic counts cache reads apart from `input_tokens`: 1200 fresh + 200 read.
    assert_eq!(call.usage.input_tokens, 1_400);
    assert_eq!(call.model.as_deref(), Some("claude-sonnet-4-5"));
    // 1200 fresh × $3 + 200 cache reads × $0.30 + 80 × $15 per million.
    assert_eq!(call.cost_micros, Some(3_600 + 60 + 1_200));
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
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn forged_missing_and_revoked_tokens_and_other_paths_are_refused_and_reported() {
    let mock = mock(vec![metered()]).await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("TAKT-3#1", "task-3", None);
    let forged = post(
        &format!("{}/responses", access.openai_base_url),
        "takt-run-forged",
        &responses_body("metered", "gpt-5"),
    )
    .await;
    assert_eq!(forged.status(), 401);
    let body: serde_json::Value = forged.json().await.expect("json");
    assert_eq!(body["error"]["type"], "authentication_error");
    let refused = next(&mut calls).await;
    assert_eq!(refused.status, 401);
    assert!(refused.grant.is_none());
    assert!(refused.refused.is_some());
    assert_eq!(refused.attempts, 0);

    // A valid token on a path that is not a model API.
    for path in ["/admin", "/v2/responses", "/"] {
        let other = post(
            &format!("http://{}{path}", gw.addr()),
            &access.token,
            &serde_json::json!({}),
        )
        .await;
        assert_eq!(other.status(), 404, "{path}");
        let reported = next(&mut calls).await;
        assert_eq!(reported.status, 404);
        assert_eq!(
            reported.grant.as_ref().map(|g| g.run_id.as_str()),
            Some("TAKT-3#1")
        );
    }

    // The token works while the run lives, and never again after it ends.
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 200);
    assert_eq!(next(&mut calls).await.status, 200);
    gw.revoke("TAKT-3#1");
    let (status, body) = call(&access, "metered", "gpt-5").await;
    assert_eq!(status, 401, "{body}");
    let reused = next(&mut calls).await;
    assert_eq!((reused.status, reused.grant), (401, None));
    let missing = client()
        .post(format!("{}/responses", access.openai_base_url))
        .json(&responses_body("metered", "gpt-5"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 401);
    assert_eq!(
        mock.requests().len(),
        1,
        "only the one authorized call reached the provider"
    );
}
