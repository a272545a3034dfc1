//! Scheduling policy: the configuration the state machine decides with, and the pure rules of
//! Symphony's §8 (eligibility, sort order, slots, backoff).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use takt_protocol::{Issue, Millis, normalize_label, normalize_state};

/// The slice of the workflow the core needs, already validated. It is an input to every
/// decision, not state: a reload takes effect at the next event.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Normalized (trimmed, lowercase).
    pub active_states: Vec<String>,
    /// Normalized (trimmed, lowercase).
    pub terminal_states: Vec<String>,
    /// Normalized (trimmed, lowercase).
    pub required_labels: Vec<String>,
    pub max_concurrent_agents: u32,
    /// Keys normalized.
    pub max_concurrent_agents_by_state: BTreeMap<String, u32>,
    pub max_retry_backoff_ms: u64,
    /// Counted runs after which a task fails instead of retrying (takt's extension to R-092).
    pub max_attempts: u32,
    /// `<= 0` disables stall detection.
    pub stall_timeout_ms: i64,
    /// Wall-clock cap of one run.
    pub max_run_duration_ms: u64,
    pub poll_interval_ms: u64,
    /// Tracker state the daemon moves an issue to when work starts / merges / is cancelled by
    /// an operator (write-back; `None` leaves the tracker alone).
    pub on_start_state: Option<String>,
    pub on_done_state: Option<String>,
    pub on_cancel_state: Option<String>,
    /// Tracker state when a change waits for people, and when a task fails.
    pub on_review_state: Option<String>,
    pub on_failed_state: Option<String>,
    /// Tracker state an operator retry moves a terminal issue back to.
    pub on_reopen_state: Option<String>,
    /// Spend caps (`budget:`); unlimited by default.
    pub budget: crate::budget::Budget,
    /// How verification results are acted on (`review:`, `risk:`).
    pub verification: VerifyPolicy,
    /// Tasks created on cron schedules (`schedules:`).
    pub schedules: Vec<crate::schedule::Schedule>,
    /// Where accepted changes go (`publish:`).
    pub publish: PublishPolicy,
}

/// The part of `publish:` the core decides with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishPolicy {
    /// `publish.forge` is a remote forge (GitHub, GitLab): a verified change becomes a pull
    /// request, and merges there once its approvals and checks allow; otherwise takt merges
    /// locally.
    pub forge: bool,
    /// Failed-check rounds on the pull request that go back to the agent; the next failure
    /// fails the task (`publish.max_ci_rounds`).
    pub max_ci_rounds: u32,
}

impl Default for PublishPolicy {
    fn default() -> Self {
        PublishPolicy {
            forge: false,
            max_ci_rounds: 2,
        }
    }
}

/// `review.on_block`: where a change a reviewer blocked goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnBlock {
    /// Back to the agent with the findings, while rounds remain; then to a person.
    #[default]
    SendBack,
    /// Straight to a person.
    Human,
}

/// The part of `review:` and `risk:` the core decides with.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyPolicy {
    /// Verification rounds: the first failing ones send the change back with the evidence,
    /// the `max_rounds`-th failing one fails the task.
    pub max_rounds: u32,
    pub on_block: OnBlock,
    pub risk: crate::risk::RiskPolicy,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        VerifyPolicy {
            max_rounds: 2,
            on_block: OnBlock::SendBack,
            risk: crate::risk::RiskPolicy::default(),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            active_states: vec!["todo".into(), "in progress".into()],
            terminal_states: ["closed", "cancelled", "canceled", "duplicate", "done"]
                .map(String::from)
                .to_vec(),
            required_labels: Vec::new(),
            max_concurrent_agents: 10,
            max_concurrent_agents_by_state: BTreeMap::new(),
            max_retry_backoff_ms: 300_000,
            max_attempts: 4,
            budget: crate::budget::Budget::unlimited(),
            verification: VerifyPolicy::default(),
            schedules: Vec::new(),
            publish: PublishPolicy::default(),
            stall_timeout_ms: 300_000,
            max_run_duration_ms: 3_600_000,
            poll_interval_ms: 30_000,
            on_start_state: None,
            on_done_state: None,
            on_cancel_state: None,
            on_review_state: None,
            on_failed_state: None,
            on_reopen_state: None,
        }
    }
}

impl Policy {
    pub fn is_active(&self, state: &str) -> bool {
        let state = normalize_state(state);
        self.active_states.contains(&state) && !self.terminal_states.contains(&state)
    }

    pub fn is_terminal(&self, state: &str) -> bool {
        self.terminal_states.contains(&normalize_state(state))
    }

