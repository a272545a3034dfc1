//! takt's verification sections: `gates`, `verify`, `review` and `risk`.

use std::path::Path;

use takt_protocol::RiskTier;
use takt_workflow::{
    ConfigProblem, OnBlock, Position, QA_MANDATE, SECURITY_MANDATE, VerifyConfig, Workflow,
    WorkflowError, parse,
};

use super::{assert_error, env, load_err, load_ok, p, parse_with};

/// The problem reported for `key`; fails the test when there is none.
fn problem<'e>(err: &'e WorkflowError, key: &str) -> &'e ConfigProblem {
    match err.problems().iter().find(|problem| problem.key == key) {
        Some(problem) => problem,
        None => panic!("no problem for `{key}` in: {err}"),
    }
}

fn keys(err: &WorkflowError) -> Vec<&str> {
    err.problems()
        .iter()
        .map(|problem| problem.key.as_str())
        .collect()
}

/// Parses `text` as the WORKFLOW.md of `dir` (the file itself is not read).
fn parse_in(dir: &Path, text: &str) -> Result<Workflow, WorkflowError> {
    parse(text, &dir.join("WORKFLOW.md"), &env())
}

#[test]
fn defaults_without_the_sections() {
    let w = load_ok("---\n---\n");
    assert!(w.gates.is_empty());
    assert_eq!(
        w.verify,
        VerifyConfig {
            gates_auto: true,
            flaky_reruns: 1,
            keep_going: false,
            base_tests: false,
            baseline: true,
            warm_cache: false,
            warm_cache_max_mb: 20480,
        }
    );
    assert_eq!(w.review.max_rounds, 2);
    assert!(!w.review.judge);
    assert!(w.review.reviewers.is_empty());
    assert_eq!(w.review.model, None);
    assert_eq!(w.review.on_block, OnBlock::SendBack);
    assert!(w.risk.auto_ship.is_empty());
    assert!(w.risk.review.is_empty());
    assert!(w.risk.hard_stop.is_empty());
    assert_eq!(w.risk.hard_stop_approvals, 2);
    assert_eq!(w.risk.max_changed_lines, 1000);
    assert!(w.risk.builtin_rules);
    assert_eq!(w.risk.default_tier, RiskTier::Review);
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
}

#[test]
fn a_gate_takes_its_defaults() {
    let w = load_ok("---\ngates:\n  - name: unit\n    run: cargo test --workspace\n---\n");
    let [gate] = w.gates.as_slice() else {
        panic!("{:?}", w.gates)
    };
    assert_eq!(gate.name, "unit");
    assert_eq!(gate.run, "cargo test --workspace");
    assert_eq!(gate.timeout_ms, 600_000);
    assert!(gate.required);
    assert!(gate.env.is_empty());
    assert!(!gate.hidden);
    assert_eq!(gate.files, None);
    assert!(gate.junit.is_empty());
}

#[test]
fn every_gate_setting_is_read() {
    let text = "---\ngates:\n  - name: unit\n    run: cargo test\n  - name: e2e\n    run: \
                npm run e2e\n    timeout_ms: 1200000\n    required: false\n    env:\n      \
                RUST_BACKTRACE: 1\n      CI: true\n      DATABASE_URL: $TEST_DB\n      MODE: \
                fast\n    junit: [reports/e2e.xml, ' target/unit.xml ']\n---\n";
    let w = parse_with(
        text,
        &env().with_var("TEST_DB", "postgres://localhost/test"),
    )
    .expect("loads");
    let names: Vec<&str> = w.gates.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["unit", "e2e"], "file order");
    let e2e = &w.gates[1];
    assert_eq!(e2e.timeout_ms, 1_200_000);
    assert!(!e2e.required);
    assert_eq!(e2e.env["RUST_BACKTRACE"], "1");
    assert_eq!(e2e.env["CI"], "true");
    assert_eq!(e2e.env["DATABASE_URL"], "postgres://localhost/test");
    assert_eq!(e2e.env["MODE"], "fast");
    assert_eq!(e2e.junit, ["reports/e2e.xml", "target/unit.xml"]);
}

#[test]
fn a_gate_env_variable_that_is_not_set_is_an_error() {
    let err = load_err("---\ngates:\n  - {name: unit, run: make, env: {TOKEN: $NOT_SET}}\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`gates[0].env.TOKEN` is `$NOT_SET`, but `NOT_SET` is not set",
            "set `NOT_SET` in the daemon's environment",
        ],
    );
}

