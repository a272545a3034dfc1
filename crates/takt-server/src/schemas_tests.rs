//! The mirrors in `schemas.rs` must describe the protocol types exactly: the same JSON keys for
//! every struct, the same names for every enum variant.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};
use takt_core::{Record, State, apply};
use takt_protocol::{
    AttemptSummary, BlockerRef, ChangeKind, ChangedFile, FailureReport, Finding, GateOutcome,
    GateRun, GateSource, GateStatus, Issue, JournalEntry, RetryKind, RiskAssessment, RiskRule,
    RiskTier, RunOutcome, RunPhase, SecretHit, Severity, TamperFlag, TaskState, TestCase,
    TestStatus, TokenUsage, Verdict, VerificationReport,
};

/// Every variant of a unit-only enum; the match fails to compile when one is added.
macro_rules! every {
    ($ty:ident: $($variant:ident),+ $(,)?) => {{
        fn exhaustive(value: $ty) {
            match value {
                $($ty::$variant)|+ => {}
            }
        }
        let _ = exhaustive;
        vec![$($ty::$variant),+]
    }};
}

fn document() -> Value {
    serde_json::from_str(&crate::openapi_json()).expect("the document is JSON")
}

fn schema<'a>(document: &'a Value, name: &str) -> &'a Value {
    document
        .pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("no schema {name} in the document"))
}

fn property_names(document: &Value, name: &str) -> BTreeSet<String> {
    schema(document, name)["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has no properties"))
        .keys()
        .cloned()
        .collect()
}

fn keys_of(value: &impl Serialize) -> BTreeSet<String> {
    serde_json::to_value(value)
        .expect("json")
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

/// The enum's values in the schema, wherever utoipa put them (`enum`, or `oneOf` of enums).
fn enum_values(document: &Value, name: &str) -> BTreeSet<String> {
    fn collect(value: &Value, into: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(values)) = map.get("enum") {
                    into.extend(values.iter().filter_map(|v| v.as_str().map(String::from)));
                }
                for child in map.values() {
                    collect(child, into);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect(item, into)),
            _ => {}
        }
    }
    let mut values = BTreeSet::new();
    collect(schema(document, name), &mut values);
    values
}

fn names_of<T: Serialize>(variants: Vec<T>) -> BTreeSet<String> {
    variants
        .iter()
        .map(|variant| {
            serde_json::to_value(variant)
                .expect("json")
                .as_str()
                .expect("a unit variant")
                .to_owned()
        })
        .collect()
}

fn issue() -> Issue {
    serde_json::from_value(json!({
        "id": "1", "identifier": "A-1", "title": "t", "description": null, "priority": null,
        "state": "Todo", "branch_name": null, "url": null, "assignee_id": null, "labels": [],
        "blocked_by": [], "dispatchable": true, "created_at": null, "updated_at": null,
        "native_ref": null
    }))
    .expect("issue")
}

fn gate_run() -> GateRun {
    GateRun {
        gate: "test".into(),
        command: "cargo test".into(),
        commit: "c".into(),
        tree: "t".into(),
        environment: BTreeMap::new(),
        exit_code: Some(0),
        timed_out: false,
        duration_ms: 1,
        stdout_hash: "o".into(),
        stderr_hash: "e".into(),
        format: None,
        tests: vec![],
    }
}

fn verdict() -> Verdict {
    Verdict {
        by: "qa".into(),
        pass: true,
        summary: "fine".into(),
        findings: vec![],
        model: None,
    }
}

fn attempt() -> AttemptSummary {
    AttemptSummary {
        run_id: "r".into(),
        attempt: 1,
        retry_kind: None,
        outcome: RunOutcome::Succeeded,
        started_at_ms: 0,
        finished_at_ms: 1,
        turns: 1,
        commit: None,
        error: None,
    }
}

