//! The HTTP client the adapters share: TLS (rustls with ring), timeouts, the User-Agent, the
//! mapping of provider answers onto [`TrackerError`], rate-limit delays, and an ETag store for
//! conditional GETs.
//!
//! Secrets: a token only ever travels in a header marked sensitive; error messages carry the
//! provider's (scrubbed, truncated) answer, never the request's headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use takt_core::ports::TrackerError;

/// `takt/<version>`: GitHub rejects requests without a User-Agent.
pub const USER_AGENT: &str = concat!("takt/", env!("CARGO_PKG_VERSION"));

/// Connect timeout (R-059: 30000 ms).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whole-request timeout.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait after a secondary rate limit that names no delay (GitHub documents "at
/// least one minute").
pub const SECONDARY_RATE_LIMIT_DEFAULT_MS: u64 = 60_000;

/// At most this many bytes of a provider's error body are kept.
pub const BODY_SUMMARY_BYTES: usize = 1000;

/// How many conditional answers are remembered before the store is cleared.
const ETAG_CAPACITY: usize = 4096;

/// An answer that passed the status checks.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Arc<Vec<u8>>,
    /// True when the provider answered 304 and `body`/`headers` are the remembered ones.
    pub not_modified: bool,
}

impl Answer {
    pub fn json(&self, provider: &str) -> Result<serde_json::Value, TrackerError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            TrackerError::Response(format!("{provider}: the answer is not JSON: {error}"))
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The shared client of one adapter.
pub struct Http {
    client: reqwest::Client,
    provider: &'static str,
    auth: Vec<(HeaderName, HeaderValue)>,
    /// Removed from any text that came back, in case a provider echoes it.
    secret: String,
    etags: Mutex<HashMap<String, (String, Answer)>>,
    /// No request is sent before this instant: the provider asked us to wait.
    hold_until: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("provider", &self.provider)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Http {
    /// A client that sends `auth_header: auth_value` (marked sensitive) plus `extra` headers with
    /// every request.
    pub fn new(
        provider: &'static str,
        auth_header: HeaderName,
        auth_value: &str,
        secret: &str,
        extra: &[(HeaderName, &str)],
    ) -> Result<Http, TrackerError> {
        let mut value = HeaderValue::from_str(auth_value).map_err(|_| {
            TrackerError::InvalidConfig(format!(
                "{provider}: the token contains characters a header cannot carry"
            ))
        })?;
        value.set_sensitive(true);
        let mut auth = vec![(auth_header, value)];
        for (name, value) in extra {
            let value = HeaderValue::from_str(value).map_err(|_| {
                TrackerError::InvalidConfig(format!("{provider}: invalid header value for {name}"))
            })?;
            auth.push((name.clone(), value));
        }
        Ok(Http {
            client: client(provider)?,
            provider,
            auth,
            secret: secret.to_owned(),
            etags: Mutex::new(HashMap::new()),
            hold_until: Mutex::new(None),
        })
    }

    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Sends a request and checks its status (see [`check_status`]). With `conditional`, a
    /// remembered ETag for the same URL is sent as `If-None-Match`, and a 304 returns the
    /// remembered answer.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        conditional: bool,
    ) -> Result<Answer, TrackerError> {
        let answer = self.exchange(method, url, body, conditional).await?;
        if !answer.not_modified {
            let checked = check_status(
                self.provider,
                answer.status,
                &answer.headers,
                &answer.body,
                &self.secret,
            );
            if let Err(TrackerError::RateLimited {
                retry_after_ms: Some(ms),
            }) = &checked
            {
                self.hold_off(*ms);
            }
            checked?;
        }
        Ok(answer)
    }

    /// Honours a provider's "retry after": until `ms` from now, requests fail with
    /// `tracker_rate_limited` (and the remaining delay) without being sent, so polling does not
    /// prolong a rate limit.
    pub fn hold_off(&self, ms: u64) {
        if let Ok(mut hold) = self.hold_until.lock() {
            let until = std::time::Instant::now() + Duration::from_millis(ms);
            *hold = Some(hold.map_or(until, |current| current.max(until)));
        }
    }

