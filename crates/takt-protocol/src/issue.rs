use serde::{Deserialize, Serialize};

/// A tracker item normalized to Symphony's field set. Every field is always present in
/// JSON: nullable fields are `null`, collections are `[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// Opaque, stable dispatch identity chosen by the tracker adapter.
    pub id: String,
    /// Human key, unique within the tracker's scope (e.g. `TAKT-12`); names the workspace.
    pub identifier: String,
    pub title: String,
    pub description: Option<String>,
    /// 0-4 where 1 is most urgent; 0 or null sort last.
    pub priority: Option<i64>,
    /// The tracker's own spelling of the state.
    pub state: String,
    pub branch_name: Option<String>,
    pub url: Option<String>,
    pub assignee_id: Option<String>,
    /// Trimmed, lowercased, de-duplicated.
    pub labels: Vec<String>,
    pub blocked_by: Vec<BlockerRef>,
    /// Whether the adapter considers the issue ready (assignment, blockers, board membership).
    pub dispatchable: bool,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// RFC 3339.
    pub updated_at: Option<String>,
    /// Provider reference that is JSON-safe and holds no secret.
    pub native_ref: Option<serde_json::Value>,
}

/// One blocker of an issue; every field is best effort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockerRef {
    pub id: Option<String>,
    pub identifier: Option<String>,
    pub state: Option<String>,
}

/// States compare trimmed and case-insensitively.
pub fn normalize_state(state: &str) -> String {
    state.trim().to_lowercase()
}

/// Labels compare trimmed and lowercased.
pub fn normalize_label(label: &str) -> String {
    label.trim().to_lowercase()
}

impl Issue {
    /// Who created the issue, when the tracker says (`native_ref.author`): the person who may
    /// not be its only approver.
    pub fn author(&self) -> Option<&str> {
        self.native_ref
            .as_ref()?
            .get("author")?
            .as_str()
            .filter(|author| !author.trim().is_empty())
    }

    /// True when the four identity fields the scheduler needs are present.
    pub fn has_required_fields(&self) -> bool {
        [&self.id, &self.identifier, &self.title, &self.state]
            .iter()
            .all(|field| !field.trim().is_empty())
    }
}
