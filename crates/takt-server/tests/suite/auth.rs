//! The token guards every change; reads stay open on loopback; a foreign page cannot command a
//! token-less loopback server; exposed addresses need a token.

use reqwest::StatusCode;
use takt_server::{ServerConfig, ServerError, check_bind};

use super::{FakeDaemon, Server, TOKEN, expect_error};

#[tokio::test]
async fn a_post_without_the_token_or_with_a_wrong_one_is_unauthorized() {
    let server = Server::start_with(FakeDaemon::fixture(), Some(TOKEN)).await;
    for (path, body) in [
        ("/api/v1/refresh", None),
        ("/api/v1/tasks", Some(serde_json::json!({"title": "x"}))),
        ("/api/v1/tasks/TAKT-4/approve", None),
        ("/api/v1/tasks/TAKT-5/cancel", None),
    ] {
        let mut request = server.client.post(server.url(path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("send");
        assert_eq!(
            response
                .headers()
                .get("www-authenticate")
                .and_then(|value| value.to_str().ok()),
            Some("Bearer realm=\"takt\"")
        );
        expect_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let wrong = server
            .client
            .post(server.url(path))
            .bearer_auth("not-the-token")
            .send()
            .await
            .expect("send");
        expect_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let calls = server.daemon.calls.lock().unwrap();
    assert!(calls.submitted.is_empty() && calls.created.is_empty() && calls.refreshes == 0);
}

#[tokio::test]
async fn the_right_token_is_accepted_and_reads_on_loopback_need_none() {
    let server = Server::start_with(FakeDaemon::fixture(), Some(TOKEN)).await;
    let response = server.post("/api/v1/refresh", None).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    for path in [
        "/api/v1/state",
        "/api/v1/tasks",
        "/api/v1/TAKT-1",
        "/metrics",
    ] {
        assert_eq!(server.get(path).await.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn without_a_token_a_page_of_another_origin_cannot_change_state() {
    let server = Server::start().await;
    let response = server
        .client
        .post(server.url("/api/v1/tasks/TAKT-5/cancel"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("send");
    expect_error(response, StatusCode::FORBIDDEN, "forbidden_origin").await;
    assert!(server.daemon.calls.lock().unwrap().submitted.is_empty());
    let same_origin = server
        .client
        .post(server.url("/api/v1/refresh"))
        .header("origin", server.base.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(same_origin.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn check_bind_refuses_an_exposed_address_without_a_token() {
    let error = check_bind("0.0.0.0:7070".parse().expect("addr"), None).expect_err("refused");
    assert!(matches!(error, ServerError::TokenRequired { .. }));
    assert!(error.to_string().contains("0.0.0.0:7070"));
    assert!(error.to_string().contains("token"));
    assert!(check_bind("[::]:7070".parse().expect("addr"), None).is_err());
    assert!(check_bind("0.0.0.0:7070".parse().expect("addr"), Some(TOKEN)).is_ok());
    assert!(check_bind("127.0.0.1:7070".parse().expect("addr"), None).is_ok());
}

#[tokio::test]
async fn serve_refuses_a_blank_token() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let result = takt_server::serve(
        listener,
        std::sync::Arc::new(FakeDaemon::fixture()),
        ServerConfig::with_token(Some(" ".into())),
        std::future::pending(),
    )
    .await;
    assert!(matches!(result, Err(ServerError::BlankToken)));
}
