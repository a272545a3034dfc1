//! The embedded tracker (`tracker.kind: local`): issues are rows in takt's own database.
//!
//! Profile:
//! - `kind`: `local`; no provider keys or secrets; scope is the whole state directory; no paging.
//! - `id` is a UUID v7; `identifier` is `TAKT-<n>` with `n` from a database counter, so it is
//!   unique even when several processes create issues at once; `url`, `branch_name` and
//!   `assignee_id` are null; `native_ref` is `{"author": NAME}` when the creator is known
//!   (else null).
//! - States are free text, kept as spelled and matched trimmed and case-insensitively.
//! - Labels are trimmed, lowercased, de-duplicated, blanks dropped.
//! - `dispatchable` is true when every blocker is in one of the configured terminal states; a
//!   blocker whose row is gone counts as blocking (its state is unknown).
//! - Errors: database failures are `tracker_request`, unreadable rows `tracker_response`, an
//!   unknown issue `tracker_not_found`.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use takt_core::ports::{Tracker, TrackerError};
use takt_protocol::{BlockerRef, Issue, normalize_label, normalize_state};

use crate::db::Store;
use crate::error::StoreError;

/// The prefix of local identifiers.
pub const IDENTIFIER_PREFIX: &str = "TAKT-";

/// The state a new issue starts in unless told otherwise.
pub const DEFAULT_STATE: &str = "Todo";

/// What `takt task add` (or the API) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewIssue {
    /// Must not be blank; stored trimmed.
    pub title: String,
    pub description: Option<String>,
    /// 0..=4 (1 most urgent, 0 or none sorts last).
    pub priority: Option<i64>,
    /// Normalized on the way in.
    pub labels: Vec<String>,
    /// Identifiers (case-insensitive) or ids of existing local issues.
    pub blocked_by: Vec<String>,
    /// Defaults to [`DEFAULT_STATE`].
    pub state: Option<String>,
    /// Who created it (separation of duties: not its change's only approver).
    pub author: Option<String>,
}

/// The local tracker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LocalTracker {
    store: Store,
    active_states: Arc<Vec<String>>,
    /// Normalized terminal states.
    terminal_keys: Arc<HashSet<String>>,
}

/// Which issues to load.
enum Select<'a> {
    All,
    /// A JSON array of normalized states.
    States(String),
    /// A JSON array of ids.
    Ids(String),
    /// One issue by id or (case-insensitive) identifier.
    Key(&'a str),
}

macro_rules! select_issues {
    () => {
        "SELECT id, identifier, title, description, priority, state, branch_name, url,
                assignee_id, labels, created_at_ms, updated_at_ms, author
         FROM issues"
    };
}

/// An issue row before its blockers are attached.
struct IssueRow {
    id: String,
    identifier: String,
    title: String,
    description: Option<String>,
    priority: Option<i64>,
    state: String,
    branch_name: Option<String>,
    url: Option<String>,
    assignee_id: Option<String>,
    labels: String,
    created_at_ms: i64,
    updated_at_ms: i64,
    author: Option<String>,
}

impl IssueRow {
    fn from_row(row: &SqliteRow) -> Result<IssueRow, sqlx::Error> {
        Ok(IssueRow {
            id: row.try_get("id")?,
            identifier: row.try_get("identifier")?,
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            priority: row.try_get("priority")?,
            state: row.try_get("state")?,
            branch_name: row.try_get("branch_name")?,
            url: row.try_get("url")?,
            assignee_id: row.try_get("assignee_id")?,
            labels: row.try_get("labels")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            author: row.try_get("author")?,
        })
    }
}

impl LocalTracker {
    /// `active_states` and `terminal_states` come from WORKFLOW.md's `tracker` section; the
    /// terminal ones decide when a blocker stops blocking.
    pub fn new(store: Store, active_states: Vec<String>, terminal_states: Vec<String>) -> Self {
        LocalTracker {
            store,
            active_states: Arc::new(active_states),
            terminal_keys: Arc::new(terminal_states.iter().map(|s| normalize_state(s)).collect()),
        }
    }

