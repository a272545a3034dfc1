//! Tests of the codex backend.
//!
//! - Against a fake app-server (`tests/fixtures/codex/fake_app_server.py`, python3) that speaks
//!   the protocol and misbehaves on command: split lines, noise, a 20 MB line, server requests
//!   before responses, unknown requests, dynamic tool calls, exits, silence.
//! - Against the real Codex CLI (installed by `.ci/install-agent-clis`) and takt-mock-model,
//!   offline: every proxy variable points at a listener that refuses and records CONNECTs, and,
//!   where `unshare -n` works, a second run happens inside a loopback-only network namespace.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{RefusingProxy, Sink};
use serde_json::{Value, json};
use takt_agents::codex::{CodexBackend, CodexSettings};
use takt_agents::process::group_alive;
use takt_core::ports::{
    AgentBackend, AgentSession, ModelAccess, SessionContext, TurnInput, TurnResult,
};
use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
use takt_protocol::{AgentEvent, TokenUsage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "takt-run-token-1234567890";

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn python() -> PathBuf {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .map(|dir| dir.join("python3"))
        .find(|path| path.is_file())
        .expect("these tests need python3 on PATH (the fake app-server is a python script)")
}

fn fake_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codex/fake_app_server.py")
}

struct Fake {
    _dir: tempfile::TempDir,
    context: SessionContext,
    log: PathBuf,
    settings: CodexSettings,
}

impl Fake {
    fn new(mode: &str) -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = dir.path().join("ws");
        std::fs::create_dir_all(&workspace).expect("workspace");
        let log = dir.path().join("fake.log");
        let command = format!(
            "exec {} {} {mode} {}",
            quote(&python().to_string_lossy()),
            quote(&fake_script().to_string_lossy()),
            quote(&log.to_string_lossy())
        );
        Fake {
            context: SessionContext {
                git_dir: None,
                host_tools: None,
                view: None,
                task_id: "id-1".into(),
                identifier: "TAKT-1".into(),
                run_id: "TAKT-1#1".into(),
                attempt: 1,
                workspace,
                run_dir: dir.path().join("run"),
                model: Some(ModelAccess {
                    openai_base_url: "http://127.0.0.1:9/v1".into(),
                    anthropic_base_url: "http://127.0.0.1:9".into(),
                    token: TOKEN.into(),
                    model: Some("gpt-5.5".into()),
                }),
            },
            log,
            settings: CodexSettings {
                command,
                read_timeout: Duration::from_secs(20),
                turn_timeout: Duration::from_secs(30),
                // A variable cargo really sets for this process: it must not reach the agent.
                remove_env: vec!["CARGO_MANIFEST_DIR".into()],
                ..CodexSettings::default()
            },
            _dir: dir,
        }
    }

    async fn start(&self) -> Box<dyn AgentSession> {
        CodexBackend::new(self.settings.clone(), super::unconfined())
            .start_session(self.context.clone())
            .await
            .expect("session")
    }

    /// Everything the fake logged: `{"got": message}`, `{"answer": …}`, `{"env": …}`, ….
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("fake log line"))
            .collect()
    }

    fn received(&self, method: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|entry| entry["got"]["method"] == method)
            .map(|entry| entry["got"].clone())
            .collect()
    }

    fn answers(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter_map(|entry| entry.get("answer").cloned())
            .collect()
    }
}

fn turn(number: u32, prompt: &str) -> TurnInput {
    TurnInput {
        turn: number,
        prompt: prompt.into(),
    }
}

/// Waits (bounded) until `condition` holds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("gave up waiting for {what}");
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for its parent to reap it is dead too.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn usage(input: u64, output: u64, total: u64) -> TokenUsage {
    TokenUsage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: total,
    }
}

