//! The webhooks: a signed GitHub delivery triggers once and its replay is refused; a generic
//! delivery creates exactly one task; every refusal reaches the daemon's journal; a hook that
//! is not configured does not exist.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use takt_server::{ServerConfig, WebhookDelivery};

use super::{FakeDaemon, Server, TOKEN, expect_error};

const SECRET: &str = "It's a Secret to Everybody";
const HOOK_TOKEN: &str = "hook-token-9876543210";
const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";

/// A server with both hooks and an API token (which the hooks must not need).
async fn hooked() -> Server {
    let config = ServerConfig {
        github_webhook_secret: Some(SECRET.into()),
        generic_webhook_token: Some(HOOK_TOKEN.into()),
        ..ServerConfig::with_token(Some(TOKEN.into()))
    };
    Server::start_with_config(FakeDaemon::fixture(), config).await
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn issues_opened() -> Vec<u8> {
    json!({
        "action": "opened",
        "issue": {"number": 7, "title": "Crash on start", "state": "open", "labels": []},
        "repository": {"id": 1, "full_name": "acme/app"},
        "sender": {"login": "ada"}
    })
    .to_string()
    .into_bytes()
}

/// POSTs a GitHub delivery; `signature` None sends no signature header.
async fn deliver(
    server: &Server,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/hooks/github"))
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/abc")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.send().await.unwrap()
}

fn refusals(server: &Server) -> Vec<super::fake::Refusal> {
    server.daemon.calls.lock().unwrap().refusals.clone()
}

#[tokio::test]
async fn a_signed_delivery_triggers_once_and_its_replay_is_a_journaled_409() {
    let server = hooked().await;
    let body = issues_opened();
    let response = deliver(
        &server,
        "issues",
        DELIVERY,
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"ok": true, "duplicate": false}));
    {
        let calls = server.daemon.calls.lock().unwrap();
        assert_eq!(calls.refreshes, 1, "the trigger polls now");
        let [WebhookDelivery::Trigger(trigger)] = calls.webhooks.as_slice() else {
            panic!("one trigger: {:?}", calls.webhooks);
        };
        assert_eq!(trigger.source, "github");
        assert_eq!(trigger.delivery, DELIVERY);
        assert_eq!(trigger.event, "issues");
        assert_eq!(trigger.action.as_deref(), Some("opened"));
        assert_eq!(trigger.repository.as_deref(), Some("acme/app"));
        assert_eq!(trigger.number, Some(7));
        assert_eq!(trigger.title.as_deref(), Some("Crash on start"));
        assert!(calls.refusals.is_empty());
    }

    let replay = deliver(
        &server,
        "issues",
        DELIVERY,
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    let message = expect_error(replay, StatusCode::CONFLICT, "duplicate_delivery").await;
    assert!(message.contains(DELIVERY), "{message}");
    let calls = server.daemon.calls.lock().unwrap();
    assert_eq!(calls.webhooks.len(), 1, "the replay did nothing");
    assert_eq!(calls.refreshes, 1);
    assert_eq!(calls.refusals.len(), 1);
    assert_eq!(calls.refusals[0].source, "github");
    assert_eq!(calls.refusals[0].delivery.as_deref(), Some(DELIVERY));
    assert!(calls.refusals[0].reason.contains("already accepted"));
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_a_journaled_401() {
    let server = hooked().await;
    let body = issues_opened();
    let wrong_secret = deliver(&server, "issues", "d-1", &body, Some(sign("guess", &body))).await;
    let message = expect_error(wrong_secret, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("does not match"), "{message}");
    // Signed, then altered in transit.
    let mut altered = body.clone();
    altered.extend_from_slice(b" ");
    let tampered = deliver(
        &server,
        "issues",
        "d-2",
        &altered,
        Some(sign(SECRET, &body)),
    )
    .await;
    expect_error(tampered, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let unsigned = deliver(&server, "issues", "d-3", &body, None).await;
    let message = expect_error(unsigned, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("X-Hub-Signature-256"), "{message}");
    let garbled = deliver(&server, "issues", "d-4", &body, Some("sha1=abc".into())).await;
    expect_error(garbled, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let refused = refusals(&server);
    let deliveries: Vec<Option<&str>> = refused.iter().map(|r| r.delivery.as_deref()).collect();
    assert_eq!(
        deliveries,
        [Some("d-1"), Some("d-2"), Some("d-3"), Some("d-4")]
    );
    assert!(refused.iter().all(|refusal| refusal.source == "github"));
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.webhooks.is_empty() && calls.refreshes == 0);
}

#[tokio::test]
async fn a_malformed_body_or_a_missing_header_is_a_journaled_400() {
    let server = hooked().await;
    let garbage = b"{\"action\": \"opened\", \"issue\": ".to_vec();
    let response = deliver(
        &server,
        "issues",
        "d-1",
        &garbage,
        Some(sign(SECRET, &garbage)),
    )
    .await;
    let message = expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("issues"), "{message}");
    let no_action = br#"{"issue": {"number": 1}}"#.to_vec();
    let response = deliver(
        &server,
        "issues",
        "d-2",
        &no_action,
        Some(sign(SECRET, &no_action)),
    )
    .await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;

    let body = issues_opened();
    let no_delivery = server
        .client
        .post(server.url("/hooks/github"))
        .header("x-github-event", "issues")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let message = expect_error(no_delivery, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("x-github-delivery"), "{message}");
    let no_event = server
        .client
        .post(server.url("/hooks/github"))
        .header("x-github-delivery", "d-4")
        .header("x-hub-signature-256", sign(SECRET, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    expect_error(no_event, StatusCode::BAD_REQUEST, "invalid_request").await;

    let refused = refusals(&server);
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert_eq!(refused[0].delivery.as_deref(), Some("d-1"));
    assert!(refused[0].reason.contains("not a valid"), "{refused:?}");
    assert_eq!(refused[2].delivery, None);
    assert!(server.daemon.calls.lock().unwrap().webhooks.is_empty());
}

#[tokio::test]
async fn an_oversized_body_is_a_journaled_413() {
    let server = hooked().await;
    let body = vec![b' '; 1024 * 1024 + 1];
    let response = deliver(&server, "issues", "d-big", &body, Some(sign(SECRET, &body))).await;
    expect_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    let refused = refusals(&server);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].delivery.as_deref(), Some("d-big"));
}

#[tokio::test]
async fn ping_pongs_and_other_events_are_ignored_without_the_daemon() {
    let server = hooked().await;
    let ping = br#"{"zen": "Design for failure.", "hook_id": 1}"#.to_vec();
    let response = deliver(&server, "ping", "d-ping", &ping, Some(sign(SECRET, &ping))).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": true, "pong": true})
    );
    let push = br#"{"ref": "refs/heads/main"}"#.to_vec();
    let response = deliver(&server, "push", "d-push", &push, Some(sign(SECRET, &push))).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": true, "ignored": "push"})
    );
    let assigned = br#"{"action": "assigned", "issue": {"number": 7}}"#.to_vec();
    let response = deliver(
        &server,
        "issues",
        "d-assigned",
        &assigned,
        Some(sign(SECRET, &assigned)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap()["ignored"],
        "issues.assigned"
    );
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.webhooks.is_empty() && calls.refusals.is_empty() && calls.refreshes == 0);
}