    /// The configured active states, as given.
    pub fn active_states(&self) -> &[String] {
        &self.active_states
    }

    /// Creates an issue; see [`NewIssue`] for the rules. Identifiers count up from `TAKT-1`.
    pub async fn create_issue(&self, new: NewIssue, now_ms: i64) -> Result<Issue, StoreError> {
        let title = new.title.trim();
        if title.is_empty() {
            return Err(StoreError::Invalid(
                "an issue needs a title that is not blank".to_owned(),
            ));
        }
        if let Some(priority) = new.priority
            && !(0..=4).contains(&priority)
        {
            return Err(StoreError::Invalid(format!(
                "priority {priority} is out of range: use 0 to 4 (1 is the most urgent, 0 means none)"
            )));
        }
        let state = match new.state.as_deref().map(str::trim) {
            None => DEFAULT_STATE,
            Some("") => {
                return Err(StoreError::Invalid(
                    "an issue's state cannot be blank".to_owned(),
                ));
            }
            Some(state) => state,
        };
        let labels = normalize_labels(&new.labels);
        let labels = serde_json::to_string(&labels)
            .map_err(|err| StoreError::Invalid(format!("labels cannot be encoded: {err}")))?;
        let id = uuid::Uuid::now_v7().to_string();
        let store = &self.store;

        let mut tx = store
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| store.sql(e))?;
        let mut blockers: Vec<String> = Vec::new();
        for key in &new.blocked_by {
            let key = key.trim();
            let found: Option<String> =
                sqlx::query_scalar("SELECT id FROM issues WHERE id = ? OR identifier = ?")
                    .bind(key)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| store.sql(e))?;
            match found {
                Some(blocker) if !blockers.contains(&blocker) => blockers.push(blocker),
                Some(_) => {}
                None => {
                    return Err(StoreError::Invalid(format!(
                        "unknown blocker '{key}': no local issue has that identifier or id \
                         (see `takt task list`)"
                    )));
                }
            }
        }
        let number: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = 'issue_number' RETURNING value",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| store.sql(e))?;
        sqlx::query(
            "INSERT INTO issues (id, number, identifier, title, description, priority, state,
                                 state_key, labels, created_at_ms, updated_at_ms, author)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(number)
        .bind(format!("{IDENTIFIER_PREFIX}{number}"))
        .bind(title)
        .bind(&new.description)
        .bind(new.priority)
        .bind(state)
        .bind(normalize_state(state))
        .bind(labels)
        .bind(now_ms)
        .bind(now_ms)
        .bind(
            new.author
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty()),
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| store.sql(e))?;
        for (position, blocker) in blockers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO issue_blockers (issue_id, blocker_id, position) VALUES (?, ?, ?)",
            )
            .bind(&id)
            .bind(blocker)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(|e| store.sql(e))?;
        }
        tx.commit().await.map_err(|e| store.sql(e))?;
        self.get(&id)
            .await?
            .ok_or_else(|| store.corrupt(format!("issue {id} vanished right after it was created")))
    }

    /// One issue by id or identifier (the identifier case-insensitively).
    pub async fn get(&self, id_or_identifier: &str) -> Result<Option<Issue>, StoreError> {
        Ok(self
            .load(Select::Key(id_or_identifier.trim()))
            .await?
            .into_iter()
            .next())
    }

    /// All issues (`None`) or those in any of `states` (case-insensitive), oldest first.
    pub async fn list(&self, states: Option<&[String]>) -> Result<Vec<Issue>, StoreError> {
        match states {
            None => self.load(Select::All).await,
            Some([]) => Ok(Vec::new()),
            Some(states) => self.load(Select::States(state_keys(states)?)).await,
        }
    }

    /// Moves an issue to `state` (kept as spelled); returns it as it is now.
    pub async fn set_state(
        &self,
        id_or_identifier: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<Issue, StoreError> {
        let state = state.trim();
        if state.is_empty() {
            return Err(StoreError::Invalid(
                "an issue's state cannot be blank".to_owned(),
            ));
        }
        let key = id_or_identifier.trim();
        let store = &self.store;
        let updated = sqlx::query(
            "UPDATE issues SET state = ?, state_key = ?, updated_at_ms = ?
             WHERE id = ? OR identifier = ?",
        )
        .bind(state)
        .bind(normalize_state(state))
        .bind(now_ms)
        .bind(key)
        .bind(key)
        .execute(&store.pool)
        .await
        .map_err(|e| store.sql(e))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("local issue '{key}'")));
        }
        self.get(key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("local issue '{key}'")))
    }

    /// Loads issues and their blockers from one read snapshot.
    async fn load(&self, select: Select<'_>) -> Result<Vec<Issue>, StoreError> {
        let store = &self.store;
        let mut tx = store.pool.begin().await.map_err(|e| store.sql(e))?;
        let query = match &select {
            Select::All => sqlx::query(concat!(select_issues!(), " ORDER BY number")),
            Select::States(keys) => sqlx::query(concat!(
                select_issues!(),
                " WHERE state_key IN (SELECT value FROM json_each(?)) ORDER BY number"
            ))
            .bind(keys.as_str()),
            Select::Ids(ids) => sqlx::query(concat!(
                select_issues!(),
                " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY number"
            ))
            .bind(ids.as_str()),
            Select::Key(key) => sqlx::query(concat!(
                select_issues!(),
                " WHERE id = ? OR identifier = ? ORDER BY number"
            ))
            .bind(*key)
            .bind(*key),
        };
        let rows = query
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| store.sql(e))?
            .iter()
            .map(IssueRow::from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| store.sql(e))?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = rows.iter().map(|row| row.id.as_str()).collect();
        let ids = serde_json::to_string(&ids)
            .map_err(|err| StoreError::Invalid(format!("ids cannot be encoded: {err}")))?;
        let blocker_rows = sqlx::query(
            "SELECT b.issue_id, b.blocker_id, i.identifier, i.state
             FROM issue_blockers b LEFT JOIN issues i ON i.id = b.blocker_id
             WHERE b.issue_id IN (SELECT value FROM json_each(?))
             ORDER BY b.issue_id, b.position",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| store.sql(e))?;
        tx.commit().await.map_err(|e| store.sql(e))?;

        let mut blockers: std::collections::HashMap<String, Vec<BlockerRef>> =
            std::collections::HashMap::new();
        for row in &blocker_rows {
            let issue_id: String = row.try_get("issue_id").map_err(|e| store.sql(e))?;
            blockers.entry(issue_id).or_default().push(BlockerRef {
                id: Some(row.try_get("blocker_id").map_err(|e| store.sql(e))?),
                identifier: row.try_get("identifier").map_err(|e| store.sql(e))?,
                state: row.try_get("state").map_err(|e| store.sql(e))?,
            });
        }
        rows.into_iter()
            .map(|row| {
                let blocked_by = blockers.remove(&row.id).unwrap_or_default();
                self.to_issue(row, blocked_by)
            })
            .collect()
    }

    fn to_issue(&self, row: IssueRow, blocked_by: Vec<BlockerRef>) -> Result<Issue, StoreError> {
        let labels: Vec<String> = serde_json::from_str(&row.labels).map_err(|err| {
            self.store.corrupt(format!(
                "issue {} has labels that are not a JSON list of strings ({err})",
                row.identifier
            ))
        })?;
        let dispatchable = blocked_by.iter().all(|blocker| {
            blocker
                .state
                .as_deref()
                .is_some_and(|state| self.terminal_keys.contains(&normalize_state(state)))
        });
        Ok(Issue {
            id: row.id,
            identifier: row.identifier,
            title: row.title,
            description: row.description,
            priority: row.priority,
            state: row.state,
            branch_name: row.branch_name,
            url: row.url,
            assignee_id: row.assignee_id,
            labels,
            blocked_by,
            dispatchable,
            created_at: rfc3339(row.created_at_ms),
            updated_at: rfc3339(row.updated_at_ms),
            native_ref: row
                .author
                .map(|author| serde_json::json!({ "author": author })),
        })
    }
}

