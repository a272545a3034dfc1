//! The prompt: strict Liquid parsing and rendering.
//!
//! Strictness: an unknown filter or tag fails at parse time; an unknown variable or field fails at
//! render time, including inside `{% if %}`/`{% unless %}`/`{% case %}` conditions (liquid-rust
//! alone treats an unknown name in a condition as nil, so the render data records every lookup
//! of a missing name and the render fails if there was one). One gap remains: a `for` loop
//! copies its items, so a condition on a missing field of a loop variable
//! (`{% for b in issue.blocked_by %}{% if b.typo %}`) is nil rather than an error; printing it
//! (`{{ b.typo }}`) still fails.

mod diagnose;
mod tracked;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use liquid::model::{KString, Value as LValue};
use takt_protocol::{Issue, RetryKind};

use crate::error::{Position, WorkflowError};
use tracked::{Tracked, TrackedObject};

/// The prompt used when the body is empty.
pub const DEFAULT_PROMPT: &str = "You are working on an issue from the configured tracker.

Identifier: {{ issue.identifier }}
Title: {{ issue.title }}

Body:
{% if issue.description %}
{{ issue.description }}
{% else %}
No description provided.
{% endif %}";

/// What a prompt is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct PromptContext<'a> {
    /// Every field is available as `issue.<field>`; `labels` and `blocked_by` are lists.
    pub issue: &'a Issue,
    /// `attempt`: nil on the first run, else the 1-based retry/continuation count.
    pub attempt: Option<u32>,
    /// `retry_kind`: why this run is a retry (`continuation`, `failure`, ...), or nil.
    pub retry_kind: Option<RetryKind>,
    /// `last_error`: what went wrong in the previous run, or nil.
    pub last_error: Option<&'a str>,
    /// `feedback`: reviewer or gate feedback from the previous round, or nil.
    pub feedback: Option<&'a str>,
}

impl<'a> PromptContext<'a> {
    /// The context of a first run: every optional variable nil.
    pub fn first_run(issue: &'a Issue) -> Self {
        Self {
            issue,
            attempt: None,
            retry_kind: None,
            last_error: None,
            feedback: None,
        }
    }
}

/// A parsed prompt template.
#[derive(Clone)]
pub struct PromptTemplate {
    source: String,
    is_default: bool,
    template: Arc<liquid::Template>,
}

impl fmt::Debug for PromptTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptTemplate")
            .field("source", &self.source)
            .field("is_default", &self.is_default)
            .finish_non_exhaustive()
    }
}

impl PromptTemplate {
    /// Parses the trimmed body. `start` is the file position of its first character, so parse
    /// errors point into the file. An empty body selects [`DEFAULT_PROMPT`].
    pub(crate) fn parse(body: &str, start: Position, path: &Path) -> Result<Self, WorkflowError> {
        let (text, is_default) = if body.is_empty() {
            (DEFAULT_PROMPT, true)
        } else {
            (body, false)
        };
        let template = liquid::ParserBuilder::with_stdlib()
            .build()
            .and_then(|parser| parser.parse(text))
            .map_err(|err| {
                let (message, position) = diagnose::parse_error(&err.to_string(), text, start);
                WorkflowError::TemplateParse {
                    path: path.to_path_buf(),
                    position,
                    message,
                }
            })?;
        Ok(Self {
            source: body.to_owned(),
            is_default,
            template: Arc::new(template),
        })
    }

    /// The trimmed prompt body as written; empty when the file has none.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the body is empty and [`DEFAULT_PROMPT`] is used.
    pub fn is_default(&self) -> bool {
        self.is_default
    }

    /// The template text that is actually rendered.
    pub fn effective_source(&self) -> &str {
        if self.is_default {
            DEFAULT_PROMPT
        } else {
            &self.source
        }
    }

    pub(crate) fn render(
        &self,
        ctx: &PromptContext<'_>,
        path: &Path,
    ) -> Result<String, WorkflowError> {
        let fail = |message: String| WorkflowError::TemplateRender {
            path: path.to_path_buf(),
            issue: Some(ctx.issue.identifier.clone()),
            message,
        };
        let issue = serde_json::to_value(ctx.issue)
            .map_err(|e| fail(format!("cannot convert the issue: {e}")))?;
        let misses = Rc::new(RefCell::new(BTreeSet::new()));
        let mut globals = BTreeMap::new();
        globals.insert(
            KString::from_static("issue"),
            Tracked::from_json(&issue, "issue", &misses),
        );
        let optional = |value: Option<LValue>| Tracked::Leaf(value.unwrap_or(LValue::Nil));
        globals.insert(
            KString::from_static("attempt"),
            optional(ctx.attempt.map(|a| LValue::scalar(i64::from(a)))),
        );
        globals.insert(
            KString::from_static("retry_kind"),
            optional(ctx.retry_kind.map(|k| LValue::scalar(k.as_str()))),
        );
        globals.insert(
            KString::from_static("last_error"),
            optional(ctx.last_error.map(|s| LValue::scalar(s.to_owned()))),
        );
        globals.insert(
            KString::from_static("feedback"),
            optional(ctx.feedback.map(|s| LValue::scalar(s.to_owned()))),
        );
        let root = TrackedObject {
            path: String::new(),
            fields: globals,
            misses: Rc::clone(&misses),
        };
        let rendered = self
            .template
            .render(&root)
            .map_err(|err| fail(diagnose::flatten(&err.to_string())))?;
        let misses = misses.borrow();
        if let Some(first) = misses.iter().next() {
            let (parent, _) = first.rsplit_once('.').unwrap_or(("", first));
            let available = if parent.is_empty() {
                "issue, attempt, retry_kind, last_error, feedback".to_owned()
            } else {
                issue_fields_hint(parent, &issue)
            };
            return Err(fail(format!(
                "unknown variable `{}` (available{}: {available})",
                misses.iter().cloned().collect::<Vec<_>>().join("`, `"),
                if parent.is_empty() {
                    String::new()
                } else {
                    format!(" in `{parent}`")
                },
            )));
        }
        Ok(rendered)
    }
}

fn issue_fields_hint(parent: &str, issue: &serde_json::Value) -> String {
    match (parent, issue) {
        ("issue", serde_json::Value::Object(map)) => {
            map.keys().cloned().collect::<Vec<_>>().join(", ")
        }
        _ => "see the issue fields".to_owned(),
    }
}

/// Continuation guidance for turns 2..N on the same thread: never the original prompt.
pub fn continuation_prompt(turn: u32, max_turns: u32) -> String {
    format!(
        "Continuation guidance:

- The previous turn completed normally, but the issue is still in an active state.
- This is continuation turn #{turn} of {max_turns} for the current agent run.
- Resume from the current workspace and workpad state instead of restarting from scratch.
- The original task instructions and prior turn context are already present in this thread, so do not restate them before acting.
- Focus on the remaining work and do not end the turn while the issue stays active unless you are truly blocked.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_guidance_names_the_turn() {
        let text = continuation_prompt(3, 20);
        assert!(text.contains("continuation turn #3 of 20"));
        assert!(text.contains("do not restate"));
    }
}