#[test]
fn a_gate_env_value_with_an_embedded_dollar_is_literal_with_a_warning() {
    let w = load_ok("---\ngates:\n  - {name: unit, run: make, env: {PATH: \"$PATH:/opt\"}}\n---\n");
    assert_eq!(w.gates[0].env["PATH"], "$PATH:/opt");
    assert_eq!(w.warnings.len(), 1);
    assert_eq!(w.warnings[0].key, "gates[0].env.PATH");
    assert!(w.warnings[0].message.contains("used literally"));
}

#[test]
fn bad_gate_values_are_each_reported() {
    let err = load_err(
        "---\ngates:\n  - name: ' '\n    run: make\n    timeout_ms: 0\n    required: yes\n    \
         env: {1BAD: x, GOOD: [a]}\n    junit: [/abs/report.xml, ../out.xml, '']\n    \
         timeout: 5\n  - {name: lint}\n  - {run: make lint}\n  - just a string\n---\n",
    );
    assert_eq!(err.category(), "invalid_workflow_config");
    let message = err.to_string();
    for fragment in [
        "`gates[0].name` must not be blank",
        "`gates[0].timeout_ms` must be a positive integer, but it is the integer 0",
        "`gates[0].required` must be `true` or `false`, but it is the string \"yes\"",
        "\"1BAD\" in `gates[0].env` is not an environment variable name",
        "`gates[0].env.GOOD` must be a string, but it is a list",
        "`gates[0].junit` entry \"/abs/report.xml\" is not a path inside the checkout",
        "`gates[0].junit` entry \"../out.xml\" is not a path inside the checkout",
        "`gates[0].junit` entry \"\" is not a path inside the checkout",
        "unknown key `gates[0].timeout`; did you mean `timeout_ms`?",
        "`gates[1].run` is required",
        "`gates[2].name` is required",
        "item 3 of `gates` must be a mapping with `name` and `run`, but it is the string",
    ] {
        assert!(message.contains(fragment), "{fragment:?} not in {message}");
    }
    assert_eq!(
        problem(&err, "gates[0].timeout").position,
        Some(Position::new(9, 5))
    );
    assert_eq!(
        problem(&err, "gates[0].junit[1]").position,
        Some(Position::new(8, 30))
    );
}

#[test]
fn gates_must_be_a_list() {
    let err = load_err("---\ngates:\n  unit: cargo test\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["`gates` must be a list of gates, but it is a mapping"],
    );
}

#[test]
fn duplicate_gate_names_name_both_positions() {
    let err = load_err(
        "---\ngates:\n  - {name: unit, run: cargo test}\n  - {name: lint, run: cargo clippy}\n  \
         - {name: ' unit', run: cargo nextest run}\n---\n",
    );
    assert_eq!(keys(&err), ["gates[2].name"]);
    let duplicate = problem(&err, "gates[2].name");
    assert_eq!(
        duplicate.problem,
        "gate name `unit` is used twice: by `gates[0]` (line 3, column 12) and by `gates[2]` \
         (line 5, column 12)"
    );
    assert_eq!(duplicate.position, Some(Position::new(5, 12)));
    assert!(duplicate.fix.contains("its own name"));
}

#[test]
fn a_hidden_gate_needs_files_and_only_a_hidden_gate_may_have_them() {
    let err = load_err(
        "---\ngates:\n  - {name: holdback, run: make test, hidden: true}\n  - {name: unit, run: \
         make, files: /srv/holdback}\n---\n",
    );
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`gates[0]` is hidden, but `files` (the directory of its hidden tests) is missing",
            "add `files: ../holdback-tests`",
            "`gates[1].files` is set, but the gate is not hidden",
            "add `hidden: true`",
        ],
    );
    assert_eq!(
        problem(&err, "gates[0].files").position,
        Some(Position::new(3, 46)),
        "points at `hidden: true`"
    );
}

