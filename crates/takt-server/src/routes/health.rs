//! `GET /api/v1/health`: the server answers, and says whether the orchestrator does.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::App;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always true: the server is up.
    pub ok: bool,
    /// takt's version.
    pub version: String,
    /// The daemon has published its state (false while it starts or after it stopped).
    pub orchestrator: bool,
}

/// Liveness.
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health(State(app): State<App>) -> Json<Health> {
    Json(Health {
        ok: true,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        orchestrator: app.daemon.snapshot().is_some(),
    })
}
