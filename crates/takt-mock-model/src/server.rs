//! The HTTP server: routing, scenario and step selection, logging, and the public handle.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::MockError;
use crate::inspect::{Api, Inspected, Placeholders, haystack, inspect};
use crate::log::{LoggedRequest, headers_for_log};
use crate::render::{self, Ctx, Output, Usage};
use crate::scenario::{ErrorStep, Scenario, Step, builtin_scenarios};
use crate::sse::{self, Tail};

/// The largest request body accepted (Codex and Claude resend whole histories).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The model name reported when neither the request nor the scenario names one.
const DEFAULT_MODEL: &str = "mock-model";
/// How long [`MockModel::shutdown`] waits for open connections before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run the server.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Scenarios given in code. They take precedence over the built-in ones with the same name.
    pub scenarios: Vec<Scenario>,
    /// A directory of scenario files (see [`Scenario::load_dir`]), loaded at start.
    pub scenario_dir: Option<PathBuf>,
    /// Also serve [`builtin_scenarios`] (`add-test`, `break-build`, `wander`). Default: true.
    pub include_builtin: bool,
    /// The port on 127.0.0.1; 0 picks a free one. Used by [`MockModel::start`] and
    /// [`serve_forever`] ([`run`] takes a bound listener instead).
    pub port: u16,
    /// Append every request as one JSON line to this file (created if missing).
    pub log_path: Option<PathBuf>,
    /// The interval of `stream_forever` ticks. Default: 200 ms.
    pub stream_tick: Duration,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            scenarios: Vec::new(),
            scenario_dir: None,
            include_builtin: true,
            port: 0,
            log_path: None,
            stream_tick: Duration::from_millis(200),
        }
    }
}

impl MockConfig {
    /// The default configuration with these scenarios.
    pub fn with_scenarios(scenarios: Vec<Scenario>) -> Self {
        MockConfig {
            scenarios,
            ..MockConfig::default()
        }
    }

    /// The default configuration reading scenarios from `dir`.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        MockConfig {
            scenario_dir: Some(dir.into()),
            ..MockConfig::default()
        }
    }
}

/// A running mock model server on 127.0.0.1. Dropping it stops the server (abruptly); prefer
/// [`MockModel::shutdown`].
#[derive(Debug)]
pub struct MockModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), MockError>>>,
}

impl MockModel {
    /// Loads the scenarios, binds 127.0.0.1:`config.port` and serves in a background task.
    pub async fn start(config: MockConfig) -> Result<MockModel, MockError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MockError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| MockError::Bind { addr, source })?;
        let (shared, down_tx) = Shared::new(config)?;
        let shared = Arc::new(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, shared.clone(), down_tx, async move {
            let _ = stopped.await;
        }));
        tracing::debug!(%addr, "mock model listening");
        Ok(MockModel {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: Claude Code's `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1`: the `base_url` of a Codex provider or an OpenAI client.
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The names of the scenarios this server answers with.
    pub fn scenario_names(&self) -> Vec<String> {
        self.shared
            .scenarios
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    /// Stops accepting connections, ends `stream_forever` streams, waits for open requests to
    /// finish (at most 5 s, then aborts them) and returns the server's result.
    pub async fn shutdown(mut self) -> Result<(), MockError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(MockError::Serve(std::io::Error::other(join))),
            Err(_elapsed) => {
                task.abort();
                let _ = task.await;
                Ok(())
            }
        }
    }
}

impl Drop for MockModel {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves on an already bound listener until `shutdown` completes, in the style of mini-redis.
/// On shutdown, `stream_forever` streams end and open requests are allowed to finish.
pub async fn run(
    listener: TcpListener,
    config: MockConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MockError> {
    let (shared, down_tx) = Shared::new(config)?;
    serve(listener, Arc::new(shared), down_tx, shutdown).await
}

/// Binds 127.0.0.1:`config.port`, logs the address at `info`, and serves until Ctrl-C. This is
/// what `takt mock-model --scenarios DIR --port N` runs.
pub async fn serve_forever(config: MockConfig) -> Result<(), MockError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MockError::Bind { addr, source })?;
    if let Ok(bound) = listener.local_addr() {
        tracing::info!(url = %format!("http://{bound}"), "mock model listening");
    }
    run(listener, config, async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    down: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), MockError> {
    let app = Router::new().fallback(handle).with_state(shared);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = down.send(true);
        })
        .await
        .map_err(MockError::Serve)
}

