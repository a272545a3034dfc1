//! Scenario selection, step advance, error injection, broken streams, the request log, loading
//! scenario files, and the server's lifecycle.

use std::time::Duration;

use serde_json::{Value, json};
use takt_mock_model::{
    ErrorStep, LoggedRequest, MockConfig, MockError, MockModel, Scenario, Step, run,
};

use super::client::{End, get, post, request};
use super::start;

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "run"}}]"#;

/// A Chat request with `results` tool results.
fn chat(text: &str, results: usize) -> Value {
    let mut messages = vec![json!({"role": "user", "content": text})];
    for i in 0..results {
        messages.push(json!({"role": "assistant", "tool_calls": [{"id": format!("c{i}"), "type": "function", "function": {"name": "run", "arguments": "{}"}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("c{i}"), "content": "ok"}));
    }
    json!({"model": "m", "messages": messages, "tools": serde_json::from_str::<Value>(TOOLS).unwrap()})
}

/// What the model said: the tool name or the text.
fn said(body: &Value) -> String {
    let message = &body["choices"][0]["message"];
    match message["tool_calls"][0]["function"]["name"].as_str() {
        Some(name) => format!("tool:{name}"),
        None => message["content"].as_str().unwrap().to_owned(),
    }
}

async fn say(mock: &MockModel, body: &Value) -> String {
    said(
        &post(mock.addr(), "/v1/chat/completions", body)
            .await
            .json()
            .await,
    )
}

#[tokio::test]
async fn selection_by_marker_model_or_default() {
    let mock = start(vec![
        Scenario::new("a", vec![Step::text("from a")]),
        Scenario::new("b", vec![Step::text("from b")]).with_model("model-b"),
    ])
    .await;
    assert_eq!(say(&mock, &chat("no marker", 0)).await, "DONE");
    assert_eq!(say(&mock, &chat("[[scenario:default]]", 0)).await, "DONE");
    assert_eq!(
        say(&mock, &chat("please [[scenario:a]]", 0)).await,
        "from a"
    );
    let mut body = chat("no marker", 0);
    body["model"] = json!("model-b");
    assert_eq!(say(&mock, &body).await, "from b");
    // A marker in the system prompt wins over the model.
    body["messages"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"role": "system", "content": "[[scenario:a]]"}));
    assert_eq!(say(&mock, &body).await, "from a");

    let response = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat("[[scenario:nope]]", 0),
    )
    .await;
    assert_eq!(response.status, 400);
    let error = response.json().await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("unknown scenario `nope`"), "{message}");
    assert!(
        message.contains("add-test"),
        "lists the known names: {message}"
    );

    let log = mock.requests();
    let scenarios: Vec<Option<&str>> = log.iter().map(|r| r.scenario.as_deref()).collect();
    assert_eq!(
        scenarios,
        [
            Some("default"),
            Some("default"),
            Some("a"),
            Some("b"),
            Some("a"),
            None
        ]
    );
    mock.shutdown().await.unwrap();
}