#[test]
fn hidden_files_resolve_against_the_workflow_directory_and_must_be_a_directory() {
    let root = tempfile::tempdir().expect("tempdir");
    let repo = root.path().join("repo");
    std::fs::create_dir_all(root.path().join("holdback")).expect("mkdir");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(root.path().join("notes.txt"), "x").expect("write");

    let w = parse_in(
        &repo,
        "---\ngates:\n  - {name: holdback, run: make test, hidden: true, files: ../holdback}\n---\n",
    )
    .expect("loads");
    assert!(w.gates[0].hidden);
    assert_eq!(
        w.gates[0].files.as_deref(),
        Some(root.path().join("holdback").as_path())
    );
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);

    let err = parse_in(
        &repo,
        "---\ngates:\n  - {name: a, run: x, hidden: true, files: ../missing}\n  - {name: b, run: \
         x, hidden: true, files: ../notes.txt}\n---\n",
    )
    .expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("`gates[0].files` (") && message.contains("missing) cannot be read"),
        "{message}"
    );
    assert!(
        message.contains("notes.txt) is not a directory"),
        "{message}"
    );
}

#[test]
fn hidden_files_inside_the_repository_load_with_a_warning() {
    let repo = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(repo.path().join("hidden")).expect("mkdir");
    let w = parse_in(
        repo.path(),
        "---\ngates:\n  - {name: holdback, run: make, hidden: true, files: hidden}\n---\n",
    )
    .expect("loads");
    assert_eq!(w.warnings.len(), 1);
    assert_eq!(w.warnings[0].key, "gates[0].files");
    assert!(
        w.warnings[0].message.contains("is inside the repository"),
        "{}",
        w.warnings[0].message
    );
}

#[test]
fn hidden_files_expand_home() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join("holdback")).expect("mkdir");
    let w = parse(
        "---\ngates:\n  - {name: h, run: make, hidden: true, files: ~/holdback}\n---\n",
        Path::new("/repo/WORKFLOW.md"),
        &env().with_home(home.path()),
    )
    .expect("loads");
    assert_eq!(
        w.gates[0].files.as_deref(),
        Some(home.path().join("holdback").as_path())
    );
}

#[test]
fn verify_settings_are_read() {
    let w = load_ok(
        "---\nverify: {gates_auto: false, flaky_reruns: 0, keep_going: true, base_tests: true, \
         baseline: false, warm_cache: true, warm_cache_max_mb: 512}\ngates:\n  - {name: unit, run: make}\n---\n",
    );
    assert_eq!(
        w.verify,
        VerifyConfig {
            gates_auto: false,
            flaky_reruns: 0,
            keep_going: true,
            base_tests: true,
            baseline: false,
            warm_cache: true,
            warm_cache_max_mb: 512,
        }
    );
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
}

#[test]
fn bad_verify_values_are_each_reported() {
    let err = load_err(
        "---\nverify:\n  flaky_reruns: 6\n  keep_going: 1\n  baseline: \"no\"\n  gate_auto: \
         false\n  warm_cache: \"yes\"\n---\n",
    );
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`verify.flaky_reruns` must be an integer from 0 to 5, but it is the integer 6",
            "`verify.keep_going` must be `true` or `false`",
            "`verify.baseline` must be `true` or `false`",
            "`verify.warm_cache` must be `true` or `false`",
            "unknown key `verify.gate_auto`",
            "did you mean `gates_auto`?",
        ],
    );
    let err = load_err("---\nverify: {flaky_reruns: -1}\n---\n");
    assert_error(&err, "invalid_workflow_config", &["from 0 to 5"]);
    let err = load_err("---\nverify: {warm_cache_max_mb: 0}\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`verify.warm_cache_max_mb` must be a number of MiB from 1 to 16777216",
            "warm_cache_max_mb: 20480",
        ],
    );
}

#[test]
fn no_gates_at_all_is_a_warning() {
    let w = load_ok("---\nverify:\n  gates_auto: false\n---\n");
    assert_eq!(w.warnings.len(), 1);
    assert_eq!(w.warnings[0].key, "verify.gates_auto");
    assert_eq!(w.warnings[0].position, Some(Position::new(3, 15)));
    assert!(w.warnings[0].message.contains("no gate checks a change"));
}

