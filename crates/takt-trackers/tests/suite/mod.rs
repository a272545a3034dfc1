//! Shared helpers: configurations, a log capture, assertions on recorded requests.

mod github;
mod gitlab;
mod linear;
mod sync;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use takt_core::ports::Tracker;
use takt_workflow::{MapEnv, TrackerConfig};

pub const TOKEN: &str = "tok-SECRET-1234567890";

pub fn config(kind: &str, active: &[&str], terminal: &[&str], provider: Value) -> TrackerConfig {
    TrackerConfig {
        kind: kind.to_owned(),
        active_states: active.iter().map(|s| (*s).to_owned()).collect(),
        terminal_states: terminal.iter().map(|s| (*s).to_owned()).collect(),
        required_labels: Vec::new(),
        provider: provider.as_object().cloned().unwrap_or_default(),
        transitions: Default::default(),
        answer_mention: "@takt".into(),
    }
}

pub fn build(config: &TrackerConfig) -> Arc<dyn Tracker> {
    match takt_trackers::build(config, &MapEnv::new()) {
        Ok(tracker) => tracker,
        Err(error) => panic!("building the tracker: {error}"),
    }
}

pub fn states(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

pub fn ids(issues: &[takt_protocol::Issue]) -> Vec<String> {
    issues.iter().map(|i| i.id.clone()).collect()
}

/// Every request sent the token, and no recorded part (path, query, other headers, body)
/// contains it.
pub fn assert_token_sent_and_contained(requests: &[takt_trackers::fake::Recorded]) {
    assert!(!requests.is_empty());
    for request in requests {
        assert!(request.authorized, "request without the token: {request:?}");
        let text = format!(
            "{} {} {:?} {}",
            request.path, request.query, request.headers, request.body
        );
        assert!(!text.contains(TOKEN), "the token leaked into {text}");
    }
}

/// A `tracing` subscriber (every level, every target) writing into a buffer, for the current
/// thread.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (captured, guard)
}

pub fn provider(pairs: Value) -> Value {
    let mut value = json!({"token": TOKEN});
    if let (Some(target), Some(source)) = (value.as_object_mut(), pairs.as_object()) {
        for (k, v) in source {
            target.insert(k.clone(), v.clone());
        }
    }
    value
}