#[tokio::test]
async fn a_form_encoded_delivery_is_read_from_its_payload_field() {
    let server = hooked().await;
    let json = String::from_utf8(issues_opened()).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json)
        .finish();
    let response = server
        .client
        .post(server.url("/hooks/github"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "d-form")
        .header("x-hub-signature-256", sign(SECRET, form.as_bytes()))
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(server.daemon.calls.lock().unwrap().webhooks.len(), 1);
}

#[tokio::test]
async fn an_unconfigured_hook_does_not_exist() {
    let server = Server::start().await;
    let body = issues_opened();
    let response = deliver(
        &server,
        "issues",
        DELIVERY,
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let generic = server
        .client
        .post(server.url("/hooks/generic"))
        .bearer_auth(HOOK_TOKEN)
        .header("idempotency-key", "k-1")
        .json(&json!({"title": "t"}))
        .send()
        .await
        .unwrap();
    expect_error(generic, StatusCode::NOT_FOUND, "not_found").await;
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.webhooks.is_empty() && calls.refusals.is_empty());
}

#[tokio::test]
async fn a_hook_takes_only_post() {
    let server = hooked().await;
    expect_error(
        server.get("/hooks/github").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

/// POSTs `body` to the generic hook with `token` and an `Idempotency-Key` of `key`.
async fn generic(
    server: &Server,
    token: Option<&str>,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = server.client.post(server.url("/hooks/generic")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_generic_delivery_creates_exactly_one_task_and_its_replay_is_409() {
    let server = hooked().await;
    let body = json!({"title": "  Nightly build failed ", "body": "see CI", "priority": 2,
        "labels": ["ci", " "]});
    let response = generic(&server, Some(HOOK_TOKEN), Some("build-41"), &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["ok"], true);
    assert_eq!(answer["duplicate"], false);
    assert_eq!(answer["task"]["title"], "Nightly build failed");
    let identifier = answer["task"]["identifier"].as_str().unwrap().to_owned();
    {
        let calls = server.daemon.calls.lock().unwrap();
        assert_eq!(calls.created.len(), 1);
        assert_eq!(calls.created[0].author, "webhook:generic");
        assert_eq!(calls.created[0].labels, ["ci"]);
        assert_eq!(calls.created[0].priority, Some(2));
        let [
            WebhookDelivery::Task {
                delivery, source, ..
            },
        ] = calls.webhooks.as_slice()
        else {
            panic!("one task delivery: {:?}", calls.webhooks);
        };
        assert_eq!(
            (delivery.as_str(), source.as_str()),
            ("build-41", "generic")
        );
    }
    let task = server
        .get_json(&format!("/api/v1/tasks/{identifier}"))
        .await;
    assert_eq!(task["state"], "queued");

    let replay = generic(&server, Some(HOOK_TOKEN), Some("build-41"), &body).await;
    expect_error(replay, StatusCode::CONFLICT, "duplicate_delivery").await;
    // The other delivery id header works too, and names the same delivery.
    let alternative = server
        .client
        .post(server.url("/hooks/generic"))
        .bearer_auth(HOOK_TOKEN)
        .header("x-delivery-id", "build-41")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(alternative, StatusCode::CONFLICT, "duplicate_delivery").await;
    let calls = server.daemon.calls.lock().unwrap();
    assert_eq!(calls.created.len(), 1, "no second task");
    assert_eq!(calls.refusals.len(), 2);
    assert!(
        calls
            .refusals
            .iter()
            .all(|r| r.source == "generic" && r.delivery.as_deref() == Some("build-41"))
    );
}

#[tokio::test]
async fn the_generic_hook_needs_its_own_token_and_a_delivery_id() {
    let server = hooked().await;
    let body = json!({"title": "t"});
    for token in [None, Some("wrong"), Some(TOKEN)] {
        let response = generic(&server, token, Some("k-1"), &body).await;
        expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let message = expect_error(
        generic(&server, Some(HOOK_TOKEN), None, &body).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(message.contains("idempotency-key"), "{message}");
    let refused = refusals(&server);
    assert_eq!(refused.len(), 4);
    assert_eq!(refused[0].delivery.as_deref(), Some("k-1"));
    assert_eq!(refused[3].delivery, None);
    assert!(server.daemon.calls.lock().unwrap().created.is_empty());
}

#[tokio::test]
async fn a_bad_generic_body_is_a_journaled_400_and_creates_nothing() {
    let server = hooked().await;
    for (key, body) in [
        ("k-1", json!({"title": "   "})),
        ("k-2", json!({})),
        ("k-3", json!({"title": "t", "priority": 7})),
        ("k-4", json!({"title": "t", "blocked_by": ["TAKT-1"]})),
        ("k-5", json!("a string")),
    ] {
        let response = generic(&server, Some(HOOK_TOKEN), Some(key), &body).await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let refused = refusals(&server);
    assert_eq!(refused.len(), 5);
    assert!(refused[0].reason.contains("title"), "{refused:?}");
    assert!(server.daemon.calls.lock().unwrap().created.is_empty());
    // A refused delivery id is not used up: the fixed request goes through.
    let fixed = generic(
        &server,
        Some(HOOK_TOKEN),
        Some("k-1"),
        &json!({"title": "t"}),
    )
    .await;
    assert_eq!(fixed.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_delivery_the_daemon_could_not_take_can_be_redelivered() {
    let server = hooked().await;
    let body = issues_opened();
    server.daemon.set_available(false);
    let response = deliver(
        &server,
        "issues",
        DELIVERY,
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    expect_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "orchestrator_unavailable",
    )
    .await;
    assert!(refusals(&server).is_empty(), "not a refusal");
    server.daemon.set_available(true);
    let response = deliver(
        &server,
        "issues",
        DELIVERY,
        &body,
        Some(sign(SECRET, &body)),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_blank_webhook_secret_is_refused_at_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        github_webhook_secret: Some("  ".into()),
        ..ServerConfig::default()
    };
    let result = takt_server::serve(
        listener,
        std::sync::Arc::new(FakeDaemon::fixture()),
        config,
        std::future::pending(),
    )
    .await;
    assert!(matches!(
        result,
        Err(takt_server::ServerError::BlankWebhookSecret { hook: "github" })
    ));
}
