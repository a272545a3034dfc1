//! Wiring the model endpoint (takt-gateway) to the workflow's `model` section: which upstream,
//! which key, and for `provider: mock` the embedded scripted model server.

use anyhow::{Context, Result};
use takt_core::State;
use takt_core::budget::Spend;
use takt_core::ports::ModelAccess;
use takt_gateway::{
    Gateway, GatewayConfig, ModelCall, ModelPrice, PriceTable, QuotaNotice, Transcript, Upstream,
    UpstreamKind,
};
use takt_mock_model::{MockConfig, MockModel};
use takt_protocol::{CapReached, ModelCallReport};
use takt_workflow::{BackendKind, ModelProvider, Workflow};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::{info, warn};

/// Backends that talk to a model need the endpoint, and so do the judge and the reviewers. A
/// command-only workflow gets one too when it configures a model (tasks may pick another
/// backend with an `agent:` label).
pub fn needs_model(workflow: &Workflow) -> bool {
    let model = &workflow.model;
    workflow.agent.backend != BackendKind::Command
        || workflow.review.judge
        || !workflow.review.reviewers.is_empty()
        || model.provider == ModelProvider::Mock
        || model.name.is_some()
        || model.api_key.is_some()
}

pub struct ModelEndpoint {
    gateway: Gateway,
    calls: UnboundedReceiver<ModelCall>,
    /// Upstream quota windows, as the endpoint announces them.
    quota: tokio::sync::watch::Receiver<QuotaNotice>,
    /// The embedded scripted model when `model.provider` is `mock`.
    mock: Option<MockModel>,
    provider: ModelProvider,
}

