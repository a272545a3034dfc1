//! Tests of the builtin backend: the loop end to end against takt-mock-model (both wire APIs),
//! protocol robustness, the tools, and the context budget.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use takt_agents::builtin::agent::TRUNCATED;
use takt_agents::builtin::tools::{ToolSettings, Toolbox};
use takt_agents::builtin::{BuiltinBackend, BuiltinSettings, ModelApi};
use takt_agents::process::group_alive;
use takt_core::ports::{
    AgentBackend, AgentEventSink, ModelAccess, SessionContext, TurnInput, TurnResult,
};
use takt_mock_model::{ErrorStep, LoggedRequest, MockConfig, MockModel, Scenario, Step, UsageSpec};
use takt_protocol::{AgentEvent, TokenUsage};

const TOKEN: &str = "runtok-0123456789";
const BOTH: [ModelApi; 2] = [ModelApi::ChatCompletions, ModelApi::AnthropicMessages];

#[derive(Default)]
struct Events(Mutex<Vec<AgentEvent>>);

impl AgentEventSink for Events {
    fn emit(&self, event: AgentEvent) {
        self.0.lock().expect("lock").push(event);
    }
}

impl Events {
    fn all(&self) -> Vec<AgentEvent> {
        self.0.lock().expect("lock").clone()
    }

    fn tool_calls(&self) -> Vec<(String, String, bool)> {
        self.all()
            .into_iter()
            .filter_map(|event| match event {
                AgentEvent::ToolCall { name, summary, ok } => Some((name, summary, ok)),
                _ => None,
            })
            .collect()
    }

    fn usages(&self) -> Vec<TokenUsage> {
        self.all()
            .into_iter()
            .filter_map(|event| match event {
                AgentEvent::TokenUsage { usage } => Some(usage),
                _ => None,
            })
            .collect()
    }

    fn changes(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|event| match event {
                AgentEvent::FileChange { path } => Some(path),
                _ => None,
            })
            .collect()
    }
}

/// A temporary git repository as the workspace, and a run directory beside it.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = dir.path().join("ws");
        std::fs::create_dir_all(&workspace).expect("workspace");
        let status = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&workspace)
            .status()
            .expect("git init");
        assert!(status.success());
        std::fs::write(workspace.join("README.md"), "# demo\n").expect("readme");
        Repo { dir }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn context(&self, mock: &MockModel) -> SessionContext {
        SessionContext {
            git_dir: None,
            host_tools: None,
            view: None,
            task_id: "id-1".into(),
            identifier: "TAKT-1".into(),
            run_id: "TAKT-1#1".into(),
            attempt: 1,
            workspace: self.workspace(),
            run_dir: self.dir.path().join("run"),
            model: Some(ModelAccess {
                openai_base_url: mock.openai_base_url(),
                anthropic_base_url: mock.base_url(),
                token: TOKEN.into(),
                model: Some("mock-model".into()),
            }),
        }
    }
}

fn settings(api: ModelApi) -> BuiltinSettings {
    BuiltinSettings {
        api,
        max_retries: 2,
        retry_base_delay: Duration::from_millis(10),
        stream_idle_timeout: Duration::from_secs(30),
        ..BuiltinSettings::default()
    }
}

async fn mock(scenarios: Vec<Scenario>) -> MockModel {
    MockModel::start(MockConfig::with_scenarios(scenarios))
        .await
        .expect("mock model")
}

fn prompt(scenario: &str) -> TurnInput {
    TurnInput {
        turn: 1,
        prompt: format!("Do the task. [[scenario:{scenario}]]"),
    }
}

/// Runs one turn of `scenario` and returns the result, the events and the model requests.
async fn one_turn(
    mock: &MockModel,
    repo: &Repo,
    settings: BuiltinSettings,
    scenario: &str,
) -> (TurnResult, Events, Vec<LoggedRequest>) {
    let backend = BuiltinBackend::new(settings, super::unconfined()).expect("backend");
    let mut session = backend
        .start_session(repo.context(mock))
        .await
        .expect("session");
    let events = Events::default();
    let result = session
        .run_turn(prompt(scenario), &events)
        .await
        .expect("turn");
    session.stop().await;
    let requests = mock
        .requests()
        .into_iter()
        .filter(|r| r.api.is_some())
        .collect();
    (result, events, requests)
}

/// The tool results a request carries back to the model, as text.
fn tool_results(api: ModelApi, body: &Value) -> Vec<String> {
    let messages = body["messages"].as_array().expect("messages");
    match api {
        ModelApi::ChatCompletions => messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().expect("content").to_owned())
            .collect(),
        ModelApi::AnthropicMessages => messages
            .iter()
            .filter(|m| m["role"] == "user")
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .filter(|b| b["type"] == "tool_result")
            .map(|b| b["content"].as_str().expect("content").to_owned())
            .collect(),
    }
}

