//! From the workflow's `gates`, `verify` and `review` sections to verification jobs, and from
//! a finished verification to the core's event and the commit's attestation note.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use takt_core::Event;
use takt_core::ports::BoxFuture;
use takt_protocol::{GateSource, Issue};
use takt_store::Store;
use takt_verify::{EvidenceStore, GateSpec, Verifier, VerifyJob, VerifySettings};
use takt_workflow::Workflow;
use takt_workspace::WorkspaceManager;
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Gate output goes into the state's content-addressed artifacts, like transcripts.
pub struct StoreEvidence(pub Store);

impl EvidenceStore for StoreEvidence {
    fn put(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            self.0
                .put_artifact(&bytes)
                .await
                .map_err(|error| error.to_string())
        })
    }

    fn get<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { self.0.get_artifact(hash).await.ok() })
    }
}

/// A job naming the base commit `sha` itself: the gates and settings verifications on that
/// base use, for building its warm cache ahead of them.
pub fn base_job(workflow: &Workflow, sha: &str) -> VerifyJob {
    VerifyJob {
        task_id: String::new(),
        identifier: "base".into(),
        title: String::new(),
        description: String::new(),
        commit: sha.to_owned(),
        base: sha.to_owned(),
        round: 0,
        gates: configured_gates(workflow),
        settings: settings(workflow),
        review: None,
    }
}

/// The gates WORKFLOW.md configures (hidden ones included), in the written order.
pub fn configured_gates(workflow: &Workflow) -> Vec<GateSpec> {
    workflow
        .gates
        .iter()
        .map(|gate| GateSpec {
            name: gate.name.clone(),
            run: gate.run.clone(),
            timeout_ms: gate.timeout_ms,
            required: gate.required,
            env: gate.env.clone(),
            source: if gate.hidden {
                GateSource::Hidden
            } else {
                GateSource::Configured
            },
            hidden_files: gate.files.clone(),
            junit: gate.junit.clone(),
            speed: takt_verify::speed_of(&gate.run),
        })
        .collect()
}

pub fn settings(workflow: &Workflow) -> VerifySettings {
    let verify = &workflow.verify;
    VerifySettings {
        gates_auto: verify.gates_auto,
        flaky_reruns: verify.flaky_reruns,
        keep_going: verify.keep_going,
        baseline: verify.baseline,
        base_tests: verify.base_tests,
        warm_cache: verify.warm_cache,
        warm_cache_max_bytes: verify.warm_cache_max_mb.saturating_mul(1 << 20),
    }
}

/// The verifier of a daemon: gates run in a sandbox like the agents' but with no network at
/// all, on checkouts under `<state>/verify`.
pub fn verifier(
    workflow: &Workflow,
    host: &takt_sandbox::HostReport,
    state_dir: &Path,
    workspaces: Arc<WorkspaceManager>,
    store: Store,
) -> Result<Verifier> {
    let sandbox = crate::sandbox::build_for_gates(workflow, host, state_dir)
        .context("the gate sandbox cannot start")?;
    Ok(Verifier::new(
        workspaces,
        Arc::new(sandbox),
        state_dir.join("verify"),
        Arc::new(StoreEvidence(store)),
    ))
}

/// What one verification needs besides the verifier.
pub struct Request {
    pub task_id: String,
    pub issue: Issue,
    pub commit: String,
    pub round: u32,
    /// The base branch's tip in the mirror.
    pub base: String,
    pub review: Option<takt_verify::review::ReviewPanel>,
}

