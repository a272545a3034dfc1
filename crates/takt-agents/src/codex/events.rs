//! App-server notifications → normalized [`AgentEvent`]s, and the end of a turn.
//!
//! | notification | event |
//! |---|---|
//! | `item/completed` `agentMessage` | `Message` (the whole text; deltas are only a fallback) |
//! | `item/completed` `commandExecution` | `ToolCall{name: "command"}`, ok = completed with exit 0 |
//! | `item/completed` `fileChange` | `ToolCall{name: "apply_patch"}` + one `FileChange` per path when applied |
//! | `item/completed` `mcpToolCall` | `ToolCall{name: "mcp:<server>/<tool>"}` with an argument summary |
//! | `item/completed` `dynamicToolCall` / `webSearch` | `ToolCall` |
//! | `thread/tokenUsage/updated` | `TokenUsage` from `tokenUsage.total` (absolute, R-126) |
//! | `error` | `Error` (with "(retrying)" when Codex will retry) |
//! | `turn/completed` | ends the turn: completed / failed / interrupted |
//! | `account/rateLimits/updated` | kept as the latest snapshot, not journaled |

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use takt_protocol::{AgentEvent, TokenUsage};

use super::requests::short;

/// Deltas kept per agent message, for messages that never complete.
const MAX_DELTA_BYTES: usize = 256 * 1024;

/// How a turn ended, as the app-server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TurnEnd {
    Completed,
    Failed(String),
    Interrupted,
}

/// Per-session view of the notification stream.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pub thread_id: String,
    /// The turn being run, once `turn/start` answered.
    pub turn_id: Option<String>,
    /// Turns this session ran before; their late notifications are ignored.
    pub old_turns: Vec<String>,
    /// The last absolute totals reported, so unchanged totals are not journaled twice.
    pub last_usage: Option<TokenUsage>,
    /// The latest rate-limit payload.
    pub rate_limits: Option<Value>,
    /// Agent message deltas by item id, until the item completes.
    deltas: HashMap<String, String>,
}

impl Tracker {
    pub(crate) fn new(thread_id: String) -> Tracker {
        Tracker {
            thread_id,
            ..Tracker::default()
        }
    }

    /// Starts tracking a new turn.
    pub(crate) fn begin(&mut self, turn_id: String) {
        self.deltas.clear();
        self.turn_id = Some(turn_id);
    }

    /// Forgets the current turn.
    pub(crate) fn finish(&mut self) -> Vec<AgentEvent> {
        let mut events = Vec::new();
        for (_, text) in self.deltas.drain() {
            if !text.trim().is_empty() {
                events.push(AgentEvent::Message { text });
            }
        }
        if let Some(turn) = self.turn_id.take() {
            self.old_turns.push(turn);
        }
        events
    }

    /// Whether a notification belongs to this session's current turn (or to no turn).
    /// Token totals are the thread's, so they count whichever turn they name.
    fn relevant(&self, method: &str, params: &Value) -> bool {
        if let Some(thread) = params["threadId"].as_str()
            && thread != self.thread_id
        {
            return false;
        }
        if matches!(
            method,
            "thread/tokenUsage/updated" | "codex/event/token_count"
        ) {
            return true;
        }
        let turn = params["turnId"]
            .as_str()
            .or_else(|| params["turn"]["id"].as_str());
        match turn {
            Some(turn) => {
                if self.old_turns.iter().any(|old| old == turn) {
                    return false;
                }
                self.turn_id
                    .as_deref()
                    .is_none_or(|current| current == turn)
            }
            None => true,
        }
    }