impl ModelEndpoint {
    /// Where the endpoint listens (relayed into every sandbox on the same port).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.gateway.addr()
    }

    /// Starts the endpoint with the workflow's prices and budget, its spend ledger seeded
    /// from the journal's state (so caps hold across restarts).
    pub async fn start(workflow: &Workflow, state: &State) -> Result<ModelEndpoint> {
        let mut mock = None;
        let upstream = match workflow.model.provider {
            ModelProvider::Mock => {
                let config = match &workflow.model.scenarios {
                    Some(dir) => MockConfig::with_dir(dir.clone()),
                    None => MockConfig::default(),
                };
                let server = MockModel::start(config)
                    .await
                    .context("starting the embedded mock model")?;
                let url = server.base_url();
                mock = Some(server);
                Upstream {
                    kind: UpstreamKind::Mock,
                    base_url: url,
                    api_key: None,
                }
            }
            _ => upstream_for(workflow),
        };
        if workflow.model.provider != ModelProvider::Mock && upstream.api_key.is_none() {
            warn!(
                variable = workflow.model.api_key_var.as_deref().unwrap_or("?"),
                "no model provider key is set; model calls will be refused upstream"
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the model endpoint on 127.0.0.1")?;
        let config = GatewayConfig {
            prices: prices_for(workflow)?,
            budget: crate::project::budget_for(workflow),
            ..GatewayConfig::default()
        };
        let (gateway, calls) = Gateway::start_with(listener, upstream, config).await?;
        for task in state.tasks.values() {
            gateway.seed_task_spend(
                &task.id,
                Spend::new(task.metered.total_tokens, task.spend_micros),
            );
        }
        let now = chrono::Utc::now();
        let (day, month) = state.period_spend(now.timestamp_millis());
        gateway.seed_period_spend(now.date_naive(), day, month);
        if let Some(key) = &workflow.model.api_key {
            gateway.add_secret(key.clone());
        }
        let quota = gateway.quota_notices();
        info!(addr = %gateway.addr(), provider = workflow.model.provider.as_str(), "model endpoint listening");
        Ok(ModelEndpoint {
            gateway,
            calls,
            quota,
            mock,
            provider: workflow.model.provider,
        })
    }

    pub fn grant(&self, run_id: &str, task_id: &str, model: Option<String>) -> ModelAccess {
        self.gateway.grant(run_id, task_id, model)
    }

    pub fn revoke(&self, run_id: &str) {
        self.gateway.revoke(run_id);
    }

    /// Serves the run's host tools to its sandboxed agent (takt's MCP server), until revoked.
    pub fn attach_host_tools(
        &self,
        run_id: &str,
        tools: std::sync::Arc<dyn takt_core::ports::HostTools>,
    ) {
        self.gateway.attach_host_tools(run_id, tools);
    }

    /// Applies a changed `model` section to future calls (switching to or from the embedded
    /// mock needs a restart).
    pub fn reload(&self, workflow: &Workflow) {
        if (workflow.model.provider == ModelProvider::Mock)
            != (self.provider == ModelProvider::Mock)
        {
            warn!("model.provider switched to or from `mock`; restart takt to apply it");
            return;
        }
        if workflow.model.provider != ModelProvider::Mock {
            self.gateway.set_upstream(upstream_for(workflow));
        }
        self.gateway
            .set_budget(crate::project::budget_for(workflow));
        match prices_for(workflow) {
            Ok(prices) => self.gateway.set_prices(prices),
            Err(error) => warn!("{error:#}; keeping the previous prices"),
        }
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        if let Some(mock) = self.mock {
            let _ = mock.shutdown().await;
        }
    }
}

fn upstream_for(workflow: &Workflow) -> Upstream {
    let model = &workflow.model;
    Upstream {
        kind: match model.provider {
            ModelProvider::Anthropic => UpstreamKind::Anthropic,
            ModelProvider::Openai => UpstreamKind::OpenAi,
            ModelProvider::Mock => UpstreamKind::Mock,
        },
        base_url: model.base_url.clone().unwrap_or_default(),
        api_key: model.api_key.clone(),
    }
}

/// What the endpoint reported: a metered call (with its transcript, to be stored) or a quota
/// window closing or opening.
pub enum EndpointNews {
    Call(Box<ModelCallReport>, Option<Transcript>),
    Quota(Option<i64>),
}

fn call_news(call: ModelCall) -> EndpointNews {
    let transcript = call.transcript.clone();
    EndpointNews::Call(Box::new(report(call)), transcript)
}

/// The calls the endpoint has reported and the daemon not yet taken, without waiting.
pub fn reported_calls(models: Option<&mut ModelEndpoint>) -> Vec<EndpointNews> {
    let mut news = Vec::new();
    if let Some(models) = models {
        while let Ok(call) = models.calls.try_recv() {
            news.push(call_news(call));
        }
    }
    news
}

/// The endpoint's next report; pending forever without an endpoint.
pub async fn next_news(models: Option<&mut ModelEndpoint>) -> Option<EndpointNews> {
    let Some(models) = models else {
        return std::future::pending().await;
    };
    tokio::select! {
        call = models.calls.recv() => call.map(call_news),
        changed = models.quota.changed() => {
            changed.ok()?;
            let until = match *models.quota.borrow_and_update() {
                QuotaNotice::Paused { until, .. } => Some(until.timestamp_millis()),
                QuotaNotice::Resumed => None,
            };
            Some(EndpointNews::Quota(until))
        }
    }
}

fn report(call: ModelCall) -> ModelCallReport {
    let api = serde_json::to_value(call.api)
        .ok()
        .and_then(|value| value.as_str().map(String::from))
        .unwrap_or_default();
    let cap_reached = call.exhausted.map(|hit| CapReached {
        scope: hit.cap.scope.as_str().to_owned(),
        unit: match hit.cap.unit {
            takt_core::budget::Unit::Tokens => "tokens".to_owned(),
            takt_core::budget::Unit::Micros => "micros".to_owned(),
        },
        limit: hit.limit,
        spent: hit.spent,
    });
    ModelCallReport {
        run_id: call.grant.map(|grant| grant.run_id),
        api,
        path: call.path,
        status: call.status,
        model: call.model,
        input_tokens: call.usage.input_tokens,
        cached_input_tokens: call.usage.cached_input_tokens,
        output_tokens: call.usage.output_tokens,
        reasoning_tokens: call.usage.reasoning_tokens,
        metered: call.usage.reported,
        latency_ms: call.latency_ms,
        refused: call.refused,
        cost_micros: call.cost_micros,
        estimated: call.usage.estimated,
        cap_reached,
        transcript: None,
    }
}

/// `model.prices` over the built-in table.
fn prices_for(workflow: &Workflow) -> Result<PriceTable> {
    let overrides = workflow
        .model
        .prices
        .iter()
        .map(|(name, price)| {
            (
                name.clone(),
                ModelPrice {
                    input: price.input,
                    cached_input: price.cached_input,
                    output: price.output,
                    cache_write: price.cache_write,
                },
            )
        })
        .collect();
    PriceTable::with_overrides(&overrides)
        .with_context(|| format!("{}: model.prices", workflow.path.display()))
}
