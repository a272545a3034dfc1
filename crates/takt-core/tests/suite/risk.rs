//! The risk policy: start tier, escalations, the rules listed and the approvals asked for.

use takt_core::risk::{RiskPolicy, RiskPolicyError, RiskSettings, assess};
use takt_protocol::{
    ChangeKind, ChangedFile, Finding, GateOutcome, GateSource, GateStatus, RiskAssessment,
    RiskTier, SecretHit, Severity, TamperFlag, Verdict, VerificationReport,
};

fn policy(settings: RiskSettings) -> RiskPolicy {
    match RiskPolicy::new(settings) {
        Ok(policy) => policy,
        Err(err) => panic!("the policy does not compile: {err}"),
    }
}

/// Docs auto-ship, auth code is a hard stop.
fn docs_and_auth() -> RiskPolicy {
    policy(RiskSettings {
        auto_ship: vec!["docs/**".into(), "*.md".into()],
        hard_stop: vec!["src/auth/**".into()],
        ..RiskSettings::default()
    })
}

fn file(path: &str, lines: u32) -> ChangedFile {
    ChangedFile {
        path: path.into(),
        old_path: None,
        kind: ChangeKind::Modified,
        added_lines: lines,
        removed_lines: 0,
    }
}

fn report(paths: &[&str]) -> VerificationReport {
    VerificationReport {
        commit: "c1".into(),
        base: "b0".into(),
        round: 1,
        gates: vec![],
        changed_files: paths.iter().map(|path| file(path, 3)).collect(),
        secrets: vec![],
        tamper: vec![],
        judge: None,
        reviewers: vec![],
        error: None,
    }
}

fn rule_names(assessment: &RiskAssessment) -> Vec<&str> {
    assessment
        .rules
        .iter()
        .map(|rule| rule.rule.as_str())
        .collect()
}

fn detail<'a>(assessment: &'a RiskAssessment, rule: &str) -> &'a str {
    match assessment.rules.iter().find(|r| r.rule == rule) {
        Some(found) => &found.detail,
        None => panic!("rule {rule} did not fire: {assessment:#?}"),
    }
}

#[test]
fn a_docs_only_change_auto_ships() {
    let assessment = assess(
        &docs_and_auth(),
        &report(&["docs/guide.md", "README.md"]),
        false,
    );
    assert_eq!(assessment.tier, RiskTier::AutoShip);
    assert_eq!(rule_names(&assessment), ["path:auto_ship"]);
    assert_eq!(assessment.approvals_required, 0);
    assert!(detail(&assessment, "path:auto_ship").contains("docs/guide.md, README.md"));
}

#[test]
fn docs_plus_auth_code_is_a_hard_stop_listing_both_rules() {
    let assessment = assess(
        &docs_and_auth(),
        &report(&["docs/guide.md", "src/auth/login.rs"]),
        false,
    );
    assert_eq!(assessment.tier, RiskTier::HardStop);
    assert_eq!(rule_names(&assessment), ["default", "path:hard_stop"]);
    assert_eq!(assessment.rules[0].tier, RiskTier::Review);
    assert!(
        detail(&assessment, "default").contains("not covered by risk.auto_ship: src/auth/login.rs")
    );
    assert_eq!(detail(&assessment, "path:hard_stop"), "src/auth/login.rs");
    assert_eq!(assessment.approvals_required, 2);
}

#[test]
fn nothing_firing_leaves_the_default_tier() {
    let assessment = assess(&RiskPolicy::default(), &report(&["src/main.rs"]), false);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(rule_names(&assessment), ["default"]);
    assert_eq!(
        detail(&assessment, "default"),
        "no risk.auto_ship globs; risk.default is review"
    );
    assert_eq!(assessment.approvals_required, 1);

    let ship_by_default = policy(RiskSettings {
        default_tier: RiskTier::AutoShip,
        ..RiskSettings::default()
    });
    let assessment = assess(&ship_by_default, &report(&["src/main.rs"]), false);
    assert_eq!(assessment.tier, RiskTier::AutoShip);
    assert_eq!(assessment.approvals_required, 0);
}

#[test]
fn an_empty_change_never_auto_ships_through_auto_ship_globs() {
    let assessment = assess(&docs_and_auth(), &report(&[]), false);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(
        detail(&assessment, "default"),
        "the change has no files; risk.default is review"
    );
}

