//! Evidence-based completion end to end: real gates (pytest, cargo) in the gate sandbox on
//! clean checkouts, baselines, flaky re-runs, rounds with feedback, tamper flags, hidden gates,
//! risk tiers with approvals, attestation notes, and `takt audit verify` over the evidence.

use std::path::Path;

use serde_json::Value;
use takt_test_support::{WorkflowFile, git, python, read_or_empty, run_command, write};

use super::Factory;

/// A small Python project whose tests pass: `calc.add` and its test, pytest configured.
fn python_project(factory: &Factory) {
    let repo = &factory.repo;
    repo.commit_file(
        "pyproject.toml",
        "[project]\nname = \"calc\"\nversion = \"0.1.0\"\n\n[tool.pytest.ini_options]\n\
         testpaths = [\"tests\"]\npythonpath = [\".\"]\n",
        "pyproject",
    );
    repo.commit_file("calc.py", "def add(a, b):\n    return a + b\n", "calc");
    repo.commit_file(
        "tests/test_calc.py",
        "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
        "test calc",
    );
}

/// An agent that runs `body` (sh) in its workspace; `$TAKT_ATTEMPT` tells rounds apart. It
/// records each prompt as `log/prompt-<identifier>-<attempt>.md`.
fn agent(factory: &Factory, body: &str) -> String {
    let log = factory.log_dir();
    factory.agent_command(&format!(
        "set -e\nLOG={log}\nmkdir -p \"$LOG\"\n\
         cp \"$TAKT_PROMPT_FILE\" \"$LOG/prompt-$TAKT_ISSUE_IDENTIFIER-$TAKT_ATTEMPT.md\"\n{body}\n",
        log = log.display()
    ))
}

fn workflow(command: String, extra: &str) -> WorkflowFile {
    let mut workflow = WorkflowFile::new(command);
    workflow.max_attempts = 4;
    workflow.extra = extra.to_owned();
    workflow
}

fn evidence_of(factory: &Factory, id: &str) -> Value {
    factory.takt.json(&["evidence", id])
}

fn gate<'a>(evidence: &'a Value, name: &str) -> &'a Value {
    evidence["report"]["gates"]
        .as_array()
        .and_then(|gates| gates.iter().find(|gate| gate["gate"] == name))
        .unwrap_or_else(|| panic!("no gate {name} in {evidence:#}"))
}

