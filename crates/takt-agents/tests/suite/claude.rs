//! Tests of the claude backend: robustness against a fake `claude` that misbehaves on command
//! (tests/fixtures/claude/fake_claude.py), and the real Claude Code end to end against
//! takt-mock-model with every outbound connection caught by a refusing proxy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{RefusingProxy, Sink};
use serde_json::{Value, json};
use takt_agents::claude::{ClaudeBackend, ClaudeSettings};
use takt_agents::process::group_alive;
use takt_core::ports::{
    AgentBackend, AgentError, AgentSession, ModelAccess, SessionContext, TurnInput, TurnResult,
};
use takt_protocol::{AgentEvent, OutputStream, TokenUsage};

const TOKEN: &str = "takt-run-7f3a9c1e5b";

/// The fake's reports of takt's answers to its permission requests.
fn decisions(sink: &Sink) -> Vec<String> {
    sink.messages()
        .into_iter()
        .filter_map(|m| m.strip_prefix("decision ").map(str::to_owned))
        .collect()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude/fake_claude.py")
}

fn fake(timeout: Duration) -> ClaudeSettings {
    ClaudeSettings {
        command: format!("python3 '{}'", fixture().display()),
        turn_timeout: timeout,
        ..ClaudeSettings::default()
    }
}

/// Bounded waits only: every fake turn answers at once, so 30 s of silence is a failure.
const PATIENT: Duration = Duration::from_secs(30);

fn context(dir: &tempfile::TempDir, base_url: &str) -> SessionContext {
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(&workspace).unwrap();
    SessionContext {
        git_dir: None,
        host_tools: None,
        view: None,
        task_id: "id-1".into(),
        identifier: "TAKT-1".into(),
        run_id: "TAKT-1#1".into(),
        attempt: 1,
        // Canonical, so paths Claude reports compare equal.
        workspace: workspace.canonicalize().unwrap(),
        run_dir: dir.path().join("run"),
        model: Some(ModelAccess {
            openai_base_url: format!("{base_url}/v1"),
            anthropic_base_url: base_url.into(),
            token: TOKEN.into(),
            model: None,
        }),
    }
}

async fn start(settings: ClaudeSettings, ctx: &SessionContext) -> Box<dyn AgentSession> {
    ClaudeBackend::new(settings, super::unconfined())
        .start_session(ctx.clone())
        .await
        .expect("session")
}

fn turn(n: u32, prompt: impl Into<String>) -> TurnInput {
    TurnInput {
        turn: n,
        prompt: prompt.into(),
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not reached within 10 s: {what}");
}

fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.contains(") Z "))
        .unwrap_or(true)
}

async fn stop_and_check(session: &mut Box<dyn AgentSession>, pgid: u32) {
    session.stop().await;
    assert_eq!(session.pid(), None);
    wait_until("the process group is gone", || !group_alive(pgid)).await;
}

fn completed(result: &TurnResult) -> bool {
    matches!(result, TurnResult::Completed { finished: false })
}

