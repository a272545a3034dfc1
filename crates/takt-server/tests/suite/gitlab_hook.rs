//! `POST /hooks/gitlab`: a delivery with GitLab's secret token triggers once and its replay is
//! refused; every refusal reaches the daemon's journal; an unconfigured hook does not exist.

use reqwest::StatusCode;
use serde_json::{Value, json};
use takt_server::{ServerConfig, WebhookDelivery};

use super::{FakeDaemon, Server, TOKEN, expect_error};

const SECRET: &str = "gitlab-secret-token-42";
const KEY: &str = "f5e5f430-f57b-4e6e-9fac-d9128cd7232f";

/// A server with the GitLab hook and an API token (which the hook must not need).
async fn hooked() -> Server {
    let config = ServerConfig {
        gitlab_webhook_secret: Some(SECRET.into()),
        ..ServerConfig::with_token(Some(TOKEN.into()))
    };
    Server::start_with_config(FakeDaemon::fixture(), config).await
}

fn issue_opened() -> Vec<u8> {
    json!({
        "object_kind": "issue",
        "event_type": "issue",
        "user": {"username": "ada"},
        "project": {"id": 1, "path_with_namespace": "acme/app"},
        "object_attributes": {"iid": 7, "title": "Crash on start", "action": "open",
            "state": "opened"},
        "labels": []
    })
    .to_string()
    .into_bytes()
}

/// POSTs a GitLab delivery: `token` None sends no `X-Gitlab-Token`; `headers` are the delivery
/// id headers to send.
async fn deliver(
    server: &Server,
    event: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/hooks/gitlab"))
        .header("content-type", "application/json")
        .header("user-agent", "GitLab/17.5.0")
        .header("x-gitlab-event", event)
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.header("x-gitlab-token", token);
    }
    request.send().await.unwrap()
}

fn refusals(server: &Server) -> Vec<super::fake::Refusal> {
    server.daemon.calls.lock().unwrap().refusals.clone()
}

#[tokio::test]
async fn a_delivery_with_the_token_triggers_once_and_its_replay_is_a_journaled_409() {
    let server = hooked().await;
    let body = issue_opened();
    let ids = [("idempotency-key", KEY), ("x-gitlab-event-uuid", "e-1")];
    let response = deliver(&server, "Issue Hook", &ids, &body, Some(SECRET)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer, json!({"ok": true, "duplicate": false}));
    {
        let calls = server.daemon.calls.lock().unwrap();
        assert_eq!(calls.refreshes, 1, "the trigger polls now");
        let [WebhookDelivery::Trigger(trigger)] = calls.webhooks.as_slice() else {
            panic!("one trigger: {:?}", calls.webhooks);
        };
        assert_eq!(trigger.source, "gitlab");
        assert_eq!(
            trigger.delivery, KEY,
            "the idempotency key is the delivery id"
        );
        assert_eq!(trigger.event, "Issue Hook");
        assert_eq!(trigger.action.as_deref(), Some("open"));
        assert_eq!(trigger.repository.as_deref(), Some("acme/app"));
        assert_eq!(trigger.number, Some(7));
        assert_eq!(trigger.title.as_deref(), Some("Crash on start"));
        assert!(calls.refusals.is_empty());
    }

    // GitLab's retry of the same delivery: a new event UUID, the same idempotency key.
    let retry = [("idempotency-key", KEY), ("x-gitlab-event-uuid", "e-2")];
    let replay = deliver(&server, "Issue Hook", &retry, &body, Some(SECRET)).await;
    let message = expect_error(replay, StatusCode::CONFLICT, "duplicate_delivery").await;
    assert!(message.contains(KEY), "{message}");
    let calls = server.daemon.calls.lock().unwrap();
    assert_eq!(calls.webhooks.len(), 1, "the replay did nothing");
    assert_eq!(calls.refreshes, 1);
    assert_eq!(calls.refusals.len(), 1);
    assert_eq!(calls.refusals[0].source, "gitlab");
    assert_eq!(calls.refusals[0].delivery.as_deref(), Some(KEY));
    assert!(calls.refusals[0].reason.contains("already accepted"));
}