fn rules(evidence: &Value) -> Vec<String> {
    evidence["risk"]["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|rule| rule["rule"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

const NEW_FEATURE: &str = "cat >> calc.py <<'EOF'\n\n\ndef sub(a, b):\n    return a - b\nEOF\n\
     cat > tests/test_sub.py <<'EOF'\nfrom calc import sub\n\n\ndef test_sub():\n    assert sub(3, 2) == 1\nEOF\n";

#[test]
fn a_correct_change_with_a_new_test_auto_ships_and_carries_an_attestation() {
    let factory = Factory::new("verify-ship", |f| {
        python_project(f);
        workflow(
            agent(f, NEW_FEATURE),
            "risk:\n  auto_ship: [\"*.py\", \"tests/**\"]\n",
        )
    });
    let id = factory.takt.add_task("Add sub", &[]);
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "done", "{}", factory.describe());

    let evidence = evidence_of(&factory, &id);
    let pytest = gate(&evidence, "pytest");
    assert_eq!(pytest["status"], "passed", "{evidence:#}");
    let run = &pytest["runs"][0];
    assert_eq!(run["format"], "pytest");
    let names: Vec<&str> = run["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|test| test["name"].as_str())
        .collect();
    assert!(names.contains(&"tests/test_sub.py::test_sub"), "{names:?}");
    assert!(
        run["environment"]["python3"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Python 3")
    );
    assert_eq!(evidence["risk"]["tier"], "auto_ship");
    assert_eq!(rules(&evidence), ["path:auto_ship"]);

    // The attestation travels with the merged commit into the source repository.
    let commit = evidence["report"]["commit"].as_str().unwrap().to_owned();
    let note = git(
        factory.repo.path(),
        &["notes", "--ref=takt", "show", &commit],
    );
    let statement: Value = serde_json::from_str(&note).expect("the note is JSON");
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["subject"][0]["digest"]["gitCommit"],
        commit.as_str()
    );
    assert_eq!(statement["predicate"]["risk"]["tier"], "auto_ship");
    assert_eq!(statement["predicate"]["gates"][0]["status"], "passed");
    assert!(factory.takt.audit_ok());
}

#[test]
fn the_same_change_under_a_review_rule_waits_for_a_person() {
    let factory = Factory::new("verify-review", |f| {
        python_project(f);
        workflow(agent(f, NEW_FEATURE), "risk:\n  default: review\n")
    });
    let id = factory.takt.add_task("Add sub", &[]);
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "awaiting_review");
    let task = factory.takt.task(&id);
    assert_eq!(task["risk"]["tier"], "review");
    assert_eq!(task["approvals_required"], 1);
}

#[test]
fn a_change_that_breaks_a_test_goes_back_with_the_evidence_then_fails_with_a_report() {
    let factory = Factory::new("verify-rounds", |f| {
        python_project(f);
        workflow(
            agent(
                f,
                "echo \"# attempt $TAKT_ATTEMPT\" >> calc.py\n\
                 sed -i 's/return a + b/return a - b/' calc.py\n",
            ),
            "",
        )
    });
    let id = factory.takt.add_task("Refactor add", &[]);
    factory.takt.run_once();
    let task = factory.takt.task(&id);
    assert_eq!(task["state"], "failed", "{task:#}");
    // Round one went back to the agent with the failing test and its output.
    let second = factory.prompt(&id, 2);
    assert!(second.contains("tests/test_calc.py::test_add"), "{second}");
    assert!(
        second.contains("assert"),
        "the output tail is in the feedback:\n{second}"
    );
    assert!(factory.prompt(&id, 3).is_empty(), "max_rounds (2) ends it");

    let report = &task["failure"];
    assert!(
        report["reason"].as_str().unwrap().contains("gates failed"),
        "{report:#}"
    );
    let gates = report["verification"]["gates"].as_array().unwrap();
    assert_eq!(gates[0]["status"], "failed");
    assert_eq!(gates[0]["new_failures"][0], "tests/test_calc.py::test_add");
    // The failing test passed on the base commit: that is what made it new.
    assert_eq!(gates[0]["baseline"]["exit_code"], 0);
    assert!(
        report["suggested_action"]
            .as_str()
            .unwrap()
            .contains("takt evidence")
    );
    let shown = factory.takt.ok(&["task", "show", &id]).stdout;
    assert!(shown.contains("gate pytest"), "{shown}");
    let output = factory
        .takt
        .ok(&["evidence", &id, "--output", "pytest"])
        .stdout;
    assert!(
        output.contains("FAILED tests/test_calc.py::test_add"),
        "{output}"
    );
}

#[test]
fn a_pre_existing_failure_does_not_block_and_deleting_it_is_flagged_as_tampering() {
    let factory = Factory::new("verify-baseline", |f| {
        python_project(f);
        f.repo.commit_file(
            "tests/test_broken.py",
            "def test_broken():\n    assert 1 == 2\n",
            "a test that already fails",
        );
        workflow(
            agent(
                f,
                &format!(
                    "if [ \"$TAKT_ISSUE_IDENTIFIER\" = TAKT-2 ]; then rm tests/test_broken.py; \
                     echo '# tidy' >> calc.py; else {NEW_FEATURE} fi\n"
                ),
            ),
            "risk:\n  default: auto_ship\n",
        )
    });
    let feature = factory.takt.add_task("Add sub", &[]);
    let deletion = factory.takt.add_task("Tidy up", &[]);
    factory.takt.run_once();

    assert_eq!(
        factory.takt.state_of(&feature),
        "done",
        "{}",
        factory.describe()
    );
    let evidence = evidence_of(&factory, &feature);
    let pytest = gate(&evidence, "pytest");
    assert_eq!(pytest["status"], "pre_existing", "{pytest:#}");
    assert_eq!(
        pytest["preexisting_failures"][0],
        "tests/test_broken.py::test_broken"
    );

    // Deleting the failing test makes every gate green, and is exactly what must not ship
    // unseen.
    assert_eq!(factory.takt.state_of(&deletion), "awaiting_review");
    let evidence = evidence_of(&factory, &deletion);
    let tamper = evidence["report"]["tamper"].as_array().unwrap();
    assert!(
        tamper
            .iter()
            .any(|flag| flag["rule"] == "test_deleted" && flag["path"] == "tests/test_broken.py"),
        "{tamper:?}"
    );
    assert!(
        rules(&evidence).contains(&"tamper".to_owned()),
        "{evidence:#}"
    );
}

#[test]
fn a_flaky_test_is_marked_flaky_not_silently_passed() {
    let factory = Factory::new("verify-flaky", |f| {
        python_project(f);
        workflow(
            agent(
                f,
                "cat > tests/test_flaky.py <<'EOF'\nimport os\n\n\ndef test_flaky():\n    \
                 marker = '.flaky-marker'\n    first = not os.path.exists(marker)\n    \
                 open(marker, 'w').close()\n    assert not first\nEOF\n",
            ),
            "",
        )
    });
    let id = factory.takt.add_task("Add a test", &[]);
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "awaiting_review");
    let evidence = evidence_of(&factory, &id);
    let pytest = gate(&evidence, "pytest");
    assert_eq!(pytest["status"], "flaky", "{pytest:#}");
    assert_eq!(pytest["flaky"][0], "tests/test_flaky.py::test_flaky");
    assert_eq!(pytest["runs"].as_array().unwrap().len(), 2);
}

