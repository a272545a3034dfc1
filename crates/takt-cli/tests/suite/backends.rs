//! Every model-using backend through the whole daemon: the embedded mock model behind takt's
//! model endpoint, a task that writes a file through a tool call, the turn completing, the
//! usage metered from the provider's responses, the task reaching review, and the merge.

use std::path::{Path, PathBuf};

use serde_json::Value;
use takt_test_support::{GitRepo, Takt, write};

use super::TAKT;

/// A repository under the target directory (Codex refuses a CODEX_HOME under /tmp), a
/// WORKFLOW.md for `backend`, and a scenario directory for the embedded mock model.
struct ModelFactory {
    repo: GitRepo,
    takt: Takt,
}

impl ModelFactory {
    fn new(backend: &str, backend_section: &str, scenario: &str) -> ModelFactory {
        let repo = GitRepo::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
        let scenarios = repo.root().join("scenarios");
        write(&scenarios.join("e2e.yaml"), scenario);
        let workflow = format!(
            "---\ntracker: {{kind: local}}\npolling: {{interval_ms: 500}}\n\
             agent: {{backend: {backend}, max_attempts: 1, max_turns: 2}}\n\
             model: {{provider: mock, name: gpt-5.5, scenarios: {}}}\n{backend_section}\
             publish: {{forge: local}}\n---\n{{{{ issue.description }}}}\n",
            scenarios.display()
        );
        write(&repo.workflow_path(), &workflow);
        let takt = Takt::new(TAKT, repo.workflow_path());
        ModelFactory { repo, takt }
    }

    /// Runs one task to review and checks what every backend must deliver.
    fn task_reaches_review_with_metered_usage(&self, file: &str, content: &str) -> Value {
        self.takt
            .add_task("Write a file", &["--body", "[[scenario:e2e]] please"]);
        let out = self.takt.run_once();
        let task = self.takt.task("TAKT-1");
        assert_eq!(task["state"], "awaiting_review", "{out}\n{task:#}");
        let metered = &task["metered_usage"];
        assert!(
            metered["total_tokens"].as_u64().unwrap_or(0) > 0,
            "the model endpoint metered the calls: {task:#}"
        );
        self.takt.ok(&["review", "approve", "TAKT-1"]);
        assert_eq!(
            self.repo.show_file("main", file).as_deref(),
            Some(content),
            "{}",
            self.repo.git(&["log", "--stat", "main"])
        );
        assert!(self.takt.audit_ok());
        task
    }
}

#[test]
fn builtin_agent_writes_through_a_tool_and_its_calls_are_metered() {
    let f = ModelFactory::new(
        "builtin",
        "",
        "steps:\n  - tool: {name: write_file, arguments: {path: notes/hello.txt, content: \"hi\\n\"}}\n  \
         - tool: {name: finish, arguments: {summary: wrote it}}\n  - text: DONE\n",
    );
    f.task_reaches_review_with_metered_usage("notes/hello.txt", "hi\n");
}

pub(super) fn agent_cli(name: &str, variable: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.ci/npm/node_modules/.bin")
        .join(name);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the {name} CLI is not installed; run .ci/install-agent-clis"
    );
    eprintln!("skipped: {name} CLI not installed");
    None
}

/// The workflow's `codex` section for the CLI at `codex`.
fn codex_section(codex: &Path) -> String {
    format!(
        "codex: {{command: \"{} app-server\", turn_timeout_ms: 120000}}\n",
        codex.display()
    )
}

/// The mock model's scenario: Codex adds `hello.txt` through `apply_patch`.
const CODEX_WRITES_HELLO: &str = "steps:\n  - apply_patch: \"*** Begin Patch\\n*** Add File: hello.txt\\n+hello from codex\\n*** End Patch\\n\"\n  \
     - text: DONE\n";

/// The workflow's `claude` section for the CLI at `claude`.
fn claude_section(claude: &Path) -> String {
    format!("claude: {{command: \"{}\"}}\n", claude.display())
}

/// The mock model's scenario: Claude Code writes `hello.txt` in the working directory it
/// reports (`{{cwd}}`).
const CLAUDE_WRITES_HELLO: &str = "steps:\n  - tool: {name: Write, arguments: {file_path: \"{{cwd}}/hello.txt\", content: \"hello from claude\\n\"}}\n  \
     - text: DONE\n";

#[test]
fn codex_app_server_through_the_daemon_reaches_review() {
    let Some(codex) = agent_cli("codex", "TAKT_CODEX_BIN") else {
        return;
    };
    let f = ModelFactory::new("codex", &codex_section(&codex), CODEX_WRITES_HELLO);
    f.task_reaches_review_with_metered_usage("hello.txt", "hello from codex\n");
}

#[test]
fn claude_code_through_the_daemon_reaches_review() {
    let Some(claude) = agent_cli("claude", "TAKT_CLAUDE_BIN") else {
        return;
    };
    let f = ModelFactory::new("claude", &claude_section(&claude), CLAUDE_WRITES_HELLO);
    f.task_reaches_review_with_metered_usage("hello.txt", "hello from claude\n");
}

