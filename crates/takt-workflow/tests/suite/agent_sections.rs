//! takt's `model`, `claude` and `builtin` sections.

use super::{assert_error, env, load_err, load_ok, parse_with};
use takt_workflow::ModelProvider;

#[test]
fn model_defaults_to_openai_with_the_canonical_key_variable() {
    let wf = parse_with(
        "---\nmodel: {name: gpt-5.5}\n---\n",
        &env().with_var("OPENAI_API_KEY", "sk-test"),
    )
    .expect("loads");
    assert_eq!(wf.model.provider, ModelProvider::Openai);
    assert_eq!(
        wf.model.base_url.as_deref(),
        Some("https://api.openai.com/v1")
    );
    assert_eq!(wf.model.api_key.as_deref(), Some("sk-test"));
    assert_eq!(wf.model.api_key_var.as_deref(), Some("OPENAI_API_KEY"));
    assert_eq!(wf.model.name.as_deref(), Some("gpt-5.5"));
}

#[test]
fn model_key_comes_from_the_named_variable_and_an_empty_one_is_missing() {
    let text = "---\nmodel: {provider: anthropic, api_key: $TEAM_KEY, base_url: http://127.0.0.1:9/}\n---\n";
    let wf = parse_with(text, &env().with_var("TEAM_KEY", "k")).expect("loads");
    assert_eq!(wf.model.provider, ModelProvider::Anthropic);
    assert_eq!(wf.model.base_url.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(wf.model.api_key.as_deref(), Some("k"));
    let wf = parse_with(text, &env().with_var("TEAM_KEY", "")).expect("loads");
    assert_eq!(
        wf.model.api_key, None,
        "R-033: an empty secret counts as missing"
    );
}

#[test]
fn a_literal_model_key_loads_with_a_warning() {
    let wf = load_ok("---\nmodel: {base_url: http://127.0.0.1:11434/v1, api_key: ollama}\n---\n");
    assert_eq!(wf.model.api_key.as_deref(), Some("ollama"));
    assert!(wf.warnings.iter().any(|w| w.key == "model.api_key"));
}

#[test]
fn model_rejects_unknown_providers_keys_and_non_http_urls() {
    let err = load_err("---\nmodel:\n  provider: openia\n  base_url: ftp://x\n  nmae: y\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "did you mean `openai`?",
            "model.base_url",
            "not an http(s) URL",
            "model.nmae",
            "did you mean `name`?",
        ],
    );
}

#[test]
fn mock_scenarios_resolve_against_the_workflow_directory() {
    let wf = load_ok("---\nmodel: {provider: mock, scenarios: ./scenarios}\n---\n");
    assert_eq!(wf.model.base_url, None);
    assert_eq!(
        wf.model.scenarios.as_deref(),
        Some(std::path::Path::new("/repo/./scenarios"))
    );
}

#[test]
fn claude_defaults_and_permission_mode_validation() {
    let wf = load_ok("---\nagent: {backend: claude}\n---\n");
    assert_eq!(wf.claude.command, "claude");
    assert_eq!(wf.claude.permission_mode, "acceptEdits");
    let err = load_err("---\nclaude: {permission_mode: acceptedits, allowed_tool: [Read]}\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "did you mean `acceptEdits`?",
            "claude.allowed_tool",
            "did you mean `allowed_tools`?",
        ],
    );
}

#[test]
fn builtin_limits_default_and_validate() {
    let wf = load_ok("---\n---\n");
    assert_eq!(wf.builtin.max_steps, 50);
    assert!(wf.builtin.deny_commands.iter().any(|c| c == "sudo"));
    let wf = load_ok("---\nbuiltin: {max_steps: 3, deny_commands: [rm]}\n---\n");
    assert_eq!(wf.builtin.max_steps, 3);
    assert_eq!(wf.builtin.deny_commands, ["rm"]);
    let err = load_err("---\nbuiltin: {max_steps: 0}\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["builtin.max_steps", "positive integer"],
    );
}

#[test]
fn sandbox_defaults_confine_with_the_model_only_network() {
    use takt_workflow::{SandboxMode, SandboxNetwork};
    let wf = load_ok("---\n---\n");
    assert_eq!(wf.sandbox.mode, SandboxMode::Auto);
    assert_eq!(wf.sandbox.network, SandboxNetwork::Model);
    assert_eq!(wf.sandbox.env, ["PATH", "LANG", "TERM"]);
    assert_eq!(wf.sandbox.memory_mb, Some(4096));
    assert_eq!(wf.sandbox.pids, Some(512));
    assert_eq!(wf.sandbox.wall_clock_ms, None);
    assert_eq!(wf.sandbox.user, "takt-agent");
}

