//! The HTTP side shared by both forges: one client (rustls with ring, as the gateway does),
//! the token in one header marked sensitive, status codes mapped to [`ForgeError`], and
//! pagination through `Link: <...>; rel="next"` (GitHub, GitLab) or `x-next-page` (GitLab),
//! and conditional GETs: a document read before is asked for with `If-None-Match`, and a
//! `304 Not Modified` is answered from memory. Following every open pull request at every poll
//! then costs GitHub's rate limit only for what changed (a 304 does not count against it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DEFAULT_RATE_LIMIT_WAIT, ForgeError};
use crate::settings::Secret;

/// Pages followed at most for one listing (100 items each).
const MAX_PAGES: usize = 20;
/// The most bytes of a forge's error message kept in an error.
const MESSAGE_CAP: usize = 500;
/// Documents kept for conditional GETs; the cache starts over when it is full.
const MAX_VALIDATED: usize = 2048;

/// Which header carries the token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AuthStyle {
    /// `Authorization: Bearer <token>` (GitHub).
    Bearer,
    /// `PRIVATE-TOKEN: <token>` (GitLab).
    PrivateToken,
}

/// One answered request: status, headers and the body as text.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ForgeError> {
        serde_json::from_str(&self.text)
            .map_err(|error| ForgeError::Response(format!("{what}: {error}")))
    }
}

/// A document as last read, with the validator that asks whether it changed.
struct Validated {
    etag: HeaderValue,
    headers: HeaderMap,
    text: String,
}

/// An authenticated client for one forge API root.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    base: Url,
    token: Secret,
    auth: AuthStyle,
    extra: Arc<Vec<(HeaderName, HeaderValue)>>,
    /// Documents by URL, for conditional GETs.
    validated: Arc<Mutex<HashMap<String, Validated>>>,
}

impl Http {
    /// `follow_redirects`: GitHub's log downloads redirect to blob storage (reqwest drops the
    /// `Authorization` header when the host changes); GitLab's `PRIVATE-TOKEN` would not be
    /// dropped, so its client follows no redirects.
    pub fn new(
        api_url: &str,
        token: Secret,
        auth: AuthStyle,
        extra: Vec<(HeaderName, HeaderValue)>,
        follow_redirects: bool,
    ) -> Result<Http, ForgeError> {
        let base = Url::parse(&format!("{}/", api_url.trim_end_matches('/')))
            .map_err(|error| ForgeError::Config(format!("API URL {api_url:?}: {error}")))?;
        Ok(Http {
            client: http_client(follow_redirects)?,
            base,
            token,
            auth,
            extra: Arc::new(extra),
            validated: Arc::default(),
        })
    }

    /// The absolute URL of an API path such as `repos/o/r/pulls` (no leading slash).
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ForgeError> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|error| ForgeError::Config(format!("API path {path:?}: {error}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().copied());
        }
        Ok(url)
    }

    fn authorize(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ForgeError> {
        let (name, value) = match self.auth {
            AuthStyle::Bearer => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", self.token.expose()),
            ),
            AuthStyle::PrivateToken => (
                HeaderName::from_static("private-token"),
                self.token.expose().to_owned(),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            ForgeError::Config("the token holds characters not allowed in a header".to_owned())
        })?;
        value.set_sensitive(true);
        let mut builder = builder.header(name, value);
        for (name, value) in self.extra.iter() {
            builder = builder.header(name.clone(), value.clone());
        }
        Ok(builder)
    }

