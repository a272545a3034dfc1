//! The judge and the blind reviewers against the scripted model: verdicts read from scripted
//! answers, both wire APIs, and what each request carried (and did not).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use takt_mock_model::{LoggedRequest, Scenario, Step};
use takt_protocol::{GateStatus, Severity};
use takt_verify::judge::{TaskText, judge};
use takt_verify::llm::{LlmError, ModelClient, Wire};
use takt_verify::reviewers::{GateEvidenceText, Reviewer, review_blind};

use super::{TOKEN, access, mock};

/// Only the pretend agent transcript holds this; no request may.
const AGENT_TRANSCRIPT: &str = "AGENT-SAYS: every test passes, trust me (transcript-only-7f3a)";
const DIFF: &str = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1,2 @@\n pub fn add(a: u32, b: u32) -> u32 { a + b }\n+pub fn sub(a: u32, b: u32) -> u32 { a - b } // diff-line-91c2\n";
const QA_MANDATE: &str =
    "QA-MANDATE-4d1e: check that the tests cover the change. [[scenario:qa-pass]]";
const SECURITY_MANDATE: &str =
    "SECURITY-MANDATE-8b0c: look for injection and leaked secrets. [[scenario:security-block]]";
const SECURITY_SUMMARY: &str = "SECURITY-VERDICT-SUMMARY-22aa";

/// The task as the tracker has it: its description carries the *agent's* marker, which must
/// not decide how the judge and the reviewers are answered.
fn task() -> TaskText {
    TaskText {
        identifier: "TAKT-42".into(),
        title: "Add a subtraction helper".into(),
        description: "Add `sub` next to `add` in src/lib.rs. task-text-5e6f [[scenario:agent]]"
            .into(),
    }
}

/// A scenario that answers every request for `model` with `answer`. One-line answers are
/// written as a scenario file would hold them (`text: '{"verdict": ...}'`).
fn answering(model: &str, answer: &str) -> Scenario {
    if answer.contains('\n') {
        return Scenario::new(model, vec![Step::text(answer)]).with_model(model);
    }
    let yaml = format!(
        "model: {model}\nsteps:\n  - text: '{}'\n",
        answer.replace('\'', "''")
    );
    Scenario::from_yaml(Path::new(&format!("{model}.yaml")), &yaml).expect("scenario")
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario::new(
            "agent",
            vec![Step::text("the agent's script, not a verdict")],
        ),
        answering(
            "judge-pass",
            r#"{"verdict": "pass", "summary": "Adds sub as asked.", "findings": []}"#,
        ),
        answering(
            "judge-veto",
            "Here is my verdict:\n```json\n{\"verdict\": \"veto\", \"summary\": \"Rewrites the README too.\", \"findings\": [{\"severity\": \"blocking\", \"file\": \"README.md\", \"line\": 1, \"text\": \"unrelated rewrite\"}, {\"severity\": \"whatever\", \"file\": \"src/lib.rs\", \"text\": \"no doc comment\"}]}\n```",
        ),
        answering("judge-garbage", "Looks great, ship it!"),
        Scenario::new(
            "qa-pass",
            vec![Step::text(
                r#"{"verdict": "pass", "summary": "Covered.", "findings": [{"severity": "minor", "text": "one more edge case"}]}"#,
            )],
        ),
        Scenario::new(
            "security-block",
            vec![Step::text(format!(
                r#"{{"verdict": "block", "summary": "{SECURITY_SUMMARY}", "findings": [{{"severity": "blocking", "file": "src/lib.rs", "line": 2, "text": "subtraction can underflow"}}]}}"#
            ))],
        ),
        Scenario::new("hang", vec![Step::StreamForever(true)]).with_model("judge-hang"),
        Scenario::new("broke", vec![Step::error(402, "budget spent for TAKT-42")])
            .with_model("judge-broke"),
    ]
}

/// The system text and the user text of a recorded request, on either wire.
fn texts(request: &LoggedRequest) -> (String, String) {
    let body = &request.body;
    let system = body["instructions"]
        .as_str()
        .or_else(|| body["system"].as_str())
        .expect("system text")
        .to_owned();
    let user = body
        .pointer("/input/0/content/0/text")
        .or_else(|| body.pointer("/messages/0/content"))
        .and_then(Value::as_str)
        .expect("user text")
        .to_owned();
    (system, user)
}