#[tokio::test]
async fn a_turn_maps_messages_tools_and_absolute_token_totals_and_the_thread_is_reused() {
    let fake = Fake::new("normal");
    let mut session = fake.start().await;
    let pgid = session.pid().expect("pid");
    assert!(group_alive(pgid));

    // The per-run CODEX_HOME and what the app-server saw of its environment.
    let home = std::path::absolute(fake.context.run_dir.join("agent").join("codex-home")).unwrap();
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config.toml");
    assert!(
        config.contains("base_url = \"http://127.0.0.1:9/v1\""),
        "{config}"
    );
    assert!(
        config.contains("env_key = \"TAKT_MODEL_TOKEN\""),
        "{config}"
    );
    assert!(config.contains("model = \"gpt-5.5\""), "{config}");
    assert!(!config.contains(TOKEN), "the token never goes to disk");
    let env = fake.log()[0]["env"].clone();
    let workspace = std::fs::canonicalize(&fake.context.workspace).unwrap();
    assert_eq!(env["CODEX_HOME"], home.to_string_lossy().as_ref());
    assert_eq!(env["TAKT_MODEL_TOKEN"], TOKEN);
    assert_eq!(env["cwd"], workspace.to_string_lossy().as_ref());
    assert_eq!(
        env["pgid"], pgid,
        "the app-server leads its own process group"
    );
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    assert_eq!(
        env["CARGO_MANIFEST_DIR"],
        Value::Null,
        "named in remove_env"
    );

    let sink = Sink::default();
    let result = session
        .run_turn(turn(1, "fix the bug"), &sink)
        .await
        .expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: false });
    let events = sink.events();
    assert_eq!(
        events,
        [
            AgentEvent::TurnStarted { turn: 1 },
            AgentEvent::SessionStarted {
                session_id: "thr_1-turn_1".into()
            },
            AgentEvent::Message {
                text: "Hello, world".into()
            },
            AgentEvent::TokenUsage {
                usage: usage(100, 20, 120)
            },
            AgentEvent::RateLimits {
                limits: serde_json::json!({"limitId": "codex", "primary": null})
            },
            AgentEvent::ToolCall {
                name: "command".into(),
                summary: "cargo test (exit 0)".into(),
                ok: true
            },
            AgentEvent::ToolCall {
                name: "apply_patch".into(),
                summary: "update src/lib.rs".into(),
                ok: true
            },
            AgentEvent::FileChange {
                path: "src/lib.rs".into()
            },
            AgentEvent::TokenUsage {
                usage: usage(250, 50, 300)
            },
            AgentEvent::TurnCompleted { turn: 1 },
        ]
    );

    // The handshake and the turn carried the workspace and the safe defaults.
    let initialize = &fake.received("initialize")[0];
    assert_eq!(
        initialize["params"]["capabilities"]["experimentalApi"],
        true
    );
    assert!(initialize.get("jsonrpc").is_none());
    assert_eq!(fake.received("initialized").len(), 1);
    let thread_start = &fake.received("thread/start")[0];
    assert_eq!(
        thread_start["params"]["cwd"],
        workspace.to_string_lossy().as_ref()
    );
    assert_eq!(thread_start["params"]["sandbox"], "workspace-write");
    assert_eq!(thread_start["params"]["model"], "gpt-5.5");
    assert_eq!(
        thread_start["params"]["approvalPolicy"]["granular"]["sandbox_approval"],
        false
    );
    let turn_start = &fake.received("turn/start")[0];
    assert_eq!(turn_start["params"]["threadId"], "thr_1");
    assert_eq!(turn_start["params"]["input"][0]["text"], "fix the bug");
    assert_eq!(
        turn_start["params"]["sandboxPolicy"],
        json!({"type": "workspaceWrite", "writableRoots": [workspace], "networkAccess": false,
               "excludeTmpdirEnvVar": false, "excludeSlashTmp": false})
    );

    // A continuation turn on the same thread; totals stay absolute.
    let sink = Sink::default();
    let result = session
        .run_turn(turn(2, "continue"), &sink)
        .await
        .expect("turn");
    assert_eq!(
        result,
        TurnResult::Failed {
            error: "turn_failed: model refused".into()
        }
    );
    assert_eq!(sink.usages(), [usage(400, 70, 470)]);
    assert!(sink.events().contains(&AgentEvent::TurnFailed {
        turn: 2,
        error: "turn_failed: model refused".into()
    }));
    let second = fake
        .log()
        .into_iter()
        .find(|entry| entry.get("second_prompt").is_some())
        .expect("second turn");
    assert_eq!(second["second_prompt"], "continue");
    assert_eq!(second["thread"], "thr_1");

    session.stop().await;
    assert_eq!(session.pid(), None);
    wait_until("the app-server group to end", || !group_alive(pgid)).await;
    assert!(
        fake.log().iter().any(|entry| entry["eof"] == true),
        "stop closes stdin first"
    );
    assert!(!fake.context.run_dir.join("agent.pid").exists());
}

