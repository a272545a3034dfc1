//! In-process fake servers for GitHub REST v3, GitLab REST v4 and Linear GraphQL, following each
//! provider's documented request and response shapes closely enough to exercise the adapters:
//! pagination (GitHub `Link`, GitLab `x-next-page` + `Link`, Linear `pageInfo`), updated-since
//! filters (`since`, `updated_after`, `updatedAt: {gte}`), ETags and 304s (GitHub), issue comments
//! (GitHub comments, GitLab notes, Linear `issue { comments }` with `commentCreate` /
//! `commentUpdate`), and injected failures (401, rate limits, 500, GraphQL `errors`, a missing end
//! cursor, an unsuccessful mutation, malformed records).
//!
//! Every request is recorded without its credential; [`Recorded::authorized`] says whether the
//! expected token was sent the provider's way. A request without it is answered 401.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which provider a fake plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Github,
    Gitlab,
    Linear,
}

/// One recorded request, without credentials.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Every header except `authorization` and `private-token`, lowercased names.
    pub headers: Vec<(String, String)>,
    /// The request body (Linear: `{query, variables}`).
    pub body: String,
    /// The expected token arrived in the provider's auth header.
    pub authorized: bool,
    /// `If-None-Match` was sent.
    pub conditional: bool,
    /// The status answered.
    pub status: u16,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The decoded query parameters, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_query(&self.query)
    }

    /// Linear: the GraphQL `variables`.
    pub fn variables(&self) -> Value {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|mut v| v.get_mut("variables").map(Value::take))
            .unwrap_or(Value::Null)
    }
}

/// A failure the next request receives (in order, one per request).
#[derive(Debug, Clone)]
pub enum Failure {
    /// 401 with the provider's error body.
    Unauthorized,
    /// GitHub's secondary rate limit: 403, a body naming it, and `retry-after` when given.
    SecondaryRateLimit { retry_after_s: Option<u64> },
    /// A primary rate limit: 403 with `x-ratelimit-remaining: 0` and a reset in the future.
    PrimaryRateLimit { reset_in_s: u64 },
    /// 429 with `retry-after`.
    TooManyRequests { retry_after_s: u64 },
    /// 500.
    ServerError,
    /// Linear: 200 with a GraphQL `errors` array.
    GraphqlErrors,
    /// Linear: a `RATELIMITED` GraphQL error (HTTP 400) with `x-ratelimit-requests-reset`.
    GraphqlRateLimited { reset_in_ms: u64 },
    /// Linear: `hasNextPage: true` with a null `endCursor`.
    MissingEndCursor,
    /// Linear: a mutation answers 200 with `success: false` and changes nothing (a query is
    /// answered normally).
    Unsuccessful,
    /// No failure: the request is answered normally. Queued before another failure, it lets the
    /// failure hit a later request of a sequence (a mutation after its lookup).
    Pass,
}

impl Failure {
    /// Answered by the provider's handler inside a normal answer, not by [`failure_response`].
    fn in_band(&self) -> bool {
        matches!(
            self,
            Failure::MissingEndCursor | Failure::Unsuccessful | Failure::Pass
        )
    }
}

/// A comment on an issue of a fake tracker, kept verbatim.
#[derive(Debug, Clone)]
struct FakeComment {
    id: u64,
    issue: u64,
    body: String,
    /// The login (GitHub), username (GitLab) or display name (Linear); a bot's name when `bot`.
    author: String,
    created_ms: i64,
    /// Written by an integration (Linear: no `user`, a `botActor` instead).
    bot: bool,
}

/// An issue in a fake tracker. `state` uses the provider's spelling (`open`/`closed`,
/// `opened`/`closed`, Linear state names).
#[derive(Debug, Clone)]
pub struct FakeIssue {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub state: String,
    pub labels: Vec<String>,
    pub author: String,
    pub assignee: Option<String>,
    /// Linear's numeric priority.
    pub priority: Option<i64>,
    /// Numbers of the issues that block this one (Linear inverse `blocks` relations).
    pub blocked_by: Vec<u64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// GitHub: the item is a pull request.
    pub pull_request: bool,
    /// The record is served without its title (Linear: without its state).
    pub malformed: bool,
    /// Linear: whether the issue is in the configured project.
    pub in_project: bool,
}

/// 2024-01-01T00:00:00Z.
const EPOCH_MS: i64 = 1_704_067_200_000;

impl FakeIssue {
    /// Issue `number`, created and last updated `number` minutes after 2024-01-01.
    pub fn new(number: u64, state: &str) -> FakeIssue {
        let at = EPOCH_MS + i64::try_from(number).unwrap_or(0) * 60_000;
        FakeIssue {
            number,
            title: format!("Issue {number}"),
            body: Some(format!("Body of issue {number}")),
            state: state.to_owned(),
            labels: Vec::new(),
            author: "octo-author".to_owned(),
            assignee: None,
            priority: None,
            blocked_by: Vec::new(),
            created_at_ms: at,
            updated_at_ms: at,
            pull_request: false,
            malformed: false,
            in_project: true,
        }
    }
}

struct State {
    provider: Provider,
    /// GitHub `owner/repo`, GitLab project path, Linear project slug.
    scope: String,
    token: String,
    base: String,
    issues: Vec<FakeIssue>,
    /// Issue comments, oldest first.
    comments: Vec<FakeComment>,
    requests: Vec<Recorded>,
    failures: VecDeque<Failure>,
    viewer: Option<String>,
    last_touch_ms: i64,
}