#[test]
fn review_settings_and_reviewers_are_read() {
    let w = load_ok(
        "---\nmodel: {name: gpt-5.5}\nreview:\n  max_rounds: 3\n  judge: true\n  on_block: human\n  \
         reviewers:\n    - qa\n    - {name: security}\n    - {name: perf, mandate: ' Look for \
         allocations in hot loops. '}\n    - {name: qa-strict, mandate: Be strict.}\n---\n",
    );
    assert_eq!(w.review.max_rounds, 3);
    assert!(w.review.judge);
    assert_eq!(w.review.on_block, OnBlock::Human);
    assert_eq!(
        w.review.model.as_deref(),
        Some("gpt-5.5"),
        "defaults to model.name"
    );
    let reviewers: Vec<(&str, &str)> = w
        .review
        .reviewers
        .iter()
        .map(|r| (r.name.as_str(), r.mandate.as_str()))
        .collect();
    assert_eq!(
        reviewers,
        [
            ("qa", QA_MANDATE),
            ("security", SECURITY_MANDATE),
            ("perf", "Look for allocations in hot loops."),
            ("qa-strict", "Be strict."),
        ]
    );
    let w = load_ok(
        "---\nmodel: {name: gpt-5.5}\nreview: {model: claude-opus-4, reviewers: [{name: qa, mandate: Only tests.}]}\n---\n",
    );
    assert_eq!(w.review.model.as_deref(), Some("claude-opus-4"));
    assert_eq!(
        w.review.reviewers[0].mandate, "Only tests.",
        "a built-in mandate can be replaced"
    );
}

#[test]
fn the_built_in_mandates_cover_their_ground() {
    for topic in ["task asks", "tests", "edge cases", "regressions"] {
        assert!(QA_MANDATE.contains(topic), "qa: {topic}");
    }
    for topic in [
        "injection",
        "authorization",
        "secrets",
        "deserialization",
        "path traversal",
        "network access",
        "supply-chain",
    ] {
        assert!(SECURITY_MANDATE.contains(topic), "security: {topic}");
    }
}

#[test]
fn bad_review_values_are_each_reported() {
    let err = load_err(
        "---\nreview:\n  max_rounds: 0\n  judge: maybe\n  on_block: sendback\n  model: ''\n  \
         reviewers:\n    - secruity\n    - perf\n    - {name: docs}\n    - {name: judge, mandate: \
         x}\n    - {name: style, mandat: x}\n    - 7\n  reviewer: []\n---\n",
    );
    assert_eq!(err.category(), "invalid_workflow_config");
    let message = err.to_string();
    for fragment in [
        "`review.max_rounds` must be an integer from 1 to 10, but it is the integer 0",
        "`review.judge` must be `true` or `false`",
        "`review.on_block` \"sendback\" is not one of send_back, human; did you mean `send_back`?",
        "`review.model` must not be blank",
        "reviewer `secruity` is not built in, so it needs a `mandate`; did you mean `security`?",
        "reviewer `perf` is not built in, so it needs a `mandate`; write `{name: perf, mandate:",
        "reviewer `docs` (`review.reviewers[2]`) is not built in, so it needs a `mandate`",
        "`judge` cannot be a reviewer name",
        "unknown key `review.reviewers[4].mandat`; did you mean `mandate`?",
        "item 5 of `review.reviewers` must be a reviewer name or a `{name, mandate}` mapping",
        "unknown key `review.reviewer`; did you mean `reviewers`?",
    ] {
        assert!(message.contains(fragment), "{fragment:?} not in {message}");
    }
    let err = load_err("---\nreview: {max_rounds: 11}\n---\n");
    assert_error(&err, "invalid_workflow_config", &["from 1 to 10"]);
}

#[test]
fn duplicate_reviewer_names_name_both_positions() {
    let err =
        load_err("---\nreview:\n  reviewers:\n    - qa\n    - {name: qa, mandate: Again.}\n---\n");
    assert_eq!(keys(&err), ["review.reviewers[1]"]);
    assert_eq!(
        problem(&err, "review.reviewers[1]").problem,
        "reviewer name `qa` is used twice: by `review.reviewers[0]` (line 4, column 7) and by \
         `review.reviewers[1]` (line 5, column 7)"
    );
}