/// State shared by all requests.
#[derive(Debug)]
struct Shared {
    scenarios: Vec<Scenario>,
    default: Scenario,
    requests: Mutex<Vec<LoggedRequest>>,
    log_file: Mutex<Option<(PathBuf, fs_err::File)>>,
    /// How often each `(scenario, step)` error with `times` has been returned.
    error_hits: Mutex<HashMap<(String, usize), u32>>,
    next_id: AtomicU64,
    tick: Duration,
    down: watch::Receiver<bool>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(config: MockConfig) -> Result<(Shared, watch::Sender<bool>), MockError> {
        let mut scenarios: Vec<Scenario> = Vec::new();
        for scenario in config.scenarios {
            scenario.validate()?;
            if scenarios.iter().any(|s| s.name == scenario.name) {
                return Err(MockError::DuplicateScenario {
                    name: scenario.name,
                    first: "<config>".into(),
                    second: "<config>".into(),
                });
            }
            scenarios.push(scenario);
        }
        if let Some(dir) = &config.scenario_dir {
            for scenario in Scenario::load_dir(dir)? {
                if scenarios.iter().any(|s| s.name == scenario.name) {
                    return Err(MockError::DuplicateScenario {
                        name: scenario.name,
                        first: "<config>".into(),
                        second: dir.clone(),
                    });
                }
                scenarios.push(scenario);
            }
        }
        if config.include_builtin {
            for scenario in builtin_scenarios() {
                if !scenarios.iter().any(|s| s.name == scenario.name) {
                    scenarios.push(scenario);
                }
            }
        }
        let log_file = match &config.log_path {
            None => None,
            Some(path) => {
                let file = fs_err::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| MockError::Io {
                        path: path.clone(),
                        source,
                    })?;
                Some((path.clone(), file))
            }
        };
        let (down_tx, down) = watch::channel(false);
        let default = scenarios
            .iter()
            .find(|s| s.name == "default")
            .cloned()
            .unwrap_or_else(Scenario::default_scenario);
        Ok((
            Shared {
                scenarios,
                default,
                requests: Mutex::new(Vec::new()),
                log_file: Mutex::new(log_file),
                error_hits: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                tick: config.stream_tick,
                down,
            },
            down_tx,
        ))
    }

    fn record(&self, entry: LoggedRequest) {
        if let Some((path, file)) = lock(&self.log_file).as_mut() {
            let written = serde_json::to_string(&entry)
                .map_err(std::io::Error::other)
                .and_then(|line| writeln!(file, "{line}"));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the mock model request log");
            }
        }
        lock(&self.requests).push(entry);
    }

    fn find(&self, name: &str) -> Option<&Scenario> {
        self.scenarios
            .iter()
            .find(|s| s.name == name)
            .or_else(|| (name == self.default.name).then_some(&self.default))
    }

    fn by_model(&self, model: &str) -> Option<&Scenario> {
        self.scenarios
            .iter()
            .find(|s| s.model.as_deref() == Some(model))
    }

    /// Picks the step for a request with `tool_results` tool results.
    fn resolve(&self, scenario: &Scenario, tool_results: usize, has_tools: bool) -> Planned {
        let mut hits = lock(&self.error_hits);
        let live: Vec<(usize, &Step)> = scenario
            .steps
            .iter()
            .enumerate()
            .filter(|(i, step)| match step {
                Step::Error(ErrorStep {
                    times: Some(times), ..
                }) => hits.get(&(scenario.name.clone(), *i)).copied().unwrap_or(0) < *times,
                _ => true,
            })
            .collect();
        // Past the end, a final text step repeats; anything else ends with `DONE`.
        let chosen = live
            .get(tool_results)
            .copied()
            .or_else(|| match live.last() {
                Some(&(i, step @ Step::Text(_))) => Some((i, step)),
                _ => None,
            });
        let Some((index, step)) = chosen else {
            return Planned {
                index: scenario.steps.len(),
                action: Action::Output(Output::Text("DONE".to_owned())),
            };
        };
        let action = match step {
            Step::Text(text) => Action::Output(Output::Text(text.clone())),
            Step::Tool(_) | Step::ApplyPatch(_) if !has_tools => {
                Action::Output(Output::Text(final_text(scenario)))
            }
            Step::Tool(tool) => Action::Output(Output::Call {
                name: tool.name.clone(),
                namespace: tool.namespace.clone(),
                arguments: match &tool.arguments {
                    Value::Null => "{}".to_owned(),
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                },
            }),
            Step::ApplyPatch(patch) => Action::Output(Output::Patch(patch.clone())),
            Step::Error(error) => {
                if error.times.is_some() {
                    *hits.entry((scenario.name.clone(), index)).or_insert(0) += 1;
                }
                Action::Error(error.clone())
            }
            Step::StreamForever(_) => Action::Forever,
            Step::CutStream(_) => Action::Cut,
        };
        Planned { index, action }
    }
}

