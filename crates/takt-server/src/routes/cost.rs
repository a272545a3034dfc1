//! `GET /api/v1/cost`: what the model endpoint metered, by task, with the day's and month's
//! spend (the figures the budget caps are checked against).

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use takt_core::budget::{Spend, usd};
use takt_protocol::TaskState;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ErrorEnvelope};
use crate::schemas;
use crate::time::now_ms;

#[derive(Debug, Serialize, ToSchema)]
pub struct CostView {
    /// Tasks that spent anything, most expensive first.
    pub tasks: Vec<TaskCost>,
    /// Every metered call, with or without a task.
    pub total: SpendView,
    /// The current UTC day.
    pub today: SpendView,
    /// The current UTC month.
    pub month: SpendView,
    pub model_calls: u64,
    /// Calls the endpoint refused (bad token, budget).
    pub model_calls_refused: u64,
}

/// One task's metered spend across its runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskCost {
    pub task_id: String,
    pub identifier: String,
    #[schema(value_type = schemas::TaskState)]
    pub state: TaskState,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// Micro-dollars; calls to models without a price add 0.
    pub cost_micros: u64,
    /// The same, as `$0.000000`.
    pub cost_usd: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SpendView {
    pub tokens: u64,
    pub micros: u64,
    pub usd: String,
}

impl From<Spend> for SpendView {
    fn from(spend: Spend) -> SpendView {
        SpendView {
            tokens: spend.tokens,
            micros: spend.micros,
            usd: usd(spend.micros),
        }
    }
}

/// Model spend by task, today and this month.
#[utoipa::path(get, path = "/api/v1/cost", tag = "meta",
    responses(
        (status = 200, description = "Spend", body = CostView),
        (status = 503, description = "`snapshot_unavailable`", body = ErrorEnvelope),
    ))]
pub async fn cost(State(app): State<App>) -> Result<Json<CostView>, ApiError> {
    let snapshot = app.snapshot()?;
    let state = &snapshot.state;
    let mut tasks: Vec<TaskCost> = state
        .tasks
        .values()
        .filter(|task| task.metered.total_tokens > 0 || task.spend_micros > 0)
        .map(|task| TaskCost {
            task_id: task.id.clone(),
            identifier: task.issue.identifier.clone(),
            state: task.state,
            input_tokens: task.metered.input_tokens,
            output_tokens: task.metered.output_tokens,
            total_tokens: task.metered.total_tokens,
            cost_micros: task.spend_micros,
            cost_usd: usd(task.spend_micros),
        })
        .collect();
    tasks.sort_by(|a, b| {
        (b.cost_micros, b.total_tokens)
            .cmp(&(a.cost_micros, a.total_tokens))
            .then_with(|| a.identifier.cmp(&b.identifier))
    });
    // Months partition every metered call, so their sum is the whole spend.
    let total = state
        .spend_by_month
        .values()
        .fold(Spend::ZERO, |sum, month| sum.plus(*month));
    let (today, month) = state.period_spend(now_ms());
    Ok(Json(CostView {
        tasks,
        total: total.into(),
        today: today.into(),
        month: month.into(),
        model_calls: state.totals.model_calls,
        model_calls_refused: state.totals.model_calls_refused,
    }))
}
