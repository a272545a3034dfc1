//! What the agent is told when its change goes back: the failing gates with their commands,
//! the new failing tests, the tail of each failing run's output, and the judge's or reviewers'
//! findings. Enough to fix the change, short enough to fit a prompt.

use std::fmt::Write;

use takt_protocol::{GateSource, GateStatus, Verdict, VerificationReport};

use crate::evidence::EvidenceStore;

/// Output kept per failing gate (the tail: test runners summarize failures at the end).
pub const LOG_TAIL_BYTES: usize = 4_000;

/// The feedback for `report`; empty when there is nothing to fix.
pub async fn compose(report: &VerificationReport, evidence: &dyn EvidenceStore) -> String {
    let mut text = String::new();
    for gate in report
        .gates
        .iter()
        .filter(|gate| gate.status == GateStatus::Failed)
    {
        let Some(run) = gate.runs.last() else {
            continue;
        };
        if gate.source == GateSource::Hidden {
            // Holdback tests stay held back: their names and output would teach the agent the
            // hidden tests.
            let _ = writeln!(
                text,
                "Hidden gate `{}` failed. Its tests are held back; make the change correct in \
                 general, not for the tests you can see.",
                gate.gate
            );
            continue;
        }
        let _ = writeln!(
            text,
            "Gate `{}` failed: `{}` exited with {}.",
            gate.gate,
            run.command,
            match (run.exit_code, run.timed_out) {
                (_, true) => "a timeout".to_owned(),
                (Some(code), _) => format!("status {code}"),
                (None, _) => "a signal".to_owned(),
            }
        );
        if !(gate.new_failures.is_empty() || gate.new_failures == [gate.gate.clone()]) {
            let _ = writeln!(
                text,
                "Tests that fail with your change (and pass without it): {}",
                gate.new_failures.join(", ")
            );
        }
        let tail = output_tail(evidence, &run.stdout_hash, &run.stderr_hash).await;
        if !tail.is_empty() {
            let _ = writeln!(text, "Last lines of its output:\n```\n{tail}\n```");
        }
    }
    if let Some(judge) = report.judge.as_ref().filter(|judge| !judge.pass) {
        findings(&mut text, "The judge vetoed the change", judge);
    }
    for reviewer in report.reviewers.iter().filter(|verdict| !verdict.pass) {
        findings(
            &mut text,
            &format!("Reviewer `{}` blocked the change", reviewer.by),
            reviewer,
        );
    }
    text
}

/// stdout then stderr of a run, keeping only the last [`LOG_TAIL_BYTES`].
pub async fn output_tail(evidence: &dyn EvidenceStore, stdout: &str, stderr: &str) -> String {
    let mut all = Vec::new();
    for hash in [stdout, stderr] {
        if let Some(bytes) = evidence.get(hash).await {
            all.extend(bytes);
        }
    }
    let text = String::from_utf8_lossy(&all);
    let text = text.trim_end();
    let start = text.len().saturating_sub(LOG_TAIL_BYTES);
    let start = (start..text.len())
        .find(|index| text.is_char_boundary(*index))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

fn findings(text: &mut String, heading: &str, verdict: &Verdict) {
    let _ = writeln!(text, "{heading}: {}", verdict.summary);
    for finding in &verdict.findings {
        let place = match (&finding.file, finding.line) {
            (Some(file), Some(line)) => format!(" ({file}:{line})"),
            (Some(file), None) => format!(" ({file})"),
            _ => String::new(),
        };
        let _ = writeln!(text, "- [{:?}]{place} {}", finding.severity, finding.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::MemoryEvidence;
    use takt_protocol::{GateOutcome, GateRun};

    async fn failing(source: GateSource, evidence: &MemoryEvidence) -> GateOutcome {
        let stdout = evidence
            .put(b"FAILED holdback/test_x.py::test_secret - assert 41 == 42\n".to_vec())
            .await
            .unwrap();
        GateOutcome {
            gate: "holdback".into(),
            source,
            required: true,
            status: GateStatus::Failed,
            new_failures: vec!["holdback/test_x.py::test_secret".into()],
            preexisting_failures: Vec::new(),
            flaky: Vec::new(),
            runs: vec![GateRun {
                gate: "holdback".into(),
                command: "pytest holdback".into(),
                commit: "c".into(),
                tree: "t".into(),
                environment: Default::default(),
                exit_code: Some(1),
                timed_out: false,
                duration_ms: 5,
                stdout_hash: stdout.clone(),
                stderr_hash: stdout,
                format: Some("pytest".into()),
                tests: Vec::new(),
            }],
            baseline: None,
        }
    }

    fn report(gate: GateOutcome) -> VerificationReport {
        VerificationReport {
            gates: vec![gate],
            ..VerificationReport::new("c", 1)
        }
    }

    #[tokio::test]
    async fn a_failing_gate_comes_back_with_its_tests_and_output() {
        let evidence = MemoryEvidence::default();
        let text = compose(
            &report(failing(GateSource::Detected, &evidence).await),
            &evidence,
        )
        .await;
        assert!(text.contains("Gate `holdback` failed: `pytest holdback` exited with status 1"));
        assert!(text.contains("holdback/test_x.py::test_secret"));
        assert!(text.contains("assert 41 == 42"));
    }

    #[tokio::test]
    async fn a_hidden_gate_reveals_neither_its_tests_nor_its_output() {
        let evidence = MemoryEvidence::default();
        let text = compose(
            &report(failing(GateSource::Hidden, &evidence).await),
            &evidence,
        )
        .await;
        assert!(text.contains("Hidden gate `holdback` failed"), "{text}");
        assert!(!text.contains("test_secret"), "{text}");
        assert!(!text.contains("41 == 42"), "{text}");
    }
}
