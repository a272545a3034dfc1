//! The judge and the blind reviewers of one change, run together once the gates are green.
//! Each verdict is committed (its hash handed to the caller) as soon as it exists, and only
//! then written into the report.

use takt_protocol::{Finding, GateSource, Severity, Verdict, VerificationReport};

use crate::feedback::output_tail;
use crate::judge::{TaskText, judge};
use crate::llm::{LlmError, ModelClient};
use crate::reviewers::{GateEvidenceText, Reviewer, review_blind};
use crate::runner::{Verifier, VerifyJob};

/// Who looks at a change after its gates: the judge (when on) and the reviewers.
#[derive(Debug, Clone)]
pub struct ReviewPanel {
    pub client: ModelClient,
    pub judge: bool,
    pub reviewers: Vec<Reviewer>,
}

impl ReviewPanel {
    pub(crate) async fn review(
        &self,
        verifier: &Verifier,
        job: &VerifyJob,
        diff: &str,
        report: &mut VerificationReport,
        commit_verdict: &(dyn Fn(&str, String) + Sync),
    ) {
        let task = TaskText {
            identifier: job.identifier.clone(),
            title: job.title.clone(),
            description: job.description.clone(),
        };
        let mut evidence = Vec::new();
        for outcome in &report.gates {
            // A holdback gate's output could describe the hidden tests, and reviewer findings
            // reach the agent as feedback: reviewers see that it ran and how it ended, not
            // what it printed.
            let output = match (outcome.source, outcome.runs.first()) {
                (GateSource::Hidden, _) | (_, None) => String::new(),
                (_, Some(run)) => {
                    output_tail(verifier.evidence(), &run.stdout_hash, &run.stderr_hash).await
                }
            };
            evidence.push(GateEvidenceText::from_outcome(outcome, output));
        }
        let judging = async {
            if self.judge {
                Some(judge(&self.client, &task, diff).await)
            } else {
                None
            }
        };
        let reviewing = review_blind(&self.client, &self.reviewers, &task, diff, &evidence);
        let (judged, reviewed) = tokio::join!(judging, reviewing);
        let judge_verdict =
            judged.map(|result| settle("judge", self.client.model(), result, commit_verdict));
        let reviewer_verdicts: Vec<Verdict> = reviewed
            .into_iter()
            .map(|(name, result)| settle(&name, self.client.model(), result, commit_verdict))
            .collect();
        report.judge = judge_verdict;
        report.reviewers = reviewer_verdicts;
    }
}

/// A verdict, or for a reviewer that could not give one a passing verdict with a major
/// finding: no verdict is never a pass to ship on (the risk policy sends the change to a
/// person), nor a reason to send the agent back.
fn settle(
    by: &str,
    model: &str,
    result: Result<Verdict, LlmError>,
    commit_verdict: &(dyn Fn(&str, String) + Sync),
) -> Verdict {
    let verdict = result.unwrap_or_else(|error| Verdict {
        by: by.to_owned(),
        pass: true,
        summary: format!("no verdict: {error}"),
        findings: vec![Finding {
            severity: Severity::Major,
            file: None,
            line: None,
            text: format!("{by} could not review this change ({error}); a person must"),
        }],
        model: Some(model.to_owned()),
    });
    commit_verdict(by, verdict.commitment());
    verdict
}