/// A running fake. Dropping it stops the server.
pub struct Fake {
    state: Arc<Mutex<State>>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

/// The GitHub REST fake.
pub type GithubFake = Fake;
/// The GitLab REST fake.
pub type GitlabFake = Fake;
/// The Linear GraphQL fake.
pub type LinearFake = Fake;

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// A GitHub fake for `repo` (`owner/name`); [`Fake::url`] is the `api_url`.
    pub async fn github(repo: &str, token: &str) -> std::io::Result<Fake> {
        Fake::start(Provider::Github, repo, token).await
    }

    /// A GitLab fake for `project_path`; [`Fake::url`] is the `base_url`.
    pub async fn gitlab(project_path: &str, token: &str) -> std::io::Result<Fake> {
        Fake::start(Provider::Gitlab, project_path, token).await
    }

    /// A Linear fake for `project_slug`; [`Fake::url`] is the `endpoint` (`.../graphql`).
    pub async fn linear(project_slug: &str, token: &str) -> std::io::Result<Fake> {
        Fake::start(Provider::Linear, project_slug, token).await
    }

    async fn start(provider: Provider, scope: &str, token: &str) -> std::io::Result<Fake> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            provider,
            scope: scope.to_owned(),
            token: token.to_owned(),
            base: base.clone(),
            issues: Vec::new(),
            comments: Vec::new(),
            requests: Vec::new(),
            failures: VecDeque::new(),
            viewer: Some("user-me".to_owned()),
            last_touch_ms: 0,
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = match provider {
            Provider::Linear => format!("{base}/graphql"),
            _ => base,
        };
        Ok(Fake { state, url, task })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The URL to configure the adapter with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds issues 1..=n in the provider's default open state (`open`, `opened`, `Todo`).
    pub fn seed(&self, n: u64) {
        let state = match self.lock().provider {
            Provider::Github => "open",
            Provider::Gitlab => "opened",
            Provider::Linear => "Todo",
        };
        let mut guard = self.lock();
        let start = guard.issues.iter().map(|i| i.number).max().unwrap_or(0);
        guard
            .issues
            .extend((start + 1..=start + n).map(|number| FakeIssue::new(number, state)));
    }

    pub fn add(&self, issue: FakeIssue) {
        self.lock().issues.push(issue);
    }

    /// Changes issue `number` and stamps it updated now.
    pub fn update(&self, number: u64, change: impl FnOnce(&mut FakeIssue)) {
        let mut guard = self.lock();
        let now = touch(&mut guard);
        if let Some(issue) = guard.issues.iter_mut().find(|i| i.number == number) {
            change(issue);
            issue.updated_at_ms = now;
        }
    }

    /// Deletes issue `number` (no update stamp: deletions are invisible to updated-since).
    pub fn remove(&self, number: u64) {
        self.lock().issues.retain(|i| i.number != number);
    }

    pub fn issue(&self, number: u64) -> Option<FakeIssue> {
        self.lock()
            .issues
            .iter()
            .find(|i| i.number == number)
            .cloned()
    }

    /// Queues a failure for the next request.
    pub fn fail_next(&self, failure: Failure) {
        self.lock().failures.push_back(failure);
    }

