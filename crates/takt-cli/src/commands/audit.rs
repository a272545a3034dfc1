//! `takt audit verify [ID]`: the journal's hash chain, every artifact's content hash, and for a
//! task the completeness of its evidence and the agreement of its attestation note.

use std::path::Path;

use anyhow::{Result, bail};

use super::output::{self, outln};
use crate::engine::load_state;
use crate::exit::Code;
use crate::project::Project;

pub async fn verify(workflow: Option<&Path>, task: Option<&str>, json: bool) -> Result<Code> {
    let project = Project::locate(workflow)?;
    let store = project.store().await?;
    let chain = store.verify_journal().await?;
    let bad_artifacts = store.verify_artifacts().await?;
    let evidence = match task {
        Some(id) => Some(task_evidence(&project, &store, id).await?),
        None => None,
    };
    let evidence_ok = evidence.as_ref().is_none_or(|problems| problems.is_empty());
    let intact = chain.first_broken.is_none() && bad_artifacts.is_empty() && evidence_ok;
    if json {
        output::json(&serde_json::json!({
            "intact": intact,
            "entries": chain.entries,
            "first_broken": chain.first_broken.as_ref().map(|broken| serde_json::json!({
                "seq": broken.seq(),
                "problem": broken.to_string(),
            })),
            "corrupt_artifacts": bad_artifacts,
            "evidence_problems": evidence,
        }))?;
    } else {
        match &chain.first_broken {
            None => outln!("journal: {} entries, chain intact", chain.entries),
            Some(broken) => outln!("journal: BROKEN at entry {}: {broken}", broken.seq()),
        }
        if bad_artifacts.is_empty() {
            outln!("artifacts: all match their hashes");
        } else {
            for hash in &bad_artifacts {
                outln!("artifact {hash}: content does not match its hash");
            }
        }
        match &evidence {
            Some(problems) if problems.is_empty() => {
                outln!(
                    "evidence of {}: complete, attestation agrees",
                    task.unwrap_or_default()
                );
            }
            Some(problems) => {
                for problem in problems {
                    outln!("evidence: {problem}");
                }
            }
            None => {}
        }
    }
    Ok(if intact {
        Code::Success
    } else {
        Code::Tampered
    })
}

/// What is wrong with a task's evidence: a gate output that is missing or altered, or an
/// attestation note that disagrees with the journal about the commit's gates or risk tier.
async fn task_evidence(
    project: &Project,
    store: &takt_store::Store,
    id: &str,
) -> Result<Vec<String>> {
    let state = load_state(store).await?;
    let Some(task) = state.find(id) else {
        bail!("no task {id}: `takt task list` shows the known tasks");
    };
    let mut problems = Vec::new();
    let Some(report) = task.verification.as_deref() else {
        return Ok(problems);
    };
    for gate in &report.gates {
        for run in gate.runs.iter().chain(gate.baseline.iter()) {
            for hash in [&run.stdout_hash, &run.stderr_hash] {
                if let Err(error) = store.get_artifact(hash).await {
                    problems.push(format!("gate {} output {hash}: {error}", gate.gate));
                }
            }
        }
    }
    let note = project
        .workspaces()?
        .read_note(takt_verify::attest::NOTES_REF, &report.commit)
        .await?;
    match note.and_then(|note| serde_json::from_str::<serde_json::Value>(&note).ok()) {
        None => problems.push(format!(
            "no readable attestation note on {} (refs/notes/{})",
            report.commit,
            takt_verify::attest::NOTES_REF
        )),
        Some(statement) => {
            let predicate = &statement["predicate"];
            if statement["subject"][0]["digest"]["gitCommit"] != report.commit.as_str() {
                problems.push("the attestation names another commit".into());
            }
            let noted: Vec<(&str, &str)> = predicate["gates"]
                .as_array()
                .map(|gates| {
                    gates
                        .iter()
                        .map(|g| {
                            (
                                g["name"].as_str().unwrap_or_default(),
                                g["status"].as_str().unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let journaled: Vec<(String, String)> = report
                .gates
                .iter()
                .map(|g| {
                    (
                        g.gate.clone(),
                        serde_json::to_value(g.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    )
                })
                .collect();
            let agree = noted.len() == journaled.len()
                && noted
                    .iter()
                    .zip(&journaled)
                    .all(|((name, status), (j_name, j_status))| {
                        name == j_name && status == j_status
                    });
            if !agree {
                problems.push(format!(
                    "the attestation's gates {noted:?} differ from the journal's {journaled:?}"
                ));
            }
            let tier = task.risk.as_ref().map(|risk| risk.tier.as_str());
            if predicate["risk"]["tier"].as_str() != tier {
                problems.push(format!(
                    "the attestation's risk tier {} differs from the journal's {tier:?}",
                    predicate["risk"]["tier"]
                ));
            }
        }
    }
    Ok(problems)
}
