//! Anthropic Messages: the request body and the streamed answer.
//!
//! Events: `message_start` (input usage), `content_block_start` / `content_block_delta` /
//! `content_block_stop` per block `index` (`text_delta`, `input_json_delta` fragments joined
//! and checked at the block's stop), `message_delta` (stop reason, cumulative output usage),
//! `message_stop`, `ping`, `error`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::sse::SseEvent;
use super::{Item, ModelError, Reply, Request, ToolCall, Usage};

pub(super) fn body(model: &str, max_tokens: u32, request: Request<'_>) -> Value {
    // Consecutive user-side items (tool results, then a continuation) share one user message,
    // tool results first, as the API requires.
    let mut messages: Vec<Value> = Vec::new();
    let mut user_blocks: Vec<Value> = Vec::new();
    let flush = |blocks: &mut Vec<Value>, messages: &mut Vec<Value>| {
        if !blocks.is_empty() {
            messages.push(json!({"role": "user", "content": std::mem::take(blocks)}));
        }
    };
    for item in request.items {
        match item {
            Item::User(text) => user_blocks.push(json!({"type": "text", "text": text})),
            Item::ToolResult {
                call_id,
                content,
                is_error,
            } => user_blocks.push(json!({
                "type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error,
            })),
            Item::Assistant { text, calls } => {
                flush(&mut user_blocks, &mut messages);
                let mut content = Vec::new();
                if !text.is_empty() {
                    content.push(json!({"type": "text", "text": text}));
                }
                for call in calls {
                    // Malformed arguments cannot be sent back as `input`; the tool result
                    // already told the model what was wrong with them.
                    let input = serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| Value::Object(Map::new()));
                    content.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                if content.is_empty() {
                    content.push(json!({"type": "text", "text": "(no answer)"}));
                }
                messages.push(json!({"role": "assistant", "content": content}));
            }
        }
    }
    flush(&mut user_blocks, &mut messages);
    let mut body = json!({
        "model": model,
        "max_tokens": max_tokens,
        "system": request.system,
        "messages": messages,
        "stream": true,
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters})
            })
            .collect();
    }
    body
}

#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        /// `input` of `content_block_start`, used when no `input_json_delta` follows.
        initial: Value,
        json: String,
    },
    /// Thinking and other blocks the loop does not use.
    Other,
}

/// The answer so far.
#[derive(Debug, Default)]
pub(super) struct Collector {
    blocks: BTreeMap<u64, Block>,
    usage: Usage,
    stop_reason: Option<String>,
}

fn index_of(data: &Value) -> Result<u64, ModelError> {
    data.get("index")
        .and_then(Value::as_u64)
        .ok_or_else(|| ModelError::Protocol("a content block event has no `index`".into()))
}

fn input_usage(usage: &Value) -> Option<u64> {
    let figure = |key: &str| usage.get(key).and_then(Value::as_u64);
    let input = figure("input_tokens")?;
    Some(
        input
            + figure("cache_creation_input_tokens").unwrap_or(0)
            + figure("cache_read_input_tokens").unwrap_or(0),
    )
}

impl Collector {
    /// Takes one event; `true` at `message_stop`.
    pub(super) fn event(&mut self, event: &SseEvent) -> Result<bool, ModelError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let data: Value = serde_json::from_str(&event.data)
            .map_err(|error| ModelError::Protocol(format!("an event is not JSON: {error}")))?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .or(event.event.as_deref())
            .unwrap_or("");
        match kind {
            "message_start" => {
                if let Some(usage) = data.pointer("/message/usage") {
                    if let Some(input) = input_usage(usage) {
                        self.usage.input = input;
                    }
                    if let Some(output) = usage.get("output_tokens").and_then(Value::as_u64) {
                        self.usage.output = output;
                    }
                }
            }
            "content_block_start" => {
                let index = index_of(&data)?;
                let block = data.get("content_block").unwrap_or(&Value::Null);
                let text = |key: &str| {
                    block
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                let block = match block.get("type").and_then(Value::as_str) {
                    Some("text") => Block::Text(text("text")),
                    Some("tool_use") => Block::ToolUse {
                        id: text("id"),
                        name: text("name"),
                        initial: block.get("input").cloned().unwrap_or(Value::Null),
                        json: String::new(),
                    },
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = index_of(&data)?;
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match (
                    self.blocks.get_mut(&index),
                    delta.get("type").and_then(Value::as_str),
                ) {
                    (Some(Block::Text(text)), Some("text_delta")) => {
                        text.push_str(delta.get("text").and_then(Value::as_str).unwrap_or(""));
                    }
                    (Some(Block::ToolUse { json, .. }), Some("input_json_delta")) => {
                        json.push_str(
                            delta
                                .get("partial_json")
                                .and_then(Value::as_str)
                                .unwrap_or(""),
                        );
                    }
                    (None, _) => {
                        return Err(ModelError::Protocol(format!(
                            "a delta for block {index}, which was never started"
                        )));
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = index_of(&data)?;
                if let Some(Block::ToolUse { json, initial, .. }) = self.blocks.get_mut(&index) {
                    if json.trim().is_empty() {
                        *json = match initial {
                            Value::Object(_) => initial.to_string(),
                            _ => "{}".to_owned(),
                        };
                    } else if let Err(error) = serde_json::from_str::<Value>(json) {
                        // Kept as sent: the tool answers the model with the parse error.
                        tracing::debug!(%error, "a tool_use block's input is not valid JSON");
                    }
                }
            }
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_owned());
                }
                if let Some(usage) = data.get("usage") {
                    if let Some(output) = usage.get("output_tokens").and_then(Value::as_u64) {
                        self.usage.output = output;
                    }
                    if let Some(input) = input_usage(usage) {
                        self.usage.input = input;
                    }
                }
            }
            "message_stop" => return Ok(true),
            "error" => {
                let message = data
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned();
                let kind = data
                    .pointer("/error/type")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Err(ModelError::Provider {
                    retryable: matches!(
                        kind,
                        "overloaded_error" | "api_error" | "rate_limit_error"
                    ),
                    message: format!("{kind}: {message}"),
                });
            }
            _ => {}
        }
        Ok(false)
    }