    /// Linear: the `viewer { id }` answer (`None` → null viewer).
    pub fn set_viewer(&self, id: Option<&str>) {
        self.lock().viewer = id.map(str::to_owned);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// The bodies of the comments on issue `number`, oldest first.
    pub fn comments(&self, number: u64) -> Vec<String> {
        let guard = self.lock();
        let mut comments: Vec<&FakeComment> = guard
            .comments
            .iter()
            .filter(|comment| comment.issue == number)
            .collect();
        comments.sort_by_key(|comment| comment.created_ms);
        comments
            .into_iter()
            .map(|comment| comment.body.clone())
            .collect()
    }

    /// `author` comments `body` on issue `number` now.
    pub fn add_comment(&self, number: u64, author: &str, body: &str) {
        self.add_comment_at(number, author, body, chrono::Utc::now().timestamp_millis());
    }

    /// `author` comments `body` on issue `number` at `at_ms` (epoch milliseconds), so tests
    /// can place comments in time without sleeping.
    pub fn add_comment_at(&self, number: u64, author: &str, body: &str, at_ms: i64) {
        self.push_comment(number, author, body, at_ms, false);
    }

    /// The integration `bot` comments `body` on issue `number` now (Linear: a comment without a
    /// user; GitHub and GitLab show `bot` as the author).
    pub fn add_bot_comment(&self, number: u64, bot: &str, body: &str) {
        let now = chrono::Utc::now().timestamp_millis();
        self.push_comment(number, bot, body, now, true);
    }

    fn push_comment(&self, number: u64, author: &str, body: &str, created_ms: i64, bot: bool) {
        let mut guard = self.lock();
        let id = 9_000_000 + guard.comments.len() as u64;
        guard.comments.push(FakeComment {
            id,
            issue: number,
            body: body.to_owned(),
            author: author.to_owned(),
            created_ms,
            bot,
        });
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }
}

fn touch(state: &mut State) -> i64 {
    let now = chrono::Utc::now()
        .timestamp_millis()
        .max(state.last_touch_ms + 1);
    state.last_touch_ms = now;
    now
}

async fn handle(
    AxumState(state): AxumState<Arc<Mutex<State>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut guard = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let state = &mut *guard;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header("authorization");
    let authorized = match state.provider {
        Provider::Github => authorization.as_deref() == Some(&format!("Bearer {}", state.token)),
        Provider::Gitlab => {
            authorization.as_deref() == Some(&format!("Bearer {}", state.token))
                || header("private-token").as_deref() == Some(state.token.as_str())
        }
        Provider::Linear => authorization.as_deref() == Some(state.token.as_str()),
    };
    let mut recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        headers: headers
            .iter()
            .filter(|(name, _)| {
                let name = name.as_str();
                name != "authorization" && name != "private-token"
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        authorized,
        conditional: headers.contains_key("if-none-match"),
        status: 0,
    };
    let failure = state.failures.pop_front();
    let (in_band, out_of_band) = match failure {
        Some(failure) if failure.in_band() => (Some(failure), None),
        other => (None, other),
    };
    let response = if !authorized {
        failure_response(state.provider, &Failure::Unauthorized)
    } else if let Some(failure) = out_of_band {
        failure_response(state.provider, &failure)
    } else {
        match state.provider {
            Provider::Github => github(state, &method, &uri, &headers, &body),
            Provider::Gitlab => gitlab(state, &method, &uri, &body),
            Provider::Linear => linear(state, &body, in_band.as_ref()),
        }
    };
    recorded.status = response.status().as_u16();
    state.requests.push(recorded);
    let mut response = response;
    if let Ok(date) = axum::http::HeaderValue::from_str(&http_date(chrono::Utc::now())) {
        response.headers_mut().insert("date", date);
    }
    response
}

fn http_date(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn failure_response(provider: Provider, failure: &Failure) -> Response {
    let now_s = chrono::Utc::now().timestamp();
    let mut headers = Vec::<(&str, String)>::new();
    let (status, body) = match failure {
        Failure::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            match provider {
                Provider::Github => json!({"message": "Bad credentials",
                    "documentation_url": "https://docs.github.com/rest"}),
                Provider::Gitlab => json!({"message": "401 Unauthorized"}),
                Provider::Linear => {
                    json!({"errors": [{"message": "Authentication required, not authenticated",
                    "extensions": {"code": "AUTHENTICATION_ERROR"}}]})
                }
            },
        ),
        Failure::SecondaryRateLimit { retry_after_s } => {
            if let Some(seconds) = retry_after_s {
                headers.push(("retry-after", seconds.to_string()));
            }
            (
                StatusCode::FORBIDDEN,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
            )
        }
        Failure::PrimaryRateLimit { reset_in_s } => {
            headers.push(("x-ratelimit-limit", "5000".to_owned()));
            headers.push(("x-ratelimit-remaining", "0".to_owned()));
            let reset = now_s + i64::try_from(*reset_in_s).unwrap_or(0);
            headers.push(("x-ratelimit-reset", reset.to_string()));
            headers.push(("ratelimit-remaining", "0".to_owned()));
            headers.push(("ratelimit-reset", reset.to_string()));
            (
                StatusCode::FORBIDDEN,
                json!({"message": "API rate limit exceeded"}),
            )
        }
        Failure::TooManyRequests { retry_after_s } => {
            headers.push(("retry-after", retry_after_s.to_string()));
            (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"message": "Retry later"}),
            )
        }
        Failure::ServerError => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "text/html")],
                "<html>\n  <body>Internal   Server\n Error</body>\n</html>\n",
            )
                .into_response();
        }
        Failure::GraphqlErrors => (
            StatusCode::OK,
            json!({"data": null, "errors": [{"message": "Cannot query field \"bogus\" on type \"Issue\".",
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}),
        ),
        Failure::GraphqlRateLimited { reset_in_ms } => {
            let reset =
                chrono::Utc::now().timestamp_millis() + i64::try_from(*reset_in_ms).unwrap_or(0);
            headers.push(("x-ratelimit-requests-remaining", "0".to_owned()));
            headers.push(("x-ratelimit-requests-reset", reset.to_string()));
            (
                StatusCode::BAD_REQUEST,
                json!({"errors": [{"message": "Rate limit exceeded",
                    "extensions": {"code": "RATELIMITED"}}]}),
            )
        }
        // In-band failures are the provider handler's; `handle` never sends them here.
        Failure::MissingEndCursor | Failure::Unsuccessful | Failure::Pass => {
            (StatusCode::OK, json!({}))
        }
    };
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in headers {
        if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn rfc3339(ms: i64, millis: bool) -> String {
    let at = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    let format = if millis {
        chrono::SecondsFormat::Millis
    } else {
        chrono::SecondsFormat::Secs
    };
    at.to_rfc3339_opts(format, true)
}

fn parse_ms(value: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Decodes `a=1&b=x%20y` (also `+` as space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(key), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn with_page(pairs: &[(String, String)], page: usize) -> String {
    let mut pairs: Vec<(String, String)> =
        pairs.iter().filter(|(k, _)| k != "page").cloned().collect();
    pairs.push(("page".to_owned(), page.to_string()));
    encode_query(&pairs)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body.clone())).into_response()
}

fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, &json!({"message": "Not Found"}))
}