#[test]
fn hard_stop_paths_need_two_people_and_the_author_is_not_enough() {
    let factory = Factory::new("verify-hardstop", |f| {
        python_project(f);
        workflow(
            agent(
                f,
                "mkdir -p src/auth && printf 'def login(user):\\n    return True\\n' > src/auth/login.py\n",
            ),
            "risk:\n  auto_ship: [\"**\"]\n  hard_stop: [\"src/auth/**\"]\n  hard_stop_approvals: 2\n",
        )
    });
    let mut add = factory
        .takt
        .command(&["--json", "task", "add", "--title", "Login"]);
    add.env("TAKT_OPERATOR", "alice");
    let id = run_command(add).expect_code(0).json()["identifier"]
        .as_str()
        .unwrap()
        .to_owned();
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "awaiting_review");
    let evidence = evidence_of(&factory, &id);
    assert_eq!(evidence["risk"]["tier"], "hard_stop");
    assert!(rules(&evidence).contains(&"path:hard_stop".to_owned()));

    let approve = |by: &str| {
        let mut command = factory.takt.command(&["review", "approve", &id]);
        command.env("TAKT_OPERATOR", by);
        run_command(command)
    };
    approve("alice").expect_code(0);
    assert_eq!(factory.takt.state_of(&id), "awaiting_review");
    let again = approve("alice");
    assert_ne!(again.code, Some(0));
    assert!(again.stderr.contains("already approved"), "{again}");
    approve("bob").expect_code(0);
    assert_eq!(factory.takt.state_of(&id), "done", "{}", factory.describe());
    assert_eq!(
        factory.takt.task(&id)["approvals"],
        serde_json::json!(["alice", "bob"])
    );
}

#[test]
fn a_hidden_gate_runs_on_the_checkout_but_never_reaches_the_agent() {
    let holdback = tempfile::Builder::new()
        .prefix("takt-holdback-")
        .tempdir()
        .unwrap();
    write(
        &holdback.path().join("holdback_tests/test_holdback.py"),
        "from calc import sub\n\n\ndef test_sub_negative():\n    assert sub(1, 3) == -2\n",
    );
    let hidden = holdback.path().display().to_string();
    let factory = Factory::new("verify-hidden", |f| {
        python_project(f);
        workflow(
            agent(
                f,
                &format!(
                    "{NEW_FEATURE}\nif [ -e {hidden} ]; then echo visible > \"$LOG/hidden\"; \
                     else echo invisible > \"$LOG/hidden\"; fi\n\
                     find / -name test_holdback.py 2>/dev/null >> \"$LOG/hidden\" || true\n"
                ),
            ),
            &format!(
                "gates:\n  - name: holdback\n    run: python3 -m pytest -q -rA -p no:cacheprovider holdback_tests\n    \
                 hidden: true\n    files: {hidden}\n"
            ),
        )
    });
    let id = factory.takt.add_task("Add sub", &[]);
    factory.takt.run_once();
    assert_eq!(
        read_or_empty(&factory.log_dir().join("hidden")).trim(),
        "invisible",
        "the agent saw the holdback files"
    );
    let evidence = evidence_of(&factory, &id);
    let holdback_gate = gate(&evidence, "holdback");
    assert_eq!(holdback_gate["source"], "hidden");
    assert_eq!(holdback_gate["status"], "passed", "{holdback_gate:#}");
    assert_eq!(
        holdback_gate["runs"][0]["tests"][0]["name"],
        "holdback_tests/test_holdback.py::test_sub_negative"
    );
    // Nothing of it was committed with the change.
    let commit = evidence["report"]["commit"].as_str().unwrap();
    assert!(
        factory
            .show_in_mirror(commit, "holdback_tests/test_holdback.py")
            .is_none()
    );
}