#[test]
fn every_mirrored_struct_has_the_protocol_types_keys() {
    let document = document();
    let mut state = State::default();
    apply(&mut state, &Record::TaskQueued { issue: issue() }, 0);
    let summary = state.tasks.values().next().expect("a task").summary();
    let failure = FailureReport {
        reason: "r".into(),
        identifier: "A-1".into(),
        title: "t".into(),
        attempts: vec![],
        workspace_path: None,
        branch: None,
        suggested_action: "s".into(),
        verification: Some(Box::new(VerificationReport::new("c", 1))),
        spend_micros: 0,
        tokens: 0,
    };
    let rule = RiskRule {
        rule: "default".into(),
        tier: RiskTier::Review,
        detail: "d".into(),
    };
    let examples: Vec<(&str, BTreeSet<String>)> = vec![
        ("TaskSummary", keys_of(&summary)),
        ("Issue", keys_of(&issue())),
        (
            "BlockerRef",
            keys_of(&BlockerRef {
                id: None,
                identifier: None,
                state: None,
            }),
        ),
        ("AttemptSummary", keys_of(&attempt())),
        ("FailureReport", keys_of(&failure)),
        ("TokenUsage", keys_of(&TokenUsage::default())),
        ("RiskRule", keys_of(&rule)),
        (
            "RiskAssessment",
            keys_of(&RiskAssessment {
                tier: RiskTier::Review,
                rules: vec![],
                approvals_required: 1,
            }),
        ),
        (
            "JournalEntry",
            keys_of(&JournalEntry {
                seq: 1,
                at_ms: 0,
                kind: "k".into(),
                task_id: None,
                payload: json!({}),
                prev_hash: String::new(),
                hash: String::new(),
            }),
        ),
        (
            "VerificationReport",
            keys_of(&VerificationReport::new("c", 1)),
        ),
        (
            "GateOutcome",
            keys_of(&GateOutcome {
                gate: "g".into(),
                source: GateSource::Detected,
                required: true,
                status: GateStatus::Passed,
                new_failures: vec![],
                preexisting_failures: vec![],
                flaky: vec![],
                runs: vec![],
                baseline: None,
            }),
        ),
        ("GateRun", keys_of(&gate_run())),
        (
            "TestCase",
            keys_of(&TestCase {
                name: "t".into(),
                status: TestStatus::Passed,
            }),
        ),
        (
            "ChangedFile",
            keys_of(&ChangedFile {
                path: "p".into(),
                old_path: None,
                kind: ChangeKind::Added,
                added_lines: 1,
                removed_lines: 0,
            }),
        ),
        (
            "SecretHit",
            keys_of(&SecretHit {
                path: "p".into(),
                line: 1,
                kind: "k".into(),
            }),
        ),
        (
            "TamperFlag",
            keys_of(&TamperFlag {
                rule: "r".into(),
                path: "p".into(),
                detail: "d".into(),
            }),
        ),
        ("Verdict", keys_of(&verdict())),
        (
            "Finding",
            keys_of(&Finding {
                severity: Severity::Info,
                file: None,
                line: None,
                text: "t".into(),
            }),
        ),
    ];
    for (name, keys) in examples {
        assert_eq!(
            property_names(&document, name),
            keys,
            "the OpenAPI mirror of {name} (src/schemas.rs) no longer matches takt-protocol"
        );
    }
}

#[test]
fn every_mirrored_enum_has_the_protocol_types_variants() {
    let document = document();
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("TaskState", names_of(TaskState::ALL.to_vec())),
        (
            "RunOutcome",
            names_of(crate::metrics::RUN_OUTCOMES.to_vec()),
        ),
        (
            "RunPhase",
            names_of(
                every!(RunPhase: PreparingWorkspace, BuildingPrompt, LaunchingAgent,
                InitializingSession, StreamingTurn, Verifying, Finishing),
            ),
        ),
        (
            "RetryKind",
            names_of(
                every!(RetryKind: Continuation, Failure, Rejection, Conflict,
                Verification, Interrupted, Answer, Operator, Checks),
            ),
        ),
        (
            "RiskTier",
            names_of(every!(RiskTier: AutoShip, Review, HardStop)),
        ),
        (
            "GateSource",
            names_of(every!(GateSource: Configured, Detected, Hidden)),
        ),
        (
            "GateStatus",
            names_of(every!(GateStatus: Passed, PreExisting, Flaky, Failed, Skipped)),
        ),
        (
            "TestStatus",
            names_of(every!(TestStatus: Passed, Failed, Skipped)),
        ),
        (
            "ChangeKind",
            names_of(every!(ChangeKind: Added, Modified, Deleted, Renamed)),
        ),
        (
            "Severity",
            names_of(every!(Severity: Info, Minor, Major, Blocking)),
        ),
    ];
    for (name, variants) in cases {
        assert_eq!(
            enum_values(&document, name),
            variants,
            "the OpenAPI mirror of {name} (src/schemas.rs) no longer matches takt-protocol"
        );
    }
}
