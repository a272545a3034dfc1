//! The pull/merge request body: the evidence a reviewer needs on one page, in a stable
//! markdown format, with a hidden marker that names the task.
//!
//! Text that came from an agent or a model (verdict summaries, findings, test names) is made
//! inert: no HTML comments (which could forge the task marker), no table-breaking pipes or
//! newlines in cells.

use std::fmt::Write as _;

use takt_protocol::{GateOutcome, GateStatus, RiskAssessment, Verdict, VerificationReport};

/// The start of the hidden marker; the whole marker is `<!-- takt:task=<id> -->`.
pub const TASK_MARKER_PREFIX: &str = "<!-- takt:task=";

/// Failing test names listed per gate before "and N more".
const TESTS_LISTED: usize = 10;

/// The in-toto attestation of the change, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The notes ref the statement is attached under, e.g. `refs/notes/takt`.
    pub notes_ref: String,
    /// The commit the note is on.
    pub commit: String,
    /// sha256 (hex) of the statement.
    pub statement_sha256: String,
    /// Where the statement can be downloaded, if takt's API serves it.
    pub url: Option<String>,
}

/// What the body summarises.
#[derive(Debug, Clone, Copy)]
pub struct EvidenceSummary<'a> {
    pub task_id: &'a str,
    /// The tracker issue (`#12`, `ENG-7`, a URL).
    pub issue: Option<&'a str>,
    /// A short description of the change (the agent's summary), if any.
    pub summary: Option<&'a str>,
    pub report: &'a VerificationReport,
    pub risk: &'a RiskAssessment,
    pub attestation: Option<&'a Attestation>,
    /// Where the full evidence is (takt's API or dashboard).
    pub evidence_url: Option<&'a str>,
}

/// The hidden marker naming the task, found again by [`task_marker`].
pub fn marker(task_id: &str) -> String {
    format!("{TASK_MARKER_PREFIX}{} -->", inline(task_id))
}