    /// Maps one notification; returns the events to emit and, when it ends the turn, how.
    pub(crate) fn on_notification(
        &mut self,
        method: &str,
        params: &Value,
        workspace: &Path,
    ) -> (Vec<AgentEvent>, Option<TurnEnd>) {
        let mut events = Vec::new();
        if method == "account/rateLimits/updated" {
            tracing::debug!(limits = %params["rateLimits"], "codex rate limits");
            self.rate_limits = Some(params["rateLimits"].clone());
            events.push(AgentEvent::RateLimits {
                limits: params["rateLimits"].clone(),
            });
            return (events, None);
        }
        match method {
            "warning" | "configWarning" | "deprecationNotice" | "guardianWarning" => {
                let text = params["message"]
                    .as_str()
                    .or_else(|| params["summary"].as_str())
                    .unwrap_or_default();
                tracing::warn!(kind = method, message = %short(text, 500), "codex warning");
                return (events, None);
            }
            _ => {}
        }
        if !self.relevant(method, params) {
            tracing::debug!(method, "notification for another thread or turn ignored");
            return (events, None);
        }
        let end = match method {
            "item/agentMessage/delta" => {
                if let (Some(item), Some(delta)) =
                    (params["itemId"].as_str(), params["delta"].as_str())
                {
                    let text = self.deltas.entry(item.to_owned()).or_default();
                    if text.len() + delta.len() <= MAX_DELTA_BYTES {
                        text.push_str(delta);
                    }
                }
                None
            }
            "item/completed" => {
                self.item_completed(&params["item"], workspace, &mut events);
                None
            }
            "thread/tokenUsage/updated" => {
                if let Some(usage) = usage_from(&params["tokenUsage"]["total"]) {
                    self.report_usage(usage, &mut events);
                }
                None
            }
            // Older wrappers of the same absolute totals.
            "codex/event/token_count" => {
                let info = if params["msg"]["payload"].is_object() {
                    &params["msg"]["payload"]["info"]
                } else {
                    &params["msg"]["info"]
                };
                if let Some(usage) = usage_from(&info["total_token_usage"]) {
                    self.report_usage(usage, &mut events);
                }
                None
            }
            "error" => {
                let message = params["error"]["message"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_owned();
                let message = if params["willRetry"].as_bool() == Some(true) {
                    format!("{message} (retrying)")
                } else {
                    message
                };
                events.push(AgentEvent::Error { message });
                None
            }
            "turn/completed" => {
                let turn = &params["turn"];
                match turn["status"].as_str() {
                    Some("completed") => Some(TurnEnd::Completed),
                    Some("interrupted") => Some(TurnEnd::Interrupted),
                    Some("failed") => Some(TurnEnd::Failed(turn_error(&turn["error"]))),
                    other => {
                        tracing::warn!(status = ?other, "turn/completed with an unexpected status");
                        Some(TurnEnd::Failed(format!(
                            "the turn ended with status {}",
                            other.unwrap_or("(none)")
                        )))
                    }
                }
            }
            // Names older app-servers and Symphony's spec use.
            "turn/failed" => Some(TurnEnd::Failed(turn_error(&params["error"]))),
            "turn/cancelled" => Some(TurnEnd::Interrupted),
            _ => None,
        };
        (events, end)
    }

    fn report_usage(&mut self, usage: TokenUsage, events: &mut Vec<AgentEvent>) {
        if self.last_usage != Some(usage) {
            self.last_usage = Some(usage);
            events.push(AgentEvent::TokenUsage { usage });
        }
    }

    fn item_completed(&mut self, item: &Value, workspace: &Path, events: &mut Vec<AgentEvent>) {
        let status = item["status"].as_str().unwrap_or("completed");
        match item["type"].as_str().unwrap_or_default() {
            "agentMessage" => {
                let streamed = item["id"]
                    .as_str()
                    .and_then(|id| self.deltas.remove(id))
                    .unwrap_or_default();
                let text = item["text"]
                    .as_str()
                    .filter(|text| !text.is_empty())
                    .map_or(streamed, ToOwned::to_owned);
                if !text.trim().is_empty() {
                    events.push(AgentEvent::Message { text });
                }
            }
            "commandExecution" => {
                let command = item["command"].as_str().unwrap_or_default();
                let mut summary = short(&super::policy::unwrap_shell(command), 200);
                if let Some(code) = item["exitCode"].as_i64() {
                    summary.push_str(&format!(" (exit {code})"));
                } else if status != "completed" {
                    summary.push_str(&format!(" ({status})"));
                }
                events.push(AgentEvent::ToolCall {
                    name: "command".to_owned(),
                    summary,
                    ok: status == "completed" && item["exitCode"].as_i64().unwrap_or(0) == 0,
                });
            }
            "fileChange" => {
                let changes: Vec<(String, String)> = item["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|change| {
                        let path = change["path"].as_str()?;
                        let kind = change["kind"]["type"].as_str().unwrap_or("update");
                        Some((kind.to_owned(), display_path(path, workspace)))
                    })
                    .collect();
                let mut summary = changes
                    .iter()
                    .map(|(kind, path)| format!("{kind} {path}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                if status != "completed" {
                    summary.push_str(&format!(" ({status})"));
                }
                events.push(AgentEvent::ToolCall {
                    name: "apply_patch".to_owned(),
                    summary: short(&summary, 300),
                    ok: status == "completed",
                });
                if status == "completed" {
                    for (_, path) in changes {
                        events.push(AgentEvent::FileChange { path });
                    }
                }
            }
            "mcpToolCall" => {
                let server = item["server"].as_str().unwrap_or("?");
                let tool = item["tool"].as_str().unwrap_or("?");
                events.push(AgentEvent::ToolCall {
                    name: format!("mcp:{server}/{tool}"),
                    summary: short(&item["arguments"].to_string(), 200),
                    ok: status == "completed" && item["error"].is_null(),
                });
            }
            "dynamicToolCall" => {
                let tool = item["tool"].as_str().unwrap_or("?");
                events.push(AgentEvent::ToolCall {
                    name: tool.to_owned(),
                    summary: short(&item["arguments"].to_string(), 200),
                    ok: item["success"].as_bool().unwrap_or(status == "completed"),
                });
            }
            "webSearch" => {
                events.push(AgentEvent::ToolCall {
                    name: "web_search".to_owned(),
                    summary: short(item["query"].as_str().unwrap_or_default(), 200),
                    ok: true,
                });
            }
            _ => {}
        }
    }
}

fn turn_error(error: &Value) -> String {
    let message = error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .unwrap_or("the turn failed")
        .to_owned();
    match error["additionalDetails"].as_str() {
        Some(details) if !details.is_empty() => format!("{message}: {details}"),
        _ => message,
    }
}

/// A path relative to the workspace when it lies inside it.
fn display_path(path: &str, workspace: &Path) -> String {
    Path::new(path)
        .strip_prefix(workspace)
        .map(|relative| relative.display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}

/// Reads absolute totals leniently: camelCase or snake_case, numbers or numeric strings.
pub(crate) fn usage_from(value: &Value) -> Option<TokenUsage> {
    if !value.is_object() {
        return None;
    }
    let pick = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| number(&value[*name]))
            .unwrap_or(0)
    };
    let input = pick(&[
        "inputTokens",
        "input_tokens",
        "promptTokens",
        "prompt_tokens",
    ]);
    let output = pick(&[
        "outputTokens",
        "output_tokens",
        "completionTokens",
        "completion_tokens",
    ]);
    let total = ["totalTokens", "total_tokens", "total"]
        .iter()
        .find_map(|name| number(&value[*name]))
        .unwrap_or(input + output);
    Some(TokenUsage {
        input_tokens: input,
        output_tokens: output,
        total_tokens: total,
    })
}

