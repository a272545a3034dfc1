//! In-process fake forges for tests: [`GithubFake`] (REST v3) and [`GitlabFake`] (REST v4).
//!
//! Each serves the subset of the documented API the client uses, with the documented request
//! and response shapes and error statuses, on `127.0.0.1` at a free port. Branch heads are read
//! from a local bare repository, the push remote, so a real `git push` is what the fake sees.
//! Every request is recorded (method, path, query, body, headers other than the credential,
//! and whether the credential was the expected token, and the status answered). Test controls
//! add reviews, checks and failures. Successful GETs carry an `ETag`, and a request whose
//! `If-None-Match` still matches gets `304 Not Modified` without a body, as both forges do.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod github;
mod gitlab;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

pub use github::GithubFake;
pub use gitlab::GitlabFake;

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// The path as sent (percent-encoding kept).
    pub path: String,
    pub query: String,
    pub body: String,
    /// Every header except `Authorization` and `PRIVATE-TOKEN`, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Whether the credential header carried the expected token.
    pub authorized: bool,
    /// The status the fake answered.
    pub status: u16,
}

impl Recorded {
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// One query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_map(&self.query).remove(name)
    }
}

/// A canned reply for the next request.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// What both fakes share: the token, the remote, the request log, queued failures, id and
/// time counters, the page size cap.
struct Core {
    token: String,
    remote: PathBuf,
    requests: Vec<Recorded>,
    failures: VecDeque<Failure>,
    next_id: u64,
    clock: u64,
    page_size: usize,
}

impl Core {
    fn new(remote: &Path, token: &str) -> Core {
        Core {
            token: token.to_owned(),
            remote: remote.to_path_buf(),
            requests: Vec::new(),
            failures: VecDeque::new(),
            next_id: 1000,
            clock: 0,
            page_size: 100,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The wall clock in milliseconds, always later than the previous timestamp: takt compares
    /// review and approval times with when it pushed.
    fn now(&mut self) -> String {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.clock = wall.max(self.clock + 1);
        let secs = i64::try_from(self.clock / 1000).unwrap_or(i64::MAX);
        let millis = u32::try_from(self.clock % 1000).unwrap_or(0);
        chrono::DateTime::from_timestamp(secs, millis * 1_000_000)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default()
    }

    /// The sha of `refs/heads/<branch>` in the remote, if it exists.
    fn head(&self, branch: &str) -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&self.remote)
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("refs/heads/{branch}^{{commit}}"))
            .output()
            .ok()?;
        let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !sha.is_empty()).then_some(sha)
    }

    /// The number of the page to serve and the page's items, from `per_page` and `page`
    /// (capped by the page size control); `next` is the following page, if any.
    fn page(&self, items: Vec<Value>, query: &BTreeMap<String, String>) -> Page {
        let per_page = query
            .get("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100)
            .min(self.page_size.max(1));
        let page = query
            .get("page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let total = items.len();
        let items: Vec<Value> = items
            .into_iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect();
        let next = (page * per_page < total).then_some(page + 1);
        Page { items, next }
    }
}

struct Page {
    items: Vec<Value>,
    next: Option<usize>,
}

/// A running server; stops when dropped.
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a handler gets: the request, parsed.
struct Incoming {
    method: Method,
    /// The raw path, percent-encoding kept.
    path: String,
    query: BTreeMap<String, String>,
    body: Value,
}

/// The reply of a handler.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string(),
        }
    }

    fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: body.into(),
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, headers, self.body).into_response()
    }
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://fake/?{query}")).ok();
    url.map(|u| {
        u.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// Percent-decodes a path segment.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A world behind a mutex, shared by the server and the test.
type Shared<W> = Arc<Mutex<W>>;

fn lock<W>(world: &Shared<W>) -> MutexGuard<'_, W> {
    world
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What a fake world must offer the generic request plumbing.
trait World: Send + 'static {
    fn core(&mut self) -> &mut Core;
    /// Whether the credential headers carry the token.
    fn authorized(&self, headers: &HeaderMap) -> bool;
    /// The reply to an unauthorized request.
    fn unauthorized() -> Reply;
    fn handle(&mut self, request: &Incoming) -> Reply;
}

async fn serve<W: World>(world: Shared<W>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the fake forge");
    let addr = listener.local_addr().expect("the fake forge's address");
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let world = world.clone();
            async move { dispatch(&world, method, uri, headers, body) }
        },
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, task }
}

fn dispatch<W: World>(
    world: &Shared<W>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Reply {
    let mut world = lock(world);
    let authorized = world.authorized(&headers);
    let raw_query = uri.query().unwrap_or_default().to_owned();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: raw_query.clone(),
        body: body_text.clone(),
        headers: headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "private-token"))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        authorized,
        status: 0,
    };
    world.core().requests.push(recorded);
    let if_none_match = headers
        .get("if-none-match")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let is_get = method == Method::GET;
    let reply = answer(
        &mut *world,
        method,
        &uri,
        authorized,
        &raw_query,
        &body_text,
    );
    let reply = if is_get {
        validate(reply, if_none_match.as_deref())
    } else {
        reply
    };
    if let Some(last) = world.core().requests.last_mut() {
        last.status = reply.status;
    }
    reply
}

/// A GET's `200` gets an `ETag` (a hash of its body); when the request's `If-None-Match`
/// names it, the answer is `304` without a body.
fn validate(mut reply: Reply, if_none_match: Option<&str>) -> Reply {
    if reply.status != 200 || reply.headers.iter().any(|(name, _)| name == "etag") {
        return reply;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    reply.body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    if if_none_match == Some(etag.as_str()) {
        return Reply {
            status: 304,
            headers: vec![("etag".to_owned(), etag)],
            body: String::new(),
        };
    }
    reply.headers.push(("etag".to_owned(), etag));
    reply
}

fn answer<W: World>(
    world: &mut W,
    method: Method,
    uri: &Uri,
    authorized: bool,
    raw_query: &str,
    body_text: &str,
) -> Reply {
    if let Some(failure) = world.core().failures.pop_front() {
        let mut reply = Reply::text(failure.status, failure.body);
        reply.headers = failure.headers;
        return reply;
    }
    let is_fake_path = uri.path().starts_with("/_fake/");
    if !authorized && !is_fake_path {
        return W::unauthorized();
    }
    let incoming = Incoming {
        method,
        path: uri.path().to_owned(),
        query: query_map(raw_query),
        body: serde_json::from_str(body_text).unwrap_or(Value::Null),
    };
    world.handle(&incoming)
}

/// A 40-hex-digit fake commit id for merge commits.
fn fake_sha(seed: u64) -> String {
    format!("{seed:040x}")
}
