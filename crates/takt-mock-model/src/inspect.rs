//! Reading what the mock needs out of a request body: the scenario marker, the number of tool
//! results, the working directory for placeholders, and a few flags.

use serde_json::Value;

use crate::scenario::is_name_char;

/// The three model APIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    Responses,
    Chat,
    Messages,
}

impl Api {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Api::Responses => "responses",
            Api::Chat => "chat",
            Api::Messages => "messages",
        }
    }
}

/// What the server learned from one request body.
#[derive(Debug)]
pub(crate) struct Inspected {
    /// The first marker anywhere in the body as sent.
    pub marker: Option<String>,
    /// The first marker in the request's system text (see [`system_text`]): the client's own
    /// instructions, which outrank a scenario claiming the model.
    pub system_marker: Option<String>,
    pub tool_results: usize,
    pub model: Option<String>,
    pub stream: bool,
    pub has_tools: bool,
    pub include_usage: bool,
    pub body_len: usize,
}

/// `raw` is the body as sent: the marker is searched in it as text, so the first marker in
/// the order the client wrote wins.
pub(crate) fn inspect(api: Api, body: &Value, raw: &[u8]) -> Inspected {
    Inspected {
        marker: find_marker(&String::from_utf8_lossy(raw)),
        system_marker: find_marker(&system_text(api, body)),
        tool_results: count_tool_results(api, body),
        model: body.get("model").and_then(Value::as_str).map(str::to_owned),
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        has_tools: body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty()),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        body_len: raw.len(),
    }
}

/// All string values of `body` joined by newlines (JSON-decoded, so paths read as written);
/// `"cwd"` / `"workdir"` fields are wrapped as `<cwd>…</cwd>` so that [`find_cwd`] sees them.
pub(crate) fn haystack(body: &Value) -> String {
    let mut out = String::new();
    collect_strings(body, &mut out);
    out
}

