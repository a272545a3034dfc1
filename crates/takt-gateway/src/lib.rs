//! The daemon's model endpoint: the one place every agent's model traffic passes, so the one
//! place spend can be enforced without trusting the agent.
//!
//! Every agent's model traffic comes here, on loopback, authenticated by its run's token
//! ([`Gateway::grant`]). The gateway swaps the token for the provider key it alone holds,
//! forwards the request to the configured upstream (OpenAI-compatible, Anthropic, or takt's
//! mock), streams the answer back unchanged, and meters the tokens from the provider's own
//! response ([`meter`]), reporting one [`ModelCall`] per request to the daemon. On the way:
//!
//! - **Cost**: each metered call is priced from a [`PriceTable`] ([`prices`]), in integer
//!   micro-dollars; an unpriced model gives `cost_micros: None`, never a silent zero.
//! - **Budgets**: a ledger of spend per run, task, UTC day and UTC month ([`Budget`] from
//!   `takt_core::budget`) refuses a call with 402 once any cap is reached; only calls already in
//!   flight can overshoot, and the call that ends past a cap says by how much. The scheduler asks
//!   [`Gateway::headroom`] / [`Gateway::admits_new_run`] before dispatch.
//! - **Quota windows** ([`quota`]): a 429/529 with a reset time pauses the credential; requests
//!   wait for the window instead of failing, and the daemon sees [`QuotaNotice`]s.
//! - **Retries**: 5xx (not 501) and connection failures are retried with bounded, jittered
//!   exponential backoff before any byte reaches the agent ([`RetryPolicy`]).
//! - **Host tools** (`host_tools`): `GET /takt/v1/tools` and `POST /takt/v1/tools/call` answer a
//!   run's own tools ([`Gateway::attach_host_tools`]) for its token; takt's MCP server in the
//!   sandbox reaches them through the model relay.
//! - **Transcripts** ([`transcript`]): request and response bodies with secrets redacted, on the
//!   [`ModelCall`], for the daemon to store as artifacts.
//!
//! Dates come from an injectable [`Clock`] so the day and month boundaries can be tested.
//!
//! Shape: [`Gateway::start`] binds and serves until [`Gateway::shutdown`] (mini-redis).

mod host_tools;
mod ledger;
pub mod meter;
pub mod prices;
mod proxy;
pub mod quota;
pub mod tokens;
pub mod transcript;

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use takt_core::budget::{self, Budget, Exhaustion, Headroom, Spend, Spent};
use takt_core::ports::ModelAccess;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

pub use meter::{Api, Usage};
pub use prices::{ModelPrice, PriceError, PriceTable};
pub use quota::{QuotaNotice, QuotaPolicy};
pub use tokens::Grant;
pub use transcript::{Transcript, TranscriptPolicy};

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
    /// The status the agent received.
    pub status: u16,
    /// The model the provider named in its response, else the one the request asked for.
    pub model: Option<String>,
    pub usage: Usage,
    /// The cost in micro-dollars from the price table; `None` when the model has no price (the
    /// daemon reports the call as unpriced). Zero for a call that used no tokens.
    pub cost_micros: Option<u64>,
    /// Upstream requests sent for this call: 1 normally, more after retries (5xx, connection
    /// errors, quota windows), 0 when the gateway refused it.
    pub attempts: u32,
    /// Time spent held for a quota window, in ms.
    pub quota_wait_ms: u64,
    pub latency_ms: u64,
    /// Why the gateway refused the request itself (401, 402, unsupported route), if it did.
    pub refused: Option<String>,
    /// On a refusal for budget (402): the cap that was reached. On a metered call: the first
    /// cap (narrowest scope first) that is reached once this call is counted, with the total
    /// overshoot so far; the call that crossed it is the first to carry it.
    pub exhausted: Option<Exhaustion>,
    /// The bodies, redacted; `None` for refusals and when transcripts are off.
    pub transcript: Option<Transcript>,
}

impl ModelCall {
    /// The spend this call adds to the budget ledger (unpriced calls add tokens only).
    pub fn spend(&self) -> Spend {
        Spend::new(self.usage.total(), self.cost_micros.unwrap_or(0))
    }
}

