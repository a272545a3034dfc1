//! OpenAI Chat Completions: the request body and the streamed answer.
//!
//! Chunks carry `choices[0].delta.content` and `choices[0].delta.tool_calls[{index, id?,
//! function: {name?, arguments (a fragment)}}]`; fragments are joined by `index`. The usage
//! chunk (`stream_options.include_usage`) comes last, with empty `choices`, then `data: [DONE]`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::sse::SseEvent;
use super::{Item, ModelError, Reply, Request, ToolCall, Usage};

pub(super) fn body(model: &str, request: Request<'_>) -> Value {
    let mut messages = vec![json!({"role": "system", "content": request.system})];
    for item in request.items {
        messages.push(match item {
            Item::User(text) => json!({"role": "user", "content": text}),
            Item::Assistant { text, calls } => {
                let mut message = json!({
                    "role": "assistant",
                    "content": if text.is_empty() { Value::Null } else { Value::from(text.as_str()) },
                });
                if !calls.is_empty() {
                    message["tool_calls"] = calls
                        .iter()
                        .map(|call| {
                            json!({"id": call.id, "type": "function",
                                   "function": {"name": call.name, "arguments": call.arguments}})
                        })
                        .collect();
                }
                message
            }
            Item::ToolResult {
                call_id, content, ..
            } => json!({"role": "tool", "tool_call_id": call_id, "content": content}),
        });
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters}})
            })
            .collect();
        body["tool_choice"] = json!("auto");
    }
    body
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The answer so far.
#[derive(Debug, Default)]
pub(super) struct Collector {
    text: String,
    calls: BTreeMap<u64, PartialCall>,
    finish_reason: Option<String>,
    usage: Usage,
}

impl Collector {
    /// Takes one event; `true` at `[DONE]`.
    pub(super) fn event(&mut self, event: &SseEvent) -> Result<bool, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|error| ModelError::Protocol(format!("a chunk is not JSON: {error}")))?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| error.to_string(), str::to_owned);
            let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
            return Err(ModelError::Provider {
                retryable: matches!(kind, "server_error" | "overloaded_error" | "api_error"),
                message,
            });
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            let figure = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
            self.usage = Usage {
                input: figure("prompt_tokens"),
                output: figure("completion_tokens"),
            };
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(false);
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(false);
        };
        if let Some(text) = delta.get("content").and_then(Value::as_str) {
            self.text.push_str(text);
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (position, call) in calls.iter().enumerate() {
                let index = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(position as u64);
                let partial = self.calls.entry(index).or_default();
                if let Some(id) = call.get("id").and_then(Value::as_str)
                    && !id.is_empty()
                {
                    id.clone_into(&mut partial.id);
                }
                let function = call.get("function");
                if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    // Most servers send the name once; some repeat it in every chunk.
                    if partial.name.is_empty() {
                        name.clone_into(&mut partial.name);
                    } else if partial.name != name {
                        partial.name.push_str(name);
                    }
                }
                if let Some(arguments) = function
                    .and_then(|f| f.get("arguments"))
                    .and_then(Value::as_str)
                {
                    partial.arguments.push_str(arguments);
                }
            }
        }
        Ok(false)
    }

    /// A stream without `[DONE]` is accepted when its finish chunk arrived.
    pub(super) fn complete_enough(&self) -> bool {
        self.finish_reason.is_some()
    }

    pub(super) fn finish(self) -> Reply {
        let calls = self
            .calls
            .into_iter()
            .filter(|(_, call)| !call.name.is_empty())
            .map(|(index, call)| ToolCall {
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id
                },
                name: call.name,
                arguments: call.arguments,
            })
            .collect();
        Reply {
            text: self.text,
            calls,
            usage: self.usage,
            stop_reason: self.finish_reason,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::super::ToolSpec;
    use super::super::sse::SseParser;
    use super::*;

    fn collect(stream: &str) -> (Collector, bool) {
        let mut collector = Collector::default();
        let mut done = false;
        for event in SseParser::new().feed(stream.as_bytes()) {
            done |= collector.event(&event).unwrap();
        }
        (collector, done)
    }

    #[test]
    fn tool_call_fragments_are_joined_by_index() {
        let stream = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"write_file\",\"arguments\":\"\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"function\":{\"name\":\"finish\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\":\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"a\\\"}\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7}}\n\n",
            "data: [DONE]\n\n",
        );
        let (collector, done) = collect(stream);
        assert!(done);
        let reply = collector.finish();
        assert_eq!(
            reply.usage,
            Usage {
                input: 11,
                output: 7
            }
        );
        assert_eq!(reply.stop_reason.as_deref(), Some("tool_calls"));
        assert_eq!(
            reply.calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "write_file".into(),
                    arguments: "{\"path\":\"a\"}".into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "finish".into(),
                    arguments: "{}".into()
                },
            ]
        );
    }

    #[test]
    fn text_and_in_stream_errors() {
        let (collector, done) = collect(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        assert!(!done);
        assert!(collector.complete_enough());
        assert_eq!(collector.finish().text, "Hello");
        let mut collector = Collector::default();
        let error = collector
            .event(&SseEvent {
                event: None,
                data: "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}".into(),
            })
            .unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert!(
            Collector::default()
                .event(&SseEvent {
                    event: None,
                    data: "{not json".into()
                })
                .is_err()
        );
    }

    #[test]
    fn the_body_carries_history_tools_and_usage_option() {
        let items = [
            Item::User("do it".into()),
            Item::Assistant {
                text: String::new(),
                calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "read_file".into(),
                    arguments: "{\"path\":\"a\"}".into(),
                }],
            },
            Item::ToolResult {
                call_id: "c1".into(),
                content: "hello".into(),
                is_error: false,
            },
        ];
        let tools = [ToolSpec {
            name: "read_file",
            description: "reads",
            parameters: json!({"type": "object"}),
        }];
        let body = body(
            "m",
            Request {
                system: "sys",
                items: &items,
                tools: &tools,
            },
        );
        assert_eq!(body["model"], "m");
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "sys"})
        );
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(
            body["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"path\":\"a\"}"
        );
        assert_eq!(
            body["messages"][3],
            json!({"role": "tool", "tool_call_id": "c1", "content": "hello"})
        );
        assert_eq!(body["tools"][0]["function"]["name"], "read_file");
    }
}
