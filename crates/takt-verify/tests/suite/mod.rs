//! Shared fixtures: the scripted model server and model access grants pointing at it.

mod review;
mod runner;
mod warm;

use takt_core::ports::ModelAccess;
use takt_mock_model::{MockConfig, MockModel, Scenario};

/// The per-run token the grants carry; the mock takes any.
pub const TOKEN: &str = "takt-run-token-0123456789";

pub async fn mock(scenarios: Vec<Scenario>) -> MockModel {
    MockModel::start(MockConfig {
        include_builtin: false,
        ..MockConfig::with_scenarios(scenarios)
    })
    .await
    .expect("mock model")
}

/// A grant for `model` at `mock`, as the gateway would hand it out.
pub fn access(mock: &MockModel, model: &str) -> ModelAccess {
    ModelAccess {
        openai_base_url: mock.openai_base_url(),
        anthropic_base_url: mock.base_url(),
        token: TOKEN.into(),
        model: Some(model.into()),
    }
}
