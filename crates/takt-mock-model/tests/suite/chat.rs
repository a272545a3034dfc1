//! OpenAI Chat Completions: takt's own loop (agent-protocols.md §4).

use serde_json::{Value, json};
use takt_mock_model::{Scenario, Step};

use super::client::{End, post};
use super::start;

fn chat_body(marker: &str, extra: Vec<Value>, stream: bool, include_usage: bool) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are takt's agent."}),
        json!({"role": "user", "content": format!("Add a test. {marker}")}),
    ];
    messages.extend(extra);
    let mut body = json!({
        "model": "gpt-test", "stream": stream, "messages": messages,
        "tools": [{"type": "function", "function": {"name": "write_file", "description": "write", "parameters": {"type": "object"}}}],
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn parse_chunks(events: &[super::client::Event]) -> (Vec<Value>, bool) {
    assert!(
        events.iter().all(|e| e.event.is_none()),
        "chat SSE has no event: lines"
    );
    let done = events.last().map(|e| e.data.as_str()) == Some("[DONE]");
    let chunks = events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .collect();
    (chunks, done)
}

fn tool_turn(call_id: &Value) -> Vec<Value> {
    vec![
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": call_id, "type": "function",
               "function": {"name": "write_file", "arguments": "{}"}}]}),
        json!({"role": "tool", "tool_call_id": call_id, "content": "wrote 42 bytes"}),
    ]
}

#[tokio::test]
async fn streaming_tool_call_then_text_with_usage_chunk() {
    let mock = start(vec![Scenario::new(
        "write",
        vec![
            Step::tool(
                "write_file",
                json!({"path": "tests/a.rs", "content": "#[test]\nfn a() {}\n"}),
            ),
            Step::text("Wrote the test."),
        ],
    )])
    .await;
    let response = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat_body("[[scenario:write]]", vec![], true, true),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let (events, end) = response.events().await;
    assert_eq!(end, End::Complete);
    let (chunks, done) = parse_chunks(&events);
    assert!(done, "ends with data: [DONE]");
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "gpt-test");
        assert_eq!(c["id"], chunks[0]["id"]);
    }
    let first = &chunks[0]["choices"][0];
    assert_eq!(first["delta"]["role"], "assistant");
    let call = &first["delta"]["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "write_file");
    let call_id = call["id"].clone();
    assert!(call_id.as_str().unwrap().starts_with("call_"));

    // Usage chunk: no choices; before it, the finish chunk.
    let usage_chunk = chunks.last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    let usage = &usage_chunk["usage"];
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 0 && c > 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), p + c);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
    assert_eq!(finish["delta"], json!({}));

    let pieces: Vec<&str> = chunks[1..chunks.len() - 2]
        .iter()
        .map(|c| {
            let tc = &c["choices"][0]["delta"]["tool_calls"][0];
            assert_eq!(tc["index"], 0);
            assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
            tc["function"]["arguments"].as_str().unwrap()
        })
        .collect();
    assert!(pieces.len() >= 2, "arguments are split across chunks");
    let args: Value = serde_json::from_str(&pieces.concat()).unwrap();
    assert_eq!(
        args,
        json!({"path": "tests/a.rs", "content": "#[test]\nfn a() {}\n"})
    );

    // With the tool result: the final text, finish_reason stop; no usage chunk this time.
    let (events, _) = post(
        mock.addr(),
        "/chat/completions",
        &chat_body("[[scenario:write]]", tool_turn(&call_id), true, false),
    )
    .await
    .events()
    .await;
    let (chunks, done) = parse_chunks(&events);
    assert!(done);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Wrote the test.");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn non_streaming_tool_call_then_text() {
    let mock = start(vec![Scenario::new(
        "write",
        vec![
            Step::tool("write_file", json!({"path": "a", "content": "b"})),
            Step::text("ok"),
        ],
    )])
    .await;
    let body = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat_body("[[scenario:write]]", vec![], false, false),
    )
    .await
    .json()
    .await;
    assert_eq!(body["object"], "chat.completion");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "write_file");
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"path": "a", "content": "b"})
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let body = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat_body("[[scenario:write]]", tool_turn(&call["id"]), false, false),
    )
    .await
    .json()
    .await;
    assert_eq!(body["choices"][0]["message"]["content"], "ok");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn apply_patch_becomes_a_function_call_and_builtins_use_agent_tools() {
    let patch = "*** Begin Patch\n*** Add File: x\n+y\n*** End Patch\n";
    let mock = start(vec![Scenario::new("patch", vec![Step::apply_patch(patch)])]).await;
    let body = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat_body("[[scenario:patch]]", vec![], false, false),
    )
    .await
    .json()
    .await;
    let function = &body["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(function["name"], "apply_patch");
    assert_eq!(
        serde_json::from_str::<Value>(function["arguments"].as_str().unwrap()).unwrap(),
        json!({"patch": patch})
    );

    // The demo's built-in scenario: write_file, then finish, then DONE.
    let mut history = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..3 {
        let body = post(
            mock.addr(),
            "/v1/chat/completions",
            &chat_body("[[scenario:add-test]]", history.clone(), false, false),
        )
        .await
        .json()
        .await;
        let message = &body["choices"][0]["message"];
        match message["tool_calls"][0]["function"]["name"].as_str() {
            Some(name) => {
                calls.push(name.to_owned());
                history.extend(tool_turn(&message["tool_calls"][0]["id"]));
            }
            None => calls.push(message["content"].as_str().unwrap().to_owned()),
        }
    }
    assert_eq!(calls, ["write_file", "finish", "DONE"]);
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_scenario_can_omit_usage_streamed_or_not() {
    let quiet = Scenario::new("quiet", vec![Step::text("no figures")]).with_usage(
        takt_mock_model::UsageSpec {
            omit: true,
            ..Default::default()
        },
    );
    let mock = start(vec![quiet]).await;
    let (events, end) = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat_body("[[scenario:quiet]]", vec![], true, true),
    )
    .await
    .events()
    .await;
    assert_eq!(end, End::Complete);
    let (chunks, done) = parse_chunks(&events);
    assert!(done);
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "{chunks:?}"
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "no figures");
    let body = post(
        mock.addr(),
        "/v1/chat/completions",
        &chat_body("[[scenario:quiet]]", vec![], false, false),
    )
    .await
    .json()
    .await;
    assert!(body.get("usage").is_none(), "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "no figures");
}