/// The judge / reviewer case: the request quotes a task that carries the agent's marker.
#[tokio::test]
async fn a_claimed_model_outranks_quoted_markers_and_system_markers_outrank_it() {
    let verdict = r#"{"verdict": "veto", "summary": "out of scope", "findings": []}"#;
    let judge = Scenario::from_yaml(
        std::path::Path::new("judge-veto.yaml"),
        &format!("model: judge-veto\nsteps:\n  - text: '{verdict}'\n"),
    )
    .unwrap();
    let mock = start(vec![
        Scenario::new("agent", vec![Step::text("agent script")]),
        Scenario::new("qa-block", vec![Step::text("qa script")]),
        judge,
    ])
    .await;
    let quoted = "Task: fix it. [[scenario:agent]]";

    // Chat: the claimed model wins over the marker in the quoted task.
    let mut body = chat(quoted, 0);
    body["model"] = json!("judge-veto");
    assert_eq!(say(&mock, &body).await, verdict);
    // Without the claim the quoted marker still picks the agent's scenario.
    assert_eq!(say(&mock, &chat(quoted, 0)).await, "agent script");
    // A marker in the caller's own system text outranks the claimed model.
    body["messages"].as_array_mut().unwrap().insert(
        0,
        json!({"role": "system", "content": "mandate [[scenario:qa-block]]"}),
    );
    assert_eq!(say(&mock, &body).await, "qa script");

    // Responses, non-streaming: the scripted JSON text comes back as `output_text`.
    let responses = json!({"model": "judge-veto", "stream": false, "instructions": "judge",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": quoted}]}]});
    let answer = post(mock.addr(), "/v1/responses", &responses)
        .await
        .json()
        .await;
    assert_eq!(answer["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(answer["output"][0]["content"][0]["text"], verdict);
    let with_instructions_marker = json!({"model": "judge-veto", "stream": false,
        "instructions": "[[scenario:qa-block]]", "input": quoted});
    let answer = post(mock.addr(), "/v1/responses", &with_instructions_marker)
        .await
        .json()
        .await;
    assert_eq!(answer["output"][0]["content"][0]["text"], "qa script");

    // Messages, non-streaming: a `text` block; `system` as a string or as blocks.
    let messages = json!({"model": "judge-veto", "max_tokens": 100, "system": "judge",
        "messages": [{"role": "user", "content": quoted}]});
    let answer = post(mock.addr(), "/v1/messages", &messages)
        .await
        .json()
        .await;
    assert_eq!(answer["content"][0]["type"], "text");
    assert_eq!(answer["content"][0]["text"], verdict);
    let with_system_marker = json!({"model": "judge-veto", "max_tokens": 100,
        "system": [{"type": "text", "text": "[[scenario:qa-block]]"}],
        "messages": [{"role": "user", "content": quoted}]});
    let answer = post(mock.addr(), "/v1/messages", &with_system_marker)
        .await
        .json()
        .await;
    assert_eq!(answer["content"][0]["text"], "qa script");

    let log = mock.requests();
    let scenarios: Vec<Option<&str>> = log.iter().map(|r| r.scenario.as_deref()).collect();
    assert_eq!(
        scenarios,
        [
            Some("judge-veto"),
            Some("agent"),
            Some("qa-block"),
            Some("judge-veto"),
            Some("qa-block"),
            Some("judge-veto"),
            Some("qa-block"),
        ]
    );
    // Every body is recorded as sent.
    assert_eq!(log[3].body, responses);
    assert_eq!(log[5].body, messages);
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn steps_advance_by_tool_results_and_the_end_repeats() {
    let mock = start(vec![
        Scenario::new(
            "three",
            vec![
                Step::tool("run", json!({"command": "one"})),
                Step::tool("run", json!({"command": "two"})),
                Step::text("finished"),
            ],
        ),
        Scenario::new("tools-only", vec![Step::tool("run", json!({}))]),
    ])
    .await;
    let mut seen = Vec::new();
    for results in 0..5 {
        let body = post(
            mock.addr(),
            "/v1/chat/completions",
            &chat("[[scenario:three]]", results),
        )
        .await
        .json()
        .await;
        let args = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .map(|a| serde_json::from_str::<Value>(a).unwrap()["command"].clone());
        seen.push(args.map_or_else(|| said(&body), |c| c.as_str().unwrap().to_owned()));
    }
    assert_eq!(seen, ["one", "two", "finished", "finished", "finished"]);
    let steps: Vec<_> = mock.requests().iter().map(|r| r.step).collect();
    assert_eq!(steps, [Some(0), Some(1), Some(2), Some(2), Some(2)]);

    assert_eq!(
        say(&mock, &chat("[[scenario:tools-only]]", 0)).await,
        "tool:run"
    );
    assert_eq!(
        say(&mock, &chat("[[scenario:tools-only]]", 1)).await,
        "DONE"
    );
    assert_eq!(mock.requests().last().unwrap().step, Some(1));

    // A request that offers no tools never gets a tool call.
    let mut no_tools = chat("[[scenario:three]]", 0);
    no_tools.as_object_mut().unwrap().remove("tools");
    assert_eq!(say(&mock, &no_tools).await, "finished");
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn injected_errors_use_each_providers_shape() {
    let mock = start(vec![
        Scenario::new(
            "limited",
            vec![Step::Error(ErrorStep {
                status: 429,
                message: Some("slow down".to_owned()),
                retry_after_secs: Some(7),
                times: None,
            })],
        ),
        Scenario::new("broken", vec![Step::error(500, "boom")]),
    ])
    .await;

    let response = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat("[[scenario:limited]]", 0),
    )
    .await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(
        response.json().await,
        json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})
    );

    let responses_body = json!({"model": "gpt-5.5", "stream": true, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[scenario:broken]]"}]}]});
    let response = post(mock.addr(), "/v1/responses", &responses_body).await;
    assert_eq!(response.status, 500);
    assert_eq!(response.header("retry-after"), None);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json().await;
    assert_eq!(body["error"]["message"], "boom");
    assert_eq!(body["error"]["type"], "server_error");

    let messages_body = json!({"model": "claude", "stream": true, "max_tokens": 10,
        "messages": [{"role": "user", "content": "[[scenario:limited]]"}]});
    let response = post(mock.addr(), "/v1/messages?beta=true", &messages_body).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(
        response.json().await,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    );
    let response = post(
        mock.addr(),
        "/v1/messages",
        &json!({"model": "c", "messages": [{"role": "user", "content": "[[scenario:broken]]"}]}),
    )
    .await;
    assert_eq!(response.status, 500);
    assert_eq!(
        response.json().await,
        json!({"type": "error", "error": {"type": "api_error", "message": "boom"}})
    );
    let statuses: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 500, 429, 500]);
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_error_with_times_fires_then_steps_aside() {
    let yaml = "steps:\n  - error: {status: 503, times: 2}\n  - tool: {name: run, arguments: {command: ls}}\n  - text: done\n";
    let scenario = Scenario::from_yaml(std::path::Path::new("flaky.yaml"), yaml).unwrap();
    let mock = start(vec![scenario]).await;
    let first = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat("[[scenario:flaky]]", 0),
    )
    .await;
    assert_eq!(first.status, 503);
    let body = first.json().await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("injected")
    );
    let second = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat("[[scenario:flaky]]", 0),
    )
    .await;
    assert_eq!(second.status, 503);
    assert_eq!(say(&mock, &chat("[[scenario:flaky]]", 0)).await, "tool:run");
    assert_eq!(say(&mock, &chat("[[scenario:flaky]]", 1)).await, "done");
    let steps: Vec<_> = mock.requests().iter().map(|r| r.step).collect();
    assert_eq!(steps, [Some(0), Some(0), Some(1), Some(2)]);
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn cut_stream_drops_the_connection_before_the_final_event() {
    let mock = start(vec![Scenario::new("cut", vec![Step::CutStream(true)])]).await;
    let responses_body = json!({"model": "gpt-5.5", "stream": true, "tools": [{"type": "function", "name": "x"}], "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[scenario:cut]]"}]}]});
    let (events, end) = post(mock.addr(), "/v1/responses", &responses_body)
        .await
        .events()
        .await;
    assert_eq!(end, End::Cut);
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.output_item.added",
            "response.output_text.delta"
        ]
    );

    let messages_body = json!({"model": "c", "stream": true,
        "messages": [{"role": "user", "content": "[[scenario:cut]]"}]});
    let (events, end) = post(mock.addr(), "/v1/messages", &messages_body)
        .await
        .events()
        .await;
    assert_eq!(end, End::Cut);
    assert!(
        events
            .iter()
            .all(|e| e.event.as_deref() != Some("message_stop"))
    );
    assert_eq!(events[0].event.as_deref(), Some("message_start"));

    let mut chat_body = chat("[[scenario:cut]]", 0);
    chat_body["stream"] = json!(true);
    let (events, end) = post(mock.addr(), "/v1/chat/completions", &chat_body)
        .await
        .events()
        .await;
    assert_eq!(end, End::Cut);
    assert!(!events.is_empty() && events.iter().all(|e| e.data != "[DONE]"));

    // Non-streaming: a truncated JSON body.
    let mut response = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat("[[scenario:cut]]", 0),
    )
    .await;
    assert_eq!(response.status, 200);
    let (bytes, end) = response.body().await;
    assert_eq!(end, End::Cut);
    assert!(!bytes.is_empty());
    assert!(serde_json::from_slice::<Value>(&bytes).is_err());
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn stream_forever_trickles_until_the_client_leaves() {
    let mock = start(vec![Scenario::new("hang", vec![Step::StreamForever(true)])]).await;
    let body = json!({"model": "gpt-5.5", "stream": true, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[scenario:hang]]"}]}]});
    let mut response = post(mock.addr(), "/v1/responses", &body).await;
    assert_eq!(response.status, 200);
    let events = tokio::time::timeout(Duration::from_secs(10), response.next_events(8))
        .await
        .unwrap();
    assert!(events.len() >= 8);
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(
        names[..2],
        ["response.created", "response.output_item.added"]
    );
    assert!(names[2..].iter().all(|n| n == "response.output_text.delta"));
    drop(response);

    // Claude's flavour: pings and deltas, never message_stop.
    let body = json!({"model": "c", "stream": true, "messages": [{"role": "user", "content": "[[scenario:hang]]"}]});
    let mut response = post(mock.addr(), "/v1/messages", &body).await;
    let events = tokio::time::timeout(Duration::from_secs(10), response.next_events(7))
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.event.as_deref() == Some("ping")));
    assert!(
        events
            .iter()
            .all(|e| e.event.as_deref() != Some("message_stop"))
    );
    drop(response);

    // With the clients gone, shutdown is prompt.
    tokio::time::timeout(Duration::from_secs(3), mock.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_ends_an_open_forever_stream() {
    let mock = start(vec![Scenario::new("hang", vec![Step::StreamForever(true)])]).await;
    let mut body = chat("[[scenario:hang]]", 0);
    body["stream"] = json!(true);
    let mut response = post(mock.addr(), "/v1/chat/completions", &body).await;
    assert!(response.next_events(3).await.len() >= 3);
    tokio::time::timeout(Duration::from_secs(3), mock.shutdown())
        .await
        .unwrap()
        .unwrap();
    let (_, end) = tokio::time::timeout(Duration::from_secs(3), response.body())
        .await
        .unwrap();
    assert_eq!(end, End::Complete);
}

#[tokio::test]
async fn stream_forever_without_streaming_hangs_until_shutdown() {
    let mock = start(vec![Scenario::new("hang", vec![Step::StreamForever(true)])]).await;
    let mut response = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat("[[scenario:hang]]", 0),
    )
    .await;
    assert_eq!(response.status, 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), response.chunk())
            .await
            .is_err(),
        "no body while the server runs"
    );
    let log = mock.requests();
    assert_eq!(log.len(), 1, "logged before the answer ends");
    tokio::time::timeout(Duration::from_secs(3), mock.shutdown())
        .await
        .unwrap()
        .unwrap();
    let (bytes, end) = response.body().await;
    assert_eq!((bytes.len(), end), (0, End::Cut));
}