#[tokio::test]
async fn noise_on_stdout_before_the_handshake_is_skipped() {
    let fake = Fake::new("noisy");
    let mut session = fake.start().await;
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: false });
    session.stop().await;
}

#[tokio::test]
async fn server_requests_before_the_turn_start_response_are_answered() {
    let fake = Fake::new("requests_before_response");
    let mut session = fake.start().await;
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: false });
    let answers = fake.answers();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert_eq!(
        answers[0],
        json!({"id": 100, "result": {"decision": "accept"}})
    );
    assert_eq!(answers[1]["id"], 101);
    assert_eq!(answers[1]["error"]["code"], -32601);
    assert_eq!(answers[2]["id"], "dyn");
    assert_eq!(answers[2]["result"]["success"], false);
    assert!(
        answers[2]["result"]["contentItems"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Unsupported dynamic tool: `linear_graphql`")
    );
    assert_eq!(
        answers[3],
        json!({"id": 102, "result": {"decision": "decline"}})
    );
    assert!(sink.asked().is_empty(), "the policy decided everything");
    let notes = sink.messages();
    assert!(
        notes.iter().any(|n| n.contains("approved: run `ls -la`")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("declined: run `git push origin HEAD`")),
        "{notes:?}"
    );
    session.stop().await;
}

#[tokio::test]
async fn an_approval_the_policy_cannot_decide_asks_a_person_and_yes_accepts() {
    let fake = Fake::new("ask_file_change");
    let mut session = fake.start().await;
    let sink = Sink::answering(&[Some("yes")]);
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: false });
    let asked = sink.asked();
    assert_eq!(asked.len(), 1);
    assert!(
        asked[0].contains("/srv/elsewhere/settings.toml"),
        "{}",
        asked[0]
    );
    assert!(asked[0].contains("needs the shared config"), "{}", asked[0]);
    assert_eq!(
        fake.answers(),
        [json!({"id": 0, "result": {"decision": "accept"}})]
    );
    assert!(sink.events().iter().any(|event| matches!(
        event,
        AgentEvent::ApprovalRequired { request } if request.contains("/srv/elsewhere/settings.toml")
    )));
    session.stop().await;
}

#[tokio::test]
async fn a_declined_approval_passes_the_persons_text_to_the_agent() {
    let fake = Fake::new("ask_file_change");
    let mut session = fake.start().await;
    let sink = Sink::answering(&[Some("no, keep that config in the repo")]);
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: false });
    assert_eq!(
        fake.answers(),
        [json!({"id": 0, "result": {"decision": "decline"}})]
    );
    let steer = &fake.received("turn/steer")[0];
    assert_eq!(steer["params"]["expectedTurnId"], "turn_1");
    assert!(
        steer["params"]["input"][0]["text"]
            .as_str()
            .unwrap()
            .contains("keep that config in the repo")
    );
    session.stop().await;
}

#[tokio::test]
async fn nobody_to_ask_declines_and_ends_the_turn_with_input_required() {
    let fake = Fake::new("ask_file_change");
    let mut session = fake.start().await;
    let sink = Sink::answering(&[None]);
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    let TurnResult::InputRequired { question } = result else {
        panic!("expected input required, got {result:?}");
    };
    assert!(
        question.contains("/srv/elsewhere/settings.toml"),
        "{question}"
    );
    assert_eq!(
        fake.answers(),
        [json!({"id": 0, "result": {"decision": "decline"}})]
    );
    assert_eq!(fake.received("turn/interrupt").len(), 1);
    session.stop().await;
}

#[tokio::test]
async fn user_input_requests_are_answered_by_a_person() {
    let fake = Fake::new("user_input");
    let mut session = fake.start().await;
    let sink = Sink::answering(&[Some("sqlite")]);
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    assert_eq!(result, TurnResult::Completed { finished: false });
    assert_eq!(
        sink.asked(),
        ["Which database should I use? (options: Postgres; SQLite)"]
    );
    assert_eq!(
        fake.answers(),
        [json!({"id": 7, "result": {"answers": {"db": {"answers": ["SQLite"]}}}})]
    );
    session.stop().await;
}

