use takt_forge::{Attestation, EvidenceSummary, pull_request_body, task_marker};
use takt_protocol::{
    Finding, GateOutcome, GateRun, GateSource, GateStatus, RiskAssessment, RiskRule, RiskTier,
    Severity, TamperFlag, Verdict, VerificationReport,
};

fn run(ms: u64, exit: i32) -> GateRun {
    GateRun {
        gate: String::new(),
        command: "cargo test".to_owned(),
        commit: "c".repeat(40),
        tree: "t".repeat(40),
        environment: Default::default(),
        exit_code: Some(exit),
        timed_out: false,
        duration_ms: ms,
        stdout_hash: String::new(),
        stderr_hash: String::new(),
        format: None,
        tests: Vec::new(),
    }
}

fn gate(name: &str, status: GateStatus, ms: u64, failures: &[&str]) -> GateOutcome {
    GateOutcome {
        gate: name.to_owned(),
        source: GateSource::Detected,
        required: true,
        status,
        new_failures: failures.iter().map(|f| (*f).to_owned()).collect(),
        preexisting_failures: Vec::new(),
        flaky: Vec::new(),
        runs: vec![run(ms, if status == GateStatus::Failed { 101 } else { 0 })],
        baseline: None,
    }
}

fn report() -> VerificationReport {
    let mut report = VerificationReport::new("a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0", 2);
    report.base = "f".repeat(40);
    report.gates = vec![
        gate("build", GateStatus::Passed, 12_300, &[]),
        gate(
            "test",
            GateStatus::Failed,
            45_000,
            &["tests::adds", "tests::a|b"],
        ),
    ];
    report.tamper = vec![TamperFlag {
        rule: "test_modified".to_owned(),
        path: "tests/a.rs".to_owned(),
        detail: "assertion changed".to_owned(),
    }];
    report.judge = Some(Verdict {
        by: "judge".to_owned(),
        pass: false,
        summary: "misses the edge case <!-- takt:task=other -->".to_owned(),
        findings: vec![
            Finding {
                severity: Severity::Minor,
                file: None,
                line: None,
                text: "naming".to_owned(),
            },
            Finding {
                severity: Severity::Major,
                file: Some("src/lib.rs".to_owned()),
                line: Some(7),
                text: "overflow".to_owned(),
            },
        ],
        model: None,
    });
    report
}

fn risk() -> RiskAssessment {
    RiskAssessment {
        tier: RiskTier::Review,
        rules: vec![RiskRule {
            rule: "gate_red".to_owned(),
            tier: RiskTier::Review,
            detail: "test failed".to_owned(),
        }],
        approvals_required: 1,
    }
}

#[test]
fn the_body_has_a_stable_format() {
    let report = report();
    let risk = risk();
    let attestation = Attestation {
        notes_ref: "refs/notes/takt".to_owned(),
        commit: report.commit.clone(),
        statement_sha256: "9".repeat(64),
        url: None,
    };
    let body = pull_request_body(&EvidenceSummary {
        task_id: "T-7",
        issue: Some("#12"),
        summary: Some("Adds the thing."),
        report: &report,
        risk: &risk,
        attestation: Some(&attestation),
        evidence_url: Some("http://takt.local/tasks/T-7"),
    });
    let expected = format!(
        "<!-- takt:task=T-7 -->
## takt evidence

Task `T-7` · issue #12 · commit `a1b2c3d4e5f6` on `ffffffffffff` · round 2

Adds the thing.

### Risk: `review` (1 approval required)

- `gate_red` → `review`: test failed

### Gates

| gate | status | duration | tests |
|---|---|---|---|
| `test` | ❌ failed | 45.0 s | `tests::adds`, `tests::a\\|b` |
| `build` | ✅ passed | 12.3 s |  |

### Flags

- `test_modified` in `tests/a.rs`: assertion changed

### Reviews

- **judge**: **block** — misses the edge case &lt;!-- takt:task=other --&gt;
  - [major] `src/lib.rs:7` overflow
  - [minor] naming

### Attestation

in-toto statement sha256 `{}`, attached as a git note under `refs/notes/takt` on `a1b2c3d4e5f6`.

Full evidence: http://takt.local/tasks/T-7

<sub>Opened by takt. The agent never declares a change done; these results do.</sub>
",
        "9".repeat(64)
    );
    assert_eq!(body, expected);
    // The agent's text cannot forge the marker: the first (and only) marker is takt's.
    assert_eq!(task_marker(&body).as_deref(), Some("T-7"));
    assert_eq!(body.matches("<!--").count(), 1);
}

#[test]
fn a_body_without_gates_or_attestation_says_so() {
    let report = VerificationReport::new("abc", 1);
    let risk = RiskAssessment {
        tier: RiskTier::AutoShip,
        rules: Vec::new(),
        approvals_required: 0,
    };
    let body = pull_request_body(&EvidenceSummary {
        task_id: "t",
        issue: None,
        summary: None,
        report: &report,
        risk: &risk,
        attestation: None,
        evidence_url: None,
    });
    assert!(body.contains("### Risk: `auto_ship` (no approval required)"));
    assert!(body.contains("No gate ran."));
    assert!(body.contains("Not attested yet."));
}

#[test]
fn settings_come_from_the_publish_section() {
    use takt_forge::{ForgeKind, ForgeSettings, MergeMethod};
    let env = takt_workflow::MapEnv::new().with_var("GL", "glpat-abc");
    let workflow = takt_workflow::parse(
        "---\npublish:\n  forge: gitlab\n  project_path: g/p\n  token: $GL\n  api_url: https://gl.example/api/v4\n  merge_method: merge\n---\n",
        std::path::Path::new("/repo/WORKFLOW.md"),
        &env,
    )
    .unwrap();
    let settings = ForgeSettings::from_publish(&workflow.publish)
        .unwrap()
        .unwrap();
    assert_eq!(settings.kind, ForgeKind::Gitlab);
    assert_eq!(settings.repo, "g/p");
    assert_eq!(settings.token.expose(), "glpat-abc");
    assert_eq!(settings.merge_method, MergeMethod::Merge);
    assert_eq!(settings.push_url(), "https://gl.example/g/p.git");
    assert!(!format!("{settings:?}").contains("glpat-abc"));

    let local = takt_workflow::parse("", std::path::Path::new("/repo/WORKFLOW.md"), &env).unwrap();
    assert!(
        ForgeSettings::from_publish(&local.publish)
            .unwrap()
            .is_none()
    );
    let unset = takt_workflow::parse(
        "---\npublish:\n  forge: github\n  repo: a/b\n  token: $NOPE\n---\n",
        std::path::Path::new("/repo/WORKFLOW.md"),
        &env,
    )
    .unwrap();
    let error = ForgeSettings::from_publish(&unset.publish).unwrap_err();
    assert!(error.to_string().contains("$NOPE"), "{error}");
}
