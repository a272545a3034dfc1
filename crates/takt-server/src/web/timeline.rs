//! A task's journal as a timeline, and its agents' output as a log. Journal payloads are the
//! core's records as JSON; this reads the few fields worth a line and never trusts their text.

use serde_json::Value;
use takt_protocol::JournalEntry;

use super::html::{attr, text, timestamp, truncate};

/// Longest line the timeline shows for one entry.
const MAX_SUMMARY_CHARS: usize = 240;

/// The timeline: one list item per entry, oldest first.
pub fn timeline(entries: &[JournalEntry]) -> String {
    if entries.is_empty() {
        return r#"<p class="muted">Nothing journaled yet.</p>"#.to_owned();
    }
    let mut items = String::new();
    for entry in entries {
        // Agent chatter goes to the log; the timeline keeps the lifecycle readable.
        if entry.kind == "agent_event_recorded" || entry.kind == "model_call_metered" {
            continue;
        }
        items.push_str(&format!(
            r#"<li data-kind="{kind_attr}"><time>{at}</time> <strong>{kind}</strong> <span>{summary}</span></li>"#,
            kind_attr = attr(&entry.kind),
            at = timestamp(entry.at_ms),
            kind = text(&entry.kind.replace('_', " ")),
            summary = text(&truncate(&summary(&entry.payload), MAX_SUMMARY_CHARS)),
        ));
    }
    format!(r#"<ol class="timeline">{items}</ol>"#)
}

/// The agents' output: one line per agent event that says something, oldest first.
pub fn agent_log(entries: &[JournalEntry]) -> String {
    let mut lines = String::new();
    for entry in entries {
        if let Some(line) = log_line(entry) {
            lines.push_str(&text(&line));
            lines.push('\n');
        }
    }
    lines
}

/// A log line for an `agent_event_recorded` entry, if the event says something.
pub fn log_line(entry: &JournalEntry) -> Option<String> {
    if entry.kind != "agent_event_recorded" {
        return None;
    }
    let event = &entry.payload["event"];
    let field = |name: &str| event[name].as_str().unwrap_or_default().to_owned();
    let said = match event["type"].as_str()? {
        "message" => field("text"),
        "output" => field("line"),
        "tool_call" => format!("[tool] {}: {}", field("name"), field("summary")),
        "file_change" => format!("[file] {}", field("path")),
        "input_required" => format!("[question] {}", field("question")),
        "approval_required" => format!("[approval] {}", field("request")),
        "error" => format!("[error] {}", field("message")),
        "turn_started" => format!("[turn {} started]", event["turn"]),
        "turn_completed" => format!("[turn {} completed]", event["turn"]),
        "turn_failed" => format!("[turn {} failed] {}", event["turn"], field("error")),
        _ => return None,
    };
    let run = entry.payload["run_id"].as_str().unwrap_or_default();
    Some(format!("{} {run} {said}", timestamp(entry.at_ms)))
}

/// The scalar fields of a record, `name=value`, without the ones every entry has.
fn summary(payload: &Value) -> String {
    let Some(fields) = payload.as_object() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (name, value) in fields {
        if matches!(name.as_str(), "kind" | "task_id") {
            continue;
        }
        let shown = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            // Nested records (issues, reports) are on the page's other sections.
            _ => continue,
        };
        parts.push(format!("{name}={shown}"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(kind: &str, payload: Value) -> JournalEntry {
        JournalEntry {
            seq: 1,
            at_ms: 0,
            kind: kind.into(),
            task_id: Some("id-1".into()),
            payload,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn agent_messages_become_log_lines_and_stay_out_of_the_timeline() {
        let message = entry(
            "agent_event_recorded",
            json!({"run_id": "T-1#1", "event": {"type": "message", "text": "<b>hi</b>"}}),
        );
        let line = log_line(&message).expect("a line");
        assert!(line.ends_with("T-1#1 <b>hi</b>"), "{line}");
        assert!(agent_log(std::slice::from_ref(&message)).contains("&lt;b&gt;hi"));
        assert!(!timeline(&[message]).contains("hi"));
    }

    #[test]
    fn the_timeline_names_the_kind_and_the_scalar_fields() {
        let finished = entry(
            "run_finished",
            json!({"kind": "run_finished", "task_id": "id-1", "outcome": "failed", "turns": 2, "issue": {"x": 1}}),
        );
        let html = timeline(&[finished]);
        assert!(html.contains("run finished"), "{html}");
        assert!(html.contains("outcome=failed turns=2"), "{html}");
        assert!(!html.contains("task_id"), "{html}");
    }
}