#[test]
fn sandbox_settings_are_read_and_paths_resolved() {
    use takt_workflow::{SandboxMode, SandboxNetwork};
    let wf = load_ok(
        "---\nsandbox:\n  mode: bwrap\n  network: allowlist\n  allow_hosts: [registry.npmjs.org, '*.crates.io']\n  \
         env: [PATH, HTTP_USER_AGENT]\n  memory_mb: 1024\n  pids: 64\n  cpu_seconds: 600\n  wall_clock_ms: 60000\n  \
         read_only: [tools]\n  read_write: [/var/cache/shared]\n---\n",
    );
    assert_eq!(wf.sandbox.mode, SandboxMode::Bwrap);
    assert_eq!(wf.sandbox.network, SandboxNetwork::Allowlist);
    assert_eq!(
        wf.sandbox.allow_hosts,
        ["registry.npmjs.org", "*.crates.io"]
    );
    assert_eq!(wf.sandbox.env, ["PATH", "HTTP_USER_AGENT"]);
    assert_eq!(wf.sandbox.memory_mb, Some(1024));
    assert_eq!(wf.sandbox.cpu_seconds, Some(600));
    assert_eq!(wf.sandbox.wall_clock_ms, Some(60000));
    assert_eq!(wf.sandbox.read_only, [wf.dir.join("tools")]);
    assert_eq!(
        wf.sandbox.read_write,
        [std::path::PathBuf::from("/var/cache/shared")]
    );
    // DESIGN.md's name for the model-only network.
    let wf = load_ok("---\nsandbox: {network: gateway}\n---\n");
    assert_eq!(wf.sandbox.network, SandboxNetwork::Model);
}

#[test]
fn bad_sandbox_settings_say_what_and_how_to_fix() {
    let err = load_err("---\nsandbox:\n  mode: docker\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["sandbox.mode", "docker", "auto, bwrap, landlock, none"],
    );
    let err = load_err("---\nsandbox:\n  mode: bwrapp\n---\n");
    assert_error(&err, "invalid_workflow_config", &["did you mean `bwrap`?"]);
    let err = load_err("---\nsandbox:\n  network: allowlist\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["allow_hosts", "is empty"],
    );
    let err =
        load_err("---\nsandbox:\n  network: allowlist\n  allow_hosts: ['https://x.org/']\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["not a host name", "no scheme"],
    );
    let err = load_err("---\nsandbox:\n  read_write: [/]\n---\n");
    assert_error(&err, "invalid_workflow_config", &["whole filesystem"]);
    let err = load_err("---\nsandbox:\n  memory_mb: 0\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["sandbox.memory_mb", "positive"],
    );
    let err = load_err("---\nsandbox:\n  memroy_mb: 10\n---\n");
    assert_error(&err, "invalid_workflow_config", &["memroy_mb", "memory_mb"]);
    let err = load_err("---\nsandbox:\n  env: ['A=B']\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["not an environment variable name"],
    );
}

#[test]
fn budget_and_prices_are_read_in_dollars_and_tokens() {
    use takt_workflow::OnExhaust;
    let wf = load_ok(
        "---\nbudget:\n  per_run_usd: 0.5\n  per_task_usd: 5\n  per_task_tokens: 2000000\n  per_day_usd: 100\n  \
         per_month_usd: \"$2000\"\n  on_exhaust: pause\n  max_tokens_without_progress: 300000\n\
         model:\n  prices:\n    gpt-5.5: {input: 5, cached_input: 0.5, output: 30}\n---\n",
    );
    assert_eq!(wf.budget.per_run.usd, Some(0.5));
    assert_eq!(wf.budget.per_task.usd, Some(5.0));
    assert_eq!(wf.budget.per_task.tokens, Some(2_000_000));
    assert_eq!(wf.budget.per_month.usd, Some(2000.0));
    assert_eq!(wf.budget.per_day.tokens, None);
    assert_eq!(wf.budget.on_exhaust, OnExhaust::Pause);
    assert_eq!(wf.budget.max_tokens_without_progress, Some(300_000));
    let price = wf.model.prices["gpt-5.5"];
    assert_eq!(
        (price.input, price.cached_input, price.output),
        (5.0, Some(0.5), 30.0)
    );
    assert_eq!(
        load_ok("---\n---\n").budget,
        takt_workflow::BudgetConfig::default()
    );
}

#[test]
fn bad_budgets_and_prices_say_what_and_how_to_fix() {
    let err = load_err("---\nbudget:\n  per_task_usd: -1\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["budget.per_task_usd", "non-negative number"],
    );
    let err = load_err("---\nbudget:\n  on_exhaust: halt\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["budget.on_exhaust", "stop", "pause"],
    );
    let err = load_err("---\nbudget:\n  per_tsk_usd: 5\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["per_tsk_usd", "per_task_usd"],
    );
    let err = load_err("---\nmodel:\n  prices:\n    m: {input: 1}\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["model.prices.m", "input: N, output: N"],
    );
}