#[async_trait]
impl Tracker for LocalTracker {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn fetch_issues_by_states(&self, states: &[String]) -> Result<Vec<Issue>, TrackerError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let keys = state_keys(states).map_err(tracker_error)?;
        self.load(Select::States(keys)).await.map_err(tracker_error)
    }

    async fn fetch_issues_by_ids(&self, ids: &[String]) -> Result<Vec<Issue>, TrackerError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(ids)
            .map_err(|err| TrackerError::Request(format!("ids cannot be encoded: {err}")))?;
        self.load(Select::Ids(ids)).await.map_err(tracker_error)
    }

    async fn transition(&self, issue_id: &str, state: &str) -> Result<(), TrackerError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        self.set_state(issue_id, state, now_ms)
            .await
            .map(|_| ())
            .map_err(tracker_error)
    }
}

fn tracker_error(err: StoreError) -> TrackerError {
    match err {
        StoreError::NotFound(what) => TrackerError::NotFound(what),
        StoreError::Corrupt { .. } => TrackerError::Response(err.to_string()),
        other => TrackerError::Request(other.to_string()),
    }
}

/// Trimmed, lowercased, blanks dropped, first occurrence kept.
fn normalize_labels(labels: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in labels {
        let label = normalize_label(label);
        if !label.is_empty() && !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

fn state_keys(states: &[String]) -> Result<String, StoreError> {
    let keys: Vec<String> = states.iter().map(|s| normalize_state(s)).collect();
    serde_json::to_string(&keys)
        .map_err(|err| StoreError::Invalid(format!("states cannot be encoded: {err}")))
}

fn rfc3339(ms: i64) -> Option<String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_lowercased_deduplicated_and_blanks_dropped() {
        let labels = ["  Bug ", "bug", "", "  ", "UI", "ui "].map(String::from);
        assert_eq!(normalize_labels(&labels), vec!["bug", "ui"]);
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(1_700_000_000_123).as_deref(),
            Some("2023-11-14T22:13:20.123Z")
        );
    }

    #[tokio::test]
    async fn get_matches_identifiers_case_insensitively_and_ids_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let tracker = LocalTracker::new(store, vec!["Todo".into()], vec!["Done".into()]);
        let issue = tracker
            .create_issue(
                NewIssue {
                    title: "  Fix it  ".into(),
                    ..NewIssue::default()
                },
                1_000,
            )
            .await
            .unwrap();
        assert_eq!(issue.title, "Fix it");
        assert_eq!(issue.state, "Todo");
        assert_eq!(tracker.get("takt-1").await.unwrap(), Some(issue.clone()));
        assert_eq!(tracker.get(&issue.id).await.unwrap(), Some(issue.clone()));
        assert_eq!(tracker.get("TAKT-2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn set_state_keeps_the_spelling_and_bumps_updated_at() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).await.unwrap();
        let tracker = LocalTracker::new(store, vec![], vec!["Done".into()]);
        let issue = tracker
            .create_issue(
                NewIssue {
                    title: "x".into(),
                    ..NewIssue::default()
                },
                1_000,
            )
            .await
            .unwrap();
        let moved = tracker
            .set_state("Takt-1", "In Progress", 2_000)
            .await
            .unwrap();
        assert_eq!(moved.state, "In Progress");
        assert_eq!(moved.created_at, issue.created_at);
        assert_eq!(
            moved.updated_at.as_deref(),
            Some("1970-01-01T00:00:02.000Z")
        );
        let err = tracker
            .set_state("TAKT-9", "Done", 3_000)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        let err = tracker.set_state("TAKT-1", "  ", 3_000).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
}
