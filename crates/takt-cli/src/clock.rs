//! The one place the binary reads the wall clock; the core only ever sees these numbers.

use takt_protocol::Millis;

pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 for display and JSON.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}