    /// dispatchable and carrying every required label. A blank required label matches
    /// nothing.
    pub fn is_routable(&self, issue: &Issue) -> bool {
        issue.dispatchable
            && self.required_labels.iter().all(|required| {
                !required.is_empty()
                    && issue
                        .labels
                        .iter()
                        .any(|label| normalize_label(label) == *required)
            })
    }

    /// The per-state cap for issues in `state`.
    pub fn state_limit(&self, state: &str) -> u32 {
        self.max_concurrent_agents_by_state
            .get(&normalize_state(state))
            .copied()
            .unwrap_or(self.max_concurrent_agents)
    }

    /// `min(10000 * 2^(attempt-1), max_retry_backoff_ms)`, exponent capped at 10.
    pub fn failure_backoff_ms(&self, attempt: u32) -> u64 {
        let exponent = attempt.saturating_sub(1).min(10);
        (10_000u64 << exponent).min(self.max_retry_backoff_ms)
    }
}

/// a continuation is re-checked after a fixed second.
pub const CONTINUATION_DELAY_MS: Millis = 1_000;

/// priority 1..4 first (ascending), everything else after; then oldest `created_at`
/// (missing last); then identifier.
pub fn dispatch_order(a: &Issue, b: &Issue) -> Ordering {
    fn rank(issue: &Issue) -> i64 {
        issue
            .priority
            .filter(|priority| (1..=4).contains(priority))
            .unwrap_or(5)
    }
    rank(a)
        .cmp(&rank(b))
        .then_with(|| match (&a.created_at, &b.created_at) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.identifier.cmp(&b.identifier))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn issue(identifier: &str, priority: Option<i64>, created: Option<&str>) -> Issue {
        Issue {
            id: format!("id-{identifier}"),
            identifier: identifier.into(),
            title: "t".into(),
            description: None,
            priority,
            state: "Todo".into(),
            branch_name: None,
            url: None,
            assignee_id: None,
            labels: vec![],
            blocked_by: vec![],
            dispatchable: true,
            created_at: created.map(String::from),
            updated_at: None,
            native_ref: None,
        }
    }

    #[test]
    fn r079_priority_then_age_then_identifier() {
        let mut issues = [
            issue("C", None, Some("2026-01-01T00:00:00Z")),
            issue("B", Some(2), Some("2026-01-03T00:00:00Z")),
            issue("A", Some(2), Some("2026-01-02T00:00:00Z")),
            issue("Z", Some(0), Some("2025-01-01T00:00:00Z")),
            issue("D", Some(1), None),
            issue("E", Some(2), None),
            issue("F", Some(2), None),
        ];
        issues.sort_by(dispatch_order);
        let order: Vec<&str> = issues.iter().map(|i| i.identifier.as_str()).collect();
        assert_eq!(order, ["D", "A", "B", "E", "F", "Z", "C"]);
    }

    #[test]
    fn r089_backoff_doubles_from_ten_seconds_and_caps() {
        let policy = Policy::default();
        let delays: Vec<u64> = (1..=7).map(|n| policy.failure_backoff_ms(n)).collect();
        assert_eq!(
            delays,
            [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]
        );
        let tight = Policy {
            max_retry_backoff_ms: 15_000,
            ..Policy::default()
        };
        assert_eq!(tight.failure_backoff_ms(2), 15_000);
        assert_eq!(Policy::default().failure_backoff_ms(u32::MAX), 300_000);
    }

    #[test]
    fn r010_required_labels_match_case_insensitively_and_blank_matches_nothing() {
        let mut policy = Policy {
            required_labels: vec!["agent".into()],
            ..Policy::default()
        };
        let mut labelled = issue("A", None, None);
        labelled.labels = vec![" Agent ".into()];
        assert!(policy.is_routable(&labelled));
        assert!(!policy.is_routable(&issue("B", None, None)));
        policy.required_labels = vec![String::new()];
        assert!(!policy.is_routable(&labelled));
    }

    #[test]
    fn r011_states_compare_case_insensitively_and_terminal_wins() {
        let policy = Policy {
            active_states: vec!["todo".into(), "done".into()],
            ..Policy::default()
        };
        assert!(policy.is_active(" TODO "));
        assert!(
            !policy.is_active("Done"),
            "a terminal state is never active"
        );
        assert!(policy.is_terminal("DONE"));
    }

    #[test]
    fn r081_per_state_limit_falls_back_to_global() {
        let mut by_state = BTreeMap::new();
        by_state.insert("in progress".to_string(), 2);
        let policy = Policy {
            max_concurrent_agents: 7,
            max_concurrent_agents_by_state: by_state,
            ..Policy::default()
        };
        assert_eq!(policy.state_limit("In Progress"), 2);
        assert_eq!(policy.state_limit("Todo"), 7);
    }
}
