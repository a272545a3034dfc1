//! Anthropic Messages: the shapes Claude Code accepts (agent-protocols.md §3.4).

use serde_json::{Value, json};
use takt_mock_model::{Scenario, Step};

use super::client::{End, Event, post, request};
use super::start;

fn claude_body(marker: &str, extra: Vec<Value>, stream: bool) -> Value {
    let mut messages = vec![
        json!({"role": "user", "content": [{"type": "text", "text": format!("create hello.txt {marker}")}]}),
    ];
    messages.extend(extra);
    json!({
        "model": "claude-opus-5-5", "max_tokens": 128000, "stream": stream,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330"},
            {"type": "text", "text": "You are Claude Code.\n<env>\nPrimary working directory: /work/ws-1\n</env>",
             "cache_control": {"type": "ephemeral"}},
        ],
        "messages": messages,
        "tools": [{"name": "Write", "description": "write", "input_schema": {"type": "object"}}],
    })
}

fn tool_result(id: &Value) -> Vec<Value> {
    vec![
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "Write", "input": {}}]}),
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id,
               "content": "File created successfully", "cache_control": {"type": "ephemeral"}}]}),
        json!({"role": "system", "content": "a mid-conversation system message"}),
    ]
}

fn names(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|e| {
            e.event
                .as_deref()
                .expect("every Messages event has an event: line")
        })
        .collect()
}

#[tokio::test]
async fn streaming_tool_use_then_final_text() {
    let mock = start(vec![Scenario::new(
        "write",
        vec![
            Step::tool(
                "Write",
                json!({"file_path": "{{cwd}}/hello.txt", "content": "hi\n"}),
            ),
            Step::text("DONE writing"),
        ],
    )])
    .await;
    let response = request(
        mock.addr(),
        "POST",
        "/v1/messages?beta=true",
        &[
            ("x-api-key", "sk-ant-secret"),
            ("anthropic-version", "2023-06-01"),
        ],
        Some(&claude_body("[[scenario:write]]", vec![], true)),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let (events, end) = response.events().await;
    assert_eq!(end, End::Complete);
    let names = names(&events);
    let deltas = names.len() - 5;
    assert!(
        deltas >= 2,
        "input JSON arrives in several pieces: {names:?}"
    );
    let mut expected = vec!["message_start", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for e in &events {
        assert_eq!(e.json()["type"], e.event.as_deref().unwrap());
    }

    let start = events[0].json()["message"].clone();
    assert_eq!(start["type"], "message");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "claude-opus-5-5");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert!(start["id"].as_str().unwrap().starts_with("msg_"));
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(start["usage"]["output_tokens"].is_u64());

    let block = events[1].json();
    assert_eq!(block["index"], 0);
    assert_eq!(block["content_block"]["type"], "tool_use");
    assert_eq!(block["content_block"]["name"], "Write");
    assert_eq!(block["content_block"]["input"], json!({}));
    let id = block["content_block"]["id"].clone();
    assert!(id.as_str().unwrap().starts_with("toolu_"));

    let partial: String = events[2..2 + deltas]
        .iter()
        .map(|e| {
            let d = e.json();
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        json!({"file_path": "/work/ws-1/hello.txt", "content": "hi\n"}),
        "{{{{cwd}}}} comes from Claude's `Primary working directory`"
    );
    assert_eq!(
        events[2 + deltas].json(),
        json!({"type": "content_block_stop", "index": 0})
    );
    let delta = events[3 + deltas].json();
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(events[4 + deltas].json(), json!({"type": "message_stop"}));

    // The tool result comes back in a user message: final text.
    let (events, _) = post(
        mock.addr(),
        "/v1/messages?beta=true",
        &claude_body("[[scenario:write]]", tool_result(&id), true),
    )
    .await
    .events()
    .await;
    let block = events[1].json();
    assert_eq!(block["content_block"], json!({"type": "text", "text": ""}));
    let text: String = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "DONE writing");
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");

    let log = mock.requests();
    assert_eq!(log[0].path, "/v1/messages");
    assert_eq!(log[0].query.as_deref(), Some("beta=true"));
    assert_eq!(log[0].header("x-api-key"), Some("sk-ant…REDACTED"));
    assert_eq!(log[1].tool_results, Some(1));
    assert_eq!(log[1].step, Some(1));
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn non_streaming_message() {
    let mock = start(vec![Scenario::new(
        "bash",
        vec![
            Step::tool("Bash", json!({"command": "ls", "description": "list"})),
            Step::text("listed"),
        ],
    )])
    .await;
    let body = post(
        mock.addr(),
        "/v1/messages",
        &claude_body("[[scenario:bash]]", vec![], false),
    )
    .await
    .json()
    .await;
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["stop_sequence"], Value::Null);
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "Bash");
    assert_eq!(
        block["input"],
        json!({"command": "ls", "description": "list"})
    );
    assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 0);

    let body = post(
        mock.addr(),
        "/messages",
        &claude_body("[[scenario:bash]]", tool_result(&block["id"]), false),
    )
    .await
    .json()
    .await;
    assert_eq!(body["content"], json!([{"type": "text", "text": "listed"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn apply_patch_is_a_tool_use_and_usage_can_be_scripted() {
    let patch = "*** Begin Patch\n*** End Patch\n";
    let scenario = Scenario::new("patch", vec![Step::apply_patch(patch)]).with_usage(
        takt_mock_model::UsageSpec {
            input_tokens: Some(1234),
            output_tokens: Some(56),
            cached_tokens: Some(1000),
            cache_creation_input_tokens: Some(7),
            ..Default::default()
        },
    );
    let mock = start(vec![scenario]).await;
    let body = post(
        mock.addr(),
        "/v1/messages",
        &claude_body("[[scenario:patch]]", vec![], false),
    )
    .await
    .json()
    .await;
    assert_eq!(body["content"][0]["name"], "apply_patch");
    assert_eq!(body["content"][0]["input"], json!({"patch": patch}));
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 1234, "output_tokens": 56,
               "cache_creation_input_tokens": 7, "cache_read_input_tokens": 1000})
    );
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn count_tokens_estimates_from_the_request() {
    let mock = start(vec![]).await;
    let request = claude_body("", vec![], false);
    let expected = (request.to_string().len() / 4) as u64;
    let body = post(mock.addr(), "/v1/messages/count_tokens?beta=true", &request)
        .await
        .json()
        .await;
    assert_eq!(body, json!({"input_tokens": expected}));
    mock.shutdown().await.unwrap();
}