#[tokio::test]
async fn fake_launch_flags_environment_and_a_fresh_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let config_dir = ctx.run_dir.join("agent").join("claude-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("stale.json"), "{}").unwrap();
    assert!(
        std::env::var_os("CARGO_PKG_NAME").is_some(),
        "cargo sets it for tests"
    );
    let settings = ClaudeSettings {
        model: Some("claude-test-model".into()),
        allowed_tools: vec!["Read".into()],
        disallowed_tools: vec!["WebFetch".into()],
        denied_commands: vec!["git push".into()],
        remove_env: vec!["CARGO_PKG_NAME".into()],
        ..fake(PATIENT)
    };
    let mut session = start(settings, &ctx).await;
    let pgid = session.pid().expect("pid");
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "env"), &sink).await.unwrap();
    assert!(completed(&result), "{result:?}");
    let report: Value = serde_json::from_str(&sink.messages()[0]).unwrap();
    let argv: Vec<&str> = report["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        argv,
        [
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--permission-prompt-tool",
            "stdio",
            "--strict-mcp-config",
            "--permission-mode",
            "acceptEdits",
            "--model",
            "claude-test-model",
            "--allowedTools",
            "Read",
            "--disallowedTools",
            "WebFetch",
            "--disallowedTools",
            "Bash(git push:*)",
        ]
    );
    assert_eq!(report["cwd"], ctx.workspace.display().to_string());
    let env = &report["env"];
    assert_eq!(env["CLAUDE_CONFIG_DIR"], config_dir.display().to_string());
    assert_eq!(env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"], "1");
    assert_eq!(env["ANTHROPIC_BASE_URL"], "http://127.0.0.1:9");
    assert_eq!(env["ANTHROPIC_API_KEY"], TOKEN);
    assert_eq!(env["TAKT_RUN_ID"], "TAKT-1#1");
    assert_eq!(env["CARGO_PKG_NAME"], Value::Null, "removed");
    assert_eq!(
        env["CARGO_MANIFEST_DIR"],
        Value::Null,
        "only sandbox.env's allow-list is passed"
    );
    assert!(env["PATH"].is_string(), "PATH is on the allow-list");
    assert!(
        !config_dir.join("stale.json").exists(),
        "config dir is fresh"
    );
    let events = sink.events();
    assert_eq!(events[0], AgentEvent::TurnStarted { turn: 1 });
    assert!(events.contains(&AgentEvent::SessionStarted {
        session_id: "fake-session-1".into()
    }));
    assert_eq!(events.last(), Some(&AgentEvent::TurnCompleted { turn: 1 }));
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_permission_requests_are_answered_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let settings = ClaudeSettings {
        denied_commands: vec!["rm".into(), "git push".into()],
        ..fake(PATIENT)
    };
    let mut session = start(settings, &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let inside = ctx.workspace.join("inside.txt");
    let script = [
        r#"ask Write {"file_path": "/etc/takt-outside.txt", "content": "x"}"#.to_owned(),
        format!(
            r#"ask Write {{"file_path": "{}", "content": "x"}}"#,
            inside.display()
        ),
        r#"ask Read {"file_path": "../escape.txt"}"#.to_owned(),
        r#"ask Bash {"command": "cargo build && rm -rf target"}"#.to_owned(),
        r#"ask Bash {"command": "git push origin main"}"#.to_owned(),
        r#"ask Bash {"command": "cargo test"}"#.to_owned(),
        r#"ask-flagged /etc/hostname Bash {"command": "cat /etc/hostname"}"#.to_owned(),
        r#"ask Write {"file_path": ".git/hooks/pre-commit", "content": "x"}"#.to_owned(),
    ]
    .join("\n");
    let result = session.run_turn(turn(1, script), &sink).await.unwrap();
    assert!(completed(&result), "{result:?}");
    let decisions = decisions(&sink);
    assert_eq!(decisions.len(), 8, "{decisions:?}");
    let denied = |i: usize, why: &str| {
        assert!(
            decisions[i].starts_with("deny ") && decisions[i].contains(why),
            "decision {i}: {}",
            decisions[i]
        );
    };
    denied(0, "outside the workspace");
    assert!(decisions[1].starts_with("allow "), "{}", decisions[1]);
    assert!(
        decisions[1].contains(&inside.display().to_string()),
        "the input is passed back unchanged: {}",
        decisions[1]
    );
    denied(2, "outside the workspace");
    denied(3, "`rm`");
    denied(4, "`git push`");
    assert!(decisions[5].starts_with("allow "), "{}", decisions[5]);
    denied(6, "outside the workspace");
    denied(7, ".git");
    assert!(sink.asked().is_empty(), "policy decided everything itself");
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_undecidable_tools_are_asked_of_a_person_in_the_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::answering(&[Some("yes"), Some("no, use the vendored copy")]);
    let script = r#"ask WebFetch {"url": "https://docs.rs/tokio", "prompt": "read"}
ask mcp__tracker__comment {"text": "hello"}
say after"#;
    let result = session.run_turn(turn(1, script), &sink).await.unwrap();
    assert!(completed(&result), "{result:?}");
    let questions = sink.asked();
    assert_eq!(questions.len(), 2);
    assert!(
        questions[0].contains("`WebFetch`") && questions[0].contains("docs.rs/tokio"),
        "{}",
        questions[0]
    );
    assert!(questions[1].contains("mcp__tracker__comment"));
    let decisions = decisions(&sink);
    let allowed: Value =
        serde_json::from_str(decisions[0].strip_prefix("allow ").unwrap()).unwrap();
    assert_eq!(
        allowed,
        json!({"url": "https://docs.rs/tokio", "prompt": "read"})
    );
    assert_eq!(
        decisions[1],
        "deny A person refused this: no, use the vendored copy"
    );
    assert_eq!(sink.messages().last().map(String::as_str), Some("after"));
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_ask_user_question_carries_the_answer_back() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::answering(&[Some("SQLite")]);
    let script = r#"ask AskUserQuestion {"questions": [{"question": "Which database?", "header": "DB", "multiSelect": false, "options": [{"label": "Postgres", "description": "server"}, {"label": "SQLite", "description": "file"}]}]}"#;
    let result = session.run_turn(turn(1, script), &sink).await.unwrap();
    assert!(completed(&result), "{result:?}");
    assert_eq!(
        sink.asked(),
        ["Which database? Options: Postgres (server); SQLite (file)."]
    );
    let allowed: Value =
        serde_json::from_str(decisions(&sink)[0].strip_prefix("allow ").unwrap()).unwrap();
    assert_eq!(allowed["answers"], json!({"Which database?": "SQLite"}));
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_unanswered_question_denies_and_ends_the_turn_with_input_required() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::answering(&[None]);
    // The fake then waits for the interrupt takt sends, as Claude Code would keep working.
    let script = "ask WebFetch {\"url\": \"https://example.com\"}\nhang-interruptible";
    let result = session.run_turn(turn(1, script), &sink).await.unwrap();
    let TurnResult::InputRequired { question } = result else {
        panic!("{result:?}");
    };
    assert!(question.contains("`WebFetch`"), "{question}");
    assert!(
        decisions(&sink)[0].starts_with("deny Nobody can answer"),
        "{:?}",
        decisions(&sink)
    );
    assert!(
        sink.events()
            .iter()
            .any(|e| matches!(e, AgentEvent::InputRequired { .. }))
    );
    assert!(
        !sink
            .events()
            .iter()
            .any(|e| matches!(e, AgentEvent::TurnFailed { .. }))
    );
    // The interrupted session is still usable.
    assert_eq!(session.pid(), Some(pgid));
    let result = session.run_turn(turn(2, "turn"), &sink).await.unwrap();
    assert!(completed(&result), "{result:?}");
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_unanswered_question_kills_a_process_that_ignores_the_interrupt() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    // The timeout must leave the fake time to ask before silence counts: on a loaded machine
    // its start alone took over a second, the turn was interrupted as silent before the
    // question, and the test failed for the wrong reason.
    let mut session = start(fake(Duration::from_secs(3)), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::answering(&[None]);
    let script = "ask WebFetch {\"url\": \"https://example.com\"}\nhang";
    let result = session.run_turn(turn(1, script), &sink).await.unwrap();
    assert!(
        matches!(&result, TurnResult::InputRequired { question } if question.contains("`WebFetch`")),
        "{result:?}"
    );
    assert_eq!(session.pid(), None);
    wait_until("the process group is gone", || !group_alive(pgid)).await;
    session.stop().await;
}

#[tokio::test]
async fn fake_unknown_control_requests_get_an_error_response() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(turn(1, "control mcp_message"), &sink)
        .await
        .unwrap();
    assert!(completed(&result), "{result:?}");
    assert_eq!(
        sink.messages(),
        ["control-response error takt does not handle control requests of subtype `mcp_message`"]
    );
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_silent_process_is_killed_after_the_turn_timeout_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(Duration::from_millis(800)), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    // `hang` ignores the interrupt: takt must kill the group.
    let result = session.run_turn(turn(1, "hang"), &sink).await.unwrap();
    let TurnResult::Failed { error } = result else {
        panic!("{result:?}");
    };
    assert!(
        error.contains("timed out") && error.contains("interrupt unanswered"),
        "{error}"
    );
    assert!(sink.events().contains(&AgentEvent::TurnFailed {
        turn: 1,
        error: error.clone()
    }));
    let child: u32 = sink
        .messages()
        .iter()
        .find_map(|m| m.strip_prefix("child ").map(|pid| pid.parse().unwrap()))
        .expect("the fake reported its child");
    assert_eq!(session.pid(), None);
    wait_until("the process group is gone", || !group_alive(pgid)).await;
    wait_until("the sleeping child is gone", || gone(child)).await;
    let next = session.run_turn(turn(2, "say again"), &sink).await;
    assert!(
        matches!(&next, Err(AgentError::Protocol(m)) if m.contains("timed out")),
        "{next:?}"
    );
    session.stop().await;
}

#[tokio::test]
async fn fake_silent_turn_is_interrupted_when_claude_answers_the_interrupt() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(Duration::from_millis(800)), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(turn(1, "hang-interruptible"), &sink)
        .await
        .unwrap();
    let TurnResult::Failed { error } = result else {
        panic!("{result:?}");
    };
    assert!(error.contains("(interrupted)"), "{error}");
    wait_until("the process group is gone", || !group_alive(pgid)).await;
    session.stop().await;
}