    /// The remaining hold-off, if any.
    fn held(&self) -> Option<u64> {
        let hold = self.hold_until.lock().ok()?;
        let until = (*hold)?;
        let remaining = until.checked_duration_since(std::time::Instant::now())?;
        Some(
            u64::try_from(remaining.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        )
    }

    /// Sends a request and returns whatever status came back; only transport failures are
    /// errors (`tracker_request`).
    pub async fn exchange(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
        conditional: bool,
    ) -> Result<Answer, TrackerError> {
        let provider = self.provider;
        if let Some(remaining) = self.held() {
            tracing::debug!(
                provider,
                remaining_ms = remaining,
                "tracker request held back"
            );
            return Err(TrackerError::RateLimited {
                retry_after_ms: Some(remaining),
            });
        }
        let mut request = self.client.request(method.clone(), url);
        for (name, value) in &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let remembered = if conditional {
            self.etags.lock().ok().and_then(|map| map.get(url).cloned())
        } else {
            None
        };
        if let Some((etag, _)) = &remembered {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag.as_str());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|error| {
            TrackerError::Request(self.scrub(&format!(
                "{provider}: {method} {} failed: {}",
                path_of(url),
                error.without_url()
            )))
        })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.map_err(|error| {
            TrackerError::Request(self.scrub(&format!(
                "{provider}: reading the answer to {method} {} failed: {}",
                path_of(url),
                error.without_url()
            )))
        })?;
        tracing::debug!(provider, %method, path = path_of(url), status, "tracker request");
        if status == 304 {
            if let Some((_, answer)) = remembered {
                return Ok(Answer {
                    not_modified: true,
                    ..answer
                });
            }
            return Err(TrackerError::Response(format!(
                "{provider}: 304 Not Modified to a request that was not conditional"
            )));
        }
        let answer = Answer {
            status,
            headers,
            body: Arc::new(bytes.to_vec()),
            not_modified: false,
        };
        if conditional
            && (200..300).contains(&status)
            && let Some(etag) = answer.header("etag").map(str::to_owned)
            && let Ok(mut map) = self.etags.lock()
        {
            if map.len() >= ETAG_CAPACITY {
                map.clear();
            }
            map.insert(url.to_owned(), (etag, answer.clone()));
        }
        Ok(answer)
    }

    /// The provider's answer as one safe line (see [`summarize`]).
    pub fn summary(&self, body: &[u8]) -> String {
        summarize(body, &self.secret)
    }

    pub fn scrub_text(&self, text: &str) -> String {
        self.scrub(text)
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, &self.secret)
    }
}

/// Removes `secret` from `text`.
pub fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    }
}

/// The path of a URL, for logs and messages (queries can be long; they never hold secrets).
fn path_of(url: &str) -> &str {
    let without_query = url.split('?').next().unwrap_or(url);
    match without_query.find("://") {
        Some(scheme) => {
            let rest = &without_query[scheme + 3..];
            rest.find('/').map_or("/", |slash| &rest[slash..])
        }
        None => without_query,
    }
}

/// The provider's answer as one line: whitespace collapsed, at most [`BODY_SUMMARY_BYTES`],
/// `secret` removed.
pub fn summarize(body: &[u8], secret: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut summary = scrub(&collapsed, secret);
    if summary.len() > BODY_SUMMARY_BYTES {
        let mut end = BODY_SUMMARY_BYTES;
        while !summary.is_char_boundary(end) {
            end -= 1;
        }
        summary.truncate(end);
        summary.push('…');
    }
    summary
}

/// Maps a status onto the error categories:
///
/// - 2xx: fine;
/// - 429, or 403 that is a rate limit (`Retry-After`, `x-ratelimit-remaining: 0`, or a body
///   naming a rate limit): `tracker_rate_limited` with the delay the provider names;
/// - 401 and other 403: `tracker_status` saying the credential was rejected or lacks access;
/// - anything else: `tracker_status` with the summarized body.
pub fn check_status(
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    secret: &str,
) -> Result<(), TrackerError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let summary = summarize(body, secret);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let exhausted = ["x-ratelimit-remaining", "ratelimit-remaining"]
        .iter()
        .any(|name| header(name).map(str::trim) == Some("0"));
    let says_rate_limit = summary.to_lowercase().contains("rate limit");
    if status == 429
        || (status == 403 && (header("retry-after").is_some() || exhausted || says_rate_limit))
    {
        let mut retry_after_ms = retry_after_ms(headers, chrono::Utc::now());
        if retry_after_ms.is_none() && summary.to_lowercase().contains("secondary rate limit") {
            retry_after_ms = Some(SECONDARY_RATE_LIMIT_DEFAULT_MS);
        }
        tracing::warn!(provider, status, ?retry_after_ms, "tracker rate limited");
        return Err(TrackerError::RateLimited { retry_after_ms });
    }
    let message = match status {
        401 => format!("{provider}: the credential was rejected (401): {summary}"),
        403 => format!("{provider}: the credential lacks access (403): {summary}"),
        _ => format!("{provider}: {summary}"),
    };
    tracing::warn!(provider, status, body = %summary, "tracker answered with an error status");
    Err(TrackerError::Status { status, message })
}