#[test]
fn risk_settings_are_read() {
    let w = load_ok(
        "---\nrisk:\n  auto_ship: [docs/**, '*.md']\n  review: [src/api/**]\n  hard_stop: \
         [src/auth/**, migrations/*.sql]\n  hard_stop_approvals: 3\n  max_changed_lines: 400\n  \
         builtin_rules: false\n  default: auto_ship\n---\n",
    );
    assert_eq!(w.risk.auto_ship, ["docs/**", "*.md"]);
    assert_eq!(w.risk.review, ["src/api/**"]);
    assert_eq!(w.risk.hard_stop, ["src/auth/**", "migrations/*.sql"]);
    assert_eq!(w.risk.hard_stop_approvals, 3);
    assert_eq!(w.risk.max_changed_lines, 400);
    assert!(!w.risk.builtin_rules);
    assert_eq!(w.risk.default_tier, RiskTier::AutoShip);
}

#[test]
fn auto_merge_makes_auto_ship_the_default_tier_unless_risk_says_otherwise() {
    let w = load_ok("---\npublish: {auto_merge: true}\n---\n");
    assert_eq!(w.risk.default_tier, RiskTier::AutoShip);
    let w = load_ok("---\npublish: {auto_merge: true}\nrisk: {default: review}\n---\n");
    assert_eq!(w.risk.default_tier, RiskTier::Review);
    let w = load_ok("---\npublish: {auto_merge: false}\nrisk: {default: hard_stop}\n---\n");
    assert_eq!(w.risk.default_tier, RiskTier::HardStop);
}

#[test]
fn a_bad_glob_is_reported_at_its_item() {
    let err = load_err(
        "---\nrisk:\n  review:\n    - src/api/**\n    - 'src/{a,b'\n  hard_stop: ['[z-a]', \
         /etc/**, ./src/auth/**, '']\n---\n",
    );
    assert_eq!(
        keys(&err),
        [
            "risk.review[1]",
            "risk.hard_stop[0]",
            "risk.hard_stop[1]",
            "risk.hard_stop[2]",
            "risk.hard_stop[3]",
        ]
    );
    let unclosed = problem(&err, "risk.review[1]");
    assert_eq!(unclosed.position, Some(Position::new(5, 7)));
    assert!(
        unclosed
            .problem
            .starts_with("`risk.review` glob \"src/{a,b\" is not a valid glob:"),
        "{}",
        unclosed.problem
    );
    assert!(
        problem(&err, "risk.hard_stop[0]")
            .problem
            .contains("is not a valid glob")
    );
    let anchored = problem(&err, "risk.hard_stop[1]");
    assert!(anchored.problem.contains("starts with `/` or `./`"));
    assert_eq!(anchored.fix, "write it without the prefix: `etc/**`");
    assert_eq!(
        problem(&err, "risk.hard_stop[2]").fix,
        "write it without the prefix: `src/auth/**`"
    );
    assert!(
        problem(&err, "risk.hard_stop[3]")
            .problem
            .contains("is blank")
    );
}

#[test]
fn bad_risk_values_are_each_reported() {
    let err = load_err(
        "---\nrisk:\n  hard_stop_approvals: 0\n  max_changed_lines: 0\n  builtin_rules: on\n  \
         default: autoship\n  auto_ship: docs/**\n  hardstop: []\n---\n",
    );
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`risk.hard_stop_approvals` must be an integer from 1 to 10, but it is the integer 0",
            "`risk.max_changed_lines` must be a positive integer, but it is the integer 0",
            "`risk.builtin_rules` must be `true` or `false`, but it is the string \"on\"",
            "`risk.default` \"autoship\" is not one of auto_ship, review, hard_stop; did you mean \
             `auto_ship`?",
            "`risk.auto_ship` must be a list of strings",
            "unknown key `risk.hardstop`; did you mean `hard_stop`?",
        ],
    );
    let err = load_err("---\nrisk: {hard_stop_approvals: 11}\n---\n");
    assert_error(&err, "invalid_workflow_config", &["from 1 to 10"]);
}

#[test]
fn a_stray_key_points_at_the_section_that_has_it() {
    let err = load_err("---\nverify: {max_rounds: 3}\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "unknown key `verify.max_rounds`",
            "did you mean `review.max_rounds`?",
        ],
    );
}

#[test]
fn a_relative_hidden_directory_is_looked_for_next_to_the_workflow() {
    // The shared test workflow pretends to live in /repo, where no `holdback` exists.
    let err = load_err("---\ngates:\n  - {name: h, run: x, hidden: true, files: holdback}\n---\n");
    assert!(
        err.to_string()
            .contains(&format!("({})", p("/repo/holdback").display())),
        "{err}"
    );
}
