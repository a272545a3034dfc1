mod chat;
mod client;
mod messages;
mod responses;
mod server;

use std::time::Duration;

use takt_mock_model::{MockConfig, MockModel, Scenario};

/// Starts a server with these scenarios (plus the built-ins) and fast `stream_forever` ticks.
pub async fn start(scenarios: Vec<Scenario>) -> MockModel {
    MockModel::start(MockConfig {
        stream_tick: Duration::from_millis(20),
        ..MockConfig::with_scenarios(scenarios)
    })
    .await
    .unwrap()
}
