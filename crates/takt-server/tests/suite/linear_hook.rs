//! `POST /hooks/linear`: a signed, fresh Linear delivery triggers once and its replay is
//! refused; a stale or mis-signed one is refused; every refusal reaches the daemon's journal;
//! an unconfigured hook does not exist.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use takt_server::{ServerConfig, WebhookDelivery};

use super::{FakeDaemon, Server, TOKEN, expect_error};

const SECRET: &str = "lin_wh_signing_secret_0123456789";
const DELIVERY: &str = "234d1a4e-b617-4388-90fe-adc3633d6b72";

/// A server with the Linear hook and an API token (which the hook must not need).
async fn hooked() -> Server {
    let config = ServerConfig {
        linear_webhook_secret: Some(SECRET.into()),
        ..ServerConfig::with_token(Some(TOKEN.into()))
    };
    Server::start_with_config(FakeDaemon::fixture(), config).await
}

/// Hex HMAC-SHA256, as Linear sends it in `Linear-Signature`.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since_epoch.as_millis()).unwrap()
}

/// A Linear delivery of `kind` sent at `sent_ms`.
fn payload(kind: &str, sent_ms: i64) -> Vec<u8> {
    json!({
        "action": "update",
        "type": kind,
        "actor": {"id": "u-1", "name": "Ada"},
        "createdAt": "2026-04-30T12:00:00.000Z",
        "data": {"id": "9cfb482a", "number": 42, "identifier": "ENG-42", "title": "Crash on start"},
        "url": "https://linear.app/acme/issue/ENG-42",
        "organizationId": "org-1",
        "webhookId": "wh-1",
        "webhookTimestamp": sent_ms
    })
    .to_string()
    .into_bytes()
}

/// POSTs a Linear delivery; `signature` None sends no signature, `delivery` None no
/// `Linear-Delivery`.
async fn deliver(
    server: &Server,
    delivery: Option<&str>,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/hooks/linear"))
        .header("content-type", "application/json; charset=utf-8")
        .header("user-agent", "Linear-Webhook")
        .header("linear-event", "Issue")
        .body(body.to_vec());
    if let Some(delivery) = delivery {
        request = request.header("linear-delivery", delivery);
    }
    if let Some(signature) = signature {
        request = request.header("linear-signature", signature);
    }
    request.send().await.unwrap()
}

fn refusals(server: &Server) -> Vec<super::fake::Refusal> {
    server.daemon.calls.lock().unwrap().refusals.clone()
}

#[tokio::test]
async fn a_signed_fresh_delivery_triggers_once_and_its_replay_is_a_journaled_409() {
    let server = hooked().await;
    let body = payload("Issue", now_ms());
    let response = deliver(&server, Some(DELIVERY), &body, Some(sign(SECRET, &body))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"ok": true, "duplicate": false}));
    {
        let calls = server.daemon.calls.lock().unwrap();
        assert_eq!(calls.refreshes, 1, "the trigger polls now");
        let [WebhookDelivery::Trigger(trigger)] = calls.webhooks.as_slice() else {
            panic!("one trigger: {:?}", calls.webhooks);
        };
        assert_eq!(trigger.source, "linear");
        assert_eq!(trigger.delivery, DELIVERY);
        assert_eq!(trigger.event, "Issue");
        assert_eq!(trigger.action.as_deref(), Some("update"));
        assert_eq!(trigger.number, Some(42));
        assert_eq!(trigger.title.as_deref(), Some("Crash on start"));
        assert!(calls.refusals.is_empty());
    }

    // Sent again within the minute, with a still valid signature.
    let replay = deliver(&server, Some(DELIVERY), &body, Some(sign(SECRET, &body))).await;
    let message = expect_error(replay, StatusCode::CONFLICT, "duplicate_delivery").await;
    assert!(message.contains(DELIVERY), "{message}");
    let calls = server.daemon.calls.lock().unwrap();
    assert_eq!(calls.webhooks.len(), 1, "the replay did nothing");
    assert_eq!(calls.refreshes, 1);
    assert_eq!(calls.refusals.len(), 1);
    assert_eq!(calls.refusals[0].source, "linear");
    assert_eq!(calls.refusals[0].delivery.as_deref(), Some(DELIVERY));
}