#[test]
fn approvals_follow_the_tier() {
    let strict = policy(RiskSettings {
        hard_stop: vec!["infra/**".into()],
        hard_stop_approvals: 3,
        default_tier: RiskTier::AutoShip,
        ..RiskSettings::default()
    });
    assert_eq!(
        assess(&strict, &report(&["a.rs"]), false).approvals_required,
        0
    );
    assert_eq!(
        assess(&strict, &report(&["Cargo.lock"]), false).approvals_required,
        1
    );
    assert_eq!(
        assess(&strict, &report(&["infra/main.rs"]), false).approvals_required,
        3
    );
    assert_eq!(strict.approvals_for(RiskTier::HardStop), 3);
}

#[test]
fn lockfiles_manifests_migrations_and_ci_need_review() {
    let ship = policy(RiskSettings {
        default_tier: RiskTier::AutoShip,
        ..RiskSettings::default()
    });
    let cases = [
        ("Cargo.lock", "lockfile"),
        ("web/package-lock.json", "lockfile"),
        ("go.sum", "lockfile"),
        ("crates/x/Cargo.toml", "dependency_manifest"),
        ("requirements-dev.txt", "dependency_manifest"),
        ("build.gradle.kts", "dependency_manifest"),
        ("db/migrations/0002_users.rs", "migration"),
        ("migrations/0001.rs", "migration"),
        ("schema/seed.sql", "migration"),
        (".github/workflows/ci.yml", "ci_infra"),
        ("services/api/Dockerfile.prod", "ci_infra"),
        ("docker-compose.test.yml", "ci_infra"),
        ("infra/main.tf", "ci_infra"),
        ("k8s/deploy.yaml", "ci_infra"),
    ];
    for (path, rule) in cases {
        let assessment = assess(&ship, &report(&[path]), false);
        assert_eq!(assessment.tier, RiskTier::Review, "{path}");
        assert_eq!(rule_names(&assessment), ["default", rule], "{path}");
        assert_eq!(detail(&assessment, rule), path);
    }
    // Only at the root: a nested `deploy` module is ordinary code.
    let assessment = assess(&ship, &report(&["src/deploy/mod.rs"]), false);
    assert_eq!(assessment.tier, RiskTier::AutoShip);
}

#[test]
fn builtin_rules_can_be_turned_off() {
    let plain = policy(RiskSettings {
        builtin_rules: false,
        default_tier: RiskTier::AutoShip,
        ..RiskSettings::default()
    });
    let assessment = assess(&plain, &report(&["Cargo.lock", "Cargo.toml"]), false);
    assert_eq!(assessment.tier, RiskTier::AutoShip);
    assert_eq!(rule_names(&assessment), ["default"]);
}

#[test]
fn a_secret_is_a_hard_stop() {
    let mut change = report(&["docs/setup.md"]);
    change.secrets.push(SecretHit {
        path: "docs/setup.md".into(),
        line: 12,
        kind: "aws_access_key".into(),
    });
    let assessment = assess(&docs_and_auth(), &change, false);
    assert_eq!(assessment.tier, RiskTier::HardStop);
    assert_eq!(rule_names(&assessment), ["path:auto_ship", "secret"]);
    assert_eq!(
        detail(&assessment, "secret"),
        "docs/setup.md:12 (aws_access_key)"
    );
    assert_eq!(assessment.approvals_required, 2);
}

#[test]
fn a_large_change_needs_review() {
    let mut change = report(&["docs/a.md", "docs/b.md"]);
    change.changed_files[0].added_lines = 900;
    change.changed_files[1].removed_lines = 200;
    let assessment = assess(&docs_and_auth(), &change, false);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(rule_names(&assessment), ["path:auto_ship", "size"]);
    assert_eq!(
        detail(&assessment, "size"),
        "1103 changed lines, more than risk.max_changed_lines (1000)"
    );
    // At the limit is not over it.
    change.changed_files[1].removed_lines = 94;
    assert_eq!(
        assess(&docs_and_auth(), &change, false).tier,
        RiskTier::AutoShip
    );
}

