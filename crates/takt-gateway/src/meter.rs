//! Reading token usage out of the provider's own response, streamed or not, never from what
//! the agent reports.
//!
//! When the provider says nothing (a stream cut before its final usage event, or a server that
//! never reports usage), a call still spent tokens, and a budget that counted it as free could be
//! drained without limit. So the missing figures are estimated from byte lengths, about four
//! bytes per token ([`BYTES_PER_TOKEN`]), and the usage is flagged [`Usage::estimated`]. The
//! estimate counts the whole response as the agent received it (JSON and SSE framing included),
//! so it errs high, which is the safe side for a cap.

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

/// Tokens one model call used.
///
/// `reported` and `estimated` are independent: reported and not estimated is the provider's own
/// complete figure; reported and estimated is a partial report with the rest estimated (an
/// Anthropic stream cut after `message_start` reported its input but not its final output);
/// estimated and not reported is an estimate only; neither is a call that used nothing (an error
/// status, a refusal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Every input token, cache reads and writes included.
    pub input_tokens: u64,
    /// The part of `input_tokens` read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// The part of `input_tokens` written to the prompt cache (Anthropic
    /// `cache_creation_input_tokens`; billed above the input price).
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Every output token, reasoning included.
    pub output_tokens: u64,
    /// The part of `output_tokens` spent reasoning, when the provider says.
    pub reasoning_tokens: u64,
    /// The provider reported at least some of these figures in its response.
    pub reported: bool,
    /// Some figures are the gateway's estimate from byte lengths, because the provider did not
    /// report them (see the module documentation).
    #[serde(default)]
    pub estimated: bool,
}

impl Usage {
    /// Input plus output tokens: what token caps count.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// The estimate's ratio: about four bytes of English or code per token.
pub const BYTES_PER_TOKEN: u64 = 4;

fn tokens_for(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_TOKEN)
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
    /// Every response byte seen, for the estimate.
    bytes: u64,
    usage: Usage,
    /// The provider's final usage report was seen (the figures are complete).
    complete: bool,
    /// An early report gave the input (Anthropic `message_start`); the output is provisional.
    input_seen: bool,
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
            bytes: 0,
            usage: Usage::default(),
            complete: false,
            input_seen: false,
            model: None,
        }
    }

    /// The provider's final figures, once its usage report was seen (a stream may still send
    /// its end marker after it).
    pub fn final_usage(&self) -> Option<(Usage, Option<String>)> {
        self.complete.then(|| (self.usage, self.model.clone()))
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes = self.bytes.saturating_add(chunk.len() as u64);
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

    /// The usage and model the provider reported (call at the end of the body). Missing
    /// figures stay zero: right for a response that was not a model turn (an error status).
    pub fn finish(mut self) -> (Usage, Option<String>) {
        self.drain();
        (self.usage, self.model)
    }

    /// Like [`UsageMeter::finish`], for a successful model turn: figures the provider did not
    /// report are estimated from `request_bytes` and the response bytes, and flagged.
    pub fn finish_estimating(mut self, request_bytes: u64) -> (Usage, Option<String>) {
        self.drain();
        let mut usage = self.usage;
        if !self.complete {
            let output = tokens_for(self.bytes);
            if !self.input_seen {
                usage.input_tokens = usage.input_tokens.max(tokens_for(request_bytes));
            }
            usage.output_tokens = usage.output_tokens.max(output);
            usage.estimated = true;
        }
        (usage, self.model)
    }

    fn drain(&mut self) {
        if self.sse {
            if !self.line.is_empty() && !self.overlong {
                let line = std::mem::take(&mut self.line);
                self.sse_line(&line);
            }
        } else if let Ok(value) = serde_json::from_slice::<Value>(&self.body) {
            self.observe_model(&value);
            if let Some(usage) = value.get("usage").filter(|usage| usage.is_object()) {
                self.take_usage(usage);
                self.complete = self.usage.reported;
            }
        }
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
                        "response.completed"
                            | "response.done"
                            | "response.incomplete"
                            | "response.failed"
                    ) && let Some(usage) = response.get("usage").filter(|u| u.is_object())
                    {
                        self.take_usage(usage);
                        self.complete = self.usage.reported;
                    }
                }
            }
            Api::ChatCompletions => {
                self.observe_model(&event);
                if let Some(usage) = event.get("usage").filter(|usage| usage.is_object()) {
                    self.take_usage(usage);
                    self.complete = self.usage.reported;
                }
            }
            Api::Messages => match event.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    if let Some(message) = event.get("message") {
                        self.observe_model(message);
                        if let Some(usage) = message.get("usage") {
                            self.take_usage(usage);
                            self.input_seen = self.usage.reported;
                        }
                    }
                }
                Some("message_delta") => {
                    if let Some(usage) = event.get("usage") {
                        self.take_usage(usage);
                        self.complete = self.usage.reported;
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
                    set(&mut usage_now.cache_write_tokens, created);
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
                    reported: true,
                    ..Usage::default()
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

    #[test]
    fn a_complete_report_is_not_estimated() {
        let body =
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n";
        let mut meter = UsageMeter::new(Api::ChatCompletions, true);
        meter.feed(body.as_bytes());
        let (usage, _) = meter.finish_estimating(4_000);
        assert_eq!((usage.input_tokens, usage.output_tokens), (7, 3));
        assert!(usage.reported && !usage.estimated);
    }

    #[test]
    fn a_response_without_usage_is_estimated_from_bytes_and_flagged() {
        let body = br#"{"model":"local","choices":[{"message":{"content":"hello"}}]}"#;
        let mut meter = UsageMeter::new(Api::ChatCompletions, false);
        meter.feed(body);
        let (usage, model) = meter.finish_estimating(401);
        assert_eq!(model.as_deref(), Some("local"));
        assert_eq!(
            usage.input_tokens, 101,
            "401 request bytes round up to 101 tokens"
        );
        assert_eq!(usage.output_tokens, (body.len() as u64).div_ceil(4));
        assert!(usage.estimated && !usage.reported);
        // Without estimating (an error status), nothing is counted.
        let mut meter = UsageMeter::new(Api::ChatCompletions, false);
        meter.feed(body);
        assert_eq!(meter.finish().0, Usage::default());
    }

    #[test]
    fn a_messages_stream_cut_after_message_start_keeps_the_reported_input() {
        let body = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":1000,\"cache_creation_input_tokens\":200,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"partial \"}}\n\n",
        );
        let mut meter = UsageMeter::new(Api::Messages, true);
        meter.feed(body.as_bytes());
        let (usage, _) = meter.finish_estimating(1_000_000);
        assert_eq!(
            usage.input_tokens, 1_200,
            "the provider's input figure, not the estimate"
        );
        assert_eq!(usage.cache_write_tokens, 200);
        assert_eq!(usage.output_tokens, (body.len() as u64).div_ceil(4));
        assert!(usage.reported && usage.estimated);
    }
}