#[test]
fn audit_verify_detects_a_tampered_gate_log_and_a_rewritten_journal_row() {
    let factory = Factory::new("verify-audit", |f| {
        python_project(f);
        workflow(agent(f, NEW_FEATURE), "")
    });
    let id = factory.takt.add_task("Add sub", &[]);
    factory.takt.run_once();
    assert!(factory.takt.audit_ok());
    factory.takt.ok(&["audit", "verify", &id]);
    let evidence = evidence_of(&factory, &id);

    // An attestation rewritten to claim what the journal does not is caught.
    let mirror = factory.takt.state_dir().join("mirror.git");
    let commit = evidence["report"]["commit"].as_str().unwrap().to_owned();
    let note = git(&mirror, &["notes", "--ref=takt", "show", &commit]);
    let forged = note.replace("\"tier\": \"review\"", "\"tier\": \"auto_ship\"");
    assert_ne!(forged, note);
    git(
        &mirror,
        &["notes", "--ref=takt", "add", "-f", "-m", &forged, &commit],
    );
    let out = factory.takt.run(&["audit", "verify", &id]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("risk tier"), "{out}");
    git(
        &mirror,
        &["notes", "--ref=takt", "add", "-f", "-m", &note, &commit],
    );
    factory.takt.ok(&["audit", "verify", &id]);

    let stdout = gate(&evidence, "pytest")["runs"][0]["stdout_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    let artifact = find_artifact(&factory.takt.state_dir(), &stdout);
    write(&artifact, "all tests passed, trust me\n");
    let out = factory.takt.run(&["--json", "audit", "verify"]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(&stdout),
        "the tampered artifact is named:\n{out}"
    );

    let rewritten = python(
        "import sqlite3, sys\n\
         db = sqlite3.connect(sys.argv[1], timeout=30)\n\
         db.execute('DROP TRIGGER journal_no_update')\n\
         n = db.execute(\"UPDATE journal SET payload = replace(payload, '\\\"passed\\\"', '\\\"failed\\\"') WHERE kind = 'verified' AND instr(payload, 'passed') > 0\").rowcount\n\
         db.commit()\n\
         print(n)\n",
        &[factory.db().to_str().unwrap()],
    );
    assert_eq!(rewritten.trim(), "1", "one verified row was rewritten");
    let out = factory.takt.run(&["audit", "verify"]);
    assert!(out.stdout.contains("BROKEN"), "{out}");
}

/// Artifacts are sharded by the hash's first two digits.
fn find_artifact(state: &Path, hash: &str) -> std::path::PathBuf {
    let path = state.join("artifacts").join(&hash[..2]).join(&hash[2..]);
    assert!(path.is_file(), "no artifact {}", path.display());
    path
}

/// A mock provider outside the daemon (so the test can read every request it got), scripted
/// for the agent (the built-in loop), the judge and two reviewers.
struct Panel {
    runtime: tokio::runtime::Runtime,
    mock: Option<takt_mock_model::MockModel>,
}

impl Panel {
    fn start(judge_answers: &str) -> Panel {
        use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let verdict = |text: &str| vec![Step::text(text)];
        let mock = runtime
            .block_on(MockModel::start(MockConfig::with_scenarios(vec![
                Scenario::new(
                    "agent",
                    vec![
                        // Its output comes back in the agent's next request: the transcript
                        // reviewers must never see.
                        Step::tool(
                            "run",
                            serde_json::json!({"command": "echo AGENT-TRANSCRIPT-7781"}),
                        ),
                        Step::tool(
                            "write_file",
                            serde_json::json!({"path": "billing.py", "content": "RATE = 3\n"}),
                        ),
                        Step::tool(
                            "finish",
                            serde_json::json!({"summary": "AGENT-TRANSCRIPT-7781 rewrote billing"}),
                        ),
                        Step::text("AGENT-TRANSCRIPT-7781 done"),
                    ],
                ),
                Scenario::new("judge", verdict(judge_answers)).with_model("judge-model"),
                Scenario::new(
                    "qa-review",
                    verdict(r#"{"verdict": "pass", "summary": "tests cover it", "findings": []}"#),
                ),
                Scenario::new(
                    "security-review",
                    verdict(r#"{"verdict": "pass", "summary": "QA-VERDICT-NEVER-SEEN", "findings": []}"#),
                ),
            ])))
            .unwrap();
        Panel {
            runtime,
            mock: Some(mock),
        }
    }

    fn mock(&self) -> &takt_mock_model::MockModel {
        self.mock.as_ref().unwrap()
    }

    fn workflow(&self, review: &str) -> String {
        format!(
            "model: {{provider: openai, base_url: {}, api_key: $TAKT_E2E_PROVIDER_KEY, name: gpt-5.5}}\n{review}",
            self.mock().openai_base_url()
        )
    }

    /// The bodies of the requests whose system text contains `marker`.
    fn requests_with(&self, marker: &str) -> Vec<String> {
        self.mock()
            .requests()
            .into_iter()
            .map(|request| request.body.to_string())
            .filter(|body| body.contains(marker))
            .collect()
    }
}

impl Drop for Panel {
    fn drop(&mut self) {
        if let Some(mock) = self.mock.take() {
            let _ = self.runtime.block_on(mock.shutdown());
        }
    }
}

/// The Python project with the built-in agent loop talking to `model_and_review`'s model.
fn builtin_factory(label: &str, model_and_review: String) -> Factory {
    let factory = Factory::bare(label);
    python_project(&factory);
    let mut workflow = workflow("true".into(), &model_and_review);
    workflow.agent_extra = "  max_turns: 2\n".into();
    let text = factory
        .sandboxed(&workflow)
        .render()
        .replace("backend: command", "backend: builtin");
    write(&factory.repo.workflow_path(), &text);
    factory
}

fn run_with_key(factory: &Factory) {
    let mut command = factory.takt.command(&["run", "--once"]);
    command.env("TAKT_E2E_PROVIDER_KEY", "sk-test");
    run_command(command).expect_code(0);
}

#[test]
fn the_judge_vetoes_an_out_of_scope_change_once_then_hands_it_to_a_person() {
    let panel = Panel::start(
        r#"{"verdict": "veto", "summary": "the task asked for docs; this rewrites billing", "findings": [{"severity": "blocking", "file": "billing.py", "line": 1, "text": "out of scope"}]}"#,
    );
    let factory = builtin_factory(
        "verify-judge",
        panel.workflow(
            "review:\n  judge: true\n  model: judge-model\nrisk:\n  default: auto_ship\n",
        ),
    );
    let id = factory.takt.add_task(
        "Document add",
        &["--body", "[[scenario:agent]] Document calc.add"],
    );
    run_with_key(&factory);
    let task = factory.takt.task(&id);
    // First veto: back to the agent with the reasons; second: a person decides.
    assert_eq!(task["state"], "awaiting_review", "{task:#}");
    let judged = panel.requests_with("You are the judge");
    assert_eq!(judged.len(), 2, "{judged:?}");
    assert!(
        judged[0].contains("Document calc.add"),
        "the judge sees the task"
    );
    assert!(judged[0].contains("RATE = 3"), "the judge sees the diff");
    assert!(
        !judged[0].contains("AGENT-TRANSCRIPT-7781"),
        "never the agent's messages"
    );
    let second_prompt = panel
        .mock()
        .requests()
        .into_iter()
        .map(|request| request.body.to_string())
        .find(|body| {
            body.contains("Document calc.add")
                && body.contains("out of scope")
                && !body.contains("You are the judge")
        });
    assert!(
        second_prompt.is_some(),
        "the agent's second run got the veto as feedback"
    );
    let evidence = evidence_of(&factory, &id);
    assert_eq!(evidence["report"]["judge"]["pass"], false);
    assert!(
        rules(&evidence).contains(&"judge_veto".to_owned()),
        "{evidence:#}"
    );
}

#[test]
fn blind_reviewers_see_the_task_diff_and_gates_but_not_the_agent_or_each_other() {
    let panel = Panel::start(r#"{"verdict": "pass", "summary": "in scope", "findings": []}"#);
    let factory = builtin_factory(
        "verify-reviewers",
        panel.workflow(
            "review:\n  reviewers:\n    - name: qa\n      mandate: \"[[scenario:qa-review]] QA-MANDATE: check the tests.\"\n    \
             - name: security\n      mandate: \"[[scenario:security-review]] SECURITY-MANDATE: check for secrets.\"\n",
        ),
    );
    let id = factory.takt.add_task(
        "Billing rate",
        &["--body", "[[scenario:agent]] Set the billing rate to 3"],
    );
    run_with_key(&factory);
    assert_eq!(factory.takt.state_of(&id), "awaiting_review");

    let qa = panel.requests_with("QA-MANDATE");
    let security = panel.requests_with("SECURITY-MANDATE");
    assert_eq!((qa.len(), security.len()), (1, 1), "one request each");
    for (mine, other) in [(&qa[0], "SECURITY-MANDATE"), (&security[0], "QA-MANDATE")] {
        assert!(
            mine.contains("Set the billing rate to 3"),
            "the task: {mine}"
        );
        assert!(mine.contains("RATE = 3"), "the diff: {mine}");
        assert!(mine.contains("pytest"), "the gate evidence: {mine}");
        assert!(
            !mine.contains("AGENT-TRANSCRIPT-7781"),
            "the agent's messages leaked: {mine}"
        );
        assert!(
            !mine.contains(other),
            "another reviewer's mandate leaked: {mine}"
        );
        assert!(
            !mine.contains("QA-VERDICT-NEVER-SEEN"),
            "a verdict leaked: {mine}"
        );
    }
    // The agent's transcript exists (so its absence above means something).
    assert!(!panel.requests_with("AGENT-TRANSCRIPT-7781").is_empty());

    // Both verdicts were committed to the journal before they were revealed.
    let events = factory.takt.json(&["task", "events", &id]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["kind"].as_str())
        .collect();
    let committed = kinds
        .iter()
        .filter(|kind| **kind == "verdict_committed")
        .count();
    let revealed = kinds.iter().position(|kind| *kind == "verified").unwrap();
    let last_commit = kinds
        .iter()
        .rposition(|kind| *kind == "verdict_committed")
        .unwrap();
    assert_eq!(committed, 2, "{kinds:?}");
    assert!(last_commit < revealed, "{kinds:?}");
    let evidence = evidence_of(&factory, &id);
    let reviewers = evidence["report"]["reviewers"].as_array().unwrap();
    assert_eq!(reviewers.len(), 2);
}

/// The sample crate: `CRATE_LIB` with `dependencies` (lines of its `[dependencies]`).
fn sample_crate(f: &Factory, dependencies: &str) {
    f.repo.commit_file(
        "Cargo.toml",
        &format!(
            "[package]\nname = \"sample\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\n{dependencies}"
        ),
        "crate",
    );
    f.repo
        .commit_file(".gitignore", "/target\n.takt/\nCargo.lock\n", "ignore");
    f.repo.commit_file("src/lib.rs", CRATE_LIB, "lib");
}

/// Whether the tests run as root, as warm caches need (overlays); says so when they do not.
fn root_daemon() -> bool {
    let root = super::running_as_root();
    if !root {
        eprintln!("skipped: warm caches need a root daemon (overlays)");
    }
    root
}

const CRATE_LIB: &str = "pub fn add(a: i64, b: i64) -> i64 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(2, 2), 4);\n    }\n}\n";

#[test]
fn a_rust_crate_change_that_breaks_a_test_is_sent_back_then_merged_once_fixed() {
    let factory = Factory::new("verify-cargo", |f| {
        sample_crate(f, "");
        let fixed = CRATE_LIB.replace(
            "#[cfg(test)]",
            "pub fn sub(a: i64, b: i64) -> i64 {\n    a - b\n}\n\n#[cfg(test)]",
        );
        let fixed = fixed.replace(
            "    #[test]\n    fn adds",
            "    #[test]\n    fn subtracts() {\n        assert_eq!(super::sub(3, 2), 1);\n    }\n\n    #[test]\n    fn adds",
        );
        let script = format!(
            "if [ \"$TAKT_ATTEMPT\" = 1 ]; then sed -i 's/a + b/a - b/' src/lib.rs; \
             else cat > src/lib.rs <<'EOF'\n{fixed}EOF\nfi\n"
        );
        workflow(agent(f, &script), "risk:\n  default: auto_ship\n")
    });
    let id = factory.takt.add_task("Add sub", &[]);
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "done", "{}", factory.describe());

    let feedback = factory.prompt(&id, 2);
    assert!(feedback.contains("Gate `cargo-test` failed"), "{feedback}");
    assert!(feedback.contains("tests::adds"), "{feedback}");

    let evidence = evidence_of(&factory, &id);
    assert_eq!(evidence["report"]["round"], 2);
    let names: Vec<&str> = evidence["report"]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|gate| gate["gate"].as_str())
        .collect();
    assert_eq!(
        names,
        ["cargo-fmt", "cargo-clippy", "cargo-build", "cargo-test"]
    );
    let test = gate(&evidence, "cargo-test");
    assert_eq!(test["status"], "passed");
    assert_eq!(test["runs"][0]["format"], "libtest");
    assert!(
        test["runs"][0]["environment"]["rustc"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rustc ")
    );
    assert_eq!(
        factory
            .repo
            .show_file("main", "src/lib.rs")
            .as_deref()
            .map(|lib| lib.contains("fn sub")),
        Some(true)
    );
}

#[test]
fn base_tests_catch_a_change_that_weakens_the_test_it_breaks() {
    let factory = Factory::new("verify-base-tests", |f| {
        python_project(f);
        workflow(
            agent(
                f,
                "sed -i 's/return a + b/return a - b/' calc.py\n\
                 sed -i 's/assert add(1, 2) == 3/assert add(1, 2) is not None/' tests/test_calc.py\n",
            ),
            "verify:\n  base_tests: true\nreview:\n  max_rounds: 1\n",
        )
    });
    let id = factory.takt.add_task("Simplify add", &[]);
    factory.takt.run_once();
    let task = factory.takt.task(&id);
    assert_eq!(task["state"], "failed", "{task:#}");
    let gates = task["failure"]["verification"]["gates"].as_array().unwrap();
    // The weakened test passes on its own; the base commit's version of it does not.
    let own = gates.iter().find(|g| g["gate"] == "pytest").unwrap();
    assert_eq!(own["status"], "passed", "{own:#}");
    let original = gates
        .iter()
        .find(|g| g["gate"] == "pytest@base-tests")
        .unwrap();
    assert_eq!(original["status"], "failed", "{original:#}");
    assert_eq!(original["new_failures"][0], "tests/test_calc.py::test_add");
    let tamper = task["failure"]["verification"]["tamper"].to_string();
    assert!(tamper.contains("test_modified"), "{tamper}");
}

/// `verify.warm_cache` through the daemon, with the gates in the gate sandbox (bubblewrap as
/// the agent user where this host has it): the first round builds the base's cache, the second
/// round's gates start from it, and the change that merges is the second round's.
#[test]
fn a_second_round_against_the_same_base_runs_its_gates_warm_in_the_sandbox() {
    if !root_daemon() {
        return;
    }
    let factory = Factory::new("verify-warm", |f| {
        sample_crate(f, "");
        let script = "if [ \"$TAKT_ATTEMPT\" = 1 ]; then sed -i 's/a + b/a - b/' src/lib.rs; \
                      else sed -i 's/a - b/b + a/' src/lib.rs; fi\n";
        workflow(
            agent(f, script),
            "risk:\n  default: auto_ship\nverify:\n  warm_cache: true\n",
        )
    });
    let id = factory.takt.add_task("Reorder add", &[]);
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "done", "{}", factory.describe());
    let evidence = evidence_of(&factory, &id);
    assert_eq!(evidence["report"]["round"], 2, "{evidence:#}");
    let test = gate(&evidence, "cargo-test");
    assert_eq!(test["status"], "passed", "{test:#}");
    let cache = test["runs"][0]["environment"]["build_cache"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        cache.starts_with("warm:") && cache.contains("reused"),
        "the second round reused the base's cache: {cache}\n{evidence:#}"
    );
    let sandbox = test["runs"][0]["environment"]["sandbox"]
        .as_str()
        .unwrap_or_default();
    assert!(sandbox.contains("bwrap"), "{sandbox}");
    assert_eq!(
        factory
            .repo
            .show_file("main", "src/lib.rs")
            .as_deref()
            .map(|lib| lib.contains("b + a")),
        Some(true)
    );
}

/// Warm agent builds: once the first round's verification has frozen the base's build cache,
/// the agent's next session sees its workspace at the cache's fixed path with the cache over
/// `target/`, so its own `cargo build` finds the base's dependencies fresh. The cache stays as
/// frozen; the agent's outputs land in its workspace's own layer.
#[test]
fn the_agents_next_session_builds_on_the_frozen_cache_of_its_base() {
    if !root_daemon() {
        return;
    }
    let factory = Factory::new("agent-warm", |f| {
        f.repo.commit_file(
            "helper/Cargo.toml",
            "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            "helper crate",
        );
        f.repo.commit_file(
            "helper/src/lib.rs",
            "pub fn one() -> i64 {\n    1\n}\n",
            "helper",
        );
        sample_crate(f, "helper = { path = \"helper\" }\n");
        let script = "if [ \"$TAKT_ATTEMPT\" = 1 ]; then sed -i 's/a + b/a - b/' src/lib.rs; \
                      else { echo \"PWD $(pwd)\"; echo \"WORKSPACE $TAKT_WORKSPACE\"; \
                      cargo build -v --offline; } > \"$LOG/agent-build.txt\" 2>&1 || true; \
                      sed -i 's/a - b/b + a/' src/lib.rs; fi\n";
        workflow(
            agent(f, script),
            &format!(
                "risk:\n  default: auto_ship\nverify:\n  warm_cache: true\nhooks:\n  \
                 before_run: |\n    echo \"HOOK $(pwd) $TAKT_WORKSPACE\" >> {}/hooks.txt\n",
                f.log_dir().display()
            ),
        )
    });
    let doctor = factory.takt.run(&["doctor"]).stdout;
    assert!(
        doctor.contains("warm for gates and agents"),
        "doctor says how builds start: {doctor}"
    );
    let id = factory.takt.add_task("Reorder add", &[]);
    factory.takt.run_once();
    assert_eq!(factory.takt.state_of(&id), "done", "{}", factory.describe());
    let build = std::fs::read_to_string(factory.log_dir().join("agent-build.txt"))
        .unwrap_or_else(|error| panic!("the agent's build log: {error}\n{}", factory.describe()));
    let pwd = build
        .lines()
        .find_map(|line| line.strip_prefix("PWD "))
        .unwrap_or_default();
    assert!(pwd.ends_with("/verify/warm/checkout"), "{build}");
    assert!(build.contains(&format!("WORKSPACE {pwd}\n")), "{build}");
    assert!(
        build.contains("Fresh helper"),
        "the base's dependency came from the cache: {build}"
    );
    assert!(!build.contains("Compiling helper"), "{build}");
    assert!(
        build.contains("Compiling sample"),
        "the edited crate rebuilt: {build}"
    );
    // The sandboxed hook saw the workspace where the agent does, in both attempts.
    let hooks = std::fs::read_to_string(factory.log_dir().join("hooks.txt")).unwrap_or_default();
    assert_eq!(
        hooks.lines().collect::<Vec<_>>(),
        vec![format!("HOOK {pwd} {pwd}"); 2],
        "{hooks}"
    );
    let events = factory.takt.json(&["task", "events", &id]).to_string();
    assert!(
        events.contains("agent build cache warm:"),
        "the run's evidence says how the agent started: {events}"
    );
}

/// A merge moves the base; with `verify.warm_cache` the daemon builds the new base's cache
/// right after its golden tree, so the next task's agent and gates start warm instead of the
/// first verification on the new base paying for the build.
#[test]
fn after_a_merge_the_new_bases_build_cache_is_made_before_any_task_needs_it() {
    if !root_daemon() {
        return;
    }
    let factory = Factory::new("warm-next-base", |f| {
        sample_crate(f, "");
        workflow(
            agent(f, "sed -i 's/a + b/b + a/' src/lib.rs\n"),
            "risk:\n  default: auto_ship\nverify:\n  warm_cache: true\n",
        )
    });
    let mut daemon = factory
        .takt
        .spawn_daemon(&factory.repo.root().join("daemon.log"));
    daemon.wait_ready(&factory.takt.state_dir());
    let id = factory.takt.add_task("Reorder add", &[]);
    factory.wait_for_state(&id, "done", std::time::Duration::from_secs(120));
    let main = factory.repo.rev_parse("main");
    let caches = factory.takt.state_dir().join("verify/warm/caches");
    let of_base = |base: &str| {
        std::fs::read_dir(&caches)
            .map(|entries| {
                entries.flatten().any(|entry| {
                    entry.path().join("seal").is_file()
                        && std::fs::read_to_string(entry.path().join("base"))
                            .is_ok_and(|text| text.trim() == base)
                })
            })
            .unwrap_or(false)
    };
    takt_test_support::wait_until(
        "the merged base's build cache",
        std::time::Duration::from_secs(120),
        || of_base(&main),
        || daemon.log(),
    );
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log());
}
