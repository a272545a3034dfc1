//! OpenAI Responses: the shapes Codex accepts (agent-protocols.md §3.3).

use serde_json::{Value, json};
use takt_mock_model::{Scenario, Step, ToolStep};

use super::client::{End, Event, get, post, request};
use super::start;

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_deref().unwrap()).collect()
}

fn codex_body(marker: &str, extra_input: Vec<Value>, stream: bool) -> Value {
    let mut input = vec![
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text",
               "text": "<environment_context>\n  <cwd>/tmp/ws</cwd>\n</environment_context>"}]}),
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("create hello.txt {marker}")}]}),
    ];
    input.extend(extra_input);
    json!({
        "model": "gpt-5.5", "stream": stream, "input": input,
        "tools": [{"type": "function", "name": "exec_command", "strict": false, "parameters": {}},
                  {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}}],
        "tool_choice": "auto", "store": false,
    })
}

fn assert_usage(usage: &Value) {
    let input = usage["input_tokens"].as_u64().unwrap();
    let output = usage["output_tokens"].as_u64().unwrap();
    assert!(input > 0 && output > 0, "{usage}");
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), input + output);
}

#[tokio::test]
async fn streaming_function_call_then_final_text() {
    let mock = start(vec![Scenario::new(
        "shell",
        vec![
            Step::tool("exec_command", json!({"cmd": "echo hi > hello.txt"})),
            Step::text("all done here"),
        ],
    )])
    .await;

    let response = post(
        mock.addr(),
        "/v1/responses",
        &codex_body("[[scenario:shell]]", vec![], true),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let (events, end) = response.events().await;
    assert_eq!(end, End::Complete);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.output_item.added",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for e in &events {
        assert_eq!(e.json()["type"], e.event.as_deref().unwrap());
    }
    let created = events[0].json();
    assert_eq!(created["response"]["status"], "in_progress");
    assert_eq!(created["response"]["object"], "response");
    assert_eq!(created["response"]["output"], json!([]));
    let added = events[1].json();
    assert_eq!(added["output_index"], 0);
    assert_eq!(added["item"]["status"], "in_progress");
    let item = events[2].json()["item"].clone();
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["status"], "completed");
    assert_eq!(item["name"], "exec_command");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert!(item["id"].as_str().unwrap().starts_with("fc_"));
    let args: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"cmd": "echo hi > hello.txt"}));
    let completed = events[3].json();
    assert_eq!(completed["response"]["status"], "completed");
    assert_eq!(completed["response"]["id"], created["response"]["id"]);
    assert_eq!(completed["response"]["output"], json!([item]));
    assert_usage(&completed["response"]["usage"]);

    // Codex resends the history with the tool output: the next step is the final text.
    let call_id = item["call_id"].clone();
    let history = vec![
        item.clone(),
        json!({"type": "function_call_output", "call_id": call_id, "output": "Process exited with code 0"}),
    ];
    let (events, end) = post(
        mock.addr(),
        "/v1/responses",
        &codex_body("[[scenario:shell]]", history, true),
    )
    .await
    .events()
    .await;
    assert_eq!(end, End::Complete);
    let names = names(&events);
    assert_eq!(
        names[..2],
        ["response.created", "response.output_item.added"]
    );
    assert_eq!(
        names[names.len() - 2..],
        ["response.output_item.done", "response.completed"]
    );
    let deltas: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("response.output_text.delta"))
        .map(Event::json)
        .collect();
    assert!(deltas.len() >= 2, "text arrives in several deltas");
    assert_eq!(deltas.len(), names.len() - 4);
    let text: String = deltas
        .iter()
        .map(|d| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "all done here");
    let added = events[1].json()["item"].clone();
    assert_eq!(added["type"], "message");
    assert_eq!(added["content"], json!([]));
    for d in &deltas {
        assert_eq!(d["item_id"], added["id"]);
        assert_eq!(d["output_index"], 0);
        assert_eq!(d["content_index"], 0);
    }
    let done = events[events.len() - 2].json()["item"].clone();
    assert_eq!(
        done,
        json!({"type": "message", "role": "assistant", "id": added["id"], "status": "completed",
               "content": [{"type": "output_text", "text": "all done here", "annotations": []}]})
    );
    assert_usage(&events.last().unwrap().json()["response"]["usage"]);

    let log = mock.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].step,
            log[0].tool_results,
            log[1].step,
            log[1].tool_results
        ),
        (Some(0), Some(0), Some(1), Some(1))
    );
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn apply_patch_is_a_freeform_custom_tool_call() {
    let patch = "*** Begin Patch\n*** Add File: hello.txt\n+hello from mock\n*** End Patch\n";
    let mock = start(vec![Scenario::new(
        "patch",
        vec![Step::apply_patch(patch), Step::text("patched")],
    )])
    .await;
    let (events, _) = post(
        mock.addr(),
        "/responses",
        &codex_body("[[scenario:patch]]", vec![], true),
    )
    .await
    .events()
    .await;
    let item = events[2].json()["item"].clone();
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["name"], "apply_patch");
    assert_eq!(item["input"], patch);
    assert!(item["id"].as_str().unwrap().starts_with("ctc_"));
    assert_eq!(item["status"], "completed");

    let history = vec![
        item.clone(),
        json!({"type": "custom_tool_call_output", "call_id": item["call_id"], "output": "Success."}),
    ];
    let (events, _) = post(
        mock.addr(),
        "/responses",
        &codex_body("[[scenario:patch]]", history, true),
    )
    .await
    .events()
    .await;
    let done = events[events.len() - 2].json();
    assert_eq!(done["item"]["content"][0]["text"], "patched");
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn mcp_call_carries_its_namespace_and_placeholders_are_filled() {
    let mock = start(vec![Scenario::new(
        "mcp",
        vec![Step::Tool(ToolStep {
            name: "verify".to_owned(),
            arguments: json!({"path": "{{cwd}}/hello.txt", "quote": "a \"b\""}),
            namespace: Some("mcp__factory".to_owned()),
        })],
    )])
    .await;
    let (events, _) = post(
        mock.addr(),
        "/v1/responses",
        &codex_body("[[scenario:mcp]]", vec![], true),
    )
    .await
    .events()
    .await;
    let item = events[2].json()["item"].clone();
    assert_eq!(item["namespace"], "mcp__factory");
    assert_eq!(item["name"], "verify");
    let args: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"path": "/tmp/ws/hello.txt", "quote": "a \"b\""})
    );
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn non_streaming_returns_the_response_object() {
    let mock = start(vec![Scenario::new(
        "shell",
        vec![
            Step::tool("exec_command", json!({"cmd": "ls"})),
            Step::text("listed"),
        ],
    )])
    .await;
    let response = post(
        mock.addr(),
        "/v1/responses",
        &codex_body("[[scenario:shell]]", vec![], false),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json().await;
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-5.5");
    assert_eq!(body["output"][0]["type"], "function_call");
    assert_eq!(body["output"][0]["arguments"], "{\"cmd\":\"ls\"}");
    assert_usage(&body["usage"]);

    let history = vec![
        body["output"][0].clone(),
        json!({"type": "function_call_output", "call_id": body["output"][0]["call_id"], "output": "a\nb"}),
    ];
    let body = post(
        mock.addr(),
        "/v1/responses",
        &codex_body("[[scenario:shell]]", history, false),
    )
    .await
    .json()
    .await;
    assert_eq!(body["output"][0]["type"], "message");
    assert_eq!(body["output"][0]["content"][0]["text"], "listed");
    mock.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_attempt_gets_404_and_the_prefix_and_query_are_optional() {
    let mock = start(vec![]).await;
    let response = request(
        mock.addr(),
        "GET",
        "/v1/responses",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        None,
    )
    .await;
    assert_eq!(response.status, 404);
    assert_eq!(get(mock.addr(), "/responses").await.status, 404);

    for path in ["/responses", "/v1/responses?x=1", "/openai/v1/responses"] {
        let body = post(mock.addr(), path, &codex_body("", vec![], false))
            .await
            .json()
            .await;
        assert_eq!(body["output"][0]["content"][0]["text"], "DONE", "{path}");
    }
    mock.shutdown().await.unwrap();
}