#[tokio::test]
async fn fake_exit_mid_turn_fails_the_turn_with_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(turn(1, "say working\nexit 3"), &sink)
        .await
        .unwrap();
    let TurnResult::Failed { error } = result else {
        panic!("{result:?}");
    };
    assert!(error.contains("exited with status 3"), "{error}");
    assert!(error.contains("fatal: exiting with 3"), "{error}");
    assert!(
        error.contains("warming up"),
        "the tail has several lines: {error}"
    );
    assert_eq!(sink.messages(), ["working"]);
    assert!(matches!(
        sink.events().last(),
        Some(AgentEvent::TurnFailed { turn: 1, .. })
    ));
    let log = std::fs::read_to_string(ctx.run_dir.join("claude-stderr.log")).unwrap();
    assert!(log.contains("fatal: exiting with 3"), "{log}");
    assert_eq!(session.pid(), None);
    wait_until("the process group is gone", || !group_alive(pgid)).await;
    assert!(!ctx.run_dir.join("agent.pid").exists());
    let next = session.run_turn(turn(2, "say again"), &sink).await;
    assert!(matches!(next, Err(AgentError::Protocol(_))), "{next:?}");
}

#[tokio::test]
async fn fake_garbage_lines_are_journaled_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(turn(1, "garbage\nsay still here"), &sink)
        .await
        .unwrap();
    assert!(completed(&result), "{result:?}");
    let outputs: Vec<String> = sink
        .events()
        .into_iter()
        .filter_map(|e| match e {
            AgentEvent::Output {
                stream: OutputStream::Stdout,
                line,
            } => Some(line),
            _ => None,
        })
        .collect();
    assert_eq!(
        outputs,
        [
            "this is not json",
            "{\"type\": \"assistant\", broken",
            "[1, 2, 3]"
        ]
    );
    assert_eq!(sink.messages(), ["still here"]);
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_line_of_20_mb_is_a_protocol_error_and_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session.run_turn(turn(1, "huge 20"), &sink).await;
    // The reader keeps at most 10 MB of a line (crate::lines), so memory stays bounded.
    assert!(
        matches!(&result, Err(AgentError::Protocol(m)) if m.contains("longer than 10485760 bytes")),
        "{result:?}"
    );
    assert!(matches!(
        sink.events().last(),
        Some(AgentEvent::TurnFailed { turn: 1, .. })
    ));
    assert_eq!(session.pid(), None);
    wait_until("the process group is gone", || !group_alive(pgid)).await;
}

