//! Operator commands go to the daemon with the operator's name; the core's refusals come back
//! as 409 `refused` with its message.

use reqwest::StatusCode;
use serde_json::json;
use takt_core::OperatorCommand;

use std::time::Duration;

use takt_server::ServerConfig;

use super::{FakeDaemon, Server, expect_error, keys, set};

async fn post_as(
    server: &Server,
    path: &str,
    operator: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url(path))
        .header("x-takt-operator", operator);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("send")
}

#[tokio::test]
async fn approve_answers_with_the_task_after_it_and_a_second_approval_is_refused() {
    let server = Server::start().await;
    let response = post_as(
        &server,
        "/api/v1/tasks/takt-4/approve",
        "bob",
        Some(json!({"comment": "looks good"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(keys(&body), set(&["ok", "task"]));
    assert_eq!(body["ok"], true);
    assert_eq!(body["task"]["state"], "merging");
    assert_eq!(body["task"]["approvals"], json!(["bob"]));
    assert_eq!(
        server.daemon.calls.lock().unwrap().submitted,
        [OperatorCommand::Approve {
            task: "id-4".into(),
            by: "bob".into(),
            comment: Some("looks good".into()),
        }]
    );

    let message = expect_error(
        post_as(&server, "/api/v1/tasks/TAKT-4/approve", "bob", None).await,
        StatusCode::CONFLICT,
        "refused",
    )
    .await;
    assert!(message.contains("not awaiting_review"), "{message}");
}

#[tokio::test]
async fn reject_needs_a_comment_and_sends_it_back_as_feedback() {
    let server = Server::start().await;
    for body in [None, Some(json!({})), Some(json!({"comment": "  "}))] {
        let message = expect_error(
            post_as(&server, "/api/v1/tasks/TAKT-4/reject", "carol", body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        assert!(message.contains("comment"), "{message}");
    }
    assert!(server.daemon.calls.lock().unwrap().submitted.is_empty());
    let response = post_as(
        &server,
        "/api/v1/tasks/TAKT-4/reject",
        "carol",
        Some(json!({"comment": "add a test"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["task"]["feedback"], "add a test");
    assert_ne!(body["task"]["state"], "awaiting_review");
}

#[tokio::test]
async fn answer_reaches_a_blocked_task_and_is_refused_elsewhere() {
    let server = Server::start().await;
    expect_error(
        post_as(
            &server,
            "/api/v1/tasks/TAKT-2/answer",
            "dan",
            Some(json!({})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let response = post_as(
        &server,
        "/api/v1/tasks/TAKT-2/answer",
        "dan",
        Some(json!({"text": "Postgres"})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["task"]["state"], "running");
    assert_eq!(body["task"]["question"], serde_json::Value::Null);

    let message = expect_error(
        post_as(
            &server,
            "/api/v1/tasks/TAKT-5/answer",
            "dan",
            Some(json!({"text": "?"})),
        )
        .await,
        StatusCode::CONFLICT,
        "refused",
    )
    .await;
    assert!(message.contains("TAKT-5"), "{message}");
}

#[tokio::test]
async fn cancel_then_retry_queues_the_task_again() {
    let server = Server::start().await;
    let cancelled = post_as(&server, "/api/v1/tasks/TAKT-5/cancel", "erin", None).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let body: serde_json::Value = cancelled.json().await.expect("json");
    assert_eq!(body["task"]["state"], "cancelled");
    let retried = post_as(
        &server,
        "/api/v1/tasks/TAKT-5/retry",
        "erin",
        Some(json!({})),
    )
    .await;
    assert_eq!(retried.status(), StatusCode::OK);
    let body: serde_json::Value = retried.json().await.expect("json");
    assert_eq!(body["task"]["state"], "queued");
    let submitted = server.daemon.calls.lock().unwrap().submitted.clone();
    assert_eq!(
        submitted,
        [
            OperatorCommand::Cancel {
                task: "id-5".into(),
                by: "erin".into()
            },
            OperatorCommand::Retry {
                task: "id-5".into(),
                by: "erin".into()
            },
        ]
    );
}

#[tokio::test]
async fn a_command_on_an_unknown_task_or_with_a_stray_field_is_not_sent() {
    let server = Server::start().await;
    expect_error(
        server.post("/api/v1/tasks/TAKT-99/cancel", None).await,
        StatusCode::NOT_FOUND,
        "task_not_found",
    )
    .await;
    expect_error(
        server
            .post("/api/v1/tasks/TAKT-5/cancel", Some(json!({"force": true})))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    expect_error(
        post_as(&server, "/api/v1/tasks/TAKT-5/cancel", "   ", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(server.daemon.calls.lock().unwrap().submitted.is_empty());
}

#[tokio::test]
async fn a_daemon_that_does_not_answer_gets_a_timeout_not_a_hang() {
    let daemon = FakeDaemon::fixture();
    daemon.stall();
    let config = ServerConfig {
        daemon_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = Server::start_with_config(daemon, config).await;
    let message = expect_error(
        server.post("/api/v1/tasks/TAKT-5/cancel", None).await,
        StatusCode::GATEWAY_TIMEOUT,
        "orchestrator_timeout",
    )
    .await;
    assert!(message.contains("read the task"), "{message}");
}