#[test]
fn every_tamper_flag_is_its_own_rule() {
    let mut change = report(&["docs/a.md"]);
    for (rule, path) in [
        ("test_deleted", "tests/login.rs"),
        ("assertion_removed", "tests/api.rs"),
    ] {
        change.tamper.push(TamperFlag {
            rule: rule.into(),
            path: path.into(),
            detail: "3 lines".into(),
        });
    }
    let assessment = assess(&docs_and_auth(), &change, false);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(
        rule_names(&assessment),
        ["path:auto_ship", "tamper", "tamper"]
    );
    assert_eq!(
        assessment.rules[1].detail,
        "test_deleted tests/login.rs: 3 lines"
    );
    assert_eq!(
        assessment.rules[2].detail,
        "assertion_removed tests/api.rs: 3 lines"
    );
}

fn verdict(by: &str, pass: bool, severities: &[Severity]) -> Verdict {
    Verdict {
        by: by.into(),
        pass,
        summary: format!("{by} summary"),
        findings: severities
            .iter()
            .map(|severity| Finding {
                severity: *severity,
                file: Some("src/lib.rs".into()),
                line: Some(7),
                text: "unchecked input".into(),
            })
            .collect(),
        model: None,
    }
}

#[test]
fn a_major_reviewer_finding_needs_review_and_minor_ones_do_not() {
    let mut change = report(&["docs/a.md"]);
    change.reviewers = vec![
        verdict("qa", true, &[Severity::Minor, Severity::Info]),
        verdict("security", true, &[Severity::Major]),
    ];
    let assessment = assess(&docs_and_auth(), &change, false);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(
        rule_names(&assessment),
        ["path:auto_ship", "reviewer_finding"]
    );
    assert_eq!(
        detail(&assessment, "reviewer_finding"),
        "security: [major] src/lib.rs:7 unchecked input"
    );

    change.reviewers = vec![verdict("qa", true, &[Severity::Minor])];
    assert_eq!(
        assess(&docs_and_auth(), &change, false).tier,
        RiskTier::AutoShip
    );
}

#[test]
fn an_overruled_judge_veto_needs_review() {
    let mut change = report(&["docs/a.md"]);
    change.judge = Some(verdict("judge", false, &[]));
    assert_eq!(
        assess(&docs_and_auth(), &change, false).tier,
        RiskTier::AutoShip,
        "a veto that was not overruled is the machine's business, not the risk policy's"
    );
    let assessment = assess(&docs_and_auth(), &change, true);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(
        detail(&assessment, "judge_veto"),
        "the judge vetoed: judge summary"
    );
    change.judge = Some(verdict("judge", true, &[]));
    assert_eq!(
        assess(&docs_and_auth(), &change, true).tier,
        RiskTier::AutoShip
    );
}

#[test]
fn a_red_required_gate_never_auto_ships() {
    let gate = |name: &str, required: bool, status: GateStatus| GateOutcome {
        gate: name.into(),
        source: GateSource::Configured,
        required,
        status,
        new_failures: vec![],
        preexisting_failures: vec![],
        flaky: vec![],
        runs: vec![],
        baseline: None,
    };
    let mut change = report(&["docs/a.md"]);
    change.gates = vec![
        gate("lint", false, GateStatus::Failed),
        gate("unit", true, GateStatus::Flaky),
    ];
    assert_eq!(
        assess(&docs_and_auth(), &change, false).tier,
        RiskTier::AutoShip,
        "optional failures and flaky passes are green"
    );
    change.gates.push(gate("e2e", true, GateStatus::Failed));
    let assessment = assess(&docs_and_auth(), &change, false);
    assert_eq!(assessment.tier, RiskTier::Review);
    assert_eq!(
        detail(&assessment, "gate_red"),
        "required gates not green: e2e (failed)"
    );
}

#[test]
fn a_bare_file_name_pattern_matches_at_any_depth() {
    let assessment = assess(
        &docs_and_auth(),
        &report(&["README.md", "crates/core/notes/design.md"]),
        false,
    );
    assert_eq!(assessment.tier, RiskTier::AutoShip);
}