/// A factory whose repository is a Cargo crate and whose workflow turns warm caches on: the
/// agent's sandbox shows the workspace at the build caches' fixed path (as root with
/// bubblewrap and overlay workspaces), which the backend must then work at.
fn warm_factory(backend: &str, backend_section: &str, scenario: &str) -> ModelFactory {
    let f = ModelFactory::new(
        backend,
        &format!("{backend_section}verify: {{warm_cache: true}}\n"),
        scenario,
    );
    f.repo.commit_file(
        "Cargo.toml",
        "[package]\nname = \"sample\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        "crate",
    );
    f.repo
        .commit_file("src/lib.rs", "pub fn one() -> i64 {\n    1\n}\n", "lib");
    f.repo
        .commit_file(".gitignore", "/target\n.takt/\nCargo.lock\n", "ignore");
    f
}

/// A root daemon (bubblewrap, overlays) shows the run's agent its workspace at the build
/// caches' fixed path: its `sandboxed` event says it looked for the base's cache there.
fn assert_shown_elsewhere_as_root(f: &ModelFactory) {
    let events = f.takt.json(&["task", "events", "TAKT-1"]).to_string();
    assert!(
        !super::running_as_root()
            || events.contains("agent build cache cold: no build cache of base"),
        "a root daemon shows the workspace elsewhere: {events}"
    );
}

#[test]
fn codex_works_where_warm_agent_builds_show_the_workspace() {
    let Some(codex) = agent_cli("codex", "TAKT_CODEX_BIN") else {
        return;
    };
    let f = warm_factory("codex", &codex_section(&codex), CODEX_WRITES_HELLO);
    f.task_reaches_review_with_metered_usage("hello.txt", "hello from codex\n");
    assert_shown_elsewhere_as_root(&f);
}

#[test]
fn claude_code_works_where_warm_agent_builds_show_the_workspace() {
    let Some(claude) = agent_cli("claude", "TAKT_CLAUDE_BIN") else {
        return;
    };
    // Claude Code reports the fixed path as its working directory.
    let f = warm_factory("claude", &claude_section(&claude), CLAUDE_WRITES_HELLO);
    f.task_reaches_review_with_metered_usage("hello.txt", "hello from claude\n");
    assert_shown_elsewhere_as_root(&f);
}