#[tokio::test]
async fn without_an_idempotency_key_the_event_uuid_and_the_body_identify_a_delivery() {
    let server = hooked().await;
    let uuid = [(
        "x-gitlab-event-uuid",
        "13792a34-cac6-4fda-95a8-c58e00a3954e",
    )];
    let issue = issue_opened();
    let response = deliver(&server, "Issue Hook", &uuid, &issue, Some(SECRET)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // Another delivery caused by the same request to GitLab shares the UUID: not a replay.
    let note = json!({"object_kind": "note", "object_attributes": {"note": "/close"},
        "issue": {"iid": 7, "title": "Crash on start"}})
    .to_string()
    .into_bytes();
    let response = deliver(&server, "Note Hook", &uuid, &note, Some(SECRET)).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    // The same delivery sent again is.
    let replay = deliver(&server, "Issue Hook", &uuid, &issue, Some(SECRET)).await;
    expect_error(replay, StatusCode::CONFLICT, "duplicate_delivery").await;
    let calls = server.daemon.calls.lock().unwrap();
    assert_eq!(calls.webhooks.len(), 2);
    let ids: Vec<&str> = calls
        .webhooks
        .iter()
        .map(WebhookDelivery::delivery)
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.starts_with("13792a34-cac6-4fda-95a8-c58e00a3954e:")),
        "{ids:?}"
    );
    assert_ne!(ids[0], ids[1]);
    assert_eq!(calls.refusals.len(), 1);
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_a_journaled_401() {
    let server = hooked().await;
    let body = issue_opened();
    let wrong = deliver(
        &server,
        "Issue Hook",
        &[("idempotency-key", "d-1")],
        &body,
        Some("guess"),
    )
    .await;
    let message = expect_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("X-Gitlab-Token"), "{message}");
    // The API token is not the hook's.
    let api_token = deliver(
        &server,
        "Issue Hook",
        &[("idempotency-key", "d-2")],
        &body,
        Some(TOKEN),
    )
    .await;
    expect_error(api_token, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let missing = deliver(
        &server,
        "Issue Hook",
        &[("idempotency-key", "d-3")],
        &body,
        None,
    )
    .await;
    let message = expect_error(missing, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert!(message.contains("GitLab"), "{message}");

    let refused = refusals(&server);
    let deliveries: Vec<Option<&str>> = refused.iter().map(|r| r.delivery.as_deref()).collect();
    assert_eq!(deliveries, [Some("d-1"), Some("d-2"), Some("d-3")]);
    assert!(refused.iter().all(|refusal| refusal.source == "gitlab"));
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.webhooks.is_empty() && calls.refreshes == 0);
}

#[tokio::test]
async fn a_missing_header_or_a_body_that_is_not_an_object_is_a_journaled_400() {
    let server = hooked().await;
    let body = issue_opened();
    let no_delivery = deliver(&server, "Issue Hook", &[], &body, Some(SECRET)).await;
    let message = expect_error(no_delivery, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("idempotency-key"), "{message}");
    let no_event = server
        .client
        .post(server.url("/hooks/gitlab"))
        .header("x-gitlab-token", SECRET)
        .header("idempotency-key", "d-2")
        .body(body)
        .send()
        .await
        .unwrap();
    let message = expect_error(no_event, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("x-gitlab-event"), "{message}");
    let not_an_object = deliver(
        &server,
        "Issue Hook",
        &[("idempotency-key", "d-3")],
        b"[1, 2]",
        Some(SECRET),
    )
    .await;
    let message = expect_error(not_an_object, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(message.contains("Issue Hook"), "{message}");

    let refused = refusals(&server);
    let deliveries: Vec<Option<&str>> = refused.iter().map(|r| r.delivery.as_deref()).collect();
    assert_eq!(deliveries, [None, Some("d-2"), Some("d-3")]);
    assert!(server.daemon.calls.lock().unwrap().webhooks.is_empty());
}

#[tokio::test]
async fn other_events_are_ignored_without_the_daemon() {
    let server = hooked().await;
    let push = json!({"object_kind": "push", "ref": "refs/heads/main"})
        .to_string()
        .into_bytes();
    let response = deliver(
        &server,
        "Push Hook",
        &[("idempotency-key", "d-push")],
        &push,
        Some(SECRET),
    )
    .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"ok": true, "ignored": "Push Hook"})
    );
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.webhooks.is_empty() && calls.refusals.is_empty() && calls.refreshes == 0);
}

#[tokio::test]
async fn an_unconfigured_gitlab_hook_does_not_exist() {
    // Another hook's secret does not open this one.
    let config = ServerConfig {
        github_webhook_secret: Some(SECRET.into()),
        ..ServerConfig::default()
    };
    for server in [
        Server::start().await,
        Server::start_with_config(FakeDaemon::fixture(), config).await,
    ] {
        let body = issue_opened();
        let response = deliver(
            &server,
            "Issue Hook",
            &[("idempotency-key", KEY)],
            &body,
            Some(SECRET),
        )
        .await;
        expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
        let calls = server.daemon.calls.lock().unwrap();
        assert!(calls.webhooks.is_empty() && calls.refusals.is_empty());
    }
}

#[tokio::test]
async fn a_blank_gitlab_secret_is_refused_at_start() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        gitlab_webhook_secret: Some(" ".into()),
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
        Err(takt_server::ServerError::BlankWebhookSecret { hook: "gitlab" })
    ));
}
