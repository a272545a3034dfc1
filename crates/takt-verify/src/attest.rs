//! The attestation: an in-toto Statement (v1) whose subject is the verified commit and whose
//! predicate says what was checked and decided — gates with their evidence hashes, verdicts,
//! the risk tier and why, cost, model and approvals. It travels with the commit as a git note
//! under `refs/notes/takt`, so anyone with the repository can see what a change went through.

use serde_json::{Value, json};
use takt_protocol::{GateRun, RiskAssessment, TestStatus, VerificationReport};

/// The notes ref the attestation is written under (`refs/notes/takt`).
pub const NOTES_REF: &str = "takt";

/// The statement type every attestation carries.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// takt's predicate type.
pub const PREDICATE_TYPE: &str = "https://takt.dev/attestation/verification/v1";

/// What an attestation says beyond the verification report.
#[derive(Debug, Clone)]
pub struct Attestation<'a> {
    pub task_id: &'a str,
    pub identifier: &'a str,
    pub title: &'a str,
    pub report: &'a VerificationReport,
    pub risk: Option<&'a RiskAssessment>,
    /// Spend of the task so far: micro-dollars and tokens.
    pub spend_micros: u64,
    pub tokens: u64,
    pub model: Option<&'a str>,
    pub approvals: &'a [String],
    /// How the agent and the gates were confined.
    pub sandbox: &'a str,
    /// The journal's head hash when the attestation was made: ties it to the audit trail.
    pub journal_head: Option<&'a str>,
}

impl Attestation<'_> {
    /// The in-toto statement as JSON.
    pub fn statement(&self) -> Value {
        let report = self.report;
        json!({
            "_type": STATEMENT_TYPE,
            "subject": [{
                "name": self.identifier,
                "digest": {"gitCommit": report.commit},
            }],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "verifier": {"id": "takt", "version": env!("CARGO_PKG_VERSION")},
                "task": {"id": self.task_id, "identifier": self.identifier, "title": self.title},
                "base": report.base,
                "round": report.round,
                "gates_green": report.gates_green(),
                "gates": report.gates.iter().map(|gate| json!({
                    "name": gate.gate,
                    "source": gate.source,
                    "required": gate.required,
                    "status": gate.status,
                    "new_failures": gate.new_failures,
                    "preexisting_failures": gate.preexisting_failures,
                    "flaky": gate.flaky,
                    "runs": gate.runs.iter().map(run_json).collect::<Vec<_>>(),
                    "baseline": gate.baseline.as_ref().map(run_json),
                })).collect::<Vec<_>>(),
                "changed_files": report.changed_files.len(),
                "changed_lines": report.changed_lines(),
                "tamper": report.tamper,
                "secrets": report.secrets,
                "judge": report.judge,
                "reviewers": report.reviewers,
                "risk": self.risk,
                "cost": {"usd_micros": self.spend_micros, "tokens": self.tokens},
                "model": self.model,
                "approvals": self.approvals,
                "sandbox": self.sandbox,
                "journal_head": self.journal_head,
                "error": report.error,
            },
        })
    }

    /// The statement as the note text: pretty JSON, one trailing newline.
    pub fn note(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.statement()).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn run_json(run: &GateRun) -> Value {
    let count = |status: TestStatus| run.tests.iter().filter(|t| t.status == status).count();
    json!({
        "command": run.command,
        "commit": run.commit,
        "tree": run.tree,
        "exit_code": run.exit_code,
        "timed_out": run.timed_out,
        "duration_ms": run.duration_ms,
        "stdout_sha256": run.stdout_hash,
        "stderr_sha256": run.stderr_hash,
        "environment": run.environment,
        "format": run.format,
        "tests": {
            "passed": count(TestStatus::Passed),
            "failed": count(TestStatus::Failed),
            "skipped": count(TestStatus::Skipped),
            "failed_names": run.failed_tests(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use takt_protocol::{RiskRule, RiskTier};

    fn report() -> VerificationReport {
        VerificationReport {
            base: "ba5e".into(),
            ..VerificationReport::new("c0ffee", 1)
        }
    }

    #[test]
    fn the_statement_names_the_commit_and_carries_the_decision() {
        let report = report();
        let risk = RiskAssessment {
            tier: RiskTier::HardStop,
            rules: vec![RiskRule {
                rule: "path:hard_stop".into(),
                tier: RiskTier::HardStop,
                detail: "src/auth/login.rs".into(),
            }],
            approvals_required: 2,
        };
        let approvals = vec!["alice".to_owned(), "bob".to_owned()];
        let attestation = Attestation {
            task_id: "t1",
            identifier: "TAKT-1",
            title: "Fix login",
            report: &report,
            risk: Some(&risk),
            spend_micros: 1500,
            tokens: 900,
            model: Some("gpt-5"),
            approvals: &approvals,
            sandbox: "sandbox bwrap",
            journal_head: Some("abc"),
        };
        let statement = attestation.statement();
        assert_eq!(statement["_type"], STATEMENT_TYPE);
        assert_eq!(statement["subject"][0]["digest"]["gitCommit"], "c0ffee");
        assert_eq!(statement["predicate"]["risk"]["tier"], "hard_stop");
        assert_eq!(statement["predicate"]["approvals"][1], "bob");
        assert_eq!(statement["predicate"]["cost"]["usd_micros"], 1500);
        assert!(attestation.note().ends_with("}\n"));
    }
}