/// The delay a provider asks for: `Retry-After` (seconds or an HTTP date), else a reset instant
/// with no requests left (`x-ratelimit-reset` / `ratelimit-reset` in epoch seconds, Linear's
/// `x-ratelimit-requests-reset` in epoch milliseconds).
pub fn retry_after_ms(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = header("retry-after") {
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(seconds.saturating_mul(1000));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(value) {
            return Some(until(at.timestamp_millis(), now));
        }
    }
    for name in ["x-ratelimit-reset", "ratelimit-reset"] {
        if let Some(seconds) = header(name).and_then(|v| v.parse::<i64>().ok()) {
            return Some(until(seconds.saturating_mul(1000), now));
        }
    }
    if let Some(millis) = header("x-ratelimit-requests-reset").and_then(|v| v.parse::<i64>().ok()) {
        return Some(until(millis, now));
    }
    None
}

fn until(at_ms: i64, now: chrono::DateTime<chrono::Utc>) -> u64 {
    u64::try_from(at_ms.saturating_sub(now.timestamp_millis())).unwrap_or(0)
}

/// An HTTPS client with ring as the TLS provider, configured explicitly (libraries do not
/// install process-wide crypto providers).
fn client(provider: &str) -> Result<reqwest::Client, TrackerError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let failed = |error: String| {
        TrackerError::Request(format!("{provider}: building the HTTP client: {error}"))
    };
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(crypto)
        .with_safe_default_protocol_versions()
        .map_err(|error| failed(error.to_string()))?
        .with_platform_verifier()
        .map_err(|error| failed(error.to_string()))?
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| failed(error.to_string()))
}

/// Checks a configured base URL: `https://`, or `http://` to a loopback host (tests, local
/// proxies).
pub fn check_base_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed).map_err(|error| format!("`{trimmed}`: {error}"))?;
    let loopback = matches!(
        parsed.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    match parsed.scheme() {
        "https" => Ok(trimmed.to_owned()),
        "http" if loopback => Ok(trimmed.to_owned()),
        other => Err(format!(
            "`{trimmed}`: the scheme must be https (http only for localhost), not {other}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn retry_after_seconds_and_reset_headers() {
        let now = chrono::DateTime::from_timestamp(1_000, 0).unwrap_or_default();
        assert_eq!(
            retry_after_ms(&headers(&[("retry-after", "7")]), now),
            Some(7000)
        );
        assert_eq!(
            retry_after_ms(&headers(&[("x-ratelimit-reset", "1030")]), now),
            Some(30_000)
        );
        assert_eq!(
            retry_after_ms(&headers(&[("x-ratelimit-requests-reset", "1002500")]), now),
            Some(2_500)
        );
        assert_eq!(retry_after_ms(&headers(&[]), now), None);
    }

    #[test]
    fn summaries_collapse_truncate_and_scrub() {
        let body = format!("a  \n b secret-token {}", "x".repeat(2000));
        let summary = summarize(body.as_bytes(), "secret-token");
        assert!(summary.starts_with("a b [redacted] "));
        assert!(summary.len() <= BODY_SUMMARY_BYTES + '…'.len_utf8());
    }

    #[test]
    fn base_urls_must_be_https_except_loopback() {
        assert!(check_base_url("https://api.github.com/").is_ok());
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://example.com").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn paths_drop_scheme_host_and_query() {
        assert_eq!(path_of("https://h.example/a/b?token=x"), "/a/b");
        assert_eq!(path_of("https://h.example"), "/");
    }
}
