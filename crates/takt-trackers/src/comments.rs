//! Issue comments as the REST adapters read them: takt's own comment found again by its
//! marker, and people's comments read back (answers to a blocked task).

use serde_json::Value;
use takt_core::ports::IssueComment;

/// The id of the first comment on `page` (a JSON array) whose body holds `marker`.
pub(crate) fn marked_id(page: &Value, marker: &str) -> Option<u64> {
    page.as_array()?
        .iter()
        .find(|comment| {
            comment
                .get("body")
                .and_then(Value::as_str)
                .is_some_and(|text| text.contains(marker))
        })
        .and_then(|comment| comment.get("id").and_then(Value::as_u64))
}

/// A comment with its body, `created_at` (RFC 3339) and the author's login at
/// `author_pointer`; `None` when the body or the time is missing.
pub(crate) fn parse(item: &Value, author_pointer: &str) -> Option<IssueComment> {
    let created_at_ms = item
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())?
        .timestamp_millis();
    Some(IssueComment {
        author: item
            .pointer(author_pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        body: item.get("body").and_then(Value::as_str)?.to_owned(),
        created_at_ms,
    })
}