// ---------------------------------------------------------------------------------------------
// GitHub REST v3

fn github_issue(state: &State, issue: &FakeIssue) -> Value {
    let mut value = json!({
        "id": 1_000_000 + issue.number,
        "node_id": format!("I_kwDO{}", issue.number),
        "number": issue.number,
        "title": issue.title,
        "body": issue.body,
        "state": issue.state,
        "labels": issue.labels.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
        "user": {"login": issue.author},
        "assignee": issue.assignee.as_ref().map(|login| json!({"login": login})),
        "html_url": format!("https://github.com/{}/issues/{}", state.scope, issue.number),
        "created_at": rfc3339(issue.created_at_ms, false),
        "updated_at": rfc3339(issue.updated_at_ms, false),
    });
    if issue.pull_request {
        value["pull_request"] = json!({"url": format!("https://api.github.com/repos/{}/pulls/{}", state.scope, issue.number)});
    }
    if issue.malformed
        && let Some(object) = value.as_object_mut()
    {
        object.remove("title");
    }
    value
}

fn github(
    state: &mut State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let prefix = format!("/repos/{}/issues", state.scope);
    let path = uri.path();
    let Some(rest) = path.strip_prefix(&prefix) else {
        return not_found();
    };
    if let Some(response) = github_comments(state, method, rest, body) {
        return response;
    }
    let pairs = parse_query(uri.query().unwrap_or(""));
    if rest.is_empty() && method == Method::GET {
        let wanted = param(&pairs, "state").unwrap_or("open");
        let since = param(&pairs, "since").and_then(parse_ms);
        let per_page = param(&pairs, "per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(30)
            .clamp(1, 100);
        let page = param(&pairs, "page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let by_updated = param(&pairs, "sort") == Some("updated");
        let ascending = param(&pairs, "direction") == Some("asc");
        let mut items: Vec<&FakeIssue> = state
            .issues
            .iter()
            .filter(|i| wanted == "all" || i.state == wanted)
            .filter(|i| since.is_none_or(|since| (i.updated_at_ms / 1000) * 1000 >= since))
            .collect();
        items.sort_by_key(|i| {
            (
                if by_updated {
                    i.updated_at_ms / 1000
                } else {
                    i.created_at_ms
                },
                i.number,
            )
        });
        if !ascending {
            items.reverse();
        }
        let total = items.len();
        let start = (page - 1) * per_page;
        let body: Vec<Value> = items
            .iter()
            .skip(start)
            .take(per_page)
            .map(|issue| github_issue(state, issue))
            .collect();
        let text = Value::Array(body).to_string();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut hasher);
        let etag = format!("W/\"{:x}\"", hasher.finish());
        let mut links = Vec::new();
        let last = total.div_ceil(per_page).max(1);
        if start + per_page < total {
            links.push(format!(
                "<{}{}?{}>; rel=\"next\"",
                state.base,
                prefix,
                with_page(&pairs, page + 1)
            ));
            links.push(format!(
                "<{}{}?{}>; rel=\"last\"",
                state.base,
                prefix,
                with_page(&pairs, last)
            ));
        }
        let not_modified = headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|sent| sent == etag);
        let mut response = if not_modified {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                StatusCode::OK,
                [("content-type", "application/json; charset=utf-8")],
                text,
            )
                .into_response()
        };
        if let Ok(value) = axum::http::HeaderValue::from_str(&etag) {
            response.headers_mut().insert("etag", value);
        }
        if !links.is_empty()
            && let Ok(value) = axum::http::HeaderValue::from_str(&links.join(", "))
        {
            response.headers_mut().insert("link", value);
        }
        response.headers_mut().insert(
            "x-ratelimit-remaining",
            axum::http::HeaderValue::from_static("4999"),
        );
        return response;
    }
    let Some(number) = rest.strip_prefix('/').and_then(|n| n.parse::<u64>().ok()) else {
        return not_found();
    };
    match *method {
        Method::GET => match state.issues.iter().find(|i| i.number == number) {
            Some(issue) => json_response(StatusCode::OK, &github_issue(state, issue)),
            None => not_found(),
        },
        Method::PATCH => {
            let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": "Problems parsing JSON"}),
                );
            };
            let now = touch(state);
            let Some(issue) = state.issues.iter_mut().find(|i| i.number == number) else {
                return not_found();
            };
            if let Some(new_state) = patch.get("state").and_then(Value::as_str) {
                issue.state = new_state.to_owned();
            }
            if let Some(labels) = patch.get("labels").and_then(Value::as_array) {
                issue.labels = labels
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
            }
            issue.updated_at_ms = now;
            let issue = issue.clone();
            json_response(StatusCode::OK, &github_issue(state, &issue))
        }
        _ => json_response(StatusCode::NOT_FOUND, &json!({"message": "Not Found"})),
    }
}