/// The text a scenario ends with: its last text step, or `DONE`.
fn final_text(scenario: &Scenario) -> String {
    scenario
        .steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Text(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "DONE".to_owned())
}

struct Planned {
    index: usize,
    action: Action,
}

enum Action {
    Output(Output),
    Error(ErrorStep),
    Forever,
    Cut,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Health,
    Models,
    CountTokens,
    Model(Api),
    NotFound,
    MethodNotAllowed,
}

/// Routes by path suffix, so `/v1/messages`, `/messages` and `/any/prefix/v1/messages` all work;
/// the query string is ignored.
fn route(method: &Method, path: &str) -> Route {
    let path = path.trim_end_matches('/');
    let post = |r: Route| {
        if method == Method::POST {
            r
        } else {
            Route::MethodNotAllowed
        }
    };
    let get = |r: Route| {
        if method == Method::GET {
            r
        } else {
            Route::MethodNotAllowed
        }
    };
    if path.ends_with("/healthz") || path.ends_with("/health") {
        get(Route::Health)
    } else if path.ends_with("/messages/count_tokens") {
        post(Route::CountTokens)
    } else if path.ends_with("/messages") {
        post(Route::Model(Api::Messages))
    } else if path.ends_with("/chat/completions") {
        post(Route::Model(Api::Chat))
    } else if path.ends_with("/responses") {
        // A GET here is Codex's WebSocket attempt: 404 makes it fall back to POST + SSE.
        if method == Method::POST {
            Route::Model(Api::Responses)
        } else {
            Route::NotFound
        }
    } else if path.ends_with("/models") {
        get(Route::Models)
    } else {
        Route::NotFound
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn sse_response(body: Body) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn error_body(api: Option<Api>, status: u16, message: &str) -> Value {
    match api {
        Some(Api::Messages) => render::anthropic_error(status, message),
        _ => render::openai_error(status, message),
    }
}

fn error_response(
    api: Option<Api>,
    status: u16,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(code, &error_body(api, status, message));
    if let Some(secs) = retry_after
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// What a request is logged with besides its own data.
#[derive(Default)]
struct Outcome {
    api: Option<Api>,
    scenario: Option<String>,
    step: Option<usize>,
    tool_results: Option<usize>,
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let ts_ms = u64::try_from(now().as_millis()).unwrap_or(u64::MAX);
    let route = route(&parts.method, parts.uri.path());
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let api = match route {
                Route::Model(api) => Some(api),
                _ => None,
            };
            let response = error_response(api, 400, &format!("cannot read the body: {e}"), None);
            log(
                &shared,
                &parts,
                ts_ms,
                &Bytes::new(),
                Outcome::default(),
                400,
            );
            return response;
        }
    };
    let (response, outcome) = answer(&shared, route, &bytes);
    log(
        &shared,
        &parts,
        ts_ms,
        &bytes,
        outcome,
        response.status().as_u16(),
    );
    response
}

fn log(
    shared: &Shared,
    parts: &axum::http::request::Parts,
    ts_ms: u64,
    bytes: &Bytes,
    outcome: Outcome,
    status: u16,
) {
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    };
    let entry = LoggedRequest {
        ts_ms,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: headers_for_log(&parts.headers),
        body,
        api: outcome.api.map(|a| a.as_str().to_owned()),
        scenario: outcome.scenario,
        step: outcome.step,
        tool_results: outcome.tool_results,
        status,
    };
    tracing::debug!(
        method = %entry.method, path = %entry.path, scenario = ?entry.scenario,
        step = ?entry.step, status, "mock model request"
    );
    shared.record(entry);
}

