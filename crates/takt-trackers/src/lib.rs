//! Tracker adapters for remote trackers (R-049..R-067): `linear`, `github`, `gitlab`.
//!
//! [`build`] turns a validated `tracker:` section into an adapter. Every adapter implements
//! [`takt_core::ports::Tracker`], reads its settings from `tracker.provider` (the legacy flat
//! keys `endpoint`, `api_key`, `project_slug`, `assignee` are copied there by the workflow
//! layer), resolves secrets the way R-033 says, and lists issues incrementally (see [`sync`]).
//! Every adapter has comments (`has_comments`): it keeps takt's one status comment per issue,
//! found again by its marker and edited in place (`upsert_comment`), and reads people's comments
//! back as answers to blocked tasks (`comments_since`).
//! The profiles (keys, defaults, identities, errors) are in each module's documentation and in
//! `docs/trackers.md`.
//!
//! Common settings (every kind):
//! - `full_sync_every`: polls between full listings, default 20; `1` disables incremental sync.

mod comments;
pub mod github;
pub mod gitlab;
pub mod http;
pub mod linear;
pub mod sync;

#[cfg(feature = "fake")]
pub mod fake;

use std::sync::Arc;

use takt_core::ports::{Tracker, TrackerError};
use takt_protocol::normalize_label;
use takt_workflow::{Env, TrackerConfig};

/// The tracker kinds this crate implements.
pub const KINDS: &[&str] = &["linear", "github", "gitlab"];

/// Builds the adapter `config.kind` names. Secrets are resolved from `env`; nothing is
/// requested until the first call.
pub fn build(config: &TrackerConfig, env: &dyn Env) -> Result<Arc<dyn Tracker>, TrackerError> {
    match config.kind.as_str() {
        "linear" => Ok(Arc::new(linear::LinearTracker::new(config, env)?)),
        "github" => Ok(Arc::new(github::GithubTracker::new(config, env)?)),
        "gitlab" => Ok(Arc::new(gitlab::GitlabTracker::new(config, env)?)),
        other => Err(TrackerError::UnsupportedKind(format!(
            "`{other}` is not one of {}",
            KINDS.join(", ")
        ))),
    }
}

/// The environment variable that holds `kind`'s credential by default, and the provider key
/// that may override it.
pub fn credential_source(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "linear" => Some(("api_key", "LINEAR_API_KEY")),
        "github" => Some(("token", "GITHUB_TOKEN")),
        "gitlab" => Some(("token", "GITLAB_TOKEN")),
        _ => None,
    }
}

/// Whether `config`'s credential resolves to something non-empty (for `takt doctor`).
pub fn credential_present(config: &TrackerConfig, env: &dyn Env) -> Option<bool> {
    let (key, var) = credential_source(&config.kind)?;
    Some(takt_workflow::resolve_secret(string(config, key).as_deref(), Some(var), env).is_some())
}

/// A string provider setting; blank counts as absent.
pub(crate) fn string(config: &TrackerConfig, key: &str) -> Option<String> {
    config
        .provider
        .get(key)
        .and_then(|value| value.as_str())
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// `full_sync_every` (a positive integer), default [`sync::DEFAULT_FULL_SYNC_EVERY`].
pub(crate) fn full_sync_every(config: &TrackerConfig, kind: &str) -> Result<u32, TrackerError> {
    match config.provider.get("full_sync_every") {
        None => Ok(sync::DEFAULT_FULL_SYNC_EVERY),
        Some(value) => value
            .as_u64()
            .filter(|n| *n >= 1)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                TrackerError::InvalidConfig(format!(
                    "{kind}: `tracker.provider.full_sync_every` must be a positive integer"
                ))
            }),
    }
}

/// `state_labels`: takt state name → label (both kept; labels compare normalized).
pub(crate) fn state_labels(
    config: &TrackerConfig,
    kind: &str,
) -> Result<Vec<(String, String)>, TrackerError> {
    let Some(value) = config.provider.get("state_labels") else {
        return Ok(Vec::new());
    };
    let map = value.as_object().ok_or_else(|| {
        TrackerError::InvalidConfig(format!(
            "{kind}: `tracker.provider.state_labels` must be a map from state name to label"
        ))
    })?;
    let mut pairs = Vec::new();
    for (state, label) in map {
        let label = label
            .as_str()
            .map(normalize_label)
            .filter(|label| !label.is_empty())
            .ok_or_else(|| {
                TrackerError::InvalidConfig(format!(
                    "{kind}: `tracker.provider.state_labels.{state}` must be a non-blank label"
                ))
            })?;
        pairs.push((state.trim().to_owned(), label));
    }
    Ok(pairs)
}

/// Labels normalized: trimmed, lowercased, blanks dropped, de-duplicated in order.
pub(crate) fn normalize_labels<'a>(labels: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for label in labels {
        let label = normalize_label(label);
        if !label.is_empty() && !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// Priority from labels, for trackers without a priority field: `priority:N`, `priority/N`,
/// `priority::N`, `priority-N` or `pN` with N in 1..=4 (1 most urgent); the most urgent wins.
pub(crate) fn priority_from_labels(labels: &[String]) -> Option<i64> {
    labels
        .iter()
        .filter_map(|label| {
            let rest = label
                .strip_prefix("priority")
                .map(|rest| rest.trim_start_matches([':', '/', '-', ' ']))
                .or_else(|| label.strip_prefix('p'))?;
            let n: i64 = rest.trim().parse().ok()?;
            (1..=4).contains(&n).then_some(n)
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_come_from_labels() {
        let labels = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            priority_from_labels(&labels(&["bug", "priority:2"])),
            Some(2)
        );
        assert_eq!(
            priority_from_labels(&labels(&["p3", "priority::1"])),
            Some(1)
        );
        assert_eq!(priority_from_labels(&labels(&["p9", "pages"])), None);
    }

    #[test]
    fn labels_are_normalized() {
        assert_eq!(
            normalize_labels([" Bug", "bug", "", "UI "]),
            vec!["bug".to_owned(), "ui".to_owned()]
        );
    }
}