    pub(super) fn finish(self) -> Reply {
        let mut text = String::new();
        let mut calls = Vec::new();
        for (index, block) in self.blocks {
            match block {
                Block::Text(piece) => text.push_str(&piece),
                Block::ToolUse { id, name, json, .. } => calls.push(ToolCall {
                    id: if id.is_empty() {
                        format!("toolu_{index}")
                    } else {
                        id
                    },
                    name,
                    arguments: json,
                }),
                Block::Other => {}
            }
        }
        Reply {
            text,
            calls,
            usage: self.usage,
            stop_reason: self.stop_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::sse::SseParser;
    use super::*;

    #[test]
    fn blocks_usage_and_partial_json_by_index() {
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":100,\"cache_read_input_tokens\":20,\"output_tokens\":1}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Writing\"}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"write_file\",\"input\":{}}}\n\n",
            "event: ping\ndata: {\"type\":\"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"path\\\":\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"a.txt\\\"}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"finish\",\"input\":{}}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":30}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let mut collector = Collector::default();
        let mut done = false;
        for event in SseParser::new().feed(stream.as_bytes()) {
            done |= collector.event(&event).unwrap();
        }
        assert!(done);
        let reply = collector.finish();
        assert_eq!(reply.text, "Writing");
        assert_eq!(
            reply.usage,
            Usage {
                input: 120,
                output: 30
            }
        );
        assert_eq!(reply.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(reply.calls.len(), 2);
        assert_eq!(reply.calls[0].arguments, "{\"path\":\"a.txt\"}");
        assert_eq!(reply.calls[1].arguments, "{}");
    }

    #[test]
    fn stream_errors_are_classified() {
        let mut collector = Collector::default();
        let error = collector
            .event(&SseEvent {
                event: Some("error".into()),
                data: "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}".into(),
            })
            .unwrap_err();
        assert!(error.is_retryable());
        assert!(error.to_string().contains("Overloaded"));
    }

    #[test]
    fn the_body_groups_user_side_blocks_and_repairs_bad_inputs() {
        let items = [
            Item::User("task".into()),
            Item::Assistant {
                text: "ok".into(),
                calls: vec![
                    ToolCall {
                        id: "t1".into(),
                        name: "read_file".into(),
                        arguments: "{\"path\":\"a\"}".into(),
                    },
                    ToolCall {
                        id: "t2".into(),
                        name: "write_file".into(),
                        arguments: "{broken".into(),
                    },
                ],
            },
            Item::ToolResult {
                call_id: "t1".into(),
                content: "A".into(),
                is_error: false,
            },
            Item::ToolResult {
                call_id: "t2".into(),
                content: "bad json".into(),
                is_error: true,
            },
            Item::User("continue".into()),
        ];
        let body = body(
            "claude",
            1000,
            Request {
                system: "sys",
                items: &items,
                tools: &[],
            },
        );
        assert_eq!(body["system"], "sys");
        assert_eq!(body["max_tokens"], 1000);
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][1]["input"], json!({"path": "a"}));
        assert_eq!(messages[1]["content"][2]["input"], json!({}));
        let last = messages[2]["content"].as_array().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last[0]["type"], "tool_result");
        assert_eq!(last[1]["is_error"], true);
        assert_eq!(last[2], json!({"type": "text", "text": "continue"}));
        assert!(body.get("tools").is_none());
    }
}