#[test]
fn a_single_star_stays_in_its_directory() {
    let shallow = policy(RiskSettings {
        auto_ship: vec!["src/*".into()],
        ..RiskSettings::default()
    });
    assert_eq!(
        assess(&shallow, &report(&["src/main.rs"]), false).tier,
        RiskTier::AutoShip
    );
    assert_eq!(
        assess(&shallow, &report(&["src/a/b.rs"]), false).tier,
        RiskTier::Review
    );
    let deep = policy(RiskSettings {
        auto_ship: vec!["src/**".into()],
        ..RiskSettings::default()
    });
    assert_eq!(
        assess(&deep, &report(&["src/main.rs", "src/a/b.rs"]), false).tier,
        RiskTier::AutoShip
    );
}

#[test]
fn a_rename_is_judged_by_both_paths() {
    let mut change = report(&[]);
    change.changed_files.push(ChangedFile {
        path: "docs/old-auth.md".into(),
        old_path: Some("src/auth/session.rs".into()),
        kind: ChangeKind::Renamed,
        added_lines: 0,
        removed_lines: 0,
    });
    let assessment = assess(&docs_and_auth(), &change, false);
    assert_eq!(assessment.tier, RiskTier::HardStop);
    assert_eq!(rule_names(&assessment), ["default", "path:hard_stop"]);
}

#[test]
fn path_details_name_five_paths_then_count() {
    let paths: Vec<String> = (0..8).map(|n| format!("src/auth/f{n}.rs")).collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let assessment = assess(&docs_and_auth(), &report(&refs), false);
    assert_eq!(
        detail(&assessment, "path:hard_stop"),
        "src/auth/f0.rs, src/auth/f1.rs, src/auth/f2.rs, src/auth/f3.rs, src/auth/f4.rs and 3 more"
    );
}

#[test]
fn rules_are_listed_in_a_stable_order() {
    let everything = policy(RiskSettings {
        review: vec!["src/**".into()],
        hard_stop: vec!["src/auth/**".into()],
        max_changed_lines: 1,
        ..RiskSettings::default()
    });
    let mut change = report(&[
        "src/auth/a.rs",
        "Cargo.lock",
        "Cargo.toml",
        "x.sql",
        ".github/ci.yml",
    ]);
    change.secrets.push(SecretHit {
        path: "src/auth/a.rs".into(),
        line: 1,
        kind: "private_key".into(),
    });
    change.tamper.push(TamperFlag {
        rule: "ci_config".into(),
        path: ".github/ci.yml".into(),
        detail: String::new(),
    });
    change
        .reviewers
        .push(verdict("qa", false, &[Severity::Blocking]));
    change.judge = Some(verdict("judge", false, &[]));
    change.gates.push(GateOutcome {
        gate: "unit".into(),
        source: GateSource::Detected,
        required: true,
        status: GateStatus::Skipped,
        new_failures: vec![],
        preexisting_failures: vec![],
        flaky: vec![],
        runs: vec![],
        baseline: None,
    });
    let assessment = assess(&everything, &change, true);
    assert_eq!(
        rule_names(&assessment),
        [
            "default",
            "path:review",
            "path:hard_stop",
            "lockfile",
            "dependency_manifest",
            "migration",
            "ci_infra",
            "secret",
            "size",
            "tamper",
            "reviewer_finding",
            "judge_veto",
            "gate_red",
        ]
    );
    assert_eq!(assessment.tier, RiskTier::HardStop);
    assert_eq!(assess(&everything, &change, true), assessment);
}

#[test]
fn a_bad_glob_is_an_error_and_policies_compare_by_their_settings() {
    let err: RiskPolicyError = match RiskPolicy::new(RiskSettings {
        review: vec!["src/{a,b".into()],
        ..RiskSettings::default()
    }) {
        Ok(policy) => panic!("compiled {policy:?}"),
        Err(err) => err,
    };
    assert_eq!(err.list, "review");
    assert_eq!(err.glob, "src/{a,b");
    assert!(
        err.to_string()
            .starts_with("`risk.review` glob \"src/{a,b\" does not compile"),
        "{err}"
    );

    assert_eq!(policy(RiskSettings::default()), RiskPolicy::default());
    assert_ne!(docs_and_auth(), RiskPolicy::default());
    let original = docs_and_auth();
    let copy = original.clone();
    assert_eq!(copy, original);
    assert_eq!(docs_and_auth().settings().hard_stop, ["src/auth/**"]);
}