/// `GET|POST /issues/:iid/notes` and `PUT /issues/:iid/notes/:id` (paths after
/// `/projects/:id/issues`); `None` for any other path.
fn gitlab_notes(state: &mut State, method: &Method, rest: &str, body: &[u8]) -> Option<Response> {
    let (iid, note) = rest.strip_prefix('/')?.split_once("/notes")?;
    let iid = iid.parse::<u64>().ok()?;
    let note_json = |c: &FakeComment| {
        json!({"id": c.id, "body": c.body, "author": {"username": c.author},
               "created_at": rfc3339(c.created_ms, true), "system": false})
    };
    let text = || {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|value| value.get("body").and_then(Value::as_str).map(str::to_owned))
    };
    if !state.issues.iter().any(|issue| issue.number == iid) {
        return Some(json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "404 Not found"}),
        ));
    }
    let missing_body = || {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"message": "400 (Bad request) \"body\" not given"}),
        )
    };
    if let Some(id) = note.strip_prefix('/').and_then(|id| id.parse::<u64>().ok()) {
        if *method != Method::PUT {
            return Some(not_found());
        }
        let Some(new_body) = text() else {
            return Some(missing_body());
        };
        let found = state
            .comments
            .iter_mut()
            .find(|c| c.id == id && c.issue == iid)?;
        found.body = new_body;
        let found = found.clone();
        return Some(json_response(StatusCode::OK, &note_json(&found)));
    }
    if !note.is_empty() {
        return None;
    }
    Some(match *method {
        Method::GET => {
            let list: Vec<Value> = state
                .comments
                .iter()
                .filter(|c| c.issue == iid)
                .map(note_json)
                .collect();
            json_response(StatusCode::OK, &Value::Array(list))
        }
        Method::POST => {
            let Some(new_body) = text() else {
                return Some(missing_body());
            };
            let created = FakeComment {
                id: 7_000_000 + state.comments.len() as u64,
                issue: iid,
                body: new_body,
                author: "takt-bot".to_owned(),
                created_ms: chrono::Utc::now().timestamp_millis(),
                bot: false,
            };
            state.comments.push(created.clone());
            json_response(StatusCode::CREATED, &note_json(&created))
        }
        _ => not_found(),
    })
}

/// `GET|POST /issues/{n}/comments` and `PATCH /issues/comments/{id}` (paths after
/// `/repos/{repo}/issues`); `None` for any other path.
fn github_comments(
    state: &mut State,
    method: &Method,
    rest: &str,
    body: &[u8],
) -> Option<Response> {
    let comment = |c: &FakeComment| {
        json!({"id": c.id, "body": c.body, "user": {"login": c.author},
               "created_at": rfc3339(c.created_ms, false),
               "issue_url": format!("{}/repos/{}/issues/{}", state.base, state.scope, c.issue)})
    };
    let text = || {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|value| value.get("body").and_then(Value::as_str).map(str::to_owned))
    };
    if let Some(id) = rest
        .strip_prefix("/comments/")
        .and_then(|id| id.parse::<u64>().ok())
    {
        if *method != Method::PATCH {
            return Some(not_found());
        }
        let Some(new_body) = text() else {
            return Some(json_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({"message": "body is missing"}),
            ));
        };
        let found = state.comments.iter_mut().find(|c| c.id == id)?;
        found.body = new_body;
        let found = found.clone();
        return Some(json_response(StatusCode::OK, &comment(&found)));
    }
    let number = rest
        .strip_prefix('/')?
        .strip_suffix("/comments")?
        .parse::<u64>()
        .ok()?;
    if !state.issues.iter().any(|issue| issue.number == number) {
        return Some(not_found());
    }
    Some(match *method {
        Method::GET => {
            let list: Vec<Value> = state
                .comments
                .iter()
                .filter(|c| c.issue == number)
                .map(comment)
                .collect();
            json_response(StatusCode::OK, &Value::Array(list))
        }
        Method::POST => {
            let Some(new_body) = text() else {
                return Some(json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"message": "body is missing"}),
                ));
            };
            let created = FakeComment {
                id: 9_000_000 + state.comments.len() as u64,
                issue: number,
                body: new_body,
                author: "takt-bot".to_owned(),
                created_ms: chrono::Utc::now().timestamp_millis(),
                bot: false,
            };
            state.comments.push(created.clone());
            json_response(StatusCode::CREATED, &comment(&created))
        }
        _ => not_found(),
    })
}

// ---------------------------------------------------------------------------------------------
// GitLab REST v4

fn gitlab_issue(state: &State, issue: &FakeIssue) -> Value {
    let user = |name: &str| json!({"id": name.len(), "username": name, "name": name});
    let mut value = json!({
        "id": 5_000_000 + issue.number,
        "iid": issue.number,
        "project_id": 42,
        "title": issue.title,
        "description": issue.body,
        "state": issue.state,
        "labels": issue.labels,
        "author": user(&issue.author),
        "assignee": issue.assignee.as_deref().map(user),
        "assignees": issue.assignee.as_deref().map(user).into_iter().collect::<Vec<_>>(),
        "web_url": format!("https://gitlab.com/{}/-/issues/{}", state.scope, issue.number),
        "created_at": rfc3339(issue.created_at_ms, true),
        "updated_at": rfc3339(issue.updated_at_ms, true),
    });
    if issue.malformed
        && let Some(object) = value.as_object_mut()
    {
        object.remove("title");
    }
    value
}