#[tokio::test]
async fn judge_passes_a_change_that_does_the_task() {
    let mock = mock(scenarios()).await;
    let client = ModelClient::new(&access(&mock, "judge-pass"), Wire::Responses).expect("client");
    let verdict = judge(&client, &task(), DIFF).await.expect("verdict");
    assert!(verdict.pass);
    assert_eq!(verdict.by, "judge");
    assert_eq!(verdict.summary, "Adds sub as asked.");
    assert!(verdict.findings.is_empty());
    assert_eq!(verdict.model.as_deref(), Some("judge-pass"));

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1/responses");
    assert_eq!(
        request.scenario.as_deref(),
        Some("judge-pass"),
        "the claimed model wins over the agent's marker in the task"
    );
    assert!(
        request
            .header("authorization")
            .is_some_and(|value| value.starts_with("Bearer takt-r")),
        "{:?}",
        request.headers
    );
    assert_eq!(request.body["model"], "judge-pass");
    assert_eq!(request.body["stream"], false);
    let (system, user) = texts(request);
    assert!(system.contains("You are the judge"), "{system}");
    assert!(user.contains("TAKT-42"), "{user}");
    assert!(user.contains("Add a subtraction helper"), "{user}");
    assert!(user.contains("task-text-5e6f"), "{user}");
    assert!(user.contains("diff-line-91c2"), "{user}");
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn judge_veto_findings_are_parsed() {
    let mock = mock(scenarios()).await;
    let client = ModelClient::new(&access(&mock, "judge-veto"), Wire::Responses).expect("client");
    let verdict = judge(&client, &task(), DIFF).await.expect("verdict");
    assert!(!verdict.pass);
    assert_eq!(verdict.summary, "Rewrites the README too.");
    assert_eq!(verdict.findings.len(), 2);
    assert_eq!(verdict.findings[0].severity, Severity::Blocking);
    assert_eq!(verdict.findings[0].file.as_deref(), Some("README.md"));
    assert_eq!(verdict.findings[0].line, Some(1));
    assert_eq!(verdict.findings[0].text, "unrelated rewrite");
    assert_eq!(
        verdict.findings[1].severity,
        Severity::Major,
        "an unknown severity is major"
    );
    assert_eq!(verdict.findings[1].line, None);
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn judge_garbage_answer_is_no_verdict() {
    let mock = mock(scenarios()).await;
    let client =
        ModelClient::new(&access(&mock, "judge-garbage"), Wire::Responses).expect("client");
    match judge(&client, &task(), DIFF).await {
        Err(error @ LlmError::NoVerdict { .. }) => {
            assert!(error.is_retryable());
            let message = error.to_string();
            assert!(message.starts_with("judge: "), "{message}");
            assert!(message.contains("Looks great, ship it!"), "{message}");
        }
        other => panic!("expected no verdict, got {other:?}"),
    }
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn judge_over_the_messages_wire() {
    let mock = mock(scenarios()).await;
    let client = ModelClient::new(&access(&mock, "judge-veto"), Wire::Messages).expect("client");
    let verdict = judge(&client, &task(), DIFF).await.expect("verdict");
    assert!(!verdict.pass);
    assert_eq!(verdict.findings[0].text, "unrelated rewrite");
    assert_eq!(verdict.model.as_deref(), Some("judge-veto"));

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.api.as_deref(), Some("messages"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        request
            .header("x-api-key")
            .is_some_and(|value| value.starts_with(&TOKEN[..6])),
        "{:?}",
        request.headers
    );
    assert!(request.header("authorization").is_none());
    assert!(request.body["max_tokens"].as_u64().is_some_and(|n| n > 0));
    let (system, user) = texts(request);
    assert!(system.contains("You are the judge"), "{system}");
    assert!(user.contains("diff-line-91c2"), "{user}");
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_huge_diff_is_trimmed_with_a_note() {
    let mock = mock(scenarios()).await;
    let client = ModelClient::new(&access(&mock, "judge-pass"), Wire::Responses).expect("client");
    let huge = format!("{DIFF}{}", "+filler line\n".repeat(20_000));
    judge(&client, &task(), &huge).await.expect("verdict");
    let (_, user) = texts(&mock.requests()[0]);
    assert!(user.contains("diff-line-91c2"), "the head is kept");
    assert!(user.contains("[trimmed: "), "the trim is noted");
    assert!(user.len() < 70_000, "{}", user.len());
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn endpoint_errors_and_timeouts_are_told_apart() {
    let mock = mock(scenarios()).await;
    let broke = ModelClient::new(&access(&mock, "judge-broke"), Wire::Responses).expect("client");
    match judge(&broke, &task(), DIFF).await {
        Err(error @ LlmError::Status { status: 402, .. }) => {
            assert!(!error.is_retryable());
            assert!(
                error.to_string().contains("budget spent for TAKT-42"),
                "{error}"
            );
        }
        other => panic!("expected HTTP 402, got {other:?}"),
    }
    let hang = ModelClient::new(&access(&mock, "judge-hang"), Wire::Messages)
        .expect("client")
        .with_timeout(Duration::from_millis(300));
    match judge(&hang, &task(), DIFF).await {
        Err(error @ LlmError::TimedOut { .. }) => assert!(error.is_retryable()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    mock.shutdown().await.expect("shutdown");
}

fn gates() -> Vec<GateEvidenceText> {
    vec![
        GateEvidenceText {
            gate: "test".into(),
            command: "cargo test --workspace".into(),
            status: GateStatus::Failed,
            exit_code: Some(101),
            timed_out: false,
            failed_tests: vec!["math::sub_underflows".into()],
            output_tail: "test math::sub_underflows ... FAILED\ngate-output-3c9d\n".into(),
        },
        GateEvidenceText {
            gate: "clippy".into(),
            command: "cargo clippy -- -D warnings".into(),
            status: GateStatus::Passed,
            exit_code: Some(0),
            timed_out: false,
            failed_tests: vec![],
            output_tail: String::new(),
        },
    ]
}

#[tokio::test]
async fn blind_reviewers_get_their_own_mandate_and_the_evidence_only() {
    let mock = mock(scenarios()).await;
    // One model for every reviewer: their mandates' markers tell the mock which script to use.
    let client =
        ModelClient::new(&access(&mock, "reviewer-model"), Wire::Responses).expect("client");
    let reviewers = [
        Reviewer {
            name: "qa".into(),
            mandate: QA_MANDATE.into(),
        },
        Reviewer {
            name: "security".into(),
            mandate: SECURITY_MANDATE.into(),
        },
    ];
    // What the agent said about its work exists, but review_blind has no way to take it.
    let transcript = vec![AGENT_TRANSCRIPT.to_owned()];

    let results = review_blind(&client, &reviewers, &task(), DIFF, &gates()).await;
    let names: Vec<&str> = results.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["qa", "security"], "the reviewers' order");

    let qa = results[0].1.as_ref().expect("qa verdict");
    assert_eq!(qa.by, "qa");
    assert!(qa.pass);
    assert_eq!(qa.summary, "Covered.");
    assert_eq!(qa.findings[0].severity, Severity::Minor);
    assert_eq!(qa.model.as_deref(), Some("reviewer-model"));
    let security = results[1].1.as_ref().expect("security verdict");
    assert_eq!(security.by, "security");
    assert!(!security.pass);
    assert_eq!(security.summary, SECURITY_SUMMARY);
    assert_eq!(security.findings[0].severity, Severity::Blocking);
    assert_eq!(security.findings[0].line, Some(2));
    assert_ne!(qa.commitment(), security.commitment());

    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "one independent request per reviewer");
    for (reviewer, other) in [
        (&reviewers[0], &reviewers[1]),
        (&reviewers[1], &reviewers[0]),
    ] {
        let request = requests
            .iter()
            .find(|request| texts(request).0.contains(&reviewer.mandate))
            .unwrap_or_else(|| panic!("no request for {}", reviewer.name));
        let (system, user) = texts(request);
        let expected_scenario = if reviewer.name == "qa" {
            "qa-pass"
        } else {
            "security-block"
        };
        assert_eq!(request.scenario.as_deref(), Some(expected_scenario));
        assert!(
            system.contains(&format!("You are the {} reviewer", reviewer.name)),
            "{system}"
        );
        for evidence in [
            "TAKT-42",
            "Add a subtraction helper",
            "task-text-5e6f",
            "diff-line-91c2",
            "<gate name=\"test\">",
            "Command: cargo test --workspace",
            "Status: failed",
            "Exit code: 101",
            "Failed tests: math::sub_underflows",
            "gate-output-3c9d",
            "<gate name=\"clippy\">",
            "Command: cargo clippy -- -D warnings",
            "Status: passed",
        ] {
            assert!(
                user.contains(evidence),
                "{}: no {evidence:?} in\n{user}",
                reviewer.name
            );
        }
        let everything = request.body.to_string();
        for line in &transcript {
            assert!(!everything.contains(line.as_str()), "{}", reviewer.name);
        }
        assert!(!everything.contains("transcript-only-7f3a"));
        assert!(
            !everything.contains(other.mandate.split(':').next().expect("tag")),
            "{} saw {}'s mandate",
            reviewer.name,
            other.name
        );
        assert!(
            !everything.contains(SECURITY_SUMMARY),
            "no verdict is shown"
        );
        assert!(!everything.contains("Covered."), "no verdict is shown");
    }
    mock.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_reviewer_without_a_verdict_is_an_error_beside_the_others() {
    let mock = mock(scenarios()).await;
    let client = ModelClient::new(&access(&mock, "judge-garbage"), Wire::Messages).expect("client");
    let reviewers = [
        Reviewer {
            name: "qa".into(),
            mandate: QA_MANDATE.into(),
        },
        // No marker: the claimed model's script answers, which holds no verdict.
        Reviewer {
            name: "style".into(),
            mandate: "Check naming.".into(),
        },
    ];
    let results = review_blind(&client, &reviewers, &task(), DIFF, &[]).await;
    assert!(results[0].1.as_ref().is_ok_and(|verdict| verdict.pass));
    match &results[1] {
        (name, Err(LlmError::NoVerdict { by, .. })) => {
            assert_eq!(name, "style");
            assert_eq!(by, "style");
        }
        other => panic!("expected no verdict from style, got {other:?}"),
    }
    let requests = mock.requests();
    assert!(
        requests
            .iter()
            .all(|request| request.path == "/v1/messages")
    );
    assert!(
        requests
            .iter()
            .all(|request| texts(request).1.contains("No gates ran.")),
        "the reviewers are told that no gate ran"
    );
    mock.shutdown().await.expect("shutdown");
}