#[tokio::test]
async fn fake_usage_is_absolute_and_a_second_turn_reuses_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let first = session
        .run_turn(turn(1, "usage 100 20\npid\nturn"), &sink)
        .await
        .unwrap();
    assert!(completed(&first));
    let second = session
        .run_turn(turn(2, "usage 50 5\npid\nturn"), &sink)
        .await
        .unwrap();
    assert!(completed(&second));
    assert_eq!(
        sink.usages(),
        [
            TokenUsage {
                input_tokens: 100,
                output_tokens: 20,
                total_tokens: 120
            },
            TokenUsage {
                input_tokens: 150,
                output_tokens: 25,
                total_tokens: 175
            },
        ]
    );
    let messages = sink.messages();
    assert_eq!(messages[0], messages[2], "same process: {messages:?}");
    assert!(
        messages[0].ends_with(&format!(" pgid {pgid}")),
        "{messages:?}"
    );
    assert_eq!((&*messages[1], &*messages[3]), ("turn 1", "turn 2"));
    let session_started = sink
        .events()
        .iter()
        .filter(|e| matches!(e, AgentEvent::SessionStarted { .. }))
        .count();
    assert_eq!(session_started, 1);
    assert_eq!(session.pid(), Some(pgid));
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_error_result_fails_the_turn_and_still_reports_usage() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(
            turn(
                1,
                "no-model-usage\nusage 7 3\nfail API Error: 500 overloaded",
            ),
            &sink,
        )
        .await
        .unwrap();
    let TurnResult::Failed { error } = result else {
        panic!("{result:?}");
    };
    assert!(error.contains("API Error: 500 overloaded"), "{error}");
    assert_eq!(
        sink.usages(),
        [TokenUsage {
            input_tokens: 7,
            output_tokens: 3,
            total_tokens: 10
        }]
    );
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_tool_calls_and_file_changes_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let script = format!(
        "tool Write ok {{\"file_path\": \"{}/src/a.rs\", \"content\": \"x\"}}\ntool Bash fail {{\"command\": \"cargo test\"}}",
        ctx.workspace.display()
    );
    let result = session.run_turn(turn(1, script), &sink).await.unwrap();
    assert!(completed(&result));
    let tools: Vec<AgentEvent> = sink
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                AgentEvent::ToolCall { .. } | AgentEvent::FileChange { .. }
            )
        })
        .collect();
    assert_eq!(
        tools,
        [
            AgentEvent::ToolCall {
                name: "Write".into(),
                summary: "src/a.rs".into(),
                ok: true
            },
            AgentEvent::FileChange {
                path: "src/a.rs".into()
            },
            AgentEvent::ToolCall {
                name: "Bash".into(),
                summary: "cargo test: it failed".into(),
                ok: false
            },
        ]
    );
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_dropping_a_turn_kills_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Arc::new(Sink::default());
    let has_child = |sink: &Sink| sink.messages().iter().any(|m| m.starts_with("child "));
    {
        let turn_future = session.run_turn(turn(1, "pid\nhang"), sink.as_ref());
        tokio::select! {
            result = turn_future => panic!("the turn ended: {result:?}"),
            () = wait_until("the fake hangs", || has_child(&sink)) => {}
        }
    }
    // The fake and its child die with the dropped turn (the group leader, `sh`, stays a
    // zombie until the session reaps it).
    let messages = sink.messages();
    let pid = |prefix: &str| -> u32 {
        messages
            .iter()
            .find_map(|m| m.strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("reported")
            .parse()
            .unwrap()
    };
    let (fake_pid, child) = (pid("pid "), pid("child "));
    wait_until("the fake is gone", || gone(fake_pid)).await;
    wait_until("its child is gone", || gone(child)).await;
    stop_and_check(&mut session, pgid).await;
}