#[tokio::test]
async fn request_log_in_memory_and_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("requests.jsonl");
    let mock = MockModel::start(MockConfig {
        log_path: Some(log_path.clone()),
        ..MockConfig::with_scenarios(vec![Scenario::new("s", vec![Step::text("hi")])])
    })
    .await
    .unwrap();
    let body = json!({"model": "gpt-5.5", "stream": false, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "[[scenario:s]]"}]}]});
    let response = request(
        mock.addr(),
        "POST",
        "/v1/responses",
        &[
            ("Authorization", "Bearer sk-very-secret-key"),
            ("originator", "codex_exec"),
        ],
        Some(&body),
    )
    .await;
    assert_eq!(response.status, 200);
    response.json().await;
    let response = request(mock.addr(), "POST", "/v1/messages", &[], None).await;
    assert_eq!(response.status, 400, "an empty body is not JSON");
    assert_eq!(
        get(mock.addr(), "/healthz").await.json().await,
        json!({"status": "ok"})
    );

    let log = mock.requests();
    assert_eq!(log.len(), 3);
    let first = &log[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/responses");
    assert_eq!(
        first.header("authorization"),
        Some("Bearer sk-ver…REDACTED")
    );
    assert_eq!(first.header("originator"), Some("codex_exec"));
    assert_eq!(first.body, body);
    assert_eq!(first.api.as_deref(), Some("responses"));
    assert_eq!(first.scenario.as_deref(), Some("s"));
    assert_eq!((first.step, first.status), (Some(0), 200));
    assert!(first.ts_ms > 1_600_000_000_000);
    assert_eq!(log[1].status, 400);
    assert_eq!(log[1].body, Value::Null);
    assert_eq!(log[2].path, "/healthz");

    let text = fs_err::read_to_string(&log_path).unwrap();
    assert!(!text.contains("very-secret"));
    let lines: Vec<LoggedRequest> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, log);
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn scenario_directories_load_and_bad_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::write(
        dir.path().join("one.yaml"),
        "model: scripted-1\nsteps:\n  - text: \"cwd is {{cwd}}\"\n",
    )
    .unwrap();
    fs_err::write(
        dir.path().join("two.json"),
        r#"{"name": "second", "steps": [{"tool": {"name": "run", "arguments": {"command": "ls"}}}]}"#,
    )
    .unwrap();
    fs_err::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let loaded = Scenario::load_dir(dir.path()).unwrap();
    let names: Vec<_> = loaded.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["one", "second"]);

    let mock = MockModel::start(MockConfig::with_dir(dir.path()))
        .await
        .unwrap();
    assert!(mock.scenario_names().contains(&"second".to_owned()));
    let mut body = chat("working in workspace: /srv/ws-9 now", 0);
    body["model"] = json!("scripted-1");
    assert_eq!(say(&mock, &body).await, "cwd is /srv/ws-9");
    let models = get(mock.addr(), "/v1/models").await.json().await;
    let ids: Vec<_> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["mock-model", "scripted-1"]);
    assert_eq!(models["object"], "list");
    mock.shutdown().await.unwrap();

    // A broken file: the error names it and says what is wrong.
    fs_err::write(dir.path().join("three.yaml"), "steps:\n  - txet: oops\n").unwrap();
    let err = Scenario::load_dir(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MockError::Scenario { .. }));
    assert!(message.contains("three.yaml"), "{message}");
    assert!(message.contains("txet"), "{message}");
    let err = MockModel::start(MockConfig::with_dir(dir.path()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("three.yaml"), "{err}");

    fs_err::write(
        dir.path().join("three.yaml"),
        "name: second\nsteps: [{text: x}]\n",
    )
    .unwrap();
    let err = Scenario::load_dir(dir.path()).unwrap_err().to_string();
    assert!(err.contains("duplicate scenario name `second`"), "{err}");

    let err = Scenario::load_dir(&dir.path().join("missing"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
}

#[tokio::test]
async fn run_serves_a_given_listener_until_its_shutdown_future() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, MockConfig::default(), async move {
        let _ = stopped.await;
    }));
    let response = get(addr, "/healthz").await;
    assert_eq!(response.status, 200);
    response.json().await;
    assert_eq!(get(addr, "/nowhere").await.status, 404);
    assert_eq!(
        request(addr, "DELETE", "/v1/chat/completions", &[], None)
            .await
            .status,
        405
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