/// The task id in a body's marker, if the body has one (the first marker counts).
pub fn task_marker(body: &str) -> Option<String> {
    let start = body.find(TASK_MARKER_PREFIX)? + TASK_MARKER_PREFIX.len();
    let rest = &body[start..];
    let end = rest.find(" -->")?;
    let id = rest[..end].trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Untrusted text on one line: no HTML comments, no newlines, no table pipes.
fn inline(text: &str) -> String {
    let text = neutral(text);
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// Untrusted text that may span lines: HTML comment openers and closers are escaped so the
/// text cannot hide content or forge the task marker.
fn neutral(text: &str) -> String {
    text.replace("<!--", "&lt;!--").replace("-->", "--&gt;")
}

/// Code spans that survive backticks in the text.
fn code(text: &str) -> String {
    let text = inline(text);
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn status_word(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Passed => "✅ passed",
        GateStatus::PreExisting => "⚠️ pre-existing",
        GateStatus::Flaky => "⚠️ flaky",
        GateStatus::Failed => "❌ failed",
        GateStatus::Skipped => "⏭️ skipped",
    }
}

fn duration(gate: &GateOutcome) -> String {
    match gate.runs.first() {
        Some(run) if run.timed_out => {
            format!("{:.1} s (timed out)", run.duration_ms as f64 / 1000.0)
        }
        Some(run) => format!("{:.1} s", run.duration_ms as f64 / 1000.0),
        None => "—".to_owned(),
    }
}

fn tests_cell(gate: &GateOutcome) -> String {
    let (label, names) = if !gate.new_failures.is_empty() {
        ("", &gate.new_failures)
    } else if !gate.flaky.is_empty() {
        ("flaky: ", &gate.flaky)
    } else if !gate.preexisting_failures.is_empty() {
        ("also on base: ", &gate.preexisting_failures)
    } else {
        return String::new();
    };
    let mut listed: Vec<String> = names.iter().take(TESTS_LISTED).map(|n| code(n)).collect();
    if names.len() > TESTS_LISTED {
        listed.push(format!("and {} more", names.len() - TESTS_LISTED));
    }
    format!("{label}{}", listed.join(", "))
}

fn verdict(out: &mut String, verdict: &Verdict) {
    let word = if verdict.pass { "pass" } else { "**block**" };
    let _ = writeln!(
        out,
        "- **{}**: {word} — {}",
        inline(&verdict.by),
        inline(&verdict.summary)
    );
    let mut findings: Vec<_> = verdict.findings.iter().collect();
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for finding in findings {
        let place = match (&finding.file, finding.line) {
            (Some(file), Some(line)) => format!(" {}", code(&format!("{file}:{line}"))),
            (Some(file), None) => format!(" {}", code(file)),
            _ => String::new(),
        };
        let severity = serde_json::to_value(finding.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let _ = writeln!(out, "  - [{severity}]{place} {}", inline(&finding.text));
    }
}

/// The request body for a verified change: the task marker, the risk tier and the rules that
/// fired, the gates (failing first) with their failing tests, the judge's and reviewers'
/// verdicts, tamper and secret flags, and the attestation.
pub fn pull_request_body(evidence: &EvidenceSummary<'_>) -> String {
    let report = evidence.report;
    let risk = evidence.risk;
    let mut out = String::new();
    let _ = writeln!(out, "{}", marker(evidence.task_id));
    let _ = writeln!(out, "## takt evidence");
    let _ = writeln!(out);
    let mut facts = vec![format!("Task {}", code(evidence.task_id))];
    if let Some(issue) = evidence.issue {
        facts.push(format!("issue {}", inline(issue)));
    }
    let mut commit = format!("commit {}", code(short(&report.commit)));
    if !report.base.is_empty() {
        let _ = write!(commit, " on {}", code(short(&report.base)));
    }
    facts.push(commit);
    facts.push(format!("round {}", report.round));
    let _ = writeln!(out, "{}", facts.join(" · "));
    if let Some(summary) = evidence.summary.filter(|s| !s.trim().is_empty()) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", neutral(summary.trim()));
    }

    let _ = writeln!(out);
    let approvals = match risk.approvals_required {
        0 => "no approval required".to_owned(),
        1 => "1 approval required".to_owned(),
        n => format!("{n} approvals from distinct people required"),
    };
    let _ = writeln!(out, "### Risk: `{}` ({approvals})", risk.tier);
    let _ = writeln!(out);
    if risk.rules.is_empty() {
        let _ = writeln!(out, "No risk rule fired.");
    }
    for rule in &risk.rules {
        let _ = writeln!(
            out,
            "- {} → `{}`: {}",
            code(&rule.rule),
            rule.tier,
            inline(&rule.detail)
        );
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "### Gates");
    let _ = writeln!(out);
    if let Some(error) = &report.error {
        let _ = writeln!(out, "Verification could not run: {}", inline(error));
        let _ = writeln!(out);
    }
    if report.gates.is_empty() {
        let _ = writeln!(out, "No gate ran.");
    } else {
        let _ = writeln!(out, "| gate | status | duration | tests |");
        let _ = writeln!(out, "|---|---|---|---|");
        let mut gates: Vec<&GateOutcome> = report.gates.iter().collect();
        // Red first, then the rest in their configured order (a stable sort keeps it).
        gates.sort_by_key(|g| !matches!(g.status, GateStatus::Failed));
        for gate in gates {
            let name = if gate.required {
                code(&gate.gate)
            } else {
                format!("{} (optional)", code(&gate.gate))
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                status_word(gate.status),
                duration(gate),
                tests_cell(gate)
            );
        }
    }

    if !report.tamper.is_empty() || !report.secrets.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### Flags");
        let _ = writeln!(out);
        for flag in &report.tamper {
            let _ = writeln!(
                out,
                "- {} in {}: {}",
                code(&flag.rule),
                code(&flag.path),
                inline(&flag.detail)
            );
        }
        for hit in &report.secrets {
            let _ = writeln!(
                out,
                "- possible secret ({}) at {}",
                code(&hit.kind),
                code(&format!("{}:{}", hit.path, hit.line))
            );
        }
    }

    if report.judge.is_some() || !report.reviewers.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### Reviews");
        let _ = writeln!(out);
        for v in report.judge.iter().chain(report.reviewers.iter()) {
            verdict(&mut out, v);
        }
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "### Attestation");
    let _ = writeln!(out);
    match evidence.attestation {
        Some(att) => {
            let _ = write!(
                out,
                "in-toto statement sha256 {}, attached as a git note under {} on {}",
                code(&att.statement_sha256),
                code(&att.notes_ref),
                code(short(&att.commit))
            );
            if let Some(url) = &att.url {
                let _ = write!(out, " ([statement]({}))", inline(url));
            }
            let _ = writeln!(out, ".");
        }
        None => {
            let _ = writeln!(out, "Not attested yet.");
        }
    }
    if let Some(url) = evidence.evidence_url {
        let _ = writeln!(out);
        let _ = writeln!(out, "Full evidence: {}", inline(url));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "<sub>Opened by takt. The agent never declares a change done; these results do.</sub>"
    );
    out
}
