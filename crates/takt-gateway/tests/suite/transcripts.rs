//! Transcripts: the bodies as the agent sent and received them, without the provider key, the
//! run token or registered secrets; capped and marked truncated.

use takt_gateway::{GatewayConfig, TranscriptPolicy};
use takt_mock_model::{Scenario, Step};

use super::{KEY, config, fixed_usage, gateway, gateway_with, mock, mock_upstream, next, post};

const TRACKER_TOKEN: &str = "ghp_trackertoken0123456789";

fn leaky() -> Scenario {
    Scenario::new(
        "leaky",
        vec![Step::text(format!(
            "reply text; I found {KEY} in the environment"
        ))],
    )
    .with_usage(fixed_usage())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn the_transcript_holds_both_bodies_without_any_secret() {
    let mock = mock(vec![leaky()]).await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    gw.add_secret(TRACKER_TOKEN);
    let access = gw.grant("R#1", "t", None);
    let body = serde_json::json!({
        "model": "gpt-5",
        "stream": true,
        "input": [{"role": "user", "content": [{"type": "input_text", "text": format!(
            "[[scenario:leaky]] env: OPENAI_API_KEY={} TOKEN={} GH={TRACKER_TOKEN}", KEY, access.token
        )}]}],
    });
    let response = post(
        &format!("{}/responses", access.openai_base_url),
        &access.token,
        &body,
    )
    .await;
    let received = response.bytes().await.expect("body");
    let call = next(&mut calls).await;
    let transcript = call.transcript.expect("a transcript");
    assert!(!transcript.request_truncated && !transcript.response_truncated);
    assert!(contains(
        &transcript.request,
        "[[scenario:leaky]] env: OPENAI_API_KEY=[REDACTED] TOKEN=[REDACTED] GH=[REDACTED]"
    ));
    assert!(contains(
        &transcript.response,
        "reply text; I found [REDACTED] in the environment"
    ));
    assert!(contains(&transcript.response, "response.completed"));
    for secret in [KEY, access.token.as_str(), TRACKER_TOKEN] {
        assert!(
            !contains(&transcript.request, secret),
            "request holds {secret}"
        );
        assert!(
            !contains(&transcript.response, secret),
            "response holds {secret}"
        );
    }
    // Only the secrets changed: the response transcript is what the agent got, redacted.
    let expected = String::from_utf8_lossy(&received).replace(KEY, "[REDACTED]");
    assert_eq!(String::from_utf8_lossy(&transcript.response), expected);
    // Headers are never stored: the transcript is bodies only.
    assert!(!contains(&transcript.request, "Bearer"));
}

#[tokio::test]
async fn transcripts_are_capped_and_can_be_turned_off() {
    let mock = mock(vec![leaky()]).await;
    let (gw, mut calls) = gateway_with(
        mock_upstream(&mock),
        GatewayConfig {
            transcripts: TranscriptPolicy {
                enabled: true,
                max_bytes: 100,
            },
            ..config()
        },
    )
    .await;
    let access = gw.grant("R#1", "t", None);
    let _ = super::call(&access, "leaky", "gpt-5").await;
    let transcript = next(&mut calls).await.transcript.expect("a transcript");
    assert!(transcript.request_truncated && transcript.response_truncated);
    assert!(transcript.request.len() <= 100 && transcript.response.len() <= 100);
    assert!(contains(&transcript.request, "\"model\""));

    let (gw, mut calls) = gateway_with(
        mock_upstream(&mock),
        GatewayConfig {
            transcripts: TranscriptPolicy {
                enabled: false,
                max_bytes: 100,
            },
            ..config()
        },
    )
    .await;
    let access = gw.grant("R#1", "t", None);
    let _ = super::call(&access, "leaky", "gpt-5").await;
    assert_eq!(next(&mut calls).await.transcript, None);
}