#[tokio::test]
async fn a_wrong_missing_or_misplaced_signature_is_a_journaled_401() {
    let server = hooked().await;
    let body = payload("Issue", now_ms());
    let wrong_secret = deliver(&server, Some("d-1"), &body, Some(sign("guess", &body))).await;
    let message = expect_error(wrong_secret, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("Linear-Signature"), "{message}");
    // A valid signature of another body (here: the same event with another action).
    let other = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"update\"", "\"remove\"")
        .into_bytes();
    assert_ne!(other, body);
    let swapped = deliver(&server, Some("d-2"), &other, Some(sign(SECRET, &body))).await;
    let message = expect_error(swapped, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("does not match the body"), "{message}");
    let unsigned = deliver(&server, Some("d-3"), &body, None).await;
    expect_error(unsigned, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // GitHub's form of the same digest is not Linear's.
    let prefixed = format!("sha256={}", sign(SECRET, &body));
    let garbled = deliver(&server, Some("d-4"), &body, Some(prefixed)).await;
    expect_error(garbled, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let refused = refusals(&server);
    let deliveries: Vec<Option<&str>> = refused.iter().map(|r| r.delivery.as_deref()).collect();
    assert_eq!(
        deliveries,
        [Some("d-1"), Some("d-2"), Some("d-3"), Some("d-4")]
    );
    assert!(refused.iter().all(|refusal| refusal.source == "linear"));
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.webhooks.is_empty() && calls.refreshes == 0);
}

#[tokio::test]
async fn a_stale_or_future_delivery_is_a_journaled_replay_refusal() {
    let server = hooked().await;
    // Captured and sent again two minutes later: the signature is still valid.
    let old = payload("Issue", now_ms() - 120_000);
    let response = deliver(&server, Some("d-old"), &old, Some(sign(SECRET, &old))).await;
    let message = expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("webhookTimestamp"), "{message}");
    assert!(message.contains("replay"), "{message}");
    let future = payload("Issue", now_ms() + 120_000);
    let response = deliver(
        &server,
        Some("d-future"),
        &future,
        Some(sign(SECRET, &future)),
    )
    .await;
    expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let undated = json!({"type": "Issue", "action": "create", "data": {}})
        .to_string()
        .into_bytes();
    let response = deliver(
        &server,
        Some("d-undated"),
        &undated,
        Some(sign(SECRET, &undated)),
    )
    .await;
    let message = expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("webhookTimestamp"), "{message}");

    let refused = refusals(&server);
    let deliveries: Vec<Option<&str>> = refused.iter().map(|r| r.delivery.as_deref()).collect();
    assert_eq!(
        deliveries,
        [Some("d-old"), Some("d-future"), Some("d-undated")]
    );
    assert!(refused[0].reason.contains("replay"), "{refused:?}");
    assert!(server.daemon.calls.lock().unwrap().webhooks.is_empty());
    // A fresh delivery of the same event goes through.
    let fresh = payload("Issue", now_ms());
    let response = deliver(&server, Some("d-old"), &fresh, Some(sign(SECRET, &fresh))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_missing_delivery_id_is_a_journaled_400() {
    let server = hooked().await;
    let body = payload("Issue", now_ms());
    let response = deliver(&server, None, &body, Some(sign(SECRET, &body))).await;
    let message = expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("linear-delivery"), "{message}");
    let not_an_object = b"[1]".to_vec();
    let response = deliver(
        &server,
        Some("d-2"),
        &not_an_object,
        Some(sign(SECRET, &not_an_object)),
    )
    .await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let refused = refusals(&server);
    let deliveries: Vec<Option<&str>> = refused.iter().map(|r| r.delivery.as_deref()).collect();
    assert_eq!(deliveries, [None, Some("d-2")]);
    assert!(server.daemon.calls.lock().unwrap().webhooks.is_empty());
}

#[tokio::test]
async fn other_entity_types_are_ignored_without_the_daemon() {
    let server = hooked().await;
    let body = payload("Project", now_ms());
    let response = deliver(&server, Some("d-project"), &body, Some(sign(SECRET, &body))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": true, "ignored": "Project"})
    );
    // A comment is acted on.
    let comment = payload("Comment", now_ms());
    let response = deliver(
        &server,
        Some("d-comment"),
        &comment,
        Some(sign(SECRET, &comment)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let calls = server.daemon.calls.lock().unwrap();
    assert_eq!(calls.webhooks.len(), 1);
    assert_eq!(calls.refreshes, 1);
    assert!(calls.refusals.is_empty());
}

#[tokio::test]
async fn an_unconfigured_linear_hook_does_not_exist() {
    let config = ServerConfig {
        gitlab_webhook_secret: Some(SECRET.into()),
        ..ServerConfig::default()
    };
    for server in [
        Server::start().await,
        Server::start_with_config(FakeDaemon::fixture(), config).await,
    ] {
        let body = payload("Issue", now_ms());
        let response = deliver(&server, Some(DELIVERY), &body, Some(sign(SECRET, &body))).await;
        expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
        let calls = server.daemon.calls.lock().unwrap();
        assert!(calls.webhooks.is_empty() && calls.refusals.is_empty());
    }
}
