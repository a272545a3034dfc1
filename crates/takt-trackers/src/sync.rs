//! Incremental sync: what makes a poll of a large project cost requests proportional to what
//! changed.
//!
//! Per requested state set, the adapter keeps the last snapshot in memory. The first poll (and
//! every `full_sync_every`-th poll after it, and the poll after a paging failure) lists the
//! project in full; the others ask only for issues updated at or after a cursor, in any state,
//! and merge them: an updated issue in one of the requested states replaces (or joins) its
//! snapshot entry, one in another state leaves the snapshot. The cursor starts at the provider's
//! clock (`Date` header) when the full listing began, minus a second of margin, else at the
//! newest `updated_at` seen; it then advances to the newest `updated_at` of each delta. The
//! periodic full listing notices what an updated-since query cannot: deletions, transfers, and
//! issues moved out of scope.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use takt_core::ports::TrackerError;
use takt_protocol::{Issue, normalize_state};
use tokio::sync::Mutex;

/// Default number of polls between full listings.
pub const DEFAULT_FULL_SYNC_EVERY: u32 = 20;

/// How many state sets keep a snapshot (candidates, terminal cleanup, ...).
const MAX_SNAPSHOTS: usize = 8;

/// A full listing and the provider's clock when it began.
pub struct Listing {
    pub issues: Vec<Issue>,
    pub server_time: Option<DateTime<Utc>>,
}

/// Issues updated since a cursor, and the newest `updated_at` among every item the provider
/// returned, including items that are not issues here (GitHub pull requests) or were dropped as
/// malformed, so that they do not hold the cursor back.
pub struct Delta {
    pub issues: Vec<Issue>,
    pub newest_seen: Option<DateTime<Utc>>,
}

/// What a provider offers the sync engine.
#[async_trait]
pub trait Source: Send + Sync {
    /// Every issue in `states` (the provider may filter more loosely; the result is filtered
    /// again), in the provider's order.
    async fn list(&self, states: &[String]) -> Result<Listing, TrackerError>;

    /// Every issue in scope, in any state, updated at or after `since`.
    async fn list_updated_since(&self, since: DateTime<Utc>) -> Result<Delta, TrackerError>;

    /// Recomputes fields that depend on other issues (blocker states, dispatchability) after a
    /// merge changed `changed` (id → current state).
    fn refresh_derived(&self, _issue: &mut Issue, _changed: &HashMap<String, String>) {}
}

#[derive(Default)]
struct Snapshot {
    issues: Vec<Issue>,
    cursor: Option<DateTime<Utc>>,
    polls_since_full: u32,
    needs_full: bool,
    last_used: u64,
}

/// The snapshots of one adapter.
pub struct SyncCache {
    full_sync_every: u32,
    inner: Mutex<(u64, HashMap<Vec<String>, Snapshot>)>,
}

impl std::fmt::Debug for SyncCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncCache")
            .field("full_sync_every", &self.full_sync_every)
            .finish_non_exhaustive()
    }
}

impl SyncCache {
    /// `full_sync_every`: 1 lists in full every poll (no incremental sync).
    pub fn new(full_sync_every: u32) -> SyncCache {
        SyncCache {
            full_sync_every: full_sync_every.max(1),
            inner: Mutex::new((0, HashMap::new())),
        }
    }

