//! takt's domain and wire types.
//!
//! This crate is the leaf of the workspace: every other crate speaks these types. It holds data
//! only (serde-serializable, no IO, no clock). The field names are the stable JSON interface
//! documented in `docs/json.md`.
//!
//! - [`Issue`]: the normalized tracker item, Symphony's field set exactly.
//! - [`TaskState`], [`RunOutcome`], [`RunPhase`], [`RetryKind`]: the lifecycle vocabulary.
//! - [`JournalEntry`]: one hash-chained row of the journal.
//! - [`FailureReport`]: what a failed task tells its operator.

mod issue;
mod journal;
mod task;

pub use issue::{BlockerRef, Issue, normalize_label, normalize_state};
pub use journal::{GENESIS_HASH, JournalEntry};
pub use task::{
    AttemptSummary, CapReached, FailureReport, ModelCallReport, PullRequestRef, RetryKind,
    RunOutcome, RunPhase, TaskState, TaskSummary, TokenUsage,
};

/// Milliseconds since the Unix epoch. The core never reads a clock; every time it sees is one of
/// these, handed to it by the shell.
pub type Millis = i64;

mod host_tools;
pub use host_tools::{
    HOST_TOOLS_CALL_PATH, HOST_TOOLS_PATH, HostToolCall, HostToolDescriptor, HostToolList,
    HostToolResult,
};
mod agent_event;
pub use agent_event::{AgentEvent, OutputStream};

mod verify;
pub use verify::{
    ChangeKind, ChangedFile, Finding, GateOutcome, GateRun, GateSource, GateStatus, RiskAssessment,
    RiskRule, RiskTier, SecretHit, Severity, TamperFlag, TestCase, TestStatus, Verdict,
    VerificationReport,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r049_every_issue_field_is_present_in_json_even_when_empty() {
        let issue = Issue {
            id: "1".into(),
            identifier: "TAKT-1".into(),
            title: "t".into(),
            description: None,
            priority: None,
            state: "Todo".into(),
            branch_name: None,
            url: None,
            assignee_id: None,
            labels: vec![],
            blocked_by: vec![],
            dispatchable: true,
            created_at: None,
            updated_at: None,
            native_ref: None,
        };
        let value = serde_json::to_value(&issue).expect("json");
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "assignee_id",
                "blocked_by",
                "branch_name",
                "created_at",
                "description",
                "dispatchable",
                "id",
                "identifier",
                "labels",
                "native_ref",
                "priority",
                "state",
                "title",
                "updated_at",
                "url"
            ]
        );
        assert!(value["labels"].as_array().is_some_and(Vec::is_empty));
        assert!(value["description"].is_null());
    }

    #[test]
    fn task_states_serialize_as_their_documented_names() {
        for state in TaskState::ALL {
            let json = serde_json::to_value(state).expect("json");
            assert_eq!(json, serde_json::Value::String(state.as_str().into()));
        }
        assert_eq!(
            serde_json::to_value(RunOutcome::BudgetExhausted).expect("json"),
            "budget_exhausted"
        );
    }

    #[test]
    fn required_fields_must_not_be_blank() {
        let mut issue: Issue = serde_json::from_value(serde_json::json!({
            "id": "1", "identifier": "A-1", "title": "x", "description": null, "priority": null,
            "state": "Todo", "branch_name": null, "url": null, "assignee_id": null, "labels": [],
            "blocked_by": [], "dispatchable": true, "created_at": null, "updated_at": null,
            "native_ref": null
        }))
        .expect("issue");
        assert!(issue.has_required_fields());
        issue.state = " ".into();
        assert!(!issue.has_required_fields());
    }
}