fn collect_strings(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                // Keep `"cwd": "/x"` style fields findable as text.
                if (k == "cwd" || k == "workdir")
                    && let Value::String(s) = v
                {
                    out.push_str("<cwd>");
                    out.push_str(s);
                    out.push_str("</cwd>\n");
                    continue;
                }
                collect_strings(v, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The request's system text, the instructions the client itself set rather than the
/// conversation: Responses `instructions` and `system` / `developer` input items, Chat
/// `system` / `developer` messages, Messages `system`. All string values, joined by newlines.
pub(crate) fn system_text(api: Api, body: &Value) -> String {
    let mut out = String::new();
    let is_system = |item: &&Value| matches!(role(item), Some("system" | "developer"));
    match api {
        Api::Responses => {
            if let Some(instructions) = body.get("instructions") {
                collect_strings(instructions, &mut out);
            }
            let items = body.get("input").and_then(Value::as_array).into_iter();
            for item in items.flatten().filter(is_system) {
                if let Some(content) = item.get("content") {
                    collect_strings(content, &mut out);
                }
            }
        }
        Api::Chat => {
            for message in messages(body).filter(is_system) {
                if let Some(content) = message.get("content") {
                    collect_strings(content, &mut out);
                }
            }
        }
        Api::Messages => {
            if let Some(system) = body.get("system") {
                collect_strings(system, &mut out);
            }
        }
    }
    out
}

const MARKER: &str = "[[scenario:";

/// The first `[[scenario:NAME]]` marker in the text.
pub(crate) fn find_marker(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(start) = rest.find(MARKER) {
        let after = &rest[start + MARKER.len()..];
        if let Some(end) = after.find("]]") {
            let name = after[..end].trim();
            if !name.is_empty() && name.chars().all(is_name_char) {
                return Some(name.to_owned());
            }
        }
        rest = after;
    }
    None
}

/// The number of tool results already in the conversation, which selects the step.
pub(crate) fn count_tool_results(api: Api, body: &Value) -> usize {
    match api {
        Api::Responses => body
            .get("input")
            .and_then(Value::as_array)
            .map_or(0, |items| {
                items
                    .iter()
                    .filter(|i| {
                        matches!(
                            i.get("type").and_then(Value::as_str),
                            Some("function_call_output" | "custom_tool_call_output")
                        )
                    })
                    .count()
            }),
        Api::Chat => messages(body)
            .filter(|m| matches!(role(m), Some("tool" | "function")))
            .count(),
        Api::Messages => messages(body)
            .filter(|m| role(m) == Some("user"))
            .filter_map(|m| m.get("content").and_then(Value::as_array))
            .flatten()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .count(),
    }
}

fn messages(body: &Value) -> impl Iterator<Item = &Value> {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

/// The working directory named in the request, if any: Codex's `<cwd>…</cwd>` in the
/// environment context, Claude Code's `Primary working directory: …` / `Working directory: …`
/// in its system prompt, or a JSON field `"cwd"` / `"workdir"` holding an absolute path.
pub(crate) fn find_cwd(haystack: &str) -> Option<String> {
    if let Some(path) = haystack.split("<cwd>").skip(1).find_map(|after| {
        let end = after.find("</cwd>")?;
        let path = after[..end].trim();
        path.starts_with('/').then(|| path.to_owned())
    }) {
        return Some(path);
    }
    for label in ["Primary working directory:", "Working directory:"] {
        if let Some(path) = haystack
            .split(label)
            .skip(1)
            .find_map(|after| path_token(after.trim_start_matches([' ', '\t'])))
        {
            return Some(path);
        }
    }
    None
}

/// The first absolute path that follows the word "workspace" closely (on the same line, within
/// 40 characters), for example `workspace: /tmp/ws` or ``the workspace `/tmp/ws` ``.
pub(crate) fn find_workspace(haystack: &str) -> Option<String> {
    let lower = haystack.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("workspace") {
        let start = from + pos + "workspace".len();
        let window: String = haystack[start..]
            .chars()
            .take(40)
            .take_while(|c| *c != '\n')
            .collect();
        let mut prev = 'e';
        for (i, c) in window.char_indices() {
            // `window` is a prefix of `haystack[start..]`, so byte offsets agree.
            if c == '/'
                && matches!(prev, ' ' | '\t' | ':' | '=' | '`' | '"' | '\'' | '(')
                && let Some(path) = path_token(&haystack[start + i..])
            {
                return Some(path);
            }
            prev = c;
        }
        from = start;
    }
    None
}

/// An absolute path at the start of `text`, up to whitespace, a quote, a backtick or `<`, with
/// trailing punctuation removed.
fn path_token(text: &str) -> Option<String> {
    if !text.starts_with('/') {
        return None;
    }
    let end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | ')'))
        .unwrap_or(text.len());
    let path = text[..end].trim_end_matches(['.', ',', ';', ':']);
    (path.len() > 1).then(|| path.to_owned())
}

/// Replaces `{{cwd}}` and `{{workspace}}` in `text`. `{{cwd}}` prefers the working directory,
/// `{{workspace}}` prefers the path after "workspace"; each falls back to the other, and a
/// placeholder with neither is left as it is.
pub(crate) struct Placeholders {
    cwd: Option<String>,
    workspace: Option<String>,
}

impl Placeholders {
    pub(crate) fn from_haystack(haystack: &str) -> Self {
        let cwd = find_cwd(haystack);
        let workspace = find_workspace(haystack);
        Placeholders {
            cwd: cwd.clone().or_else(|| workspace.clone()),
            workspace: workspace.or(cwd),
        }
    }

    pub(crate) fn apply(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Some(cwd) = &self.cwd {
            out = out.replace("{{cwd}}", cwd);
        }
        if let Some(ws) = &self.workspace {
            out = out.replace("{{workspace}}", ws);
        }
        out
    }

    pub(crate) fn apply_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.apply(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.apply_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.apply_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn marker_is_found_anywhere() {
        assert_eq!(
            find_marker("hello [[scenario:add-test]] x"),
            Some("add-test".to_owned())
        );
        assert_eq!(
            find_marker("[[scenario:bad name]] then [[scenario:ok_1.2]]"),
            Some("ok_1.2".to_owned())
        );
        assert_eq!(find_marker("[[scenario:]] [[scenario:x"), None);
        let body = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "do it [[scenario:s1]]"}]}]});
        assert_eq!(
            inspect(Api::Messages, &body, body.to_string().as_bytes()).marker,
            Some("s1".to_owned())
        );
    }

    #[test]
    fn system_markers_are_told_apart_from_conversation_markers() {
        let user_only =
            json!({"messages": [{"role": "user", "content": "task [[scenario:agent]]"}]});
        let seen = inspect(Api::Chat, &user_only, user_only.to_string().as_bytes());
        assert_eq!(seen.marker.as_deref(), Some("agent"));
        assert_eq!(seen.system_marker, None);

        let chat = json!({"messages": [
            {"role": "user", "content": "task [[scenario:agent]]"},
            {"role": "developer", "content": "[[scenario:dev]]"},
        ]});
        assert_eq!(
            find_marker(&system_text(Api::Chat, &chat)).as_deref(),
            Some("dev")
        );
        let responses = json!({
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "[[scenario:agent]]"}]},
                {"role": "system", "content": "[[scenario:sys]]"},
            ],
            "instructions": "[[scenario:first]]",
        });
        assert_eq!(
            find_marker(&system_text(Api::Responses, &responses)).as_deref(),
            Some("first")
        );
        let messages = json!({
            "system": [{"type": "text", "text": "reviewer [[scenario:qa]]"}],
            "messages": [{"role": "user", "content": "[[scenario:agent]]"}],
        });
        assert_eq!(
            find_marker(&system_text(Api::Messages, &messages)).as_deref(),
            Some("qa")
        );
        // A role-less Responses input string is conversation, not instructions.
        let plain = json!({"input": "[[scenario:agent]]"});
        assert_eq!(system_text(Api::Responses, &plain), "");
    }

    #[test]
    fn counts_tool_results_per_api() {
        let responses = json!({"input": [
            {"type": "message", "role": "user", "content": []},
            {"type": "function_call", "call_id": "c1"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "ok"},
        ]});
        assert_eq!(count_tool_results(Api::Responses, &responses), 2);
        let chat = json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": []},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ]});
        assert_eq!(count_tool_results(Api::Chat, &chat), 1);
        let messages = json!({"messages": [
            {"role": "user", "content": "plain"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1"}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "ok"},
            ]},
            {"role": "system", "content": "mid-conversation system message"},
        ]});
        assert_eq!(count_tool_results(Api::Messages, &messages), 2);
        assert_eq!(count_tool_results(Api::Messages, &json!("x")), 0);
    }

    #[test]
    fn cwd_from_codex_and_claude() {
        let codex = "<environment_context>\n  <cwd>/tmp/ws one</cwd>\n</environment_context>";
        assert_eq!(find_cwd(codex), Some("/tmp/ws one".to_owned()));
        let claude =
            "<env>\nWorking directory: /var/tmp/proj\nIs directory a git repo: Yes\n</env>";
        assert_eq!(find_cwd(claude), Some("/var/tmp/proj".to_owned()));
        let claude2 = " - Primary working directory: /srv/x.\n";
        assert_eq!(find_cwd(claude2), Some("/srv/x".to_owned()));
        let hay = haystack(&json!({"params": {"cwd": "/from/json"}}));
        assert_eq!(find_cwd(&hay), Some("/from/json".to_owned()));
        assert_eq!(find_cwd("nothing here"), None);
    }

    #[test]
    fn workspace_path_after_the_word() {
        assert_eq!(
            find_workspace("Your workspace: /tmp/w1 is ready"),
            Some("/tmp/w1".to_owned())
        );
        assert_eq!(
            find_workspace("the Workspace is `/a/b`."),
            Some("/a/b".to_owned())
        );
        assert_eq!(find_workspace("workspace\n/not/same/line"), None);
        assert_eq!(find_workspace("workspace-write sandbox"), None);
    }

    #[test]
    fn placeholders_fall_back_and_leave_unknown() {
        let p = Placeholders::from_haystack("<cwd>/c</cwd>");
        assert_eq!(p.apply("{{cwd}}/a {{workspace}}/b"), "/c/a /c/b");
        let p = Placeholders::from_haystack("nothing");
        assert_eq!(p.apply("{{cwd}}/a"), "{{cwd}}/a");
        let p = Placeholders::from_haystack("workspace: /w\n<cwd>/c</cwd>");
        assert_eq!(
            p.apply_json(&json!({"path": "{{workspace}}/x", "n": 1, "l": ["{{cwd}}"]})),
            json!({"path": "/w/x", "n": 1, "l": ["/c"]})
        );
    }
}
