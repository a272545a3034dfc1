//! Reading token usage out of the provider's own response, streamed or not, never from what
//! the agent reports.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Which wire API a request used (decided by its path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    Responses,
    ChatCompletions,
    Messages,
    CountTokens,
    Other,
}

impl Api {
    pub fn from_path(path: &str) -> Api {
        if path.ends_with("/responses") {
            Api::Responses
        } else if path.ends_with("/chat/completions") {
            Api::ChatCompletions
        } else if path.ends_with("/messages/count_tokens") {
            Api::CountTokens
        } else if path.ends_with("/messages") {
            Api::Messages
        } else {
            Api::Other
        }
    }
}

/// Tokens one model call used, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// False when the response carried no usage (cut short, or a provider that omits it).
    pub reported: bool,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// Longest SSE line kept for parsing; longer lines (huge deltas) are skipped, they never carry
/// usage.
const MAX_LINE: usize = 1024 * 1024;
/// Largest non-streamed body parsed for usage.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Follows a response body chunk by chunk and keeps the usage it reports.
#[derive(Debug)]
pub struct UsageMeter {
    api: Api,
    sse: bool,
    line: Vec<u8>,
    overlong: bool,
    body: Vec<u8>,
    usage: Usage,
    model: Option<String>,
}

impl UsageMeter {
    pub fn new(api: Api, sse: bool) -> UsageMeter {
        UsageMeter {
            api,
            sse,
            line: Vec::new(),
            overlong: false,
            body: Vec::new(),
            usage: Usage::default(),
            model: None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if !self.sse {
            if self.body.len() + chunk.len() <= MAX_BODY {
                self.body.extend_from_slice(chunk);
            }
            return;
        }
        for byte in chunk {
            if *byte == b'\n' {
                if !self.overlong {
                    let line = std::mem::take(&mut self.line);
                    self.sse_line(&line);
                }
                self.line.clear();
                self.overlong = false;
            } else if self.line.len() < MAX_LINE {
                self.line.push(*byte);
            } else {
                self.overlong = true;
            }
        }
    }

    /// The usage and model seen so far (call at the end of the body).
    pub fn finish(mut self) -> (Usage, Option<String>) {
        if self.sse {
            if !self.line.is_empty() && !self.overlong {
                let line = std::mem::take(&mut self.line);
                self.sse_line(&line);
            }
        } else if let Ok(value) = serde_json::from_slice::<Value>(&self.body) {
            self.observe_model(&value);
            if let Some(usage) = value.get("usage") {
                self.take_usage(usage);
            }
        }
        (self.usage, self.model)
    }

    fn sse_line(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let Ok(event) = serde_json::from_slice::<Value>(data.trim_ascii()) else {
            return;
        };
        match self.api {
            Api::Responses => {
                let kind = event.get("type").and_then(Value::as_str).unwrap_or("");
                if let Some(response) = event.get("response") {
                    self.observe_model(response);
                    if matches!(
                        kind,
                        "response.completed" | "response.done" | "response.incomplete"
                    ) && let Some(usage) = response.get("usage")
                    {
                        self.take_usage(usage);
                    }
                }
            }
            Api::ChatCompletions => {
                self.observe_model(&event);
                if let Some(usage) = event.get("usage").filter(|usage| !usage.is_null()) {
                    self.take_usage(usage);
                }
            }
            Api::Messages => match event.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    if let Some(message) = event.get("message") {
                        self.observe_model(message);
                        if let Some(usage) = message.get("usage") {
                            self.take_usage(usage);
                        }
                    }
                }
                Some("message_delta") => {
                    if let Some(usage) = event.get("usage") {
                        self.take_usage(usage);
                    }
                }
                _ => {}
            },
            Api::CountTokens | Api::Other => {}
        }
    }

    fn observe_model(&mut self, value: &Value) {
        if let Some(model) = value.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
    }

    /// Merges a provider usage object. Streamed Messages report output tokens cumulatively in
    /// `message_delta`, so later values replace earlier ones field by field.
    fn take_usage(&mut self, usage: &Value) {
        let number = |path: &[&str]| -> Option<u64> {
            let mut node = usage;
            for key in path {
                node = node.get(key)?;
            }
            node.as_u64()
        };
        let mut reported = self.usage.reported;
        let mut set = |target: &mut u64, value: Option<u64>| {
            if let Some(value) = value {
                *target = value;
                reported = true;
            }
        };
        let mut usage_now = self.usage;
        match self.api {
            Api::ChatCompletions => {
                set(&mut usage_now.input_tokens, number(&["prompt_tokens"]));
                set(&mut usage_now.output_tokens, number(&["completion_tokens"]));
                set(
                    &mut usage_now.cached_input_tokens,
                    number(&["prompt_tokens_details", "cached_tokens"]),
                );
                set(
                    &mut usage_now.reasoning_tokens,
                    number(&["completion_tokens_details", "reasoning_tokens"]),
                );
            }
            Api::Messages => {
                // Anthropic counts cache reads and writes apart from `input_tokens`.
                let fresh = number(&["input_tokens"]);
                let read = number(&["cache_read_input_tokens"]);
                let created = number(&["cache_creation_input_tokens"]);
                if fresh.is_some() || read.is_some() || created.is_some() {
                    let total = fresh.unwrap_or(0) + read.unwrap_or(0) + created.unwrap_or(0);
                    if total > 0 || fresh.is_some() {
                        set(&mut usage_now.input_tokens, Some(total));
                    }
                    set(&mut usage_now.cached_input_tokens, read);
                }
                set(&mut usage_now.output_tokens, number(&["output_tokens"]));
            }
            _ => {
                set(&mut usage_now.input_tokens, number(&["input_tokens"]));
                set(&mut usage_now.output_tokens, number(&["output_tokens"]));
                set(
                    &mut usage_now.cached_input_tokens,
                    number(&["input_tokens_details", "cached_tokens"]),
                );
                set(
                    &mut usage_now.reasoning_tokens,
                    number(&["output_tokens_details", "reasoning_tokens"]),
                );
            }
        }
        usage_now.reported = reported;
        self.usage = usage_now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(api: Api, body: &str, chunk: usize) -> (Usage, Option<String>) {
        let mut meter = UsageMeter::new(api, true);
        for piece in body.as_bytes().chunks(chunk) {
            meter.feed(piece);
        }
        meter.finish()
    }

    #[test]
    fn responses_usage_comes_from_response_completed_across_chunk_boundaries() {
        let body = concat!(
            "event: response.created\n",
            "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"model\":\"gpt-5.5\"}}\n\n",
            "event: response.completed\n",
            "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":{\"input_tokens\":100,",
            "\"input_tokens_details\":{\"cached_tokens\":40},\"output_tokens\":20,",
            "\"output_tokens_details\":{\"reasoning_tokens\":5},\"total_tokens\":120}}}\n\n"
        );
        for chunk in [1, 7, 4096] {
            let (usage, model) = meter(Api::Responses, body, chunk);
            assert_eq!(
                usage,
                Usage {
                    input_tokens: 100,
                    cached_input_tokens: 40,
                    output_tokens: 20,
                    reasoning_tokens: 5,
                    reported: true
                }
            );
            assert_eq!(model.as_deref(), Some("gpt-5.5"));
        }
    }

    #[test]
    fn messages_usage_merges_start_and_cumulative_delta() {
        let body = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":90,\"output_tokens\":1}}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":30}}\n\n",
        );
        let (usage, _) = meter(Api::Messages, body, 5);
        assert_eq!(usage.input_tokens, 100);
        assert_eq!(usage.cached_input_tokens, 90);
        assert_eq!(usage.output_tokens, 30);
    }

    #[test]
    fn chat_usage_from_the_final_chunk_and_a_cut_stream_reports_nothing() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
        let (usage, _) = meter(Api::ChatCompletions, body, 3);
        assert_eq!(
            (usage.input_tokens, usage.output_tokens, usage.reported),
            (7, 3, true)
        );
        let (cut, _) = meter(
            Api::ChatCompletions,
            "data: {\"choices\":[{\"delta\":{}}]}\n",
            3,
        );
        assert!(!cut.reported);
    }

    #[test]
    fn non_streamed_bodies_are_parsed_whole() {
        let mut meter = UsageMeter::new(Api::Messages, false);
        meter.feed(br#"{"model":"m","usage":{"input_tokens":5,"output_tokens":6}}"#);
        let (usage, model) = meter.finish();
        assert_eq!((usage.input_tokens, usage.output_tokens), (5, 6));
        assert_eq!(model.as_deref(), Some("m"));
    }
}