#[tokio::test]
async fn a_line_over_10_mb_fails_the_turn_with_a_protocol_error() {
    let fake = Fake::new("huge_line");
    let mut session = fake.start().await;
    let pgid = session.pid().expect("pid");
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    let TurnResult::Failed { error } = result else {
        panic!("expected a failure, got {result:?}");
    };
    assert!(error.starts_with("protocol_error:"), "{error}");
    assert!(error.contains("longer than 10485760 bytes"), "{error}");
    assert!(matches!(
        sink.events().last(),
        Some(AgentEvent::TurnFailed { turn: 1, .. })
    ));
    // A broken stream ends the app-server; a later turn fails at once with the same error.
    wait_until("the app-server group to end", || !group_alive(pgid)).await;
    let again = session
        .run_turn(turn(2, "x"), &Sink::default())
        .await
        .expect("turn");
    assert_eq!(again, TurnResult::Failed { error });
    session.stop().await;
}

#[tokio::test]
async fn the_app_server_exiting_mid_turn_fails_the_turn_with_its_status_and_stderr() {
    let fake = Fake::new("exit_mid_turn");
    let mut session = fake.start().await;
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    let TurnResult::Failed { error } = result else {
        panic!("expected a failure, got {result:?}");
    };
    assert!(error.starts_with("port_exit:"), "{error}");
    assert!(error.contains("exited with status 3"), "{error}");
    assert!(error.contains("panicked at model.rs:42"), "{error}");
    session.stop().await;
}

#[tokio::test]
async fn a_silent_turn_is_interrupted_then_the_process_group_is_killed() {
    let mut fake = Fake::new("silent");
    fake.settings.turn_timeout = Duration::from_secs(1);
    let mut session = fake.start().await;
    let pgid = session.pid().expect("pid");
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "x"), &sink).await.expect("turn");
    assert_eq!(
        result,
        TurnResult::Failed {
            error: "turn_timeout: no output from the app-server for 1000 ms".into()
        }
    );
    assert_eq!(
        fake.received("turn/interrupt").len(),
        1,
        "interrupted first"
    );
    wait_until("the killed process group to be gone", || !group_alive(pgid)).await;
    let child = fake
        .log()
        .iter()
        .find_map(|entry| entry["child"].as_u64())
        .expect("the fake's child pid") as u32;
    wait_until("the fake's child to die", || gone(child)).await;
    assert_eq!(session.pid(), None);
    session.stop().await;
}

#[tokio::test]
async fn dropping_a_session_mid_turn_kills_the_process_group() {
    let fake = Fake::new("silent");
    let mut session = fake.start().await;
    let pgid = session.pid().expect("pid");
    let sink = Sink::default();
    // The daemon's wall clock drops the turn, then the session.
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        session.run_turn(turn(1, "x"), &sink),
    )
    .await;
    assert!(dropped.is_err());
    drop(session);
    wait_until("the app-server group to end", || !group_alive(pgid)).await;
    let child = fake
        .log()
        .iter()
        .find_map(|entry| entry["child"].as_u64())
        .expect("the fake's child pid") as u32;
    wait_until("the fake's child to die", || gone(child)).await;
}

#[tokio::test]
async fn stop_after_a_dropped_turn_interrupts_it_and_kills_the_group() {
    let fake = Fake::new("silent");
    let mut session = fake.start().await;
    let pgid = session.pid().expect("pid");
    let sink = Sink::default();
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        session.run_turn(turn(1, "x"), &sink),
    )
    .await;
    assert!(dropped.is_err());
    session.stop().await;
    wait_until("the stopped process group to be gone", || {
        !group_alive(pgid)
    })
    .await;
    assert_eq!(fake.received("turn/interrupt").len(), 1);
}

#[tokio::test]
async fn a_session_without_model_access_is_refused() {
    let mut fake = Fake::new("normal");
    fake.context.model = None;
    let error = CodexBackend::new(fake.settings.clone(), super::unconfined())
        .start_session(fake.context.clone())
        .await
        .err()
        .expect("no session without a model endpoint");
    assert!(error.to_string().contains("needs model access"), "{error}");
}

#[tokio::test]
async fn an_app_server_that_dies_at_start_fails_the_session_with_its_stderr() {
    let fake = Fake::new("die_at_start");
    let error = fake.start_session_error().await;
    assert!(error.contains("exited with status 2"), "{error}");
    assert!(error.contains("config is broken"), "{error}");
}

