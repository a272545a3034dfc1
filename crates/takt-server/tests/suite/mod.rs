//! Shared fixtures: the fake daemon, a running server, a client, envelope checks.

mod auth;
mod commands;
mod fake;
mod gitlab_hook;
mod hooks;
mod linear_hook;
mod metrics;
mod openapi;
mod reads;
mod routing;
mod sse;
mod symphony;
mod tasks;
mod web;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use takt_server::{ServerConfig, ServerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use fake::FakeDaemon;

/// The token of servers started with one.
pub const TOKEN: &str = "test-token-0123456789";

/// A server on 127.0.0.1, stopped when dropped.
pub struct Server {
    pub base: String,
    pub daemon: Arc<FakeDaemon>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServerError>>>,
}

impl Server {
    /// Serves `daemon` with `token`.
    pub async fn start_with(daemon: FakeDaemon, token: Option<&str>) -> Server {
        let config = ServerConfig {
            token: token.map(String::from),
            keep_alive: Duration::from_millis(200),
            daemon_timeout: Duration::from_secs(5),
            ..ServerConfig::default()
        };
        Server::start_with_config(daemon, config).await
    }

    /// Serves `daemon` with `config`.
    pub async fn start_with_config(daemon: FakeDaemon, config: ServerConfig) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let daemon = Arc::new(daemon);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(takt_server::serve(
            listener,
            daemon.clone(),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            base: format!("http://{addr}"),
            daemon,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The standard fixture, no token.
    pub async fn start() -> Server {
        Server::start_with(FakeDaemon::fixture(), None).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path} JSON: {e}"))
    }

    /// POSTs `body` (JSON) with the token, when the server has one.
    pub async fn post(&self, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Stops the server and waits for `serve` to return.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().unwrap_or_else(|| panic!("stopped twice"));
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap_or_else(|_| panic!("serve did not return after shutdown"))
            .unwrap_or_else(|e| panic!("serve panicked: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts the error envelope with `code`, returning the message.
pub async fn expect_error(response: reqwest::Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status, "status");
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("the error body is not JSON: {e}"));
    assert_eq!(keys(&body), set(&["error"]), "{body}");
    assert_eq!(keys(&body["error"]), set(&["code", "message"]), "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body}"))
        .to_owned()
}

pub fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}