#[tokio::test]
async fn fake_stop_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, "http://127.0.0.1:9");
    let mut session = start(fake(PATIENT), &ctx).await;
    let pgid = session.pid().unwrap();
    assert!(ctx.run_dir.join("agent.pid").exists());
    let sink = Sink::default();
    assert!(completed(
        &session.run_turn(turn(1, "say hi"), &sink).await.unwrap()
    ));
    stop_and_check(&mut session, pgid).await;
    assert!(!ctx.run_dir.join("agent.pid").exists());
    let next = session.run_turn(turn(2, "say again"), &sink).await;
    assert!(
        matches!(&next, Err(AgentError::Protocol(m)) if m.contains("stopped")),
        "{next:?}"
    );
    // Stopping twice is harmless.
    session.stop().await;
}

#[tokio::test]
async fn start_session_needs_model_access_and_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(&dir, "http://127.0.0.1:9");
    ctx.model = None;
    let error = ClaudeBackend::new(fake(PATIENT), super::unconfined())
        .start_session(ctx.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&error, AgentError::Spawn(m) if m.contains("needs model access")),
        "{error}"
    );
    let ctx = context(&dir, "http://127.0.0.1:9");
    let settings = ClaudeSettings {
        command: " ".into(),
        ..fake(PATIENT)
    };
    let error = ClaudeBackend::new(settings, super::unconfined())
        .start_session(ctx)
        .await
        .err()
        .expect("refused");
    assert!(matches!(&error, AgentError::Spawn(m) if m.contains("claude.command is empty")));
    assert_eq!(
        ClaudeBackend::new(fake(PATIENT), super::unconfined()).name(),
        "claude"
    );
}

