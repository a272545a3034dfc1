//! Claude Code's stream-json output → normalized [`AgentEvent`]s, and the end of a turn.
//!
//! | stdout message | event |
//! |---|---|
//! | `system` `init` | `SessionStarted{session_id}` (once per session id) |
//! | `system` `api_retry` | `Error` ("… retrying") |
//! | `assistant` text block | `Message` |
//! | `assistant` `tool_use` block | remembered until its result |
//! | `user` `tool_result` block | `ToolCall{name, summary, ok: !is_error}`, plus `FileChange` for a successful `Write`/`Edit`/`MultiEdit`/`NotebookEdit` |
//! | `result` | `TokenUsage` (absolute session totals), then the turn ends: completed, or failed when `is_error` or the subtype is not `success` |
//! | anything else (`stream_event`, other `system` subtypes, unknown types) | nothing |
//!
//! Token usage: `result.modelUsage` holds the session's running totals per model (verified:
//! it grows across turns, while `result.usage` covers only the turn). Input counts
//! `inputTokens + cacheReadInputTokens + cacheCreationInputTokens`. Without `modelUsage`, the
//! per-turn `usage` figures are summed. Totals never go down.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use takt_protocol::{AgentEvent, TokenUsage};

use super::policy::WRITE_TOOLS;
use super::protocol::{kind, short, text};

/// Longest tool summary kept.
const SUMMARY_MAX: usize = 300;

/// How a turn ended, as Claude's `result` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEnd {
    Completed,
    Failed(String),
}

#[derive(Debug, Clone)]
struct PendingTool {
    name: String,
    summary: String,
    path: Option<String>,
}

/// Per-session view of the output stream.
#[derive(Debug)]
pub struct Tracker {
    workspace: PathBuf,
    /// The session id from the last `system/init`.
    pub session_id: Option<String>,
    pending: HashMap<String, PendingTool>,
    /// The last absolute usage reported.
    usage: TokenUsage,
    /// Per-turn `usage` figures summed (the fallback without `modelUsage`).
    summed: TokenUsage,
}

impl Tracker {
    pub fn new(workspace: &Path) -> Tracker {
        Tracker {
            workspace: workspace.to_path_buf(),
            session_id: None,
            pending: HashMap::new(),
            usage: TokenUsage::default(),
            summed: TokenUsage::default(),
        }
    }

    /// The events of one stdout message and, for a `result`, how the turn ended.
    pub fn on_message(&mut self, message: &Value) -> (Vec<AgentEvent>, Option<TurnEnd>) {
        let mut events = Vec::new();
        match kind(message) {
            "system" => self.on_system(message, &mut events),
            "assistant" => self.on_assistant(message, &mut events),
            "user" => self.on_user(message, &mut events),
            "result" => {
                let end = self.on_result(message, &mut events);
                return (events, Some(end));
            }
            _ => {}
        }
        (events, None)
    }

    /// Tool calls that never got a result (the turn ended or was cut short): reported as
    /// failed.
    pub fn flush_pending(&mut self) -> Vec<AgentEvent> {
        let mut pending: Vec<_> = self.pending.drain().collect();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        pending
            .into_iter()
            .map(|(_, tool)| AgentEvent::ToolCall {
                name: tool.name,
                summary: format!("{} (no result)", tool.summary),
                ok: false,
            })
            .collect()
    }

    fn on_system(&mut self, message: &Value, events: &mut Vec<AgentEvent>) {
        match text(message, "subtype") {
            "init" => {
                let id = text(message, "session_id");
                if !id.is_empty() && self.session_id.as_deref() != Some(id) {
                    self.session_id = Some(id.to_owned());
                    events.push(AgentEvent::SessionStarted {
                        session_id: id.to_owned(),
                    });
                }
            }
            "api_retry" => {
                let attempt = message.get("attempt").and_then(Value::as_u64).unwrap_or(0);
                let max = message
                    .get("max_retries")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let error = match message.get("error") {
                    Some(Value::String(error)) => error.clone(),
                    Some(other) if !other.is_null() => other.to_string(),
                    _ => message
                        .get("error_status")
                        .map(Value::to_string)
                        .unwrap_or_default(),
                };
                events.push(AgentEvent::Error {
                    message: format!(
                        "model request failed: {} (retrying, attempt {attempt} of {max})",
                        short(&error, SUMMARY_MAX)
                    ),
                });
            }
            _ => {}
        }
    }

    fn on_assistant(&mut self, message: &Value, events: &mut Vec<AgentEvent>) {
        for block in content(message) {
            match text(block, "type") {
                "text" => {
                    let body = text(block, "text");
                    if !body.trim().is_empty() {
                        events.push(AgentEvent::Message {
                            text: body.to_owned(),
                        });
                    }
                }
                "tool_use" => {
                    let id = text(block, "id");
                    let name = text(block, "name");
                    if id.is_empty() || name.is_empty() {
                        continue;
                    }
                    let input = block.get("input").unwrap_or(&Value::Null);
                    let path = ["file_path", "notebook_path"]
                        .iter()
                        .find_map(|field| input.get(*field).and_then(Value::as_str))
                        .map(|path| self.display_path(path));
                    self.pending.insert(
                        id.to_owned(),
                        PendingTool {
                            name: name.to_owned(),
                            summary: self.summary(name, input),
                            path,
                        },
                    );
                }
                _ => {}
            }
        }
    }

