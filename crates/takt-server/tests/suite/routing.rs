//! Unknown routes, wrong methods, and the identifier route beside the static ones.

use reqwest::{Method, StatusCode};

use super::{Server, expect_error};

#[tokio::test]
async fn an_unknown_route_is_not_found_in_the_envelope() {
    let server = Server::start().await;
    for path in ["/nope", "/api/v2/state", "/api/v1/tasks/TAKT-1/nope"] {
        expect_error(server.get(path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    expect_error(
        server.post("/api/v1/tasks/TAKT-1/explode", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_405_in_the_envelope_with_allow() {
    let server = Server::start().await;
    let response = server
        .client
        .request(Method::DELETE, server.url("/api/v1/state"))
        .send()
        .await
        .expect("send");
    let allow = response
        .headers()
        .get("allow")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("GET"), "Allow: {allow}");
    expect_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    // A GET-only route is not an issue lookup for other methods, and a POST-only one neither.
    expect_error(
        server.post("/api/v1/state", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    expect_error(
        server.get("/api/v1/refresh").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    expect_error(
        server.get("/api/v1/tasks/TAKT-4/approve").await,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn static_routes_are_not_shadowed_by_the_identifier_route() {
    let server = Server::start().await;
    let tasks = server.get_json("/api/v1/tasks").await;
    assert!(tasks["tasks"].is_array(), "{tasks}");
    let health = server.get_json("/api/v1/health").await;
    assert_eq!(health["ok"], true);
    let cost = server.get_json("/api/v1/cost").await;
    assert!(cost["tasks"].is_array(), "{cost}");
    let state = server.get_json("/api/v1/state").await;
    assert!(state["counts"].is_object(), "{state}");
    // A single unknown segment is an issue lookup.
    expect_error(
        server.get("/api/v1/artifacts").await,
        StatusCode::NOT_FOUND,
        "issue_not_found",
    )
    .await;
}

#[tokio::test]
async fn requests_axum_cannot_read_still_answer_in_the_envelope() {
    let server = Server::start().await;
    expect_error(
        server.get("/api/v1/tasks/%FF").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    let oversized = server
        .client
        .post(server.url("/api/v1/tasks/TAKT-4/approve"))
        .header("content-type", "application/json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .expect("send");
    expect_error(oversized, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    assert!(server.daemon.calls.lock().unwrap().submitted.is_empty());
}