/// Runs the verification and reports it (verdict commitments first, then the report).
pub async fn run(
    verifier: Arc<Verifier>,
    workflow: Arc<Workflow>,
    request: Request,
    events: mpsc::UnboundedSender<Event>,
) {
    let job = VerifyJob {
        task_id: request.task_id.clone(),
        identifier: request.issue.identifier.clone(),
        title: request.issue.title.clone(),
        description: request.issue.description.clone().unwrap_or_default(),
        commit: request.commit.clone(),
        base: request.base,
        round: request.round,
        gates: configured_gates(&workflow),
        settings: settings(&workflow),
        review: request.review,
    };
    let commitments = {
        let events = events.clone();
        let task_id = request.task_id.clone();
        let commit = request.commit.clone();
        move |by: &str, hash: String| {
            let _ = events.send(Event::VerdictCommitted {
                task_id: task_id.clone(),
                commit: commit.clone(),
                by: by.to_owned(),
                hash,
            });
        }
    };
    let mut report = verifier.verify_with(&job, &commitments).await;
    if report.error.is_some() {
        // Most failures to verify are passing trouble (a lock, a busy disk): one more try
        // before the task is failed for it.
        warn!(
            issue_identifier = %request.issue.identifier,
            error = report.error.as_deref().unwrap_or(""),
            "verification could not finish; trying once more"
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        report = verifier.verify_with(&job, &commitments).await;
    }
    let feedback = takt_verify::feedback::compose(&report, verifier.evidence()).await;
    info!(
        issue_identifier = %request.issue.identifier,
        commit = %request.commit,
        gates_green = report.gates_green(),
        error = report.error.as_deref().unwrap_or(""),
        "verification finished"
    );
    let _ = events.send(Event::VerificationFinished {
        task_id: request.task_id,
        report: Box::new(report),
        feedback,
    });
}

/// Writes the attestation of `task`'s latest verification as a git note on its commit (and
/// publishes it to a local source after a merge).
pub async fn attest(
    workspaces: &WorkspaceManager,
    task: &takt_core::Task,
    sandbox: &str,
    journal_head: Option<String>,
    publish: bool,
) {
    let Some(report) = task.verification.as_deref() else {
        return;
    };
    let attestation = takt_verify::attest::Attestation {
        task_id: &task.id,
        identifier: &task.issue.identifier,
        title: &task.issue.title,
        report,
        risk: task.risk.as_ref(),
        spend_micros: task.spend_micros,
        tokens: task.metered.total_tokens,
        model: None,
        approvals: &task.approvals,
        sandbox,
        journal_head: journal_head.as_deref(),
    };
    let note = attestation.note();
    if let Err(error) = workspaces
        .write_note(takt_verify::attest::NOTES_REF, &report.commit, &note)
        .await
    {
        warn!(issue_identifier = %task.issue.identifier, %error, "writing the attestation note failed");
        return;
    }
    if publish
        && let Err(error) = workspaces
            .publish_notes(takt_verify::attest::NOTES_REF)
            .await
    {
        warn!(issue_identifier = %task.issue.identifier, %error, "publishing the attestation notes failed");
    }
}

/// The judge and reviewers `review:` asks for, reaching the model through the daemon's
/// endpoint with a grant of their own (metered to the task). `None` when none is configured
/// or there is no model endpoint.
pub fn review_panel(
    workflow: &Workflow,
    models: Option<&crate::models::ModelEndpoint>,
    task_id: &str,
    grant_id: &str,
) -> Option<takt_verify::review::ReviewPanel> {
    let review = &workflow.review;
    if !review.judge && review.reviewers.is_empty() {
        return None;
    }
    let Some(models) = models else {
        warn!("review.judge / review.reviewers are set but no model endpoint runs; skipping them");
        return None;
    };
    let model = review.model.clone().or_else(|| workflow.model.name.clone());
    let access = models.grant(grant_id, task_id, model);
    let wire = match workflow.model.provider {
        takt_workflow::ModelProvider::Anthropic => takt_verify::llm::Wire::Messages,
        _ => takt_verify::llm::Wire::Responses,
    };
    match takt_verify::llm::ModelClient::new(&access, wire) {
        Ok(client) => Some(takt_verify::review::ReviewPanel {
            client,
            judge: review.judge,
            reviewers: review
                .reviewers
                .iter()
                .map(|reviewer| takt_verify::reviewers::Reviewer {
                    name: reviewer.name.clone(),
                    mandate: reviewer.mandate.clone(),
                })
                .collect(),
        }),
        Err(error) => {
            warn!(%error, "the judge and reviewers cannot reach the model; skipping them");
            None
        }
    }
}

/// The grant id of a task's `round`-th verification (its model calls are metered to the task).
pub fn grant_id(identifier: &str, round: u32) -> String {
    format!("{identifier}#verify-{round}")
}