/// Upstream retries for server errors and connection failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default: 2.
    pub max_retries: u32,
    /// The first backoff; it doubles with each retry, with jitter (half to the full value).
    /// Default: 250 ms.
    pub base_delay: Duration,
    /// The longest backoff, also the cap on an upstream `retry-after` for a 5xx. Default: 8 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// The source of the current time, for the day and month a call is charged to and for the wall
/// time a quota pause ends. Tests inject one that can cross midnight.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Everything but the upstream, with defaults for a daemon that has not configured them.
#[derive(Clone)]
pub struct GatewayConfig {
    pub prices: PriceTable,
    pub budget: Budget,
    pub retry: RetryPolicy,
    pub quota: QuotaPolicy,
    pub transcripts: TranscriptPolicy,
    pub clock: Arc<dyn Clock>,
}

impl Default for GatewayConfig {
    fn default() -> GatewayConfig {
        GatewayConfig {
            prices: PriceTable::default(),
            budget: Budget::unlimited(),
            retry: RetryPolicy::default(),
            quota: QuotaPolicy::default(),
            transcripts: TranscriptPolicy::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("budget", &self.budget)
            .field("retry", &self.retry)
            .field("quota", &self.quota)
            .field("transcripts", &self.transcripts)
            .finish_non_exhaustive()
    }
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

/// Settings that can change while the gateway runs (a WORKFLOW.md reload).
pub(crate) struct Live {
    pub upstream: Upstream,
    pub prices: Arc<PriceTable>,
    pub budget: Budget,
    /// Secrets the daemon registered for redaction, besides the provider key and run tokens.
    pub secrets: Vec<String>,
}

pub(crate) struct Shared {
    pub live: RwLock<Live>,
    pub ledger: Mutex<ledger::Ledger>,
    pub quota: Arc<quota::Quota>,
    pub tokens: tokens::Tokens,
    pub host_tools: host_tools::Registry,
    pub calls: mpsc::UnboundedSender<ModelCall>,
    pub client: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    pub retry: RetryPolicy,
    pub quota_policy: QuotaPolicy,
    pub transcripts: TranscriptPolicy,
}

impl Shared {
    pub(crate) fn ledger(&self) -> MutexGuard<'_, ledger::Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the live settings; a writer that panicked left them whole (every write is a
    /// single assignment), so a poisoned lock is still read.
    pub(crate) fn live<T>(&self, read: impl FnOnce(&Live) -> T) -> T {
        read(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn update(&self, write: impl FnOnce(&mut Live)) {
        write(&mut self.live.write().unwrap_or_else(PoisonError::into_inner));
    }
}

/// A running gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Serves on `listener` (bind `127.0.0.1:0` for an ephemeral port) with the default
    /// configuration. Returns the gateway and the stream of metered calls.
    pub async fn start(
        listener: TcpListener,
        upstream: Upstream,
    ) -> Result<(Gateway, mpsc::UnboundedReceiver<ModelCall>), GatewayError> {
        Gateway::start_with(listener, upstream, GatewayConfig::default()).await
    }

    /// Like [`Gateway::start`], with prices, a budget, retry and quota policies, transcripts and
    /// a clock.
    pub async fn start_with(
        listener: TcpListener,
        upstream: Upstream,
        config: GatewayConfig,
    ) -> Result<(Gateway, mpsc::UnboundedReceiver<ModelCall>), GatewayError> {
        let addr = listener.local_addr().map_err(GatewayError::Listen)?;
        let (calls, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            live: RwLock::new(Live {
                upstream,
                prices: Arc::new(config.prices),
                budget: config.budget,
                secrets: Vec::new(),
            }),
            ledger: Mutex::new(ledger::Ledger::default()),
            quota: Arc::new(quota::Quota::new()),
            tokens: tokens::Tokens::default(),
            host_tools: host_tools::Registry::default(),
            calls,
            client: http_client()?,
            clock: config.clock,
            retry: config.retry,
            quota_policy: config.quota,
            transcripts: config.transcripts,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = proxy::router(shared.clone());
        // Streamed answers are many small writes: with Nagle's algorithm each event after the
        // first waits for the agent's delayed ACK (about 40 ms on Linux).
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "model endpoint: cannot set TCP_NODELAY");
            }
        });
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

    /// A token for `run_id`, and the access an agent of that run gets. The run's spend starts
    /// at zero (a new grant for a live run keeps its spend).
    pub fn grant(&self, run_id: &str, task_id: &str, model: Option<String>) -> ModelAccess {
        self.shared.ledger().open_run(run_id);
        let token = self.shared.tokens.grant(run_id, task_id);
        ModelAccess {
            openai_base_url: format!("http://{}/v1", self.addr),
            anthropic_base_url: format!("http://{}", self.addr),
            token,
            model,
        }
    }

    /// Serves `tools` to agents of `run_id` that present its token
    /// ([`takt_protocol::HOST_TOOLS_PATH`]); they go with the run's token at [`Gateway::revoke`].
    pub fn attach_host_tools(&self, run_id: &str, tools: Arc<dyn takt_core::ports::HostTools>) {
        self.shared.host_tools.attach(run_id, tools);
    }

    /// Ends a run's access; its token is refused from now on. Calls still in flight finish and
    /// count toward the task, day and month.
    pub fn revoke(&self, run_id: &str) {
        self.shared.tokens.revoke(run_id);
        self.shared.host_tools.detach(run_id);
        self.shared.ledger().close_run(run_id);
    }

    /// Points future requests at another upstream (a WORKFLOW.md reload). A different key or
    /// URL has its own quota, so a pause ends.
    pub fn set_upstream(&self, upstream: Upstream) {
        let mut changed = false;
        self.shared.update(|live| {
            changed = live.upstream.base_url != upstream.base_url
                || live.upstream.api_key != upstream.api_key;
            live.upstream = upstream;
        });
        if changed {
            self.shared.quota.clear();
        }
    }

    /// Applies a new budget to the next calls (a WORKFLOW.md reload). Calls in flight finish.
    pub fn set_budget(&self, budget: Budget) {
        self.shared.update(|live| live.budget = budget);
    }

    /// Prices later calls from `prices` (a WORKFLOW.md reload of `model.prices`).
    pub fn set_prices(&self, prices: PriceTable) {
        self.shared.update(|live| live.prices = Arc::new(prices));
    }

    /// Adds a string to redact from transcripts (a tracker or forge token, say). Strings
    /// shorter than [`transcript::MIN_SECRET_LEN`] are ignored.
    pub fn add_secret(&self, secret: impl Into<String>) {
        let secret = secret.into();
        if secret.len() >= transcript::MIN_SECRET_LEN {
            self.shared.update(|live| {
                if !live.secrets.contains(&secret) {
                    live.secrets.push(secret);
                }
            });
        }
    }

    /// Tells the gateway what a task's earlier attempts spent (from the journal, at startup or
    /// before granting a new run). Keeps the larger of this and what the gateway has counted.
    pub fn seed_task_spend(&self, task_id: &str, spend: Spend) {
        self.shared.ledger().seed_task(task_id, spend);
    }

    /// Tells the gateway what was spent on `day` (UTC) and in its month, from the journal at
    /// startup. Keeps the larger of these and what the gateway has counted.
    pub fn seed_period_spend(&self, day: NaiveDate, day_spend: Spend, month_spend: Spend) {
        self.shared
            .ledger()
            .seed_period(day, day_spend, month_spend);
    }

    /// What a new run of `task_id` would be checked against: the task's total so far and
    /// today's and this month's, with the run at zero.
    pub fn spent(&self, task_id: &str) -> Spent {
        self.shared
            .ledger()
            .spent(None, task_id, self.shared.clock.now())
    }

    /// Today's and this month's totals (UTC), for status.
    pub fn period_spend(&self) -> (Spend, Spend) {
        self.shared.ledger().period(self.shared.clock.now())
    }

    /// How much a new run of `task_id` could spend before a cap is reached.
    pub fn headroom(&self, task_id: &str) -> Headroom {
        let budget = self.shared.live(|live| live.budget);
        budget::headroom(&budget, &self.spent(task_id))
    }

    /// Whether a new run of `task_id` may start: no cap is reached and every cap leaves at
    /// least `need` (an estimate of one turn).
    pub fn admits_new_run(&self, task_id: &str, need: Spend) -> bool {
        self.headroom(task_id).covers(need)
    }

    /// The end of the current quota pause, if the credential is paused.
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        self.shared.quota.paused_until()
    }

    /// Quota pauses and resumptions as they happen; the current value is the state now.
    pub fn quota_notices(&self) -> watch::Receiver<QuotaNotice> {
        self.shared.quota.subscribe()
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
