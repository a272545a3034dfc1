//! Artifacts, cost and health.

use reqwest::StatusCode;

use super::{Server, expect_error};

#[tokio::test]
async fn an_artifact_is_served_as_raw_bytes() {
    let server = Server::start().await;
    let hash = server.daemon.store_artifact(b"\x00binary\xffout");
    let response = server
        .get(&format!("/api/v1/artifacts/{}", hash.to_uppercase()))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok()),
        Some("application/octet-stream")
    );
    assert_eq!(
        response.bytes().await.expect("bytes").as_ref(),
        b"\x00binary\xffout"
    );
    expect_error(
        server.get("/api/v1/artifacts/not-a-hash").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    expect_error(
        server
            .get(&format!("/api/v1/artifacts/{}", "0".repeat(64)))
            .await,
        StatusCode::NOT_FOUND,
        "artifact_not_found",
    )
    .await;
}

#[tokio::test]
async fn cost_is_the_metered_spend_by_task() {
    let server = Server::start().await;
    let cost = server.get_json("/api/v1/cost").await;
    let tasks = cost["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 1, "{cost}");
    assert_eq!(tasks[0]["identifier"], "TAKT-1");
    assert_eq!(tasks[0]["input_tokens"], 1000);
    assert_eq!(tasks[0]["output_tokens"], 200);
    assert_eq!(tasks[0]["total_tokens"], 1200);
    assert_eq!(tasks[0]["cost_micros"], 1500);
    assert_eq!(tasks[0]["cost_usd"], "$0.001500");
    assert_eq!(cost["total"]["micros"], 1500);
    assert_eq!(cost["total"]["tokens"], 1200);
    assert_eq!(cost["today"]["micros"], 1500);
    assert_eq!(cost["month"]["tokens"], 1200);
    assert_eq!(cost["model_calls"], 1);
    assert_eq!(cost["model_calls_refused"], 0);
}

#[tokio::test]
async fn health_says_ok_and_the_version() {
    let server = Server::start().await;
    let health = server.get_json("/api/v1/health").await;
    assert_eq!(
        health,
        serde_json::json!({"ok": true, "version": env!("CARGO_PKG_VERSION"), "orchestrator": true})
    );
}
