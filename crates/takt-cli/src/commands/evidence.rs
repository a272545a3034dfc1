//! `takt evidence ID`: what verification found about a task's change, from the journal and
//! the stored artifacts, plus the attestation note on the commit.

use std::path::Path;

use anyhow::{Result, bail};
use takt_protocol::{GateRun, GateStatus, TestStatus};

use super::output::{self, outln};
use crate::args::EvidenceArgs;
use crate::engine::load_state;
use crate::exit::Code;
use crate::project::Project;

pub async fn run(workflow: Option<&Path>, args: &EvidenceArgs, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let state = load_state(&store).await?;
    let Some(task) = state.find(&args.id) else {
        bail!(
            "no task {}: `takt task list` shows the known tasks",
            args.id
        );
    };
    let Some(report) = task.verification.as_deref() else {
        bail!(
            "{} has not been verified yet (it is {}); evidence exists once its change went \
             through the gates",
            task.issue.identifier,
            task.state
        );
    };
    if let Some(gate) = &args.output {
        let Some(run) = report
            .gates
            .iter()
            .find(|outcome| outcome.gate == *gate)
            .and_then(|outcome| outcome.runs.last())
        else {
            let names: Vec<&str> = report.gates.iter().map(|g| g.gate.as_str()).collect();
            bail!(
                "{} has no run of a gate named {gate:?}; its gates are: {}",
                task.issue.identifier,
                names.join(", ")
            );
        };
        for hash in [&run.stdout_hash, &run.stderr_hash] {
            let bytes = store.get_artifact(hash).await?;
            output::raw(&bytes)?;
        }
        return Ok(Code::Success);
    }
    let attestation = match project.workspaces() {
        Ok(workspaces) => workspaces
            .read_note(takt_verify::attest::NOTES_REF, &report.commit)
            .await
            .ok()
            .flatten(),
        Err(_) => None,
    };
    if json {
        output::json(&serde_json::json!({
            "task": task.issue.identifier,
            "state": task.state,
            "outcome": task.verify_outcome.map(|o| o.as_str()),
            "report": report,
            "risk": task.risk,
            "approvals": task.approvals,
            "approvals_required": task.approvals_required,
            "attestation": attestation
                .as_deref()
                .and_then(|note| serde_json::from_str::<serde_json::Value>(note).ok()),
        }))?;
        return Ok(Code::Success);
    }
    outln!(
        "{}  {}  ({})",
        task.issue.identifier,
        output::sanitize(&task.issue.title),
        task.state
    );
    outln!(
        "  commit {}  base {}  round {}  outcome {}",
        short(&report.commit),
        short(&report.base),
        report.round,
        task.verify_outcome.map_or("-", |o| o.as_str())
    );
    if let Some(error) = &report.error {
        outln!(
            "  verification could not finish: {}",
            output::sanitize(error)
        );
    }
    outln!("\n  gates:");
    // Failing gates first: that is what a reviewer looks for.
    let mut gates: Vec<_> = report.gates.iter().collect();
    gates.sort_by_key(|gate| gate.status.is_green());
    for gate in gates {
        outln!(
            "    {:<22} {:<12} {}{}",
            gate.gate,
            status(gate.status),
            if gate.required {
                "required"
            } else {
                "optional"
            },
            match gate.source {
                takt_protocol::GateSource::Hidden => ", hidden",
                takt_protocol::GateSource::Detected => ", detected",
                takt_protocol::GateSource::Configured => "",
            }
        );
        for (label, names) in [
            ("new failures", &gate.new_failures),
            ("pre-existing", &gate.preexisting_failures),
            ("flaky", &gate.flaky),
        ] {
            if !names.is_empty() {
                outln!("      {label}: {}", names.join(", "));
            }
        }
        for run in &gate.runs {
            outln!("      {}", describe(run));
        }
        if let Some(baseline) = &gate.baseline {
            outln!("      base: {}", describe(baseline));
        }
    }
    if !report.tamper.is_empty() {
        outln!("\n  tamper flags:");
        for flag in &report.tamper {
            outln!(
                "    {:<18} {}  {}",
                flag.rule,
                flag.path,
                output::sanitize(&flag.detail)
            );
        }
    }
    if !report.secrets.is_empty() {
        outln!("\n  possible secrets:");
        for hit in &report.secrets {
            outln!("    {}:{}  {}", hit.path, hit.line, hit.kind);
        }
    }
    for verdict in report.judge.iter().chain(&report.reviewers) {
        outln!(
            "\n  {} ({}): {}",
            verdict.by,
            if verdict.pass { "pass" } else { "BLOCK" },
            output::sanitize(&verdict.summary)
        );
        for finding in &verdict.findings {
            outln!(
                "    [{:?}] {}{}",
                finding.severity,
                finding
                    .file
                    .as_deref()
                    .map(|file| format!(
                        "{file}{}: ",
                        finding.line.map(|l| format!(":{l}")).unwrap_or_default()
                    ))
                    .unwrap_or_default(),
                output::sanitize(&finding.text)
            );
        }
    }
    if let Some(risk) = &task.risk {
        outln!(
            "\n  risk: {} (needs {} approval{})",
            risk.tier,
            risk.approvals_required,
            if risk.approvals_required == 1 {
                ""
            } else {
                "s"
            }
        );
        for rule in &risk.rules {
            outln!(
                "    {:<20} -> {:<9} {}",
                rule.rule,
                rule.tier,
                output::sanitize(&rule.detail)
            );
        }
    }
    if !task.approvals.is_empty() {
        outln!("  approved by: {}", task.approvals.join(", "));
    }
    outln!(
        "\n  attestation: {}",
        if attestation.is_some() {
            format!(
                "git note on {} (git notes --ref={} show {})",
                short(&report.commit),
                takt_verify::attest::NOTES_REF,
                report.commit
            )
        } else {
            "not written yet".to_owned()
        }
    );
    Ok(Code::Success)
}

fn status(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Passed => "passed",
        GateStatus::PreExisting => "pre-existing",
        GateStatus::Flaky => "flaky",
        GateStatus::Failed => "FAILED",
        GateStatus::Skipped => "skipped",
    }
}

fn describe(run: &GateRun) -> String {
    let count = |wanted: TestStatus| run.tests.iter().filter(|t| t.status == wanted).count();
    format!(
        "`{}` exit {} in {} ms{}  tree {}  out {} err {}",
        run.command,
        match (run.exit_code, run.timed_out) {
            (_, true) => "timeout".to_owned(),
            (Some(code), _) => code.to_string(),
            (None, _) => "signal".to_owned(),
        },
        run.duration_ms,
        run.format
            .as_deref()
            .map(|format| format!(
                "  {format}: {} passed, {} failed, {} skipped",
                count(TestStatus::Passed),
                count(TestStatus::Failed),
                count(TestStatus::Skipped)
            ))
            .unwrap_or_default(),
        short(&run.tree),
        short(&run.stdout_hash),
        short(&run.stderr_hash)
    )
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