fn gitlab(state: &mut State, method: &Method, uri: &Uri, body: &[u8]) -> Response {
    let prefix = format!("/api/v4/projects/{}/issues", percent_encode(&state.scope));
    let path = uri.path();
    let Some(rest) = path.strip_prefix(&prefix) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "404 Project Not Found"}),
        );
    };
    if let Some(response) = gitlab_notes(state, method, rest, body) {
        return response;
    }
    let pairs = parse_query(uri.query().unwrap_or(""));
    if rest.is_empty() && method == Method::GET {
        let wanted = param(&pairs, "state").unwrap_or("all");
        let updated_after = param(&pairs, "updated_after").and_then(parse_ms);
        let iids: Vec<u64> = pairs
            .iter()
            .filter(|(k, _)| k == "iids[]")
            .filter_map(|(_, v)| v.parse().ok())
            .collect();
        let per_page = param(&pairs, "per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .clamp(1, 100);
        let page = param(&pairs, "page")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1);
        let by_updated = param(&pairs, "order_by") == Some("updated_at");
        let ascending = param(&pairs, "sort") == Some("asc");
        let mut items: Vec<&FakeIssue> = state
            .issues
            .iter()
            .filter(|i| wanted == "all" || i.state == wanted)
            .filter(|i| updated_after.is_none_or(|t| i.updated_at_ms >= t))
            .filter(|i| iids.is_empty() || iids.contains(&i.number))
            .collect();
        items.sort_by_key(|i| {
            (
                if by_updated {
                    i.updated_at_ms
                } else {
                    i.created_at_ms
                },
                i.number,
            )
        });
        if !ascending {
            items.reverse();
        }
        let total = items.len();
        let start = (page - 1) * per_page;
        let body: Vec<Value> = items
            .iter()
            .skip(start)
            .take(per_page)
            .map(|issue| gitlab_issue(state, issue))
            .collect();
        let has_next = start + per_page < total;
        let mut response = json_response(StatusCode::OK, &Value::Array(body));
        let mut set = |name: &'static str, value: String| {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        };
        set("x-page", page.to_string());
        set("x-per-page", per_page.to_string());
        set(
            "x-next-page",
            if has_next {
                (page + 1).to_string()
            } else {
                String::new()
            },
        );
        set("x-total", total.to_string());
        set("x-total-pages", total.div_ceil(per_page).max(1).to_string());
        if has_next {
            set(
                "link",
                format!(
                    "<{}{}?{}>; rel=\"next\", <{}{}?{}>; rel=\"first\"",
                    state.base,
                    prefix,
                    with_page(&pairs, page + 1),
                    state.base,
                    prefix,
                    with_page(&pairs, 1)
                ),
            );
        }
        return response;
    }
    let Some(iid) = rest.strip_prefix('/').and_then(|n| n.parse::<u64>().ok()) else {
        return not_found();
    };
    match *method {
        Method::GET => match state.issues.iter().find(|i| i.number == iid) {
            Some(issue) => json_response(StatusCode::OK, &gitlab_issue(state, issue)),
            None => json_response(StatusCode::NOT_FOUND, &json!({"message": "404 Not found"})),
        },
        Method::PUT => {
            let Ok(update) = serde_json::from_slice::<Value>(body) else {
                return json_response(StatusCode::BAD_REQUEST, &json!({"error": "invalid JSON"}));
            };
            let now = touch(state);
            let Some(issue) = state.issues.iter_mut().find(|i| i.number == iid) else {
                return json_response(StatusCode::NOT_FOUND, &json!({"message": "404 Not found"}));
            };
            match update.get("state_event").and_then(Value::as_str) {
                Some("close") => issue.state = "closed".to_owned(),
                Some("reopen") => issue.state = "opened".to_owned(),
                _ => {}
            }
            let list = |key: &str| -> Vec<String> {
                update
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let remove = list("remove_labels");
            issue.labels.retain(|l| !remove.contains(l));
            for label in list("add_labels") {
                if !issue.labels.contains(&label) {
                    issue.labels.push(label);
                }
            }
            issue.updated_at_ms = now;
            let issue = issue.clone();
            json_response(StatusCode::OK, &gitlab_issue(state, &issue))
        }
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------------------------
// Linear GraphQL

const LINEAR_STATES: &[(&str, &str)] = &[
    ("state-backlog", "Backlog"),
    ("state-todo", "Todo"),
    ("state-in-progress", "In Progress"),
    ("state-review", "Human Review"),
    ("state-done", "Done"),
    ("state-cancelled", "Cancelled"),
];

fn linear_id(number: u64) -> String {
    format!("lin-{number:08}")
}

fn linear_node(state: &State, issue: &FakeIssue) -> Value {
    let relations: Vec<Value> = issue
        .blocked_by
        .iter()
        .map(|number| {
            let blocker = state.issues.iter().find(|i| i.number == *number);
            json!({
                "type": "blocks",
                "issue": {
                    "id": linear_id(*number),
                    "identifier": format!("ENG-{number}"),
                    "state": blocker.map(|b| json!({"name": b.state})),
                }
            })
        })
        .collect();
    json!({
        "id": linear_id(issue.number),
        "identifier": format!("ENG-{}", issue.number),
        "title": issue.title,
        "description": issue.body,
        "priority": issue.priority,
        "state": if issue.malformed { Value::Null } else { json!({"name": issue.state}) },
        "branchName": format!("eng-{}", issue.number),
        "url": format!("https://linear.app/acme/issue/ENG-{}", issue.number),
        "assignee": issue.assignee.as_ref().map(|id| json!({"id": id})),
        "creator": {"name": issue.author},
        "labels": {"nodes": issue.labels.iter().map(|name| json!({"name": name})).collect::<Vec<_>>()},
        "inverseRelations": {"nodes": relations},
        "createdAt": rfc3339(issue.created_at_ms, true),
        "updatedAt": rfc3339(issue.updated_at_ms, true),
    })
}

fn graphql_error(message: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"errors": [{"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}),
    )
}

fn linear(state: &mut State, body: &[u8], in_band: Option<&Failure>) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return graphql_error("Body is not JSON");
    };
    let query = request.get("query").and_then(Value::as_str).unwrap_or("");
    let variables = request.get("variables").cloned().unwrap_or(Value::Null);
    let missing_cursor = matches!(in_band, Some(Failure::MissingEndCursor));
    let unsuccessful = matches!(in_band, Some(Failure::Unsuccessful));
    if let Some(response) = linear_comments(state, query, &variables, in_band) {
        return response;
    }
    let var = |key: &str| variables.get(key);
    if query.contains("SymphonyLinearViewer") {
        return json_response(
            StatusCode::OK,
            &json!({"data": {"viewer": state.viewer.as_ref().map(|id| json!({"id": id}))}}),
        );
    }
    if query.contains("SymphonyLinearIssueTeamStates") {
        let id = var("id").and_then(Value::as_str).unwrap_or("");
        let found = state.issues.iter().any(|i| linear_id(i.number) == id);
        let nodes: Vec<Value> = LINEAR_STATES
            .iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect();
        let issue = found.then(|| json!({"id": id, "team": {"states": {"nodes": nodes}}}));
        return json_response(StatusCode::OK, &json!({"data": {"issue": issue}}));
    }
    if query.contains("SymphonyLinearUpdateState") {
        if unsuccessful {
            return unsuccessful_payload("issueUpdate");
        }
        let id = var("id").and_then(Value::as_str).unwrap_or("").to_owned();
        let state_id = var("stateId").and_then(Value::as_str).unwrap_or("");
        let Some((_, name)) = LINEAR_STATES.iter().find(|(sid, _)| *sid == state_id) else {
            return json_response(
                StatusCode::OK,
                &json!({"data": null, "errors": [{"message": "Entity not found: WorkflowState"}]}),
            );
        };
        let now = touch(state);
        let Some(issue) = state.issues.iter_mut().find(|i| linear_id(i.number) == id) else {
            return json_response(
                StatusCode::OK,
                &json!({"data": null, "errors": [{"message": "Entity not found: Issue"}]}),
            );
        };
        issue.state = (*name).to_owned();
        issue.updated_at_ms = now;
        return json_response(
            StatusCode::OK,
            &json!({"data": {"issueUpdate": {"success": true}}}),
        );
    }
    let slug = var("projectSlug").and_then(Value::as_str).unwrap_or("");
    let (first, after) = match linear_window(&variables) {
        Ok(window) => window,
        Err(message) => return graphql_error(message),
    };
    let in_scope = |issue: &&FakeIssue| issue.in_project && slug == state.scope;
    let mut items: Vec<&FakeIssue> = if query.contains("SymphonyLinearPollUpdated") {
        let Some(since) = var("updatedSince")
            .and_then(Value::as_str)
            .and_then(parse_ms)
        else {
            return graphql_error(
                "Variable \"$updatedSince\" of required type \"DateTimeOrDuration!\" was not provided.",
            );
        };
        let mut items: Vec<&FakeIssue> = state
            .issues
            .iter()
            .filter(in_scope)
            .filter(|i| i.updated_at_ms >= since)
            .collect();
        items.sort_by_key(|i| (i.updated_at_ms, i.number));
        items
    } else if query.contains("SymphonyLinearPoll") {
        let names: Vec<&str> = var("stateNames")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        state
            .issues
            .iter()
            .filter(in_scope)
            .filter(|i| names.contains(&i.state.as_str()))
            .collect()
    } else if query.contains("SymphonyLinearIssuesById") {
        if !query.contains("$ids: [ID!]!") {
            return graphql_error("Variable \"$ids\" must be of type [ID!]!");
        }
        let ids: Vec<&str> = var("ids")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut items: Vec<&FakeIssue> = state
            .issues
            .iter()
            .filter(in_scope)
            .filter(|i| ids.contains(&linear_id(i.number).as_str()))
            .collect();
        // Linear does not promise the request's order.
        items.reverse();
        items
    } else {
        return graphql_error("Unknown operation");
    };
    let total = items.len();
    let page: Vec<Value> = items
        .drain(..)
        .skip(after)
        .take(first)
        .map(|issue| linear_node(state, issue))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"data": {"issues": linear_connection(page, after, total, missing_cursor)}}),
    )
}