    /// The issues in `states`, from a full listing or the snapshot plus a delta.
    pub async fn fetch(
        &self,
        source: &dyn Source,
        states: &[String],
    ) -> Result<Vec<Issue>, TrackerError> {
        let wanted: HashSet<String> = states.iter().map(|s| normalize_state(s)).collect();
        let mut key: Vec<String> = wanted.iter().cloned().collect();
        key.sort();
        let mut guard = self.inner.lock().await;
        let (clock, snapshots) = &mut *guard;
        *clock += 1;
        let now = *clock;
        if !snapshots.contains_key(&key) && snapshots.len() >= MAX_SNAPSHOTS {
            let oldest = snapshots
                .iter()
                .min_by_key(|(_, snapshot)| snapshot.last_used)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                snapshots.remove(&oldest);
            }
        }
        let snapshot = snapshots.entry(key).or_default();
        snapshot.last_used = now;
        let full = snapshot.cursor.is_none()
            || snapshot.needs_full
            || snapshot.polls_since_full + 1 >= self.full_sync_every;
        if full {
            let listing = source.list(states).await?;
            let issues: Vec<Issue> = listing
                .issues
                .into_iter()
                .filter(|issue| wanted.contains(&normalize_state(&issue.state)))
                .collect();
            let newest = newest_update(&issues);
            snapshot.cursor = match listing.server_time {
                Some(time) => Some(time - chrono::Duration::seconds(1)),
                None => newest,
            };
            snapshot.issues = issues;
            snapshot.polls_since_full = 0;
            snapshot.needs_full = false;
            tracing::debug!(count = snapshot.issues.len(), "tracker full sync");
            return Ok(snapshot.issues.clone());
        }
        let Some(since) = snapshot.cursor else {
            return Ok(snapshot.issues.clone());
        };
        let Delta {
            issues: delta,
            newest_seen,
        } = match source.list_updated_since(since).await {
            Ok(delta) => delta,
            Err(error) => {
                if matches!(error, TrackerError::Pagination(_)) {
                    snapshot.needs_full = true;
                }
                return Err(error);
            }
        };
        snapshot.polls_since_full += 1;
        if let Some(newest) = newest_update(&delta).max(newest_seen) {
            snapshot.cursor = Some(snapshot.cursor.map_or(newest, |c| c.max(newest)));
        }
        let changed: HashMap<String, String> = delta
            .iter()
            .map(|issue| (issue.id.clone(), issue.state.clone()))
            .collect();
        merge(&mut snapshot.issues, delta, &wanted);
        if !changed.is_empty() {
            for issue in &mut snapshot.issues {
                source.refresh_derived(issue, &changed);
            }
        }
        tracing::debug!(
            changed = changed.len(),
            count = snapshot.issues.len(),
            "tracker incremental sync"
        );
        Ok(snapshot.issues.clone())
    }
}

/// Applies a delta: issues in `wanted` states replace their entry (or are appended), others
/// leave.
fn merge(issues: &mut Vec<Issue>, delta: Vec<Issue>, wanted: &HashSet<String>) {
    let mut positions: HashMap<String, usize> = issues
        .iter()
        .enumerate()
        .map(|(index, issue)| (issue.id.clone(), index))
        .collect();
    let mut leaving: HashSet<String> = HashSet::new();
    for issue in delta {
        let inside = wanted.contains(&normalize_state(&issue.state));
        match (positions.get(&issue.id).copied(), inside) {
            (Some(index), true) => {
                leaving.remove(&issue.id);
                issues[index] = issue;
            }
            (Some(_), false) => {
                leaving.insert(issue.id.clone());
            }
            (None, true) => {
                positions.insert(issue.id.clone(), issues.len());
                issues.push(issue);
            }
            (None, false) => {}
        }
    }
    if !leaving.is_empty() {
        issues.retain(|issue| !leaving.contains(&issue.id));
    }
}

fn newest_update(issues: &[Issue]) -> Option<DateTime<Utc>> {
    issues
        .iter()
        .filter_map(|issue| issue.updated_at.as_deref())
        .filter_map(parse_time)
        .max()
}

/// An RFC 3339 instant, or `None`.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// An RFC 3339 value kept as the provider spelled it when it parses, else `None`.
pub fn checked_time(value: Option<&serde_json::Value>) -> Option<String> {
    let text = value?.as_str()?;
    parse_time(text).map(|_| text.to_owned())
}

/// The `Date` header of an answer.
pub fn server_time(headers: &reqwest::header::HeaderMap) -> Option<DateTime<Utc>> {
    let value = headers.get("date")?.to_str().ok()?;
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(id: &str, state: &str) -> Issue {
        Issue {
            id: id.to_owned(),
            identifier: id.to_owned(),
            title: id.to_owned(),
            description: None,
            priority: None,
            state: state.to_owned(),
            branch_name: None,
            url: None,
            assignee_id: None,
            labels: Vec::new(),
            blocked_by: Vec::new(),
            dispatchable: true,
            created_at: None,
            updated_at: None,
            native_ref: None,
        }
    }

    #[test]
    fn merging_replaces_appends_and_removes() {
        let wanted: HashSet<String> = ["open".to_owned()].into();
        let mut issues = vec![issue("1", "open"), issue("2", "open"), issue("3", "open")];
        let mut changed = issue("2", "open");
        changed.title = "new".to_owned();
        merge(
            &mut issues,
            vec![
                changed,
                issue("3", "closed"),
                issue("4", "open"),
                issue("5", "closed"),
            ],
            &wanted,
        );
        let ids: Vec<&str> = issues.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "4"]);
        assert_eq!(issues[1].title, "new");
    }
}