fn number(value: &Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(input: u64, output: u64, total: u64) -> TokenUsage {
        TokenUsage {
            input_tokens: input,
            output_tokens: output,
            total_tokens: total,
        }
    }

    #[test]
    fn token_usage_is_the_absolute_total_never_the_delta() {
        let mut tracker = Tracker::new("t".into());
        tracker.begin("u".into());
        let ws = Path::new("/ws");
        let update = |total: (u64, u64, u64), last: (u64, u64, u64)| {
            json!({"threadId": "t", "turnId": "u", "tokenUsage": {
                "total": {"inputTokens": total.0, "outputTokens": total.1, "totalTokens": total.2, "cachedInputTokens": 0},
                "last": {"inputTokens": last.0, "outputTokens": last.1, "totalTokens": last.2}}})
        };
        let (first, _) = tracker.on_notification(
            "thread/tokenUsage/updated",
            &update((100, 20, 120), (100, 20, 120)),
            ws,
        );
        let (second, _) = tracker.on_notification(
            "thread/tokenUsage/updated",
            &update((250, 50, 300), (150, 30, 180)),
            ws,
        );
        let (repeat, _) = tracker.on_notification(
            "thread/tokenUsage/updated",
            &update((250, 50, 300), (0, 0, 0)),
            ws,
        );
        assert_eq!(
            first,
            [AgentEvent::TokenUsage {
                usage: usage(100, 20, 120)
            }]
        );
        assert_eq!(
            second,
            [AgentEvent::TokenUsage {
                usage: usage(250, 50, 300)
            }]
        );
        assert!(repeat.is_empty());
        let legacy = json!({"msg": {"type": "token_count", "info": {"total_token_usage": {"input_tokens": "300", "output_tokens": 60, "total_tokens": 360}}}});
        let (old, _) = tracker.on_notification("codex/event/token_count", &legacy, ws);
        assert_eq!(
            old,
            [AgentEvent::TokenUsage {
                usage: usage(300, 60, 360)
            }]
        );
        // Totals that arrive after their turn ended still count: they are the thread's.
        tracker.finish();
        let (late, _) = tracker.on_notification(
            "thread/tokenUsage/updated",
            &update((500, 80, 580), (0, 0, 0)),
            ws,
        );
        assert_eq!(
            late,
            [AgentEvent::TokenUsage {
                usage: usage(500, 80, 580)
            }]
        );
    }

    #[test]
    fn items_become_messages_tool_calls_and_file_changes() {
        let mut tracker = Tracker::new("t".into());
        tracker.begin("u".into());
        let ws = Path::new("/ws");
        let completed = |item: Value| json!({"threadId": "t", "turnId": "u", "item": item});
        for delta in ["Hel", "lo"] {
            tracker.on_notification(
                "item/agentMessage/delta",
                &json!({"threadId": "t", "turnId": "u", "itemId": "m1", "delta": delta}),
                ws,
            );
        }
        let (message, _) = tracker.on_notification(
            "item/completed",
            &completed(json!({"type": "agentMessage", "id": "m1", "text": "Hello"})),
            ws,
        );
        assert_eq!(
            message,
            [AgentEvent::Message {
                text: "Hello".into()
            }]
        );
        let (command, _) = tracker.on_notification(
            "item/completed",
            &completed(json!({"type": "commandExecution", "id": "c", "command": "/bin/bash -lc \"cargo test\"", "status": "failed", "exitCode": 101})),
            ws,
        );
        assert_eq!(
            command,
            [AgentEvent::ToolCall {
                name: "command".into(),
                summary: "cargo test (exit 101)".into(),
                ok: false
            }]
        );
        let (patch, _) = tracker.on_notification(
            "item/completed",
            &completed(json!({"type": "fileChange", "id": "p", "status": "completed", "changes": [
                {"path": "/ws/src/a.rs", "kind": {"type": "add"}, "diff": ""},
                {"path": "/elsewhere/b.rs", "kind": {"type": "update", "move_path": null}, "diff": ""}]})),
            ws,
        );
        assert_eq!(
            patch,
            [
                AgentEvent::ToolCall {
                    name: "apply_patch".into(),
                    summary: "add src/a.rs, update /elsewhere/b.rs".into(),
                    ok: true
                },
                AgentEvent::FileChange {
                    path: "src/a.rs".into()
                },
                AgentEvent::FileChange {
                    path: "/elsewhere/b.rs".into()
                },
            ]
        );
        let (mcp, _) = tracker.on_notification(
            "item/completed",
            &completed(json!({"type": "mcpToolCall", "id": "m", "server": "factory", "tool": "verify", "status": "completed", "arguments": {"path": "x"}, "error": null})),
            ws,
        );
        assert_eq!(
            mcp,
            [AgentEvent::ToolCall {
                name: "mcp:factory/verify".into(),
                summary: "{\"path\":\"x\"}".into(),
                ok: true
            }]
        );
        // A message that never completed is flushed when the turn ends.
        tracker.on_notification(
            "item/agentMessage/delta",
            &json!({"threadId": "t", "turnId": "u", "itemId": "m2", "delta": "partial"}),
            ws,
        );
        assert_eq!(
            tracker.finish(),
            [AgentEvent::Message {
                text: "partial".into()
            }]
        );
    }

    #[test]
    fn turn_endings_and_foreign_notifications() {
        let mut tracker = Tracker::new("t".into());
        tracker.begin("u1".into());
        let ws = Path::new("/ws");
        let (_, end) = tracker.on_notification(
            "turn/completed",
            &json!({"threadId": "other", "turn": {"id": "u1", "status": "completed"}}),
            ws,
        );
        assert_eq!(end, None, "another thread's turn");
        let (_, end) = tracker.on_notification(
            "turn/completed",
            &json!({"threadId": "t", "turn": {"id": "u1", "status": "failed", "error": {"message": "boom", "additionalDetails": "stream closed"}}}),
            ws,
        );
        assert_eq!(end, Some(TurnEnd::Failed("boom: stream closed".into())));
        tracker.finish();
        tracker.begin("u2".into());
        let (_, end) = tracker.on_notification(
            "turn/completed",
            &json!({"threadId": "t", "turn": {"id": "u1", "status": "interrupted"}}),
            ws,
        );
        assert_eq!(end, None, "a late notification of an old turn");
        let (_, end) = tracker.on_notification(
            "turn/completed",
            &json!({"threadId": "t", "turn": {"id": "u2", "status": "interrupted"}}),
            ws,
        );
        assert_eq!(end, Some(TurnEnd::Interrupted));
        let (events, end) = tracker.on_notification(
            "error",
            &json!({"threadId": "t", "turnId": "u2", "willRetry": true, "error": {"message": "Reconnecting... 1/5"}}),
            ws,
        );
        assert_eq!(
            events,
            [AgentEvent::Error {
                message: "Reconnecting... 1/5 (retrying)".into()
            }]
        );
        assert_eq!(end, None);
        let (events, _) = tracker.on_notification(
            "account/rateLimits/updated",
            &json!({"rateLimits": {"limitId": "codex"}}),
            ws,
        );
        assert_eq!(
            events,
            [AgentEvent::RateLimits {
                limits: json!({"limitId": "codex"})
            }]
        );
        assert_eq!(tracker.rate_limits, Some(json!({"limitId": "codex"})));
    }
}