#[tokio::test]
async fn a_missing_command_is_reported_as_codex_not_found() {
    let mut fake = Fake::new("normal");
    fake.settings.command = "takt-no-such-codex-binary app-server".into();
    let error = fake.start_session_error().await;
    assert!(error.contains("codex_not_found"), "{error}");
    assert!(error.contains("not found"), "{error}");
}

impl Fake {
    async fn start_session_error(&self) -> String {
        CodexBackend::new(self.settings.clone(), super::unconfined())
            .start_session(self.context.clone())
            .await
            .err()
            .expect("the session must not start")
            .to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The real Codex CLI, offline, against takt-mock-model.

/// Set in the environment of the test binary re-executed inside `unshare -n`.
const NETNS_FLAG: &str = "TAKT_CODEX_TEST_IN_NETNS";

/// The installed Codex CLI, or `None` (after saying so) when it is not installed outside CI.
fn codex_bin() -> Option<PathBuf> {
    let path = std::env::var_os("TAKT_CODEX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/npm/node_modules/.bin/codex")
        });
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "codex CLI not installed at {}: run .ci/install-agent-clis (or set TAKT_CODEX_BIN)",
            path.display()
        );
    }
    eprintln!("skipped: codex CLI not installed");
    None
}

/// Reads an HTTP request head (up to the blank line, at most 64 KiB).
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < 64 * 1024 && !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A TCP relay in front of the mock model that records the `Authorization` header of the first
/// request on every connection (the mock's own log keeps only its first 6 characters).
async fn recording_relay(upstream: std::net::SocketAddr) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("relay addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let head = read_head(&mut client).await;
                if let Some(auth) = head.lines().find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("authorization")
                        .then(|| value.trim().to_owned())
                }) {
                    record.lock().unwrap().push(auth);
                }
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                if server.write_all(head.as_bytes()).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (url, seen)
}

const PATCH: &str = "*** Begin Patch\n*** Add File: hello.txt\n+hello from mock\n*** End Patch\n";

