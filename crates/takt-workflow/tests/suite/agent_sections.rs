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