fn answer(shared: &Shared, route: Route, bytes: &Bytes) -> (Response, Outcome) {
    match route {
        Route::Health => (
            json_response(StatusCode::OK, &json!({"status": "ok"})),
            Outcome::default(),
        ),
        Route::Models => (
            json_response(StatusCode::OK, &models(shared)),
            Outcome::default(),
        ),
        Route::CountTokens => (
            json_response(
                StatusCode::OK,
                &json!({"input_tokens": (bytes.len() as u64 / 4).max(1)}),
            ),
            Outcome {
                api: Some(Api::Messages),
                ..Outcome::default()
            },
        ),
        Route::NotFound => (
            error_response(None, 404, "no such route on the mock model server", None),
            Outcome::default(),
        ),
        Route::MethodNotAllowed => (
            error_response(None, 405, "method not allowed", None),
            Outcome::default(),
        ),
        Route::Model(api) => model_turn(shared, api, bytes),
    }
}

fn models(shared: &Shared) -> Value {
    let mut names: Vec<&str> = vec![DEFAULT_MODEL];
    for scenario in &shared.scenarios {
        if let Some(model) = scenario.model.as_deref()
            && !names.contains(&model)
        {
            names.push(model);
        }
    }
    // One list that both the OpenAI and the Anthropic clients read.
    let data: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"id": name, "object": "model", "type": "model", "display_name": name,
                   "created": 0, "created_at": "1970-01-01T00:00:00Z", "owned_by": "takt-mock-model"})
        })
        .collect();
    json!({"object": "list", "data": data, "has_more": false,
           "first_id": names.first(), "last_id": names.last()})
}

fn model_turn(shared: &Shared, api: Api, bytes: &Bytes) -> (Response, Outcome) {
    let mut outcome = Outcome {
        api: Some(api),
        ..Outcome::default()
    };
    let body: Value = match serde_json::from_slice(bytes) {
        Ok(body) => body,
        Err(e) => {
            let message = format!("the request body is not JSON: {e}");
            return (error_response(Some(api), 400, &message, None), outcome);
        }
    };
    let seen = inspect(api, &body, bytes);
    outcome.tool_results = Some(seen.tool_results);
    // The selection rule of the crate documentation: a marker in the system text, then a
    // scenario claiming the model, then a marker anywhere, then the default.
    let claimed = seen.model.as_deref().and_then(|m| shared.by_model(m));
    let marker = match (&seen.system_marker, claimed) {
        (Some(name), _) => Some(name),
        (None, Some(_)) => None,
        (None, None) => seen.marker.as_ref(),
    };
    let scenario = match marker {
        Some(name) => match shared.find(name) {
            Some(scenario) => scenario,
            None => {
                let known: Vec<&str> = shared.scenarios.iter().map(|s| s.name.as_str()).collect();
                let message = format!(
                    "unknown scenario `{name}` in a [[scenario:…]] marker; known: {}",
                    known.join(", ")
                );
                return (error_response(Some(api), 400, &message, None), outcome);
            }
        },
        None => claimed.unwrap_or(&shared.default),
    };
    outcome.scenario = Some(scenario.name.clone());
    let planned = shared.resolve(scenario, seen.tool_results, seen.has_tools);
    outcome.step = Some(planned.index);
    let ctx = |reply_chars: usize| Ctx {
        id: shared.next_id.fetch_add(1, Ordering::Relaxed),
        model: seen
            .model
            .clone()
            .or_else(|| scenario.model.clone())
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
        created: now().as_secs(),
        usage: Usage::compute(scenario.usage.as_ref(), seen.body_len, reply_chars),
    };
    let omit = scenario.usage.as_ref().is_some_and(|usage| usage.omit);
    let response = match planned.action {
        Action::Output(out) => {
            let out = substitute(out, &body);
            let ctx = ctx(out.chars());
            reply(api, &out, &ctx, &seen, omit)
        }
        Action::Error(error) => {
            let message = error
                .message
                .clone()
                .unwrap_or_else(|| default_error_message(error.status));
            error_response(Some(api), error.status, &message, error.retry_after_secs)
        }
        Action::Forever => forever(shared, api, &ctx(1), seen.stream),
        Action::Cut => cut(api, &ctx(8), seen.stream, omit),
    };
    (response, outcome)
}