/// One session and one turn of the real CLI; every assertion of the end-to-end test.
async fn run_real_codex(codex: &Path) {
    // Not under /tmp: Codex's sandbox helpers refuse a CODEX_HOME there (agent-protocols §0.6).
    let dir = tempfile::Builder::new()
        .prefix("codex-e2e-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir");
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).expect("workspace");
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&workspace)
        .status()
        .expect("git");
    assert!(git.success());

    let scenario = Scenario::new(
        "codex-e2e",
        vec![Step::apply_patch(PATCH), Step::text("DONE")],
    )
    .with_model("gpt-5.5");
    let mock = MockModel::start(MockConfig::with_scenarios(vec![scenario]))
        .await
        .expect("mock model");
    let (base_url, credentials) = recording_relay(mock.addr()).await;
    let refusing = RefusingProxy::start().await;
    let proxy = refusing.url.clone();

    let command = format!(
        "exec env HTTPS_PROXY={proxy} HTTP_PROXY={proxy} ALL_PROXY={proxy} https_proxy={proxy} http_proxy={proxy} all_proxy={proxy} NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost {} app-server",
        quote(&codex.to_string_lossy())
    );
    let settings = CodexSettings {
        command,
        model: Some("gpt-5.5".into()),
        // Generous: the first start of the CLI on a busy two-core machine is slow.
        read_timeout: Duration::from_secs(60),
        turn_timeout: Duration::from_secs(120),
        // As takt runs Codex inside its own sandbox (backends.rs): Codex's bubblewrap sandbox
        // cannot start its helper when CODEX_HOME is under /tmp (agent-protocols.md finding 6),
        // which is where a checkout in a temporary directory puts it.
        thread_sandbox: Some("danger-full-access".into()),
        turn_sandbox_policy: Some(json!({"type": "dangerFullAccess"})),
        ..CodexSettings::default()
    };
    let context = SessionContext {
        git_dir: None,
        host_tools: None,
        view: None,
        task_id: "id-e2e".into(),
        identifier: "TAKT-E2E".into(),
        run_id: "TAKT-E2E#1".into(),
        attempt: 1,
        workspace: workspace.clone(),
        run_dir: dir.path().join("run"),
        model: Some(ModelAccess {
            openai_base_url: base_url,
            anthropic_base_url: mock.base_url(),
            token: TOKEN.into(),
            model: None,
        }),
    };
    let mut session = CodexBackend::new(settings, super::unconfined())
        .start_session(context)
        .await
        .expect("codex app-server session");
    let pgid = session.pid().expect("pid");
    let sink = Sink::default();
    let result = tokio::time::timeout(
        Duration::from_secs(300),
        session.run_turn(turn(1, "Create hello.txt. [[scenario:codex-e2e]]"), &sink),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the real codex turn did not end within 300 s: {:?}",
            sink.events()
        )
    })
    .expect("turn");
    session.stop().await;
    wait_until("the codex process group to end", || !group_alive(pgid)).await;

    let events = sink.events();
    assert_eq!(
        result,
        TurnResult::Completed { finished: false },
        "{events:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("hello.txt")).expect("hello.txt"),
        "hello from mock\n"
    );
    assert_eq!(events[0], AgentEvent::TurnStarted { turn: 1 });
    assert!(
        matches!(&events[1], AgentEvent::SessionStarted { session_id } if session_id.contains('-')),
        "{events:#?}"
    );
    assert!(
        events.contains(&AgentEvent::FileChange {
            path: "hello.txt".into()
        }),
        "{events:#?}"
    );
    assert!(
        sink.messages().iter().any(|text| text == "DONE"),
        "{events:#?}"
    );
    let last_usage = sink.usages().last().copied().expect("token usage");
    assert!(
        last_usage.total_tokens > 0 && last_usage.input_tokens > 0,
        "{last_usage:?}"
    );
    assert_eq!(events.last(), Some(&AgentEvent::TurnCompleted { turn: 1 }));

    let requests: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|request| request.path.ends_with("/responses") && request.method == "POST")
        .collect();
    assert!(
        requests.len() >= 2,
        "a tool call and the final text: {requests:#?}"
    );
    for request in &requests {
        // The mock's log keeps only the credential's first characters.
        let logged = format!("Bearer {}…REDACTED", &TOKEN[..6]);
        assert_eq!(request.header("authorization"), Some(logged.as_str()));
        assert_eq!(request.body["model"], "gpt-5.5");
    }
    let credentials = credentials.lock().unwrap().clone();
    assert!(!credentials.is_empty());
    for credential in credentials {
        assert_eq!(
            credential,
            format!("Bearer {TOKEN}"),
            "the run token, nothing else"
        );
    }
    let hits = refusing.hits();
    assert!(
        hits.is_empty(),
        "codex tried to reach the outside: {hits:?}"
    );
    mock.shutdown().await.expect("mock shutdown");
}

#[tokio::test]
async fn real_codex_writes_a_file_through_the_mock_model_offline() {
    let Some(codex) = codex_bin() else { return };
    run_real_codex(&codex).await;
}

/// Re-runs the end-to-end test inside a fresh network namespace with only loopback, where
/// nothing but 127.0.0.1 can be reached at all.
#[tokio::test]
async fn real_codex_offline_inside_a_loopback_only_network_namespace() {
    let Some(_codex) = codex_bin() else { return };
    let probe = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up"])
        .output();
    if !matches!(&probe, Ok(output) if output.status.success()) {
        eprintln!(
            "skipped: `unshare -n` with `ip` is not available here; the refusing proxy of real_codex_writes_a_file_through_the_mock_model_offline is the guard"
        );
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let run = tokio::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args([
            "suite::codex::inner_real_codex_in_namespace",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(NETNS_FLAG, "1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the namespaced run did not end within 600 s")
        .expect("unshare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("inner: finished inside the network namespace"),
        "the inner test did not run: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// Does nothing unless re-executed by the test above inside `unshare -n`.
#[tokio::test]
async fn inner_real_codex_in_namespace() {
    if std::env::var_os(NETNS_FLAG).is_none() {
        return;
    }
    let codex = codex_bin().expect("codex CLI");
    let outside = std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([1, 1, 1, 1], 443)),
        Duration::from_secs(2),
    );
    assert!(outside.is_err(), "the namespace must not reach the outside");
    run_real_codex(&codex).await;
    eprintln!("inner: finished inside the network namespace");
}