    /// Sends one request; any non-2xx status becomes the matching [`ForgeError`]. A GET of a
    /// document read before is conditional, and `304 Not Modified` gives the document kept.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<Reply, ForgeError> {
        let conditional = (method == Method::GET)
            .then(|| self.validator(&url))
            .flatten();
        let mut reply = self
            .send_with(method.clone(), url.clone(), body, None, conditional)
            .await?;
        if reply.status == StatusCode::NOT_MODIFIED {
            match self.kept(&url) {
                Some(kept) => return Ok(kept),
                // Forgotten in between (the cache started over): ask plainly.
                None => {
                    reply = self
                        .send_with(method.clone(), url.clone(), body, None, None)
                        .await?;
                }
            }
        }
        if !reply.status.is_success() {
            return Err(self.classify(&method, &url, &reply));
        }
        if method == Method::GET {
            self.keep(&url, &reply);
        }
        Ok(reply)
    }

    fn validated(&self) -> std::sync::MutexGuard<'_, HashMap<String, Validated>> {
        self.validated
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn validator(&self, url: &Url) -> Option<HeaderValue> {
        self.validated()
            .get(url.as_str())
            .map(|kept| kept.etag.clone())
    }

    fn kept(&self, url: &Url) -> Option<Reply> {
        self.validated().get(url.as_str()).map(|kept| Reply {
            status: StatusCode::OK,
            headers: kept.headers.clone(),
            text: kept.text.clone(),
        })
    }

    fn keep(&self, url: &Url, reply: &Reply) {
        let Some(etag) = reply.headers.get(reqwest::header::ETAG).cloned() else {
            return;
        };
        let mut validated = self.validated();
        if validated.len() >= MAX_VALIDATED {
            validated.clear();
        }
        validated.insert(
            url.as_str().to_owned(),
            Validated {
                etag,
                headers: reply.headers.clone(),
                text: reply.text.clone(),
            },
        );
    }

    /// Sends one request and returns the reply whatever its status (transport errors aside);
    /// `keep_tail` bounds the body to its last bytes (logs).
    pub async fn send_raw(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        keep_tail: Option<usize>,
    ) -> Result<Reply, ForgeError> {
        self.send_with(method, url, body, keep_tail, None).await
    }

    async fn send_with(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        keep_tail: Option<usize>,
        if_none_match: Option<HeaderValue>,
    ) -> Result<Reply, ForgeError> {
        if url.origin() != self.base.origin() {
            return Err(ForgeError::Response(format!(
                "refusing to send the token to {}, which is not the API's origin",
                url.origin().ascii_serialization()
            )));
        }
        let mut builder = self.authorize(self.client.request(method.clone(), url.clone()))?;
        if let Some(body) = body {
            builder = builder.json(body);
        }
        if let Some(etag) = if_none_match {
            builder = builder.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        tracing::debug!(method = %method, path = %url.path(), "forge request");
        let mut response = builder
            .send()
            .await
            .map_err(|error| ForgeError::Request(self.token.redact(&error.to_string())))?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    if let Some(cap) = keep_tail
                        && bytes.len() > cap.saturating_mul(2)
                    {
                        let cut = bytes.len() - cap;
                        bytes.drain(..cut);
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    return Err(ForgeError::Request(self.token.redact(&error.to_string())));
                }
            }
        }
        if let Some(cap) = keep_tail
            && bytes.len() > cap
        {
            let cut = bytes.len() - cap;
            bytes.drain(..cut);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        tracing::debug!(method = %method, path = %url.path(), status = status.as_u16(), "forge reply");
        Ok(Reply {
            status,
            headers,
            text,
        })
    }

    /// GET a JSON document.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ForgeError> {
        let url = self.url(path, query)?;
        self.send(Method::GET, url, None).await?.json(path)
    }

    /// Sends a JSON body and reads a JSON answer.
    pub async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<T, ForgeError> {
        let url = self.url(path, &[])?;
        self.send(method, url, Some(body)).await?.json(path)
    }

    /// Every item of a paginated JSON array listing (at most [`MAX_PAGES`] pages of 100).
    pub async fn get_all<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Vec<T>, ForgeError> {
        self.get_all_in(path, query, None).await
    }

    /// Like [`Http::get_all`], for listings whose pages are objects holding the array under
    /// `key` (GitHub's `{"total_count": n, "check_runs": [...]}`).
    pub async fn get_all_in<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: Option<&str>,
    ) -> Result<Vec<T>, ForgeError> {
        let mut query: Vec<(&str, &str)> = query.to_vec();
        query.push(("per_page", "100"));
        let mut url = self.url(path, &query)?;
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self.send(Method::GET, url.clone(), None).await?;
            let page: Vec<T> = match key {
                None => reply.json(path)?,
                Some(key) => {
                    let mut value: Value = reply.json(path)?;
                    let array = value.get_mut(key).map(Value::take).unwrap_or(Value::Null);
                    serde_json::from_value(array)
                        .map_err(|error| ForgeError::Response(format!("{path} {key}: {error}")))?
                }
            };
            let empty = page.is_empty();
            items.extend(page);
            match next_page(&url, &reply.headers) {
                Some(next) if !empty => url = next,
                _ => break,
            }
        }
        Ok(items)
    }

    /// Maps a non-2xx reply to an error; the message is the forge's, redacted and capped.
    pub fn classify(&self, method: &Method, url: &Url, reply: &Reply) -> ForgeError {
        let message = self.message(reply);
        let path = url.path().to_owned();
        let method = method.to_string();
        let status = reply.status.as_u16();
        if let Some(wait) = rate_limit_wait(reply.status, &reply.headers, &message) {
            return ForgeError::RateLimited {
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            };
        }
        match status {
            401 | 403 => ForgeError::Auth {
                method,
                path,
                status,
                message,
            },
            404 => ForgeError::NotFound {
                method,
                path,
                message,
            },
            _ => ForgeError::Status {
                method,
                path,
                status,
                message,
            },
        }
    }

    /// The forge's error text: JSON `message` / `error` (GitLab's `message` may be a list or
    /// a map of field errors), else the raw body; redacted, capped.
    pub fn message(&self, reply: &Reply) -> String {
        let text = match serde_json::from_str::<Value>(&reply.text) {
            Ok(value) => {
                let mut text = match value.get("message").or_else(|| value.get("error")) {
                    Some(Value::String(message)) => message.clone(),
                    Some(other) => other.to_string(),
                    None => reply.text.clone(),
                };
                if let Some(Value::Array(errors)) = value.get("errors") {
                    let details: Vec<String> = errors
                        .iter()
                        .map(|e| match e.get("message") {
                            Some(Value::String(m)) => m.clone(),
                            _ => e.to_string(),
                        })
                        .collect();
                    if !details.is_empty() {
                        text = format!("{text} ({})", details.join("; "));
                    }
                }
                text
            }
            Err(_) => reply.text.clone(),
        };
        let mut text = self.token.redact(text.trim());
        if text.len() > MESSAGE_CAP {
            let mut cut = MESSAGE_CAP;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        if text.is_empty() {
            reply
                .status
                .canonical_reason()
                .unwrap_or("no message")
                .to_owned()
        } else {
            text
        }
    }
}