#[test]
fn the_builtin_loops_commands_run_sandboxed() {
    let f = ModelFactory::new(
        "builtin",
        "",
        "steps:\n  - tool: {name: run, arguments: {command: \"cat $SECRET_FILE > leak.txt 2>&1; env > env.txt; ls /root > root.txt 2>&1; echo done\"}}\n  \
         - tool: {name: finish, arguments: {summary: tried}}\n  - text: DONE\n",
    );
    let secret = f.repo.root().join("operator-secret");
    write(&secret, "OPERATOR-SENTINEL\n");
    // The scenario names the file through the agent's own shell; the daemon's variable does
    // not pass the sandbox, so the path is written into the scenario instead.
    let scenario = f.repo.root().join("scenarios/e2e.yaml");
    let text = std::fs::read_to_string(&scenario).unwrap();
    write(
        &scenario,
        &text.replace("$SECRET_FILE", &secret.display().to_string()),
    );
    f.takt
        .add_task("Try to escape", &["--body", "[[scenario:e2e]] please"]);
    let mut command = f.takt.command(&["run", "--once"]);
    command.env("OPENAI_API_KEY", "sk-SENTINEL-DAEMON");
    let out = takt_test_support::run_command(command);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(f.takt.state_of("TAKT-1"), "awaiting_review", "{out}");
    let show = |path: &str| {
        let mirror = f.takt.state_dir().join("mirror.git");
        let out = takt_test_support::git_output(&mirror, &["show", &format!("takt/TAKT-1:{path}")]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (leak, env) = (show("leak.txt"), show("env.txt"));
    assert!(
        leak.contains("No such file"),
        "the secret's path is invisible: {leak}"
    );
    assert!(!leak.contains("SENTINEL"), "{leak}");
    assert!(!env.contains("SENTINEL"), "{env}");
    assert!(env.contains("TAKT_RUN_ID="), "{env}");
}

#[test]
fn a_run_stops_at_its_budget_with_its_work_committed_and_the_spend_reported() {
    // Every call reports 600 input and 100 output tokens: $0.006 at gpt-5.5's list price.
    let f = ModelFactory::new(
        "builtin",
        "budget: {per_run_usd: 0.01}\n",
        "usage: {input_tokens: 600, output_tokens: 100}\nsteps:\n  \
         - tool: {name: write_file, arguments: {path: one.txt, content: \"1\\n\"}}\n  \
         - tool: {name: write_file, arguments: {path: two.txt, content: \"2\\n\"}}\n  \
         - tool: {name: write_file, arguments: {path: three.txt, content: \"3\\n\"}}\n  \
         - tool: {name: finish, arguments: {summary: done}}\n  - text: DONE\n",
    );
    f.takt
        .add_task("Spend", &["--body", "[[scenario:e2e]] please"]);
    let out = f.takt.run_once();
    let task = f.takt.task("TAKT-1");
    assert_eq!(task["state"], "failed", "{out}\n{task:#}");
    let attempt = &task["attempts"][0];
    assert_eq!(attempt["outcome"], "budget_exhausted", "{task:#}");
    let report = task["failure"]["reason"].as_str().unwrap_or_default();
    assert!(report.contains("budget cap was reached"), "{task:#}");
    // The call that crossed the cap was the second; nothing later reached the model.
    let metered = task["metered_usage"]["total_tokens"].as_u64().unwrap();
    assert_eq!(
        metered, 1400,
        "stopped within one request of the cap: {task:#}"
    );
    // Work done before exhaustion is on the branch.
    let mirror = f.takt.state_dir().join("mirror.git");
    let one = takt_test_support::git_output(&mirror, &["show", "takt/TAKT-1:one.txt"]);
    assert!(one.status.success(), "one.txt was committed");
    let three = takt_test_support::git_output(&mirror, &["show", "takt/TAKT-1:three.txt"]);
    assert!(!three.status.success(), "nothing after the cap");

    let cost = f.takt.json(&["cost", "--by", "task"]);
    let row = &cost[0];
    assert_eq!(row["key"], "TAKT-1", "{cost:#}");
    assert_eq!(row["total_tokens"], 1400, "{cost:#}");
    assert_eq!(row["cost_micros"], 12_000, "{cost:#}");
    let by_model = f.takt.json(&["cost", "--by", "model"]);
    let priced = by_model
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["key"] == "gpt-5.5")
        .unwrap_or_else(|| panic!("{by_model:#}"));
    assert_eq!(priced["cost_micros"], 12_000, "{by_model:#}");
    let events = f.takt.json(&["task", "events", "TAKT-1"]).to_string();
    assert!(
        events.contains("\"transcript\""),
        "calls carry their transcript: {events}"
    );
    assert!(
        f.takt.audit_ok(),
        "transcripts are artifacts the audit re-hashes"
    );
}

/// The provider key lives only in the daemon: the agent (and everything it can read) holds the
/// run token, while the upstream gets the real key.
#[test]
fn the_provider_key_never_reaches_the_agent() {
    use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
    const KEY: &str = "sk-REAL-PROVIDER-KEY-SENTINEL";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The pattern is assembled at run time so the command's own text never matches it.
    let probe = "P=REAL-PROV; P=\"${P}IDER-KEY\"; env > env.txt; \
                 { grep -rl \"$P\" \"$HOME\" /tmp /run \"$TAKT_WORKSPACE\" 2>/dev/null; \
                   cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep \"$P\"; } > found.txt; \
                 echo probed";
    let mock = runtime
        .block_on(MockModel::start(MockConfig::with_scenarios(vec![
            Scenario::new(
                "key",
                vec![
                    Step::tool("run", serde_json::json!({"command": probe})),
                    Step::tool("finish", serde_json::json!({"summary": "probed"})),
                    Step::text("DONE"),
                ],
            ),
        ])))
        .unwrap();
    let repo = GitRepo::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    write(
        &repo.workflow_path(),
        &format!(
            "---\ntracker: {{kind: local}}\nagent: {{backend: builtin, max_attempts: 1, max_turns: 2}}\n\
             model: {{provider: openai, base_url: {}, api_key: $TAKT_E2E_PROVIDER_KEY, name: gpt-5.5}}\n\
             publish: {{forge: local}}\n---\n{{{{ issue.description }}}}\n",
            mock.openai_base_url()
        ),
    );
    let takt = Takt::new(TAKT, repo.workflow_path());
    takt.add_task("Look for the key", &["--body", "[[scenario:key]]"]);
    let mut command = takt.command(&["run", "--once"]);
    command.env("TAKT_E2E_PROVIDER_KEY", KEY);
    let out = takt_test_support::run_command(command);
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(takt.state_of("TAKT-1"), "awaiting_review", "{out}");
    let show = |path: &str| {
        let mirror = takt.state_dir().join("mirror.git");
        let out = takt_test_support::git_output(&mirror, &["show", &format!("takt/TAKT-1:{path}")]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (env, found) = (show("env.txt"), show("found.txt"));
    assert!(env.contains("TAKT_RUN_ID="), "the probe ran: {env}");
    assert!(!env.contains("SENTINEL"), "{env}");
    assert!(
        found.trim().is_empty(),
        "the key is readable in the sandbox: {found}"
    );
    assert!(
        !mock.requests().is_empty(),
        "the model was reached through the endpoint"
    );
    runtime.block_on(mock.shutdown()).unwrap();
}