    fn on_user(&mut self, message: &Value, events: &mut Vec<AgentEvent>) {
        for block in content(message) {
            if text(block, "type") != "tool_result" {
                continue;
            }
            let Some(tool) = self.pending.remove(text(block, "tool_use_id")) else {
                continue;
            };
            let ok = !block
                .get("is_error")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let summary = if ok {
                tool.summary
            } else {
                let why = result_text(block.get("content"));
                if why.is_empty() {
                    tool.summary
                } else {
                    format!("{}: {}", tool.summary, short(&why, SUMMARY_MAX))
                }
            };
            events.push(AgentEvent::ToolCall {
                name: tool.name.clone(),
                summary,
                ok,
            });
            if ok
                && WRITE_TOOLS.contains(&tool.name.as_str())
                && let Some(path) = tool.path
            {
                events.push(AgentEvent::FileChange { path });
            }
        }
    }

    fn on_result(&mut self, message: &Value, events: &mut Vec<AgentEvent>) -> TurnEnd {
        events.extend(self.flush_pending());
        if let Some(usage) = self.absolute_usage(message) {
            events.push(AgentEvent::TokenUsage { usage });
        }
        let subtype = text(message, "subtype");
        let is_error = message
            .get("is_error")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !is_error && (subtype == "success" || subtype.is_empty()) {
            return TurnEnd::Completed;
        }
        let mut reason = text(message, "result").trim().to_owned();
        if reason.is_empty() {
            reason = message
                .get("errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
        }
        let what = match (subtype, text(message, "terminal_reason")) {
            ("", "") => "error".to_owned(),
            (subtype, "") => subtype.to_owned(),
            ("", terminal) => terminal.to_owned(),
            (subtype, terminal) => format!("{subtype}, {terminal}"),
        };
        TurnEnd::Failed(if reason.is_empty() {
            format!("Claude Code ended the turn with an error ({what})")
        } else {
            format!(
                "Claude Code ended the turn with an error ({what}): {}",
                short(&reason, 2000)
            )
        })
    }

    /// The session's absolute usage after this `result`, if it reports any.
    fn absolute_usage(&mut self, message: &Value) -> Option<TokenUsage> {
        let per_turn = message.get("usage").filter(|usage| usage.is_object());
        if let Some(usage) = per_turn {
            let input = number(usage, "input_tokens")
                + number(usage, "cache_read_input_tokens")
                + number(usage, "cache_creation_input_tokens");
            let output = number(usage, "output_tokens");
            self.summed.input_tokens += input;
            self.summed.output_tokens += output;
            self.summed.total_tokens += input + output;
        }
        let totals = match message.get("modelUsage").and_then(Value::as_object) {
            Some(models) if !models.is_empty() => {
                let mut totals = TokenUsage::default();
                for model in models.values() {
                    totals.input_tokens += number(model, "inputTokens")
                        + number(model, "cacheReadInputTokens")
                        + number(model, "cacheCreationInputTokens");
                    totals.output_tokens += number(model, "outputTokens");
                }
                totals.total_tokens = totals.input_tokens + totals.output_tokens;
                totals
            }
            _ if per_turn.is_some() => self.summed,
            _ => return None,
        };
        self.usage = TokenUsage {
            input_tokens: self.usage.input_tokens.max(totals.input_tokens),
            output_tokens: self.usage.output_tokens.max(totals.output_tokens),
            total_tokens: self.usage.total_tokens.max(totals.total_tokens),
        };
        Some(self.usage)
    }

    fn summary(&self, name: &str, input: &Value) -> String {
        let field = |key: &str| input.get(key).and_then(Value::as_str);
        let summary = match name {
            "Bash" => field("command").map(str::to_owned),
            "Read" | "Write" | "Edit" | "MultiEdit" => {
                field("file_path").map(|p| self.display_path(p))
            }
            "NotebookEdit" | "NotebookRead" => field("notebook_path").map(|p| self.display_path(p)),
            "Glob" | "Grep" => field("pattern").map(|pattern| match field("path") {
                Some(path) => format!("{pattern} in {}", self.display_path(path)),
                None => pattern.to_owned(),
            }),
            "LS" => field("path").map(|p| self.display_path(p)),
            "WebFetch" => field("url").map(str::to_owned),
            "WebSearch" => field("query").map(str::to_owned),
            "Task" | "Agent" => field("description").map(str::to_owned),
            _ => None,
        };
        let summary = summary.unwrap_or_else(|| match input {
            Value::Null => String::new(),
            other => other.to_string(),
        });
        short(&summary, SUMMARY_MAX)
    }

    /// A path relative to the workspace when it lies inside it.
    fn display_path(&self, path: &str) -> String {
        Path::new(path)
            .strip_prefix(&self.workspace)
            .map(|relative| relative.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_owned())
    }
}

fn content(message: &Value) -> impl Iterator<Item = &Value> {
    message
        .get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The text of a `tool_result` content (a string or text blocks).
fn result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn number(value: &Value, field: &str) -> u64 {
    value.get(field).and_then(Value::as_u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn tracker() -> Tracker {
        Tracker::new(Path::new("/ws"))
    }

    #[test]
    fn init_text_and_tools_map_to_events() {
        let mut t = tracker();
        let init = json!({"type": "system", "subtype": "init", "session_id": "s-1", "cwd": "/ws"});
        assert_eq!(
            t.on_message(&init).0,
            [AgentEvent::SessionStarted {
                session_id: "s-1".into()
            }]
        );
        // The init line repeats every turn: reported once.
        assert!(t.on_message(&init).0.is_empty());
        let assistant = json!({"type": "assistant", "message": {"content": [
            {"type": "text", "text": "Writing it."},
            {"type": "tool_use", "id": "t1", "name": "Write", "input": {"file_path": "/ws/src/a.rs", "content": "x"}},
            {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "cargo test", "description": "test"}},
            {"type": "tool_use", "id": "t3", "name": "Edit", "input": {"file_path": "/elsewhere/b.rs"}},
        ]}});
        assert_eq!(
            t.on_message(&assistant).0,
            [AgentEvent::Message {
                text: "Writing it.".into()
            }]
        );
        let results = json!({"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "File created successfully"},
            {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "exit 101"}], "is_error": true},
            {"type": "tool_result", "tool_use_id": "unknown", "content": "?"},
        ]}});
        assert_eq!(
            t.on_message(&results).0,
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
                    summary: "cargo test: exit 101".into(),
                    ok: false
                },
            ]
        );
        // The Edit never got a result: reported as failed when the turn ends.
        let (events, end) =
            t.on_message(&json!({"type": "result", "subtype": "success", "is_error": false}));
        assert_eq!(end, Some(TurnEnd::Completed));
        assert_eq!(
            events,
            [AgentEvent::ToolCall {
                name: "Edit".into(),
                summary: "/elsewhere/b.rs (no result)".into(),
                ok: false
            }]
        );
    }

    #[test]
    fn usage_is_absolute_from_model_usage_and_summed_without_it() {
        let mut t = tracker();
        let result = |usage: Value, model_usage: Option<Value>| {
            let mut r =
                json!({"type": "result", "subtype": "success", "is_error": false, "usage": usage});
            if let Some(m) = model_usage {
                r["modelUsage"] = m;
            }
            r
        };
        let (events, _) = t.on_message(&result(
            json!({"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 5}),
            Some(
                json!({"opus": {"inputTokens": 100, "outputTokens": 20, "cacheReadInputTokens": 5},
                        "haiku": {"inputTokens": 10, "outputTokens": 1}}),
            ),
        ));
        assert_eq!(
            events,
            [AgentEvent::TokenUsage {
                usage: TokenUsage {
                    input_tokens: 115,
                    output_tokens: 21,
                    total_tokens: 136
                }
            }]
        );
        // Without modelUsage: per-turn usage summed, never below what was reported.
        let mut t = tracker();
        t.on_message(&result(
            json!({"input_tokens": 100, "output_tokens": 20}),
            None,
        ));
        let (events, _) = t.on_message(&result(
            json!({"input_tokens": 50, "output_tokens": 5}),
            None,
        ));
        assert_eq!(
            events,
            [AgentEvent::TokenUsage {
                usage: TokenUsage {
                    input_tokens: 150,
                    output_tokens: 25,
                    total_tokens: 175
                }
            }]
        );
    }

    #[test]
    fn error_results_fail_the_turn_with_claudes_text() {
        let mut t = tracker();
        let (_, end) = t.on_message(
            &json!({"type": "result", "subtype": "success", "is_error": true,
            "result": "API Error: 500 overloaded", "terminal_reason": "api_error"}),
        );
        assert_eq!(
            end,
            Some(TurnEnd::Failed(
                "Claude Code ended the turn with an error (success, api_error): API Error: 500 overloaded".into()
            ))
        );
        let (_, end) = t.on_message(
            &json!({"type": "result", "subtype": "error_during_execution", "is_error": true,
            "errors": ["boom"]}),
        );
        assert_eq!(
            end,
            Some(TurnEnd::Failed(
                "Claude Code ended the turn with an error (error_during_execution): boom".into()
            ))
        );
    }

    #[test]
    fn api_retries_are_errors_and_noise_is_ignored() {
        let mut t = tracker();
        let (events, _) = t.on_message(
            &json!({"type": "system", "subtype": "api_retry", "attempt": 1,
            "max_retries": 10, "error_status": 500, "error": "server_error"}),
        );
        assert!(
            matches!(&events[..], [AgentEvent::Error { message }] if message.contains("retrying"))
        );
        for noise in [
            json!({"type": "stream_event", "event": {}}),
            json!({"type": "system", "subtype": "status"}),
            json!({"type": "whatever"}),
            json!([1, 2]),
        ] {
            assert_eq!(t.on_message(&noise), (vec![], None));
        }
    }
}
