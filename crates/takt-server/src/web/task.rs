//! A task's page (`GET /tasks/{id}`): its state, the review actions its state allows, the live
//! agent log, the evidence, the change, spend, the failure report and the journal timeline.
//! `GET /ui/tasks/{id}/{status|actions|details}` render the page's refreshable parts alone.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use takt_core::Task;
use takt_protocol::{JournalEntry, TaskState};

use super::html::{attr, human, path_segment, task_href, text, timestamp};
use super::layout::{self, Section, Viewer, state_badge};
use super::{LIVE_KINDS, diff, evidence, timeline};
use crate::app::{App, find_task};
use crate::error::ApiError;
use crate::extract::PathParam;

/// `GET /tasks/{id}`.
pub async fn page(
    State(app): State<App>,
    headers: HeaderMap,
    PathParam(reference): PathParam,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    match render_page(&app, &viewer, &reference).await {
        Ok(page) => layout::html_response(StatusCode::OK, page),
        Err(error) => layout::error_page(&error, &viewer, Some("/")),
    }
}

async fn render_page(app: &App, viewer: &Viewer, reference: &str) -> Result<String, ApiError> {
    let snapshot = app.snapshot()?;
    let task = find_task(&snapshot, reference)?;
    let journal = app.ask(app.daemon.task_journal(&task.id)).await?;
    let details = details(app, task, &journal).await?;
    let description = task
        .issue
        .description
        .as_deref()
        .filter(|body| !body.trim().is_empty())
        .map_or_else(
            || r#"<p class="muted">No description.</p>"#.to_owned(),
            |body| format!(r#"<pre class="prose">{}</pre>"#, text(body)),
        );
    let main = format!(
        r#"<h1><span class="ident">{identifier}</span> {title}</h1>
<div data-events="/api/v1/events?task={task_id}" data-kinds="{kinds}" data-log="agent-log" hidden></div>
{status}
{actions}
<section aria-labelledby="log-heading"><h2 id="log-heading">Agent log</h2>
<pre id="agent-log" class="log" tabindex="0" aria-live="polite" aria-label="Agent log">{log}</pre></section>
{details}
<section aria-labelledby="description-heading"><h2 id="description-heading">Description</h2>{description}</section>"#,
        identifier = text(&task.issue.identifier),
        title = text(&task.issue.title),
        task_id = attr(&path_segment(&task.id)),
        kinds = attr(&LIVE_KINDS.join(" ")),
        status = status(task),
        actions = actions(task, viewer),
        log = timeline::agent_log(&journal),
    );
    Ok(layout::page(
        &format!("{} {}", task.issue.identifier, task.issue.title),
        Section::Task,
        viewer,
        &main,
    ))
}

/// `GET /ui/tasks/{id}/{part}`: one refreshable part of the page.
pub async fn fragment(
    State(app): State<App>,
    headers: HeaderMap,
    Path((reference, part)): Path<(String, String)>,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    let rendered = async {
        let snapshot = app.snapshot()?;
        let task = find_task(&snapshot, &reference)?;
        match part.as_str() {
            "status" => Ok(status(task)),
            "actions" => Ok(actions(task, &viewer)),
            "details" => {
                let journal = app.ask(app.daemon.task_journal(&task.id)).await?;
                details(&app, task, &journal).await
            }
            _ => Err(ApiError::not_found()),
        }
    };
    match rendered.await {
        Ok(html) => layout::html_response(StatusCode::OK, html),
        Err(error) => layout::html_response(
            error.status,
            format!(r#"<p class="error">{}</p>"#, text(&error.message)),
        ),
    }
}

fn fragment_url(task: &Task, part: &str) -> String {
    format!("/ui/tasks/{}/{part}", path_segment(&task.id))
}

/// The state and the facts an operator decides on.
fn status(task: &Task) -> String {
    let mut facts = vec![
        format!(
            "<dt>State</dt><dd>{}</dd>",
            state_badge(task.state.as_str())
        ),
        format!("<dt>Attempt</dt><dd>{}</dd>", task.attempt),
        format!(
            "<dt>Updated</dt><dd>{} UTC</dd>",
            timestamp(task.updated_at_ms)
        ),
    ];
    if let Some(branch) = &task.branch {
        facts.push(format!(
            "<dt>Branch</dt><dd><code>{}</code></dd>",
            text(branch)
        ));
    }
    if let Some(commit) = &task.commit {
        facts.push(format!(
            "<dt>Commit</dt><dd><code>{}</code></dd>",
            text(commit)
        ));
    }
    if task.state == TaskState::AwaitingReview || !task.approvals.is_empty() {
        facts.push(format!(
            "<dt>Approvals</dt><dd>{} of {}{}</dd>",
            task.approvals.len(),
            task.approvals_required,
            if task.approvals.is_empty() {
                String::new()
            } else {
                format!(" ({})", text(&task.approvals.join(", ")))
            }
        ));
    }
    if let Some(run) = &task.run {
        let phase = run
            .phase
            .and_then(|phase| serde_json::to_value(phase).ok())
            .and_then(|value| value.as_str().map(human))
            .unwrap_or_else(|| "starting".to_owned());
        facts.push(format!(
            "<dt>Run</dt><dd><code>{}</code>, {}, turn {}</dd>",
            text(&run.run_id),
            text(&phase),
            run.turns
        ));
    }
    let mut notes = String::new();
    if let Some(question) = task
        .question
        .as_deref()
        .filter(|_| task.state == TaskState::Blocked)
    {
        notes.push_str(&format!(
            r#"<div class="question" role="note"><h2>The agent asks</h2><p>{}</p></div>"#,
            text(question)
        ));
    }
    if let Some(error) = &task.last_error {
        notes.push_str(&format!(
            r#"<p class="error"><strong>Last error:</strong> {}</p>"#,
            text(error)
        ));
    }
    if let Some(feedback) = &task.feedback {
        notes.push_str(&format!(
            r#"<p><strong>Feedback for the next run:</strong> {}</p>"#,
            text(feedback)
        ));
    }
    format!(
        r#"<section id="task-status" data-refresh-url="{url}" data-state="{state}" aria-label="Status"><dl class="facts">{facts}</dl>{notes}</section>"#,
        url = attr(&fragment_url(task, "status")),
        state = task.state.as_str(),
        facts = facts.join(""),
    )
}

/// The review actions the task's state allows, as plain forms.
fn actions(task: &Task, viewer: &Viewer) -> String {
    let action = |name: &str| format!("{}/{name}", task_href(&task.issue.identifier));
    let by = format!(
        r#"<label>Your name <input name="by" value="{}" autocomplete="username" required maxlength="100"></label>"#,
        attr(&viewer.operator)
    );
    let csrf = viewer.csrf_field();
    let body = match task.state {
        _ if !viewer.can_act() && task.state.is_waiting_on_human() => format!(
            r#"<p>This server has a token. <a href="/login?next={}">Log in</a> to act on this task.</p>"#,
            attr(&path_segment(&task_href(&task.issue.identifier)))
        ),
        TaskState::AwaitingReview => format!(
            r#"<form method="post" action="{approve}" class="action">{csrf}{by}
<label>Comment (optional) <textarea name="comment" rows="2"></textarea></label>
<button type="submit" class="primary" id="approve">Approve</button></form>
<form method="post" action="{reject}" class="action">{csrf}{by}
<label>Why reject? (sent to the agent) <textarea name="comment" rows="3" required></textarea></label>
<button type="submit" id="reject">Reject</button></form>"#,
            approve = attr(&action("approve")),
            reject = attr(&action("reject")),
        ),
        TaskState::Blocked => format!(
            r#"<form method="post" action="{answer}" class="action">{csrf}{by}
<label>Answer <textarea name="text" id="answer-text" rows="3" required></textarea></label>
<button type="submit" class="primary" id="answer">Send answer</button></form>"#,
            answer = attr(&action("answer")),
        ),
        state => format!(
            r#"<p class="muted">No action is waiting on a person while the task is {}.</p>"#,
            human(state.as_str())
        ),
    };
    format!(
        r#"<section id="actions" data-refresh-url="{url}" data-state="{state}" aria-labelledby="actions-heading"><h2 id="actions-heading">Actions</h2>{body}</section>"#,
        url = attr(&fragment_url(task, "actions")),
        state = task.state.as_str(),
    )
}

/// Evidence, findings, risk, the change, spend, the failure report and the timeline.
async fn details(app: &App, task: &Task, journal: &[JournalEntry]) -> Result<String, ApiError> {
    let report = task.verification.as_deref();
    let section = |id: &str, heading: &str, body: String| {
        format!(
            r#"<section aria-labelledby="{id}-heading"><h2 id="{id}-heading">{heading}</h2>{body}</section>"#
        )
    };
    let mut out = String::new();
    if let Some(failure) = &task.failure {
        out.push_str(&section(
            "failure",
            "Failure report",
            evidence::failure(failure),
        ));
    }
    match report {
        Some(report) => {
            let mut gates = evidence::gates(&report.gates);
            if let Some(error) = &report.error {
                gates.insert_str(
                    0,
                    &format!(
                        r#"<p class="error">Verification could not run: {}</p>"#,
                        text(error)
                    ),
                );
            }
            out.push_str(&section("gates", "Gate evidence", gates));
            out.push_str(&section(
                "findings",
                "Judge and reviewers",
                evidence::verdicts(report.judge.as_ref(), &report.reviewers),
            ));
        }
        None => out.push_str(&section(
            "gates",
            "Gate evidence",
            r#"<p class="muted">Not verified yet.</p>"#.to_owned(),
        )),
    }
    out.push_str(&section("risk", "Risk", evidence::risk(task.risk.as_ref())));
    let mut change = report.map_or_else(String::new, |report| diff::files(&report.changed_files));
    if let Some(text) = app.ask(app.daemon.diff(&task.id)).await? {
        change.push_str(&diff::highlighted(&text));
    }
    if change.is_empty() {
        change.push_str(r#"<p class="muted">No change yet.</p>"#);
    }
    out.push_str(&section("change", "Change", change));
    out.push_str(&section("spend", "Spend", evidence::spend(task)));
    out.push_str(&section(
        "timeline",
        "Timeline",
        timeline::timeline(journal),
    ));
    Ok(format!(
        r#"<div id="task-details" data-refresh-url="{url}">{out}</div>"#,
        url = attr(&fragment_url(task, "details")),
    ))
}