#[tokio::test]
async fn bypass_permissions_as_root_is_refused_up_front() {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root || std::env::var_os("IS_SANDBOX").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let settings = ClaudeSettings {
        permission_mode: "bypassPermissions".into(),
        ..fake(PATIENT)
    };
    let error = ClaudeBackend::new(settings, super::unconfined())
        .start_session(context(&dir, "http://127.0.0.1:9"))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("root"), "{error}");
}

// --- The real Claude Code -------------------------------------------------------------------

/// The installed CLI, or `None` (skip) outside CI.
fn claude_bin() -> Option<PathBuf> {
    let path = std::env::var_os("TAKT_CLAUDE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/npm/node_modules/.bin/claude")
        });
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the claude CLI is not installed at {}: run .ci/install-agent-clis (or set TAKT_CLAUDE_BIN)",
        path.display()
    );
    println!("skipped: claude CLI not installed");
    None
}

fn git_init(workspace: &Path) {
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(workspace)
        .status()
        .expect("git");
    assert!(git.success());
}

/// Claude Code with every outbound connection sent to the refusing proxy; the mock on
/// loopback is reached directly.
fn real_settings(bin: &Path, proxy: &RefusingProxy, turn_timeout: Duration) -> ClaudeSettings {
    let p = &proxy.url;
    ClaudeSettings {
        command: format!(
            "HTTPS_PROXY={p} HTTP_PROXY={p} ALL_PROXY={p} https_proxy={p} http_proxy={p} all_proxy={p} \
             NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost CLAUDE_CODE_MAX_RETRIES=1 '{}'",
            bin.display()
        ),
        turn_timeout,
        ..ClaudeSettings::default()
    }
}