fn fixed_usage() -> UsageSpec {
    UsageSpec {
        input_tokens: Some(100),
        output_tokens: Some(20),
        ..UsageSpec::default()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. End to end, both APIs.

#[tokio::test]
async fn write_file_then_finish_end_to_end_on_both_apis() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = mock(vec![
            Scenario::new(
                "write-finish",
                vec![
                    Step::tool(
                        "write_file",
                        json!({"path": "notes/hello.txt", "content": "hello\n"}),
                    ),
                    Step::tool("finish", json!({"summary": "Wrote notes/hello.txt."})),
                    Step::text("DONE"),
                ],
            )
            .with_usage(fixed_usage()),
        ])
        .await;
        let (result, events, requests) =
            one_turn(&mock, &repo, settings(api), "write-finish").await;
        assert_eq!(result, TurnResult::Completed { finished: true }, "{api:?}");
        assert_eq!(
            std::fs::read_to_string(repo.workspace().join("notes/hello.txt")).expect("file"),
            "hello\n"
        );

        let all = events.all();
        assert!(
            matches!(all[0], AgentEvent::SessionStarted { .. }),
            "{all:?}"
        );
        assert_eq!(all[1], AgentEvent::TurnStarted { turn: 1 });
        assert_eq!(all.last(), Some(&AgentEvent::TurnCompleted { turn: 1 }));
        let calls = events.tool_calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].0, "write_file");
        assert!(calls[0].1.contains("notes/hello.txt"), "{calls:?}");
        assert!(calls[0].2);
        assert_eq!(calls[1].0, "finish");
        assert_eq!(events.changes(), vec!["notes/hello.txt".to_owned()]);
        assert!(all.contains(&AgentEvent::Message {
            text: "Wrote notes/hello.txt.".into()
        }));
        // Absolute session totals: two answers of 100 in + 20 out each.
        let usages = events.usages();
        assert_eq!(
            usages,
            vec![
                TokenUsage {
                    input_tokens: 100,
                    output_tokens: 20,
                    total_tokens: 120
                },
                TokenUsage {
                    input_tokens: 200,
                    output_tokens: 40,
                    total_tokens: 240
                },
            ],
            "{api:?}"
        );

        assert_eq!(requests.len(), 2, "{api:?}");
        let (path, wire) = match api {
            ModelApi::ChatCompletions => ("/v1/chat/completions", "chat"),
            ModelApi::AnthropicMessages => ("/v1/messages", "messages"),
        };
        for request in &requests {
            assert_eq!(request.path, path);
            assert_eq!(request.api.as_deref(), Some(wire));
            assert_eq!(request.status, 200);
            assert_eq!(request.body["stream"], true);
            assert_eq!(request.body["model"], "mock-model");
            match api {
                // The log keeps a credential's first 6 characters.
                ModelApi::ChatCompletions => {
                    assert_eq!(
                        request.header("authorization"),
                        Some("Bearer runtok…REDACTED")
                    );
                }
                ModelApi::AnthropicMessages => {
                    assert_eq!(request.header("x-api-key"), Some("runtok…REDACTED"));
                    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
                }
            }
        }
        let tools: Vec<&str> = requests[0].body["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .map(|t| {
                t.pointer("/function/name")
                    .or_else(|| t.get("name"))
                    .and_then(Value::as_str)
                    .expect("tool name")
            })
            .collect();
        assert_eq!(
            tools,
            [
                "read_file",
                "list_dir",
                "search",
                "write_file",
                "edit_file",
                "apply_patch",
                "run",
                "finish"
            ]
        );
        assert_eq!(tool_results(api, &requests[0].body), Vec::<String>::new());
        let results = tool_results(api, &requests[1].body);
        assert_eq!(
            results,
            vec!["created notes/hello.txt (6 bytes)".to_owned()]
        );
        mock.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn the_system_prompt_carries_the_workspace_and_agents_md() {
    let repo = Repo::new();
    std::fs::write(
        repo.workspace().join("AGENTS.md"),
        "Always run `make check`.\n",
    )
    .expect("agents");
    let mock = mock(vec![Scenario::new(
        "talk",
        vec![Step::text("Nothing to do.")],
    )])
    .await;
    let mut settings = settings(ModelApi::ChatCompletions);
    settings.system_prompt_extra = Some("Extra house rule.".into());
    let (result, events, requests) = one_turn(&mock, &repo, settings, "talk").await;
    // A reply without tool calls ends the turn, unfinished.
    assert_eq!(result, TurnResult::Completed { finished: false });
    assert!(events.all().contains(&AgentEvent::Message {
        text: "Nothing to do.".into()
    }));
    let system = requests[0].body["messages"][0]["content"]
        .as_str()
        .expect("system")
        .to_owned();
    let root = std::fs::canonicalize(repo.workspace()).expect("canonical");
    assert!(system.contains(&format!("Working directory: {}", root.display())));
    assert!(system.contains("Always run `make check`."), "{system}");
    assert!(system.contains("Extra house rule."));
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn later_turns_continue_the_same_conversation() {
    let repo = Repo::new();
    let mock = mock(vec![Scenario::new(
        "two-turns",
        vec![
            Step::tool("list_dir", json!({"path": "."})),
            Step::text("Looked around."),
        ],
    )])
    .await;
    let backend = BuiltinBackend::new(settings(ModelApi::AnthropicMessages), super::unconfined())
        .expect("backend");
    let mut session = backend
        .start_session(repo.context(&mock))
        .await
        .expect("session");
    let events = Events::default();
    let first = session
        .run_turn(prompt("two-turns"), &events)
        .await
        .expect("turn 1");
    assert_eq!(first, TurnResult::Completed { finished: false });
    let second = session
        .run_turn(
            TurnInput {
                turn: 2,
                prompt: "Continue, please.".into(),
            },
            &events,
        )
        .await
        .expect("turn 2");
    assert_eq!(second, TurnResult::Completed { finished: false });
    let requests = mock.requests();
    let last = &requests.last().expect("request").body;
    let messages = last["messages"].as_array().expect("messages");
    // user(prompt), assistant(list_dir), user(result), assistant(text), user(continuation)
    assert_eq!(messages.len(), 5, "{last}");
    assert_eq!(messages[4]["content"][0]["text"], "Continue, please.");
    assert!(
        messages[2]["content"][0]["content"]
            .as_str()
            .expect("listing")
            .contains("README.md")
    );
    assert!(
        events
            .all()
            .contains(&AgentEvent::TurnCompleted { turn: 2 })
    );
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_session_without_a_model_endpoint_is_refused() {
    let repo = Repo::new();
    let mock = mock(vec![]).await;
    let mut context = repo.context(&mock);
    context.model = None;
    let backend =
        BuiltinBackend::new(BuiltinSettings::default(), super::unconfined()).expect("backend");
    let error = match backend.start_session(context).await {
        Ok(_) => panic!("expected an error"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("model endpoint"), "{error}");
    assert_eq!(backend.name(), "builtin");
    mock.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// 2. Many tool calls.

/// 20 tool calls (write then read ten files), then `finish`: the benchmark scenario.
fn twenty_calls() -> Scenario {
    let mut steps = Vec::new();
    for i in 0..10 {
        let path = format!("src/file_{i}.txt");
        steps.push(Step::tool(
            "write_file",
            json!({"path": path, "content": format!("line {i}\n")}),
        ));
        steps.push(Step::tool("read_file", json!({"path": path})));
    }
    steps.push(Step::tool("finish", json!({"summary": "Wrote ten files."})));
    steps.push(Step::text("DONE"));
    Scenario::new("twenty-calls", steps)
}

#[tokio::test]
async fn twenty_tool_calls_complete() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = mock(vec![twenty_calls()]).await;
        let (result, events, requests) =
            one_turn(&mock, &repo, settings(api), "twenty-calls").await;
        assert_eq!(result, TurnResult::Completed { finished: true }, "{api:?}");
        let calls = events.tool_calls();
        assert_eq!(calls.len(), 21);
        assert!(calls.iter().all(|(_, _, ok)| *ok), "{calls:?}");
        assert_eq!(events.changes().len(), 10);
        assert_eq!(requests.len(), 21);
        let results = tool_results(api, &requests[20].body);
        assert_eq!(results.len(), 20);
        assert_eq!(results[19], "line 9\n");
        let usages = events.usages();
        assert_eq!(usages.len(), 21);
        assert!(
            usages
                .windows(2)
                .all(|w| w[1].total_tokens > w[0].total_tokens)
        );
        mock.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn max_steps_stops_the_turn_unfinished() {
    let repo = Repo::new();
    let mock = mock(vec![twenty_calls()]).await;
    let mut settings = settings(ModelApi::ChatCompletions);
    settings.max_steps = 3;
    let (result, events, requests) = one_turn(&mock, &repo, settings, "twenty-calls").await;
    assert_eq!(result, TurnResult::Completed { finished: false });
    assert_eq!(requests.len(), 3);
    assert!(events.all().iter().any(|e| matches!(e,
        AgentEvent::Message { text } if text.contains("builtin.max_steps"))));
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn max_tokens_per_turn_stops_the_turn_unfinished() {
    let repo = Repo::new();
    let mock = mock(vec![twenty_calls().with_usage(fixed_usage())]).await;
    let mut settings = settings(ModelApi::AnthropicMessages);
    settings.max_tokens_per_turn = 300;
    let (result, events, requests) = one_turn(&mock, &repo, settings, "twenty-calls").await;
    assert_eq!(result, TurnResult::Completed { finished: false });
    // 120 tokens per answer: the third answer crosses 300.
    assert_eq!(requests.len(), 3);
    assert!(events.all().iter().any(|e| matches!(e,
        AgentEvent::Message { text } if text.contains("builtin.max_tokens_per_turn"))));
    mock.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// 3. Protocol robustness.

fn write_and_finish_after(error: Step) -> Vec<Step> {
    vec![
        error,
        Step::tool("write_file", json!({"path": "ok.txt", "content": "ok\n"})),
        Step::tool("finish", json!({"summary": "done"})),
        Step::text("DONE"),
    ]
}

fn once(status: u16, retry_after_secs: Option<u64>) -> Step {
    Step::Error(ErrorStep {
        status,
        message: Some(format!("injected {status}")),
        retry_after_secs,
        times: Some(1),
    })
}

#[tokio::test]
async fn a_429_with_retry_after_is_retried_and_succeeds() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = mock(vec![Scenario::new(
            "rate-limited",
            write_and_finish_after(once(429, Some(1))),
        )])
        .await;
        let (result, events, requests) =
            one_turn(&mock, &repo, settings(api), "rate-limited").await;
        assert_eq!(result, TurnResult::Completed { finished: true }, "{api:?}");
        let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [429, 200, 200]);
        // The retry is journaled, with the delay Retry-After asked for.
        let retries: Vec<String> = events
            .all()
            .into_iter()
            .filter_map(|e| match e {
                AgentEvent::Error { message } => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(retries.len(), 1, "{retries:?}");
        assert!(
            retries[0].starts_with("model request failed, retry 1/2 in 1000 ms:")
                && retries[0].contains("HTTP 429")
                && retries[0].contains("injected 429"),
            "{retries:?}"
        );
        assert!(repo.workspace().join("ok.txt").exists());
        mock.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn a_500_is_retried_and_succeeds() {
    let repo = Repo::new();
    let mock = mock(vec![Scenario::new(
        "flaky",
        write_and_finish_after(once(500, None)),
    )])
    .await;
    let (result, _events, requests) =
        one_turn(&mock, &repo, settings(ModelApi::ChatCompletions), "flaky").await;
    assert_eq!(result, TurnResult::Completed { finished: true });
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200, 200]);
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_persistent_500_fails_the_turn_after_max_retries() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = mock(vec![Scenario::new(
            "down",
            vec![Step::error(500, "the provider is down")],
        )])
        .await;
        let (result, events, requests) = one_turn(&mock, &repo, settings(api), "down").await;
        let TurnResult::Failed { error } = result else {
            panic!("expected a failure, got {result:?}");
        };
        assert!(error.contains("HTTP 500"), "{error}");
        assert!(error.contains("the provider is down"), "{error}");
        assert!(error.contains("gave up after 3 attempts"), "{error}");
        assert_eq!(
            requests.len(),
            3,
            "{api:?}: one attempt and max_retries = 2 retries"
        );
        assert_eq!(
            events.all().last(),
            Some(&AgentEvent::TurnFailed {
                turn: 1,
                error: error.clone()
            })
        );
        mock.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let repo = Repo::new();
    let mock = mock(vec![Scenario::new(
        "bad-request",
        vec![Step::error(400, "bad request")],
    )])
    .await;
    let (result, _events, requests) = one_turn(
        &mock,
        &repo,
        settings(ModelApi::ChatCompletions),
        "bad-request",
    )
    .await;
    assert!(matches!(result, TurnResult::Failed { ref error } if error.contains("HTTP 400")));
    assert_eq!(requests.len(), 1);
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_cut_stream_is_retried_then_fails() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = mock(vec![Scenario::new("cut", vec![Step::CutStream(true)])]).await;
        let (result, events, requests) = one_turn(&mock, &repo, settings(api), "cut").await;
        let TurnResult::Failed { error } = result else {
            panic!("expected a failure, got {result:?}");
        };
        assert!(error.contains("broke off"), "{api:?}: {error}");
        assert!(error.contains("gave up after 3 attempts"), "{error}");
        assert_eq!(requests.len(), 3);
        // The partial text of a broken stream is never reported.
        assert!(
            !events
                .all()
                .iter()
                .any(|e| matches!(e, AgentEvent::Message { .. }))
        );
        mock.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn a_stream_that_never_ends_hits_the_idle_timeout() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = MockModel::start(MockConfig {
            // The mock ticks (sends bytes) this rarely: the client sees an idle stream.
            stream_tick: Duration::from_secs(3600),
            ..MockConfig::with_scenarios(vec![Scenario::new(
                "forever",
                vec![Step::StreamForever(true)],
            )])
        })
        .await
        .expect("mock");
        let mut settings = settings(api);
        settings.stream_idle_timeout = Duration::from_millis(300);
        settings.max_retries = 1;
        let (result, _events, requests) = one_turn(&mock, &repo, settings, "forever").await;
        let TurnResult::Failed { error } = result else {
            panic!("expected a failure, got {result:?}");
        };
        assert!(error.contains("idle for 300 ms"), "{api:?}: {error}");
        assert_eq!(requests.len(), 2);
        mock.shutdown().await.expect("shutdown");
    }
}

#[tokio::test]
async fn malformed_tool_arguments_come_back_as_an_error_and_the_loop_goes_on() {
    for api in BOTH {
        let repo = Repo::new();
        let mock = mock(vec![Scenario::new(
            "malformed",
            vec![
                Step::tool(
                    "write_file",
                    Value::String("{\"path\": \"x.txt\", broken".into()),
                ),
                Step::tool("nonexistent_tool", json!({})),
                Step::tool("finish", json!({"summary": "recovered"})),
                Step::text("DONE"),
            ],
        )])
        .await;
        let (result, events, requests) = one_turn(&mock, &repo, settings(api), "malformed").await;
        assert_eq!(result, TurnResult::Completed { finished: true }, "{api:?}");
        let calls = events.tool_calls();
        assert_eq!(calls.len(), 3);
        assert!(!calls[0].2 && !calls[1].2 && calls[2].2, "{calls:?}");
        let results = tool_results(api, &requests[2].body);
        assert!(
            results[0].starts_with("error: invalid arguments"),
            "{results:?}"
        );
        assert!(results[1].starts_with("error: unknown tool"), "{results:?}");
        if api == ModelApi::AnthropicMessages {
            let blocks = requests[2].body["messages"][2]["content"]
                .as_array()
                .expect("blocks");
            assert_eq!(blocks[0]["is_error"], true);
        }
        assert!(!repo.workspace().join("x.txt").exists());
        mock.shutdown().await.expect("shutdown");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Tools.

fn toolbox(workspace: &Path) -> Toolbox {
    Toolbox::new(
        workspace,
        ToolSettings {
            command_timeout: Duration::from_secs(60),
            output_limit_bytes: 1000,
            deny_commands: vec!["curl".into(), "sudo".into()],
            remove_env: vec!["TAKT_TEST_SECRET_BUILTIN".into()],
            env: vec![("TAKT_RUN_ID".into(), "TAKT-1#1".into())],
            sandbox: super::unconfined(),
            scope: None,
        },
    )
    .expect("toolbox")
}

fn args(value: Value) -> String {
    value.to_string()
}

#[tokio::test]
async fn paths_that_escape_the_workspace_are_refused() {
    let repo = Repo::new();
    let outside = repo.dir.path().join("secret.txt");
    std::fs::write(&outside, "top secret\n").expect("secret");
    std::os::unix::fs::symlink(repo.dir.path(), repo.workspace().join("up")).expect("symlink");
    let tools = toolbox(&repo.workspace());
    for (name, arguments) in [
        ("read_file", json!({"path": "../secret.txt"})),
        ("read_file", json!({"path": "/etc/passwd"})),
        ("read_file", json!({"path": "up/secret.txt"})),
        (
            "write_file",
            json!({"path": "up/planted.txt", "content": "x"}),
        ),
        (
            "write_file",
            json!({"path": "../planted.txt", "content": "x"}),
        ),
        ("list_dir", json!({"path": "up"})),
        ("search", json!({"pattern": "secret", "path": "up"})),
        (
            "edit_file",
            json!({"path": "up/secret.txt", "old": "top", "new": "no"}),
        ),
        (
            "apply_patch",
            json!({"patch": "*** Begin Patch\n*** Add File: ../planted.txt\n+x\n*** End Patch\n"}),
        ),
    ] {
        let output = tools.call(name, &args(arguments.clone())).await;
        assert!(!output.ok, "{name} {arguments}");
        assert!(
            output.content.starts_with("error: refused:")
                && output.content.contains("outside the workspace"),
            "{name} {arguments}: {}",
            output.content
        );
        assert!(!output.content.contains("top secret"));
    }
    assert!(!repo.dir.path().join("planted.txt").exists());
    assert_eq!(
        std::fs::read_to_string(&outside).expect("secret"),
        "top secret\n"
    );
    // The workspace's own absolute path is fine.
    let inside = repo.workspace().join("README.md");
    let output = tools
        .call(
            "read_file",
            &args(json!({"path": inside.to_str().expect("utf8")})),
        )
        .await;
    assert!(output.ok, "{}", output.content);
    assert_eq!(output.content, "# demo\n");
}

#[tokio::test]
async fn read_write_list_and_line_ranges() {
    let repo = Repo::new();
    let tools = toolbox(&repo.workspace());
    let written = tools
        .call(
            "write_file",
            &args(json!({"path": "a/b/c.txt", "content": "one\ntwo\nthree\n"})),
        )
        .await;
    assert!(written.ok);
    assert_eq!(written.changed, vec!["a/b/c.txt".to_owned()]);
    let range = tools
        .call(
            "read_file",
            &args(json!({"path": "a/b/c.txt", "start_line": 2, "end_line": 3})),
        )
        .await;
    assert_eq!(range.content, "[lines 2-3 of 3]\ntwo\nthree\n");
    let listing = tools.call("list_dir", &args(json!({"path": "."}))).await;
    assert_eq!(listing.content, "README.md\na/");
    let missing = tools
        .call("read_file", &args(json!({"path": "nope.txt"})))
        .await;
    assert_eq!(missing.content, "error: `nope.txt` does not exist");
    let git = tools
        .call(
            "write_file",
            &args(json!({"path": ".git/hooks/pre-commit", "content": "x"})),
        )
        .await;
    assert!(
        !git.ok && git.content.contains(".git directory"),
        "{}",
        git.content
    );
}

#[tokio::test]
async fn edit_file_needs_exactly_one_match() {
    let repo = Repo::new();
    let path = repo.workspace().join("lib.rs");
    std::fs::write(&path, "let a = 1;\nlet b = 1;\n").expect("write");
    let tools = toolbox(&repo.workspace());
    let ambiguous = tools
        .call(
            "edit_file",
            &args(json!({"path": "lib.rs", "old": "= 1;", "new": "= 2;"})),
        )
        .await;
    assert!(!ambiguous.ok);
    assert!(
        ambiguous.content.contains("occurs 2 times"),
        "{}",
        ambiguous.content
    );
    let missing = tools
        .call(
            "edit_file",
            &args(json!({"path": "lib.rs", "old": "let c", "new": "x"})),
        )
        .await;
    assert!(
        missing.content.contains("was not found"),
        "{}",
        missing.content
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "let a = 1;\nlet b = 1;\n"
    );
    let unique = tools
        .call(
            "edit_file",
            &args(json!({"path": "lib.rs", "old": "let b = 1;", "new": "let b = 2;"})),
        )
        .await;
    assert!(unique.ok, "{}", unique.content);
    assert_eq!(unique.changed, vec!["lib.rs".to_owned()]);
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "let a = 1;\nlet b = 2;\n"
    );
}

#[tokio::test]
async fn apply_patch_adds_updates_moves_and_deletes() {
    let repo = Repo::new();
    let ws = repo.workspace();
    std::fs::write(
        ws.join("main.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n\nfn helper() {\n    old();\n}\n",
    )
    .expect("write");
    std::fs::write(ws.join("gone.txt"), "bye\n").expect("write");
    std::fs::write(ws.join("rename.txt"), "a\nb\n").expect("write");
    let tools = toolbox(&ws);
    let patch = concat!(
        "*** Begin Patch\n",
        "*** Add File: docs/new.md\n",
        "+# New\n",
        "+text\n",
        "*** Update File: main.rs\n",
        "@@ fn helper() {\n",
        "-    old();\n",
        "+    new();\n",
        "*** Delete File: gone.txt\n",
        "*** Update File: rename.txt\n",
        "*** Move to: renamed.txt\n",
        "@@\n",
        " a\n",
        "-b\n",
        "+c\n",
        "*** End Patch\n",
    );
    let output = tools
        .call("apply_patch", &args(json!({"patch": patch})))
        .await;
    assert!(output.ok, "{}", output.content);
    assert_eq!(
        std::fs::read_to_string(ws.join("docs/new.md")).expect("new"),
        "# New\ntext\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("main.rs")).expect("main"),
        "fn main() {\n    println!(\"hi\");\n}\n\nfn helper() {\n    new();\n}\n"
    );
    assert!(!ws.join("gone.txt").exists());
    assert!(!ws.join("rename.txt").exists());
    assert_eq!(
        std::fs::read_to_string(ws.join("renamed.txt")).expect("renamed"),
        "a\nc\n"
    );
    let mut changed = output.changed.clone();
    changed.sort();
    assert_eq!(
        changed,
        [
            "docs/new.md",
            "gone.txt",
            "main.rs",
            "rename.txt",
            "renamed.txt"
        ]
    );

    // A patch with one bad hunk changes nothing.
    let bad = "*** Begin Patch\n*** Add File: partial.txt\n+x\n*** Update File: main.rs\n@@\n-no such line\n+y\n*** End Patch\n";
    let output = tools
        .call("apply_patch", &args(json!({"patch": bad})))
        .await;
    assert!(!output.ok);
    assert!(output.content.contains("not found"), "{}", output.content);
    assert!(!ws.join("partial.txt").exists());
}

#[tokio::test]
async fn run_reports_exit_codes_and_scrubs_the_environment() {
    let repo = Repo::new();
    let tools = toolbox(&repo.workspace());
    let output = tools
        .call(
            "run",
            &args(json!({"command": "echo out; echo err >&2; echo \"id=$TAKT_RUN_ID secret=${TAKT_TEST_SECRET_BUILTIN:-none}\"; pwd; exit 3"})),
        )
        .await;
    assert!(!output.ok);
    let root = std::fs::canonicalize(repo.workspace()).expect("canonical");
    assert!(
        output.content.starts_with("exit code 3\n"),
        "{}",
        output.content
    );
    assert!(output.content.contains("out\n"));
    assert!(output.content.contains("err\n"));
    assert!(output.content.contains("id=TAKT-1#1 secret=none"));
    assert!(output.content.contains(&root.display().to_string()));
    let ok = tools.call("run", &args(json!({"command": "true"}))).await;
    assert!(ok.ok);
    assert_eq!(ok.summary, "run `true`: exit code 0");
}

#[tokio::test]
async fn run_times_out_and_kills_the_whole_process_group() {
    let repo = Repo::new();
    let tools = toolbox(&repo.workspace());
    let output = tools
        .call(
            "run",
            &args(json!({"command": "echo $$ > group.pid; sleep 600 & echo $! > child.pid; echo started; sleep 600", "timeout_ms": 500})),
        )
        .await;
    assert!(!output.ok);
    assert!(
        output.content.starts_with("timed out after 500 ms"),
        "{}",
        output.content
    );
    assert!(output.content.contains("started"));
    let read_pid = |name: &str| -> u32 {
        std::fs::read_to_string(repo.workspace().join(name))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let pgid = read_pid("group.pid");
    let child = read_pid("child.pid");
    wait_until(|| !group_alive(pgid)).await;
    wait_until(|| gone(child)).await;
    assert_eq!(tools.running().get(), None);
}

#[tokio::test]
async fn background_processes_do_not_outlive_their_command() {
    let repo = Repo::new();
    let tools = toolbox(&repo.workspace());
    let output = tools
        .call(
            "run",
            &args(json!({"command": "sleep 600 & echo $! > child.pid; echo quick"})),
        )
        .await;
    assert!(output.ok, "{}", output.content);
    let child: u32 = std::fs::read_to_string(repo.workspace().join("child.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    wait_until(|| gone(child)).await;
}

#[tokio::test]
async fn deny_listed_commands_are_refused() {
    let repo = Repo::new();
    let tools = toolbox(&repo.workspace());
    for command in [
        "curl https://example.com",
        "echo a && /usr/bin/curl x",
        "cat README.md | sudo tee /x",
        "echo $(curl x)",
    ] {
        let output = tools
            .call(
                "run",
                &args(json!({"command": format!("touch ran.txt; {command}")})),
            )
            .await;
        assert!(!output.ok);
        assert!(
            output.content.starts_with("error: refused:")
                && output.content.contains("builtin.deny_commands"),
            "{command}: {}",
            output.content
        );
    }
    // Refused before anything ran.
    assert!(!repo.workspace().join("ran.txt").exists());
    let fine = tools
        .call("run", &args(json!({"command": "echo curl is just a word"})))
        .await;
    assert!(fine.ok, "{}", fine.content);
}

#[tokio::test]
async fn long_output_keeps_its_head_and_tail() {
    let repo = Repo::new();
    let tools = toolbox(&repo.workspace());
    let output = tools
        .call(
            "run",
            &args(json!({"command": "echo FIRST; head -c 200000 /dev/zero | tr '\\0' 'a'; echo; echo LAST"})),
        )
        .await;
    assert!(output.ok);
    assert!(output.content.len() < 1200, "{}", output.content.len());
    assert!(output.content.contains("FIRST"));
    assert!(output.content.trim_end().ends_with("LAST"));
    assert!(output.content.contains("bytes of output omitted"));
    // read_file is cut the same way.
    std::fs::write(
        repo.workspace().join("big.txt"),
        format!("HEAD\n{}\nTAIL\n", "b".repeat(50_000)),
    )
    .expect("big");
    let read = tools
        .call("read_file", &args(json!({"path": "big.txt"})))
        .await;
    assert!(read.ok);
    assert!(read.content.starts_with("HEAD"));
    assert!(read.content.contains("TAIL"));
    assert!(read.content.contains("start_line/end_line"));
    assert!(read.content.len() < 1200);
}

#[tokio::test]
async fn search_respects_gitignore() {
    let repo = Repo::new();
    let ws = repo.workspace();
    std::fs::write(ws.join(".gitignore"), "target/\n*.tmp\n").expect("gitignore");
    std::fs::create_dir_all(ws.join("src")).expect("src");
    std::fs::create_dir_all(ws.join("target/debug")).expect("target");
    std::fs::write(ws.join("src/lib.rs"), "pub fn wanted_symbol() {}\n").expect("lib");
    std::fs::write(ws.join("target/debug/out.rs"), "wanted_symbol\n").expect("out");
    std::fs::write(ws.join("scratch.tmp"), "wanted_symbol\n").expect("tmp");
    let tools = toolbox(&ws);
    let output = tools
        .call("search", &args(json!({"pattern": "wanted_\\w+"})))
        .await;
    assert!(output.ok, "{}", output.content);
    assert_eq!(output.content, "src/lib.rs:1: pub fn wanted_symbol() {}");
    let none = tools
        .call(
            "search",
            &args(json!({"pattern": "absent_thing", "path": "src"})),
        )
        .await;
    assert!(none.content.starts_with("no matches"), "{}", none.content);
    let bad = tools
        .call("search", &args(json!({"pattern": "(unclosed"})))
        .await;
    assert!(
        !bad.ok && bad.content.contains("bad regex"),
        "{}",
        bad.content
    );
}

#[tokio::test]
async fn stopping_a_session_kills_a_running_command() {
    let repo = Repo::new();
    let mock = mock(vec![Scenario::new(
        "hang",
        vec![
            Step::tool(
                "run",
                json!({"command": "echo $$ > group.pid; sleep 600 & echo $! > child.pid; sleep 600"}),
            ),
            Step::text("DONE"),
        ],
    )])
    .await;
    let backend = BuiltinBackend::new(settings(ModelApi::ChatCompletions), super::unconfined())
        .expect("backend");
    let ctx = repo.context(&mock);
    let mut session = backend.start_session(ctx.clone()).await.expect("session");
    let events = Events::default();
    let child_file = repo.workspace().join("child.pid");
    {
        let turn = session.run_turn(prompt("hang"), &events);
        tokio::pin!(turn);
        loop {
            tokio::select! {
                result = &mut turn => panic!("the turn ended: {result:?}"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    if std::fs::read_to_string(&child_file).is_ok_and(|t| t.ends_with('\n')) {
                        break;
                    }
                }
            }
        }
        // The run's process group is recorded for the orphan sweep while it runs.
        assert!(ctx.run_dir.join(takt_agents::process::PID_FILE).exists());
        // Dropping the turn (the daemon's stall timeout) must not leave the command behind.
    }
    session.stop().await;
    let read_pid = |name: &str| -> u32 {
        std::fs::read_to_string(repo.workspace().join(name))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let pgid = read_pid("group.pid");
    wait_until(|| !group_alive(pgid)).await;
    wait_until(|| gone(read_pid("child.pid"))).await;
    assert!(!ctx.run_dir.join(takt_agents::process::PID_FILE).exists());
    assert_eq!(session.pid(), None);
    drop(session);
    mock.shutdown().await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------------
// 5. Context budget.

#[tokio::test]
async fn old_tool_outputs_are_truncated_to_fit_the_context_budget() {
    for api in BOTH {
        let repo = Repo::new();
        // Six different 6 KB files (about 1,500 tokens each) against a 5,000-token budget.
        for i in 0..6 {
            std::fs::write(
                repo.workspace().join(format!("big_{i}.txt")),
                format!("FILE{i}\n{}\n", format!("{i}").repeat(6000)),
            )
            .expect("big file");
        }
        let mut steps: Vec<Step> = (0..6)
            .map(|i| Step::tool("read_file", json!({"path": format!("big_{i}.txt")})))
            .collect();
        steps.push(Step::tool("finish", json!({"summary": "read them all"})));
        steps.push(Step::text("DONE"));
        let mock = mock(vec![Scenario::new("long-reads", steps)]).await;
        let mut settings = settings(api);
        settings.context_budget_tokens = 5_000;
        settings.output_limit_bytes = 16_384;
        let (result, _events, requests) = one_turn(&mock, &repo, settings, "long-reads").await;
        assert_eq!(result, TurnResult::Completed { finished: true }, "{api:?}");
        assert_eq!(requests.len(), 7);
        let last = tool_results(api, &requests[6].body);
        assert_eq!(last.len(), 6);
        // The newest output is whole; the oldest ones were cut, oldest first.
        assert!(last[5].starts_with("FILE5\n"), "{api:?}");
        assert_eq!(last[0], TRUNCATED);
        let cut = last.iter().filter(|r| r.as_str() == TRUNCATED).count();
        assert!(cut >= 3, "{api:?}: {cut} outputs cut");
        let first_whole = last.iter().position(|r| r != TRUNCATED).expect("whole");
        assert!(last[..first_whole].iter().all(|r| r == TRUNCATED));
        // The request stays near the budget (chars / 4), never grows with every read.
        let chars = requests[6].body.to_string().len();
        assert!(chars < 5_000 * 4 + 8_000, "{api:?}: {chars} chars");
        mock.shutdown().await.expect("shutdown");
    }
}

// ---------------------------------------------------------------------------------------------

/// Whether process `pid` is gone (or a zombie waiting for its reaper).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.contains(") Z "))
        .unwrap_or(true)
}

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached within 10 s");
}