/// `first` (at most 250, default 50) and the offset `after` points past; else the GraphQL
/// error's message.
fn linear_window(variables: &Value) -> Result<(usize, usize), &'static str> {
    let first = variables.get("first").and_then(Value::as_u64).unwrap_or(50);
    if first > 250 {
        return Err("first must be at most 250");
    }
    let after = variables
        .get("after")
        .and_then(Value::as_str)
        .and_then(|c| c.strip_prefix("cursor:"))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    Ok((usize::try_from(first).unwrap_or(50), after))
}

/// A connection of `page` (the items from offset `after` of `total`) with its `pageInfo`.
fn linear_connection(page: Vec<Value>, after: usize, total: usize, missing_cursor: bool) -> Value {
    let end = after + page.len();
    let has_next = end < total;
    let end_cursor = if (missing_cursor && has_next) || page.is_empty() {
        Value::Null
    } else {
        json!(format!("cursor:{end}"))
    };
    json!({"nodes": page, "pageInfo": {"hasNextPage": has_next, "endCursor": end_cursor}})
}

/// Linear's answer to a lookup of an entity that does not exist.
fn entity_not_found(entity: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"data": null, "errors": [{"message": format!("Entity not found: {entity}"),
            "extensions": {"code": "INVALID_INPUT", "type": "invalid input"}}]}),
    )
}

