//! The lines takt writes to Claude Code's stdin (stream-json input and the stdio control
//! protocol), as verified against Claude Code 2.1.330 (agent-protocols.md §2.6):
//!
//! ```text
//! >> {"type":"user","message":{"role":"user","content":[{"type":"text","text":"…"}]}}
//! << {"type":"control_request","request_id":"…","request":{"subtype":"can_use_tool","tool_name":"Write","input":{…},…}}
//! >> {"type":"control_response","response":{"subtype":"success","request_id":"…","response":{"behavior":"allow","updatedInput":{…}}}}
//! >> {"type":"control_response","response":{"subtype":"success","request_id":"…","response":{"behavior":"deny","message":"…"}}}
//! >> {"type":"control_response","response":{"subtype":"error","request_id":"…","error":"…"}}
//! >> {"type":"control_request","request_id":"takt-interrupt-1","request":{"subtype":"interrupt"}}
//! << {"type":"control_response","response":{"subtype":"success","request_id":"takt-interrupt-1","response":{…}}}
//! ```
//!
//! An interrupt ends the running turn with a `result` of subtype `error_during_execution`
//! (`terminal_reason: "aborted_streaming"`); the process stays usable.

use serde_json::{Value, json};

/// One line (with its newline) holding a user message with `text`.
pub fn user_message(text: &str) -> String {
    line(&json!({
        "type": "user",
        "message": {"role": "user", "content": [{"type": "text", "text": text}]},
        "parent_tool_use_id": null,
    }))
}

/// Allows a `can_use_tool` request, running the tool with `input`.
pub fn allow(request_id: &str, input: Value) -> String {
    success(
        request_id,
        json!({"behavior": "allow", "updatedInput": input}),
    )
}

/// Denies a `can_use_tool` request; `message` is what the model is told.
pub fn deny(request_id: &str, message: &str) -> String {
    success(request_id, json!({"behavior": "deny", "message": message}))
}

/// Refuses a control request takt does not handle.
pub fn control_error(request_id: &str, error: &str) -> String {
    line(&json!({
        "type": "control_response",
        "response": {"subtype": "error", "request_id": request_id, "error": error},
    }))
}

/// Asks Claude to stop the running turn.
pub fn interrupt(request_id: &str) -> String {
    line(&json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": "interrupt"},
    }))
}

fn success(request_id: &str, response: Value) -> String {
    line(&json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    }))
}

fn line(value: &Value) -> String {
    let mut text = value.to_string();
    text.push('\n');
    text
}

/// The `type` of a stdout message.
pub fn kind(message: &Value) -> &str {
    message.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A string field, or "".
pub fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

/// `text` cut to at most `max` bytes (on a character boundary), with `…` when cut.
pub fn short(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn parse(line: &str) -> Value {
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn lines_have_the_verified_shapes() {
        let user = parse(&user_message("fix it\nplease"));
        assert_eq!(user["type"], "user");
        assert_eq!(user["message"]["content"][0]["text"], "fix it\nplease");
        let allowed = parse(&allow("r1", json!({"file_path": "/ws/a"})));
        assert_eq!(allowed["response"]["subtype"], "success");
        assert_eq!(allowed["response"]["request_id"], "r1");
        assert_eq!(allowed["response"]["response"]["behavior"], "allow");
        assert_eq!(
            allowed["response"]["response"]["updatedInput"]["file_path"],
            "/ws/a"
        );
        let denied = parse(&deny("r2", "no"));
        assert_eq!(denied["response"]["response"]["message"], "no");
        let error = parse(&control_error("r3", "unsupported"));
        assert_eq!(error["response"]["subtype"], "error");
        assert_eq!(error["response"]["error"], "unsupported");
        let stop = parse(&interrupt("i1"));
        assert_eq!(stop["request"]["subtype"], "interrupt");
    }

    #[test]
    fn short_cuts_on_char_boundaries() {
        assert_eq!(short("abc", 5), "abc");
        assert_eq!(short("ääää", 3), "ä…");
    }
}