/// The delay a rate-limited reply asks for, or `None` when the reply is not a rate limit.
/// 429 always is; 403 is when it carries `Retry-After`, an exhausted `x-ratelimit-remaining`
/// (GitHub primary limit) or says "rate limit" (GitHub secondary limits).
pub(crate) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after").and_then(parse_retry_after);
    let exhausted =
        header("x-ratelimit-remaining") == Some("0") || header("ratelimit-remaining") == Some("0");
    let limited = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (retry_after.is_some()
                || exhausted
                || message.to_lowercase().contains("rate limit")));
    if !limited {
        return None;
    }
    if let Some(wait) = retry_after {
        return Some(wait);
    }
    let reset = header("x-ratelimit-reset")
        .or_else(|| header("ratelimit-reset"))
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(reset) = reset {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    Some(DEFAULT_RATE_LIMIT_WAIT)
}

/// `Retry-After` in seconds (HTTP dates are not used by GitHub or GitLab; they count as
/// absent).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// The next page's URL: `Link: <...>; rel="next"` if present, else GitLab's `x-next-page`.
pub(crate) fn next_page(current: &Url, headers: &HeaderMap) -> Option<Url> {
    if let Some(link) = headers.get("link").and_then(|v| v.to_str().ok()) {
        for part in link.split(',') {
            let mut pieces = part.split(';');
            let target = pieces.next().map(str::trim).unwrap_or_default();
            let is_next = pieces.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next
                && let Some(inner) = target.strip_prefix('<').and_then(|t| t.strip_suffix('>'))
            {
                return current.join(inner).ok();
            }
        }
        return None;
    }
    let next = headers
        .get("x-next-page")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())?;
    let mut url = current.clone();
    let pairs: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("page", next);
    Some(url)
}

/// An HTTPS client with ring as the TLS provider, configured explicitly (libraries do not
/// install process-wide crypto providers); the same construction as the gateway's.
fn http_client(follow_redirects: bool) -> Result<reqwest::Client, ForgeError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| ForgeError::Config(format!("TLS: {error}")))?
        .with_platform_verifier()
        .map_err(|error| ForgeError::Config(format!("TLS: {error}")))?
        .with_no_client_auth();
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::limited(5)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .redirect(redirects)
        .user_agent(concat!("takt/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| ForgeError::Config(format!("HTTP client: {error}")))
}

/// Percent-encodes one path segment (GitLab's `:id` is the URL-encoded project path).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                *k,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
        }
        map
    }

    #[test]
    fn link_next_is_followed_and_x_next_page_replaces_the_page() {
        let url = Url::parse("https://x/api/v4/p?per_page=100").unwrap_or_else(|_| unreachable!());
        let link = headers(&[(
            "link",
            "<https://x/api/v4/p?per_page=100&page=2>; rel=\"next\", <https://x/api/v4/p?page=9>; rel=\"last\"",
        )]);
        assert_eq!(
            next_page(&url, &link).map(|u| u.to_string()).as_deref(),
            Some("https://x/api/v4/p?per_page=100&page=2")
        );
        let gitlab = headers(&[("x-next-page", "3")]);
        assert_eq!(
            next_page(&url, &gitlab).map(|u| u.to_string()).as_deref(),
            Some("https://x/api/v4/p?per_page=100&page=3")
        );
        assert!(next_page(&url, &headers(&[("x-next-page", "")])).is_none());
    }

    #[test]
    fn rate_limits_are_recognized() {
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers(&[("retry-after", "7")]), ""),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), ""),
            Some(DEFAULT_RATE_LIMIT_WAIT)
        );
        assert!(
            rate_limit_wait(StatusCode::FORBIDDEN, &HeaderMap::new(), "Bad credentials").is_none()
        );
        assert!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "You have exceeded a secondary rate limit"
            )
            .is_some()
        );
    }

    #[test]
    fn project_paths_are_encoded() {
        assert_eq!(encode_segment("group/sub/my.proj"), "group%2Fsub%2Fmy.proj");
    }
}