#[tokio::test]
async fn real_claude_code_writes_a_file_through_the_mock_model_with_no_outbound_traffic() {
    use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
    let Some(bin) = claude_bin() else { return };
    let mock = MockModel::start(MockConfig::with_scenarios(vec![Scenario::new(
        "claude-write",
        vec![
            Step::tool(
                "Write",
                json!({"file_path": "{{cwd}}/hello.txt", "content": "hi\n"}),
            ),
            Step::text("DONE"),
        ],
    )]))
    .await
    .expect("mock model");
    let proxy = RefusingProxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, &mock.base_url());
    git_init(&ctx.workspace);
    let settings = ClaudeSettings {
        denied_commands: vec!["git push".into()],
        ..real_settings(&bin, &proxy, Duration::from_secs(120))
    };
    let mut session = start(settings, &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(
            turn(
                1,
                "Create hello.txt containing hi. [[scenario:claude-write]]",
            ),
            &sink,
        )
        .await
        .expect("turn 1");
    assert!(
        completed(&result),
        "{result:?}; events: {:?}",
        sink.events()
    );
    assert_eq!(
        std::fs::read_to_string(ctx.workspace.join("hello.txt")).unwrap(),
        "hi\n"
    );
    let events = sink.events();
    assert!(
        events.iter().any(
            |e| matches!(e, AgentEvent::SessionStarted { session_id } if !session_id.is_empty())
        ),
        "{events:?}"
    );
    assert!(events.contains(&AgentEvent::ToolCall {
        name: "Write".into(),
        summary: "hello.txt".into(),
        ok: true
    }));
    assert!(events.contains(&AgentEvent::FileChange {
        path: "hello.txt".into()
    }));
    assert!(sink.messages().contains(&"DONE".to_owned()), "{events:?}");
    assert_eq!(events.last(), Some(&AgentEvent::TurnCompleted { turn: 1 }));
    let first = *sink.usages().last().expect("token usage");
    assert!(
        first.input_tokens > 0 && first.output_tokens > 0,
        "{first:?}"
    );
    assert_eq!(first.total_tokens, first.input_tokens + first.output_tokens);

    // A continuation on the same process and session.
    let result = session
        .run_turn(turn(2, "Continue: check your work, then stop."), &sink)
        .await
        .expect("turn 2");
    assert!(
        completed(&result),
        "{result:?}; events: {:?}",
        sink.events()
    );
    assert_eq!(session.pid(), Some(pgid));
    assert_eq!(
        sink.events().last(),
        Some(&AgentEvent::TurnCompleted { turn: 2 })
    );
    let second = *sink.usages().last().unwrap();
    assert!(
        second.total_tokens > first.total_tokens,
        "absolute totals grow: {first:?} → {second:?}"
    );
    let session_ids: Vec<_> = sink
        .events()
        .into_iter()
        .filter(|e| matches!(e, AgentEvent::SessionStarted { .. }))
        .collect();
    assert_eq!(session_ids.len(), 1, "one session: {session_ids:?}");

    let requests = mock.requests();
    let messages: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/messages"))
        .collect();
    assert!(
        messages.len() >= 3,
        "two tool rounds and a continuation: {}",
        messages.len()
    );
    for request in &messages {
        let key = request.header("x-api-key").unwrap_or("");
        let bearer = request.header("authorization").unwrap_or("");
        assert!(
            key.starts_with(&TOKEN[..6]) || bearer.starts_with(&format!("Bearer {}", &TOKEN[..6])),
            "the run token is presented: {:?}",
            request.headers
        );
    }
    assert!(
        messages
            .iter()
            .any(|r| r.scenario.as_deref() == Some("claude-write")),
        "the scenario answered"
    );
    stop_and_check(&mut session, pgid).await;
    assert_eq!(proxy.hits(), Vec::<String>::new(), "no outbound attempts");
    mock.shutdown().await.unwrap();
}

/// The interrupt control request, against the real CLI: a model reply that never ends leaves
/// Claude silent; takt interrupts the turn (Claude ends it with an error result), then kills
/// the group.
#[tokio::test]
async fn real_claude_code_silent_turn_is_interrupted_then_killed() {
    use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
    let Some(bin) = claude_bin() else { return };
    let mock = MockModel::start(MockConfig::with_scenarios(vec![Scenario::new(
        "claude-hang",
        vec![Step::StreamForever(true)],
    )]))
    .await
    .expect("mock model");
    let proxy = RefusingProxy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(&dir, &mock.base_url());
    git_init(&ctx.workspace);
    let mut session = start(real_settings(&bin, &proxy, Duration::from_secs(8)), &ctx).await;
    let pgid = session.pid().unwrap();
    let sink = Sink::default();
    let result = session
        .run_turn(turn(1, "Say something. [[scenario:claude-hang]]"), &sink)
        .await
        .expect("turn");
    let TurnResult::Failed { error } = result else {
        panic!("{result:?}; events: {:?}", sink.events());
    };
    assert!(
        error.contains("timed out") && error.contains("(interrupted)"),
        "Claude answers the interrupt with the end of the turn: {error}"
    );
    assert_eq!(session.pid(), None);
    wait_until("the process group is gone", || !group_alive(pgid)).await;
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.scenario.as_deref() == Some("claude-hang")),
        "the model was asked"
    );
    assert_eq!(proxy.hits(), Vec::<String>::new(), "no outbound attempts");
    session.stop().await;
    mock.shutdown().await.unwrap();
}
