//! The daemon's model endpoint.
//!
//! Every agent's model traffic comes here, on loopback, authenticated by its run's token
//! ([`Gateway::grant`]). The gateway swaps the token for the provider key it alone holds,
//! forwards the request to the configured upstream (OpenAI-compatible, Anthropic, or takt's
//! mock), streams the answer back unchanged, and meters the tokens from the provider's own
//! response ([`meter`]), reporting one [`ModelCall`] per request to the daemon.
//!
//! Shape: [`Gateway::start`] binds and serves until [`Gateway::shutdown`] (mini-redis).

pub mod meter;
mod proxy;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use takt_core::ports::ModelAccess;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

pub use meter::{Api, Usage};
pub use tokens::Grant;

/// What the upstream speaks, which decides how paths and credentials are mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// OpenAI or compatible: `base_url` ends in `/v1`; `Authorization: Bearer`.
    OpenAi,
    /// Anthropic: `base_url` is the root; `x-api-key`.
    Anthropic,
    /// takt's mock model: speaks every API under the root, takes any key.
    Mock,
}

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub kind: UpstreamKind,
    pub base_url: String,
    /// The provider key; never leaves the daemon except in the upstream request.
    pub api_key: Option<String>,
}

/// One request through the gateway, as metered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCall {
    /// `None` when the request was refused before a run was known (bad token).
    pub grant: Option<Grant>,
    pub api: Api,
    pub path: String,
    pub status: u16,
    pub model: Option<String>,
    pub usage: Usage,
    pub latency_ms: u64,
    /// Why the gateway refused the request itself (401, unsupported route), if it did.
    pub refused: Option<String>,
}

/// Errors starting the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The listener could not be bound or read. Retrying with another port may help.
    #[error("model endpoint: cannot listen: {0}")]
    Listen(std::io::Error),
    /// The HTTP client for the upstream could not be built (TLS setup). Not retryable.
    #[error("model endpoint: cannot build the upstream client: {0}")]
    Client(String),
}

pub(crate) struct Shared {
    pub upstream: RwLock<Upstream>,
    pub tokens: tokens::Tokens,
    pub calls: mpsc::UnboundedSender<ModelCall>,
    pub client: reqwest::Client,
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Serves on `listener` (bind `127.0.0.1:0` for an ephemeral port). Returns the gateway and
    /// the stream of metered calls.
    pub async fn start(
        listener: TcpListener,
        upstream: Upstream,
    ) -> Result<(Gateway, mpsc::UnboundedReceiver<ModelCall>), GatewayError> {
        let addr = listener.local_addr().map_err(GatewayError::Listen)?;
        let (calls, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            upstream: RwLock::new(upstream),
            tokens: tokens::Tokens::default(),
            calls,
            client: http_client()?,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = proxy::router(shared.clone());
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "model endpoint stopped");
            }
        });
        Ok((
            Gateway {
                shared,
                addr,
                stop: Some(stop),
                task,
            },
            receiver,
        ))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A token for `run_id`, and the access an agent of that run gets.
    pub fn grant(&self, run_id: &str, task_id: &str, model: Option<String>) -> ModelAccess {
        let token = self.shared.tokens.grant(run_id, task_id);
        ModelAccess {
            openai_base_url: format!("http://{}/v1", self.addr),
            anthropic_base_url: format!("http://{}", self.addr),
            token,
            model,
        }
    }

    /// Ends a run's access; its token is refused from now on.
    pub fn revoke(&self, run_id: &str) {
        self.shared.tokens.revoke(run_id);
    }

    /// Points future requests at another upstream (a WORKFLOW.md reload).
    pub fn set_upstream(&self, upstream: Upstream) {
        if let Ok(mut current) = self.shared.upstream.write() {
            *current = upstream;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTPS client with ring as the TLS provider, configured explicitly (libraries do not
/// install process-wide crypto providers).
fn http_client() -> Result<reqwest::Client, GatewayError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| GatewayError::Client(error.to_string()))?
        .with_platform_verifier()
        .map_err(|error| GatewayError::Client(error.to_string()))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| GatewayError::Client(error.to_string()))
}
