//! The task page's evidence sections: gates (failing first, failing tests first within a
//! gate), the judge's and reviewers' findings, the risk tier with the rules that fired, spend,
//! and the failure report.

use takt_core::Task;
use takt_protocol::{FailureReport, GateOutcome, GateRun, RiskAssessment, Verdict};

use super::html::{attr, dollars, human, text};

/// Gates, red ones first: the operator looks for what broke.
pub fn gates(gates: &[GateOutcome]) -> String {
    if gates.is_empty() {
        return r#"<p class="muted">No gates ran.</p>"#.to_owned();
    }
    let mut ordered: Vec<&GateOutcome> = gates.iter().collect();
    ordered.sort_by_key(|gate| gate.status.is_green());
    let mut rows = String::new();
    for gate in ordered {
        let status = serde_json::to_value(gate.status)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut tests = String::new();
        for (label, names, class) in [
            ("New failures", &gate.new_failures, "fail"),
            (
                "Failing on the base too",
                &gate.preexisting_failures,
                "warn",
            ),
            ("Flaky", &gate.flaky, "warn"),
        ] {
            if names.is_empty() {
                continue;
            }
            let items: String = names
                .iter()
                .map(|name| format!("<li><code>{}</code></li>", text(name)))
                .collect();
            tests.push_str(&format!(
                r#"<p class="{class}">{label} ({count}):</p><ul class="tests">{items}</ul>"#,
                count = names.len()
            ));
        }
        let run = gate.runs.first().map(run_line).unwrap_or_default();
        rows.push_str(&format!(
            r#"<li class="gate gate-{status_attr}" data-gate="{name_attr}"><strong>{name}</strong> <span class="badge gate-status-{status_attr}">{status_label}</span>{required}{run}{tests}</li>"#,
            status_attr = attr(&status),
            name_attr = attr(&gate.gate),
            name = text(&gate.gate),
            status_label = text(&human(&status)),
            required = if gate.required { "" } else { " <span class=\"muted\">(optional)</span>" },
        ));
    }
    format!(r#"<ul class="gates">{rows}</ul>"#)
}

/// The command, exit and links to the captured output of one gate run.
fn run_line(run: &GateRun) -> String {
    let exit = match (run.exit_code, run.timed_out) {
        (_, true) => "timed out".to_owned(),
        (Some(code), false) => format!("exit {code}"),
        (None, false) => "killed".to_owned(),
    };
    format!(
        r#"<p class="muted"><code>{command}</code> · {exit} · {ms} ms · <a href="/api/v1/artifacts/{out}">stdout</a> · <a href="/api/v1/artifacts/{err}">stderr</a></p>"#,
        command = text(&run.command),
        ms = run.duration_ms,
        out = attr(&run.stdout_hash),
        err = attr(&run.stderr_hash),
    )
}

/// The judge's and the reviewers' verdicts with their findings, most severe first.
pub fn verdicts(judge: Option<&Verdict>, reviewers: &[Verdict]) -> String {
    let all: Vec<&Verdict> = judge.into_iter().chain(reviewers).collect();
    if all.is_empty() {
        return r#"<p class="muted">No judge or reviewer looked at this change.</p>"#.to_owned();
    }
    let mut out = String::new();
    for verdict in all {
        let mut findings: Vec<_> = verdict.findings.iter().collect();
        findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
        let items: String = findings
            .iter()
            .map(|finding| {
                let severity = serde_json::to_value(finding.severity)
                    .ok()
                    .and_then(|value| value.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let place = match (&finding.file, finding.line) {
                    (Some(file), Some(line)) => format!(" <code>{}:{line}</code>", text(file)),
                    (Some(file), None) => format!(" <code>{}</code>", text(file)),
                    _ => String::new(),
                };
                format!(
                    r#"<li><span class="badge severity-{sev}">{sev}</span>{place} {finding}</li>"#,
                    sev = attr(&severity),
                    finding = text(&finding.text)
                )
            })
            .collect();
        out.push_str(&format!(
            r#"<article class="verdict"><h3>{by} <span class="badge {class}">{result}</span></h3><p>{summary}</p><ul>{items}</ul></article>"#,
            by = text(&verdict.by),
            class = if verdict.pass { "pass" } else { "fail" },
            result = if verdict.pass { "pass" } else { "block" },
            summary = text(&verdict.summary),
        ));
    }
    out
}

/// The risk tier and every rule that fired.
pub fn risk(risk: Option<&RiskAssessment>) -> String {
    let Some(risk) = risk else {
        return r#"<p class="muted">Not assessed yet.</p>"#.to_owned();
    };
    let rules: String = risk
        .rules
        .iter()
        .map(|rule| {
            format!(
                "<li><code>{}</code> → {}: {}</li>",
                text(&rule.rule),
                text(&human(rule.tier.as_str())),
                text(&rule.detail)
            )
        })
        .collect();
    format!(
        r#"<p>Tier <strong class="tier-{tier}">{label}</strong>, {approvals} approval(s) needed.</p><ul>{rules}</ul>"#,
        tier = risk.tier.as_str(),
        label = human(risk.tier.as_str()),
        approvals = risk.approvals_required,
    )
}

/// What the task spent.
pub fn spend(task: &Task) -> String {
    format!(
        "<dl class=\"facts\"><dt>Cost</dt><dd>{}</dd><dt>Tokens (metered)</dt><dd>{} in, {} out, {} total</dd><dt>Runs</dt><dd>{}</dd></dl>",
        dollars(task.spend_micros),
        task.metered.input_tokens,
        task.metered.output_tokens,
        task.metered.total_tokens,
        task.runs_started,
    )
}

/// The failure report: why, what was tried, and what to do next.
pub fn failure(report: &FailureReport) -> String {
    let attempts: String = report
        .attempts
        .iter()
        .map(|attempt| {
            format!(
                "<li><code>{}</code> {}{}</li>",
                text(&attempt.run_id),
                text(attempt.outcome.as_str()),
                attempt
                    .error
                    .as_deref()
                    .map(|error| format!(": {}", text(error)))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        r#"<p class="error">{reason}</p><p><strong>Next:</strong> {action}</p><ol>{attempts}</ol>"#,
        reason = text(&report.reason),
        action = text(&report.suggested_action),
    )
}