fn default_error_message(status: u16) -> String {
    match status {
        429 => "Rate limit reached (injected by the mock model)".to_owned(),
        500..=599 => "The server had an error (injected by the mock model)".to_owned(),
        _ => format!("Error {status} (injected by the mock model)"),
    }
}

/// Fills `{{cwd}}` / `{{workspace}}` in everything the model says.
fn substitute(out: Output, body: &Value) -> Output {
    let needs = match &out {
        Output::Text(t) | Output::Patch(t) => t.contains("{{"),
        Output::Call { arguments, .. } => arguments.contains("{{"),
    };
    if !needs {
        return out;
    }
    let p = Placeholders::from_haystack(&haystack(body));
    match out {
        Output::Text(t) => Output::Text(p.apply(&t)),
        Output::Patch(t) => Output::Patch(p.apply(&t)),
        Output::Call {
            name,
            namespace,
            arguments,
        } => {
            // Substitute inside string values so that JSON escaping stays correct.
            let arguments = match serde_json::from_str::<Value>(&arguments) {
                Ok(value) => p.apply_json(&value).to_string(),
                Err(_) => p.apply(&arguments),
            };
            Output::Call {
                name,
                namespace,
                arguments,
            }
        }
    }
}

fn reply(api: Api, out: &Output, ctx: &Ctx, seen: &Inspected, omit_usage: bool) -> Response {
    if seen.stream {
        let events = match api {
            Api::Responses => render::responses::events(out, ctx),
            Api::Chat => render::chat::events(out, ctx, seen.include_usage),
            Api::Messages => render::messages::events(out, ctx),
        };
        sse_response(sse::body(without_usage(events, omit_usage), Tail::End))
    } else {
        let mut body = match api {
            Api::Responses => render::responses::json_body(out, ctx),
            Api::Chat => render::chat::json_body(out, ctx),
            Api::Messages => render::messages::json_body(out, ctx),
        };
        if omit_usage {
            render::strip_usage(&mut body);
        }
        json_response(StatusCode::OK, &body)
    }
}

fn without_usage(events: Vec<Bytes>, omit: bool) -> Vec<Bytes> {
    if omit {
        events.iter().map(render::strip_usage_event).collect()
    } else {
        events
    }
}

fn forever(shared: &Shared, api: Api, ctx: &Ctx, stream: bool) -> Response {
    let down = shared.down.clone();
    if !stream {
        // Nothing to trickle: send the headers, then nothing until the server shuts down.
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            sse::body(Vec::new(), Tail::Hang { shutdown: down }),
        )
            .into_response();
    }
    let (prefix, tick) = match api {
        Api::Responses => (
            render::responses::open_prefix(ctx, "."),
            render::responses::tick(ctx),
        ),
        Api::Chat => (render::chat::open_prefix(ctx, "."), render::chat::tick(ctx)),
        Api::Messages => (
            render::messages::open_prefix(ctx, "."),
            render::messages::tick(ctx),
        ),
    };
    sse_response(sse::body(
        prefix,
        Tail::Forever {
            every: shared.tick,
            tick,
            shutdown: down,
        },
    ))
}

fn cut(api: Api, ctx: &Ctx, stream: bool, omit_usage: bool) -> Response {
    const PARTIAL: &str = "partial ";
    if stream {
        let prefix = match api {
            Api::Responses => render::responses::open_prefix(ctx, PARTIAL),
            Api::Chat => render::chat::open_prefix(ctx, PARTIAL),
            Api::Messages => render::messages::open_prefix(ctx, PARTIAL),
        };
        return sse_response(sse::body(without_usage(prefix, omit_usage), Tail::Cut));
    }
    let out = Output::Text(PARTIAL.to_owned());
    let full = match api {
        Api::Responses => render::responses::json_body(&out, ctx),
        Api::Chat => render::chat::json_body(&out, ctx),
        Api::Messages => render::messages::json_body(&out, ctx),
    }
    .to_string();
    let full = Bytes::from(full);
    let half = full.slice(..full.len() / 2);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        sse::body(vec![half], Tail::Cut),
    )
        .into_response()
}
