//! The server's clock and timestamp formatting. The core never reads a clock; the server is
//! shell and does, to say when a response was generated and how long live runs have run.

use takt_protocol::Millis;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> Millis {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

/// RFC 3339 in UTC with milliseconds (`2026-05-01T12:00:00.000Z`), as Symphony's API writes
/// times. A time chrono cannot represent (far outside any real clock) is written as the epoch.
pub fn rfc3339(at: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