fn unsuccessful_payload(field: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"data": {field: {"success": false}}}),
    )
}

fn linear_comment_id(id: u64) -> String {
    format!("comment-{id:08}")
}

/// Linear's `Comment`: `user` (full `name` and unique `displayName`) for a person, `botActor`
/// and a null `user` for an integration.
fn linear_comment(comment: &FakeComment) -> Value {
    let (user, bot) = if comment.bot {
        (
            Value::Null,
            json!({"name": comment.author, "type": "integration"}),
        )
    } else {
        let mut letters = comment.author.chars();
        let full = letters
            .next()
            .map(|first| format!("{}{} Example", first.to_uppercase(), letters.as_str()))
            .unwrap_or_default();
        (
            json!({"id": format!("user-{}", comment.author), "name": full,
                "displayName": comment.author}),
            Value::Null,
        )
    };
    json!({
        "id": linear_comment_id(comment.id),
        "body": comment.body,
        "createdAt": rfc3339(comment.created_ms, true),
        "updatedAt": rfc3339(comment.created_ms, true),
        "user": user,
        "botActor": bot,
    })
}

/// `SymphonyLinearIssueComments`, `SymphonyLinearCreateComment` and
/// `SymphonyLinearUpdateComment`; `None` for any other operation.
fn linear_comments(
    state: &mut State,
    query: &str,
    variables: &Value,
    in_band: Option<&Failure>,
) -> Option<Response> {
    let field = if query.contains("SymphonyLinearIssueComments") {
        let missing_cursor = matches!(in_band, Some(Failure::MissingEndCursor));
        return Some(linear_comment_page(state, variables, missing_cursor));
    } else if query.contains("SymphonyLinearCreateComment") {
        "commentCreate"
    } else if query.contains("SymphonyLinearUpdateComment") {
        "commentUpdate"
    } else {
        return None;
    };
    if matches!(in_band, Some(Failure::Unsuccessful)) {
        return Some(unsuccessful_payload(field));
    }
    let text = |key: &str| variables.get(key).and_then(Value::as_str);
    let Some(body) = text("body").map(str::to_owned) else {
        return Some(graphql_error(
            "Variable \"$body\" of required type \"String!\" was not provided.",
        ));
    };
    let written = if field == "commentCreate" {
        let issue_id = text("issueId").unwrap_or("");
        let Some(number) = state
            .issues
            .iter()
            .find(|issue| linear_id(issue.number) == issue_id)
            .map(|issue| issue.number)
        else {
            return Some(entity_not_found("Issue"));
        };
        let created = FakeComment {
            id: 9_000_000 + state.comments.len() as u64,
            issue: number,
            body,
            author: "takt-bot".to_owned(),
            created_ms: chrono::Utc::now().timestamp_millis(),
            bot: false,
        };
        state.comments.push(created.clone());
        created
    } else {
        let id = text("id").unwrap_or("");
        let Some(found) = state
            .comments
            .iter_mut()
            .find(|comment| linear_comment_id(comment.id) == id)
        else {
            return Some(entity_not_found("Comment"));
        };
        found.body = body;
        found.clone()
    };
    Some(json_response(
        StatusCode::OK,
        &json!({"data": {field: {"success": true, "comment": linear_comment(&written)}}}),
    ))
}

/// One page of `issue(id:) { comments(first, after, filter: {createdAt: {gte}}) }`, in creation
/// order (Linear's default `orderBy`).
fn linear_comment_page(state: &State, variables: &Value, missing_cursor: bool) -> Response {
    let id = variables.get("id").and_then(Value::as_str).unwrap_or("");
    let Some(issue) = state.issues.iter().find(|i| linear_id(i.number) == id) else {
        return entity_not_found("Issue");
    };
    let (first, after) = match linear_window(variables) {
        Ok(window) => window,
        Err(message) => return graphql_error(message),
    };
    let since = match variables.pointer("/filter/createdAt/gte") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_str().and_then(parse_ms) {
            Some(ms) => Some(ms),
            None => return graphql_error("Argument Validation Error: createdAt.gte is not a date"),
        },
    };
    let mut items: Vec<&FakeComment> = state
        .comments
        .iter()
        .filter(|comment| comment.issue == issue.number)
        .filter(|comment| since.is_none_or(|since| comment.created_ms >= since))
        .collect();
    items.sort_by_key(|comment| (comment.created_ms, comment.id));
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(after)
        .take(first)
        .map(linear_comment)
        .collect();
    let connection = linear_connection(page, after, total, missing_cursor);
    json_response(
        StatusCode::OK,
        &json!({"data": {"issue": {"id": id, "comments": connection}}}),
    )
}
