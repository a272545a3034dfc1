//! Realistic WORKFLOW.md files written from the Symphony spec and takt's design: each must load
//! unchanged and render.

use serde_json::json;
use takt_workflow::{BackendKind, PromptContext, RepoSource, Workflow};

use super::{env, issue, load_ok, p, parse_with};

fn renders(workflow: &Workflow) -> String {
    let issue = issue();
    let first = workflow
        .render_prompt(&PromptContext::first_run(&issue))
        .unwrap();
    let retry = PromptContext {
        attempt: Some(2),
        ..PromptContext::first_run(&issue)
    };
    workflow.render_prompt(&retry).unwrap();
    first
}

fn warning_keys(workflow: &Workflow) -> Vec<&str> {
    workflow.warnings.iter().map(|w| w.key.as_str()).collect()
}

/// Modeled on Symphony's own elixir/WORKFLOW.md: legacy flat Linear keys, custom states, hooks,
/// a `~` root and Codex keys Symphony passes to newer Codex versions.
const SYMPHONY_LINEAR: &str = r#"---
tracker:
  kind: linear
  project_slug: "symphony-0c79b11b75ea"
  active_states:
    - Todo
    - In Progress
    - Merging
    - Rework
  terminal_states:
    - Closed
    - Cancelled
    - Canceled
    - Duplicate
    - Done
polling:
  interval_ms: 5000
workspace:
  root: ~/code/symphony-workspaces
hooks:
  timeout_ms: 900000
  after_create: |
    set -eu
    git clone --depth 1 https://github.com/openai/symphony .
    if command -v mise >/dev/null 2>&1; then
      cd elixir && mise trust && mise exec -- mix deps.get
    fi
  before_remove: |
    cd elixir && mise exec -- mix workspace.before_remove
agent:
  max_concurrent_agents: 10
  max_turns: 20
codex:
  command: codex --config shell_environment_policy.inherit=all --model gpt-5.3-codex app-server
  model: gpt-5.3-codex
  reasoning_effort: xhigh
  approval_policy: never
  thread_sandbox: workspace-write
  turn_sandbox_policy:
    type: workspaceWrite
    networkAccess: true
---

You are working on a Linear ticket `{{ issue.identifier }}`

{% if attempt %}
Continuation context:

- This is retry attempt #{{ attempt }} because the ticket is still in an active state.
- Resume from the current workspace state instead of restarting from scratch.
{% endif %}

Issue context:
Identifier: {{ issue.identifier }}
Title: {{ issue.title }}
Current status: {{ issue.state }}
Labels: {{ issue.labels }}
URL: {{ issue.url }}

Description:
{% if issue.description %}
{{ issue.description }}
{% else %}
No description provided.
{% endif %}
"#;

#[test]
fn symphony_reference_linear_workflow() {
    let w = load_ok(SYMPHONY_LINEAR);
    assert_eq!(w.tracker.kind, "linear");
    assert_eq!(w.tracker.provider["project_slug"], "symphony-0c79b11b75ea");
    assert_eq!(
        w.tracker.active_states,
        ["Todo", "In Progress", "Merging", "Rework"]
    );
    assert_eq!(w.polling.interval_ms, 5000);
    assert_eq!(w.workspace.root, p("/home/tester/code/symphony-workspaces"));
    assert_eq!(w.hooks.timeout_ms, 900_000);
    assert!(
        w.hooks
            .after_create
            .as_deref()
            .unwrap()
            .starts_with("set -eu\ngit clone")
    );
    assert!(w.hooks.before_remove.is_some());
    assert_eq!(w.codex.approval_policy, Some(json!("never")));
    assert_eq!(
        w.codex.turn_sandbox_policy,
        Some(json!({"type": "workspaceWrite", "networkAccess": true}))
    );
    assert_eq!(warning_keys(&w), ["codex.model", "codex.reasoning_effort"]);
    let out = renders(&w);
    assert!(
        out.starts_with("You are working on a Linear ticket `ABC-1`"),
        "{out}"
    );
    assert!(out.contains("Labels: bugci"));
    assert!(!out.contains("Continuation context"));
}

/// Linear through the generic `provider` block, secret via `$VAR`, all four hooks, Codex
/// policies, per-state limits and the HTTP server extension.
const LINEAR_PROVIDER: &str = r#"---
tracker:
  kind: linear
  provider:
    api_key: $LINEAR_API_KEY
    project_slug: payments-7f3a
    assignee: me
  required_labels: [agent-ready]
polling:
  interval_ms: 15000
workspace:
  root: $SYMPHONY_WORKSPACES
hooks:
  after_create: |
    git clone git@github.com:acme/payments.git .
    make bootstrap
  before_run: git fetch origin && git rebase origin/main
  after_run: make lint || true
  before_remove: rm -rf node_modules
  timeout_ms: 120000
agent:
  max_concurrent_agents: 6
  max_turns: 12
  max_retry_backoff_ms: 120000
  max_concurrent_agents_by_state:
    Todo: 4
    In Progress: 4
    Rework: 2
codex:
  command: codex app-server
  approval_policy:
    reject:
      sandbox_approval: true
      rules: true
      mcp_elicitations: true
  thread_sandbox: workspace-write
  turn_sandbox_policy:
    type: workspaceWrite
    writableRoots: []
    readOnlyAccess:
      type: fullAccess
    networkAccess: false
    excludeTmpdirEnvVar: false
    excludeSlashTmp: false
  turn_timeout_ms: 1800000
  read_timeout_ms: 10000
  stall_timeout_ms: 600000
server:
  port: 4040
---
# {{ issue.identifier }}: {{ issue.title }}

{{ issue.description | default: "No description provided." }}

{% if issue.blocked_by.size > 0 %}Blocked by: {{ issue.blocked_by | map: "identifier" | join: ", " }}{% endif %}
Labels: {{ issue.labels | join: ", " }}
"#;

#[test]
fn linear_with_provider_hooks_policies_limits_and_server() {
    let env = env().with_var("SYMPHONY_WORKSPACES", "/var/lib/symphony/ws");
    let w = parse_with(LINEAR_PROVIDER, &env).unwrap();
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    assert_eq!(w.tracker.provider["api_key"], "$LINEAR_API_KEY");
    assert_eq!(w.tracker.required_labels, ["agent-ready"]);
    assert_eq!(w.workspace.root, p("/var/lib/symphony/ws"));
    assert_eq!(
        w.hooks.before_run.as_deref(),
        Some("git fetch origin && git rebase origin/main")
    );
    assert_eq!(w.hooks.timeout_ms, 120_000);
    assert_eq!(w.agent.max_concurrent_agents_for_state("in progress"), 4);
    assert_eq!(w.agent.max_concurrent_agents_for_state("Rework"), 2);
    assert_eq!(w.agent.max_concurrent_agents_for_state("Merging"), 6);
    assert_eq!(
        w.codex.approval_policy.as_ref().unwrap()["reject"]["rules"],
        true
    );
    assert_eq!(
        w.codex.turn_sandbox_policy.as_ref().unwrap()["readOnlyAccess"]["type"],
        "fullAccess"
    );
    assert_eq!(
        (
            w.codex.turn_timeout_ms,
            w.codex.read_timeout_ms,
            w.codex.stall_timeout_ms
        ),
        (1_800_000, 10_000, 600_000)
    );
    assert_eq!(w.server.port, Some(4040));
    let out = renders(&w);
    assert!(out.starts_with("# ABC-1: Fix the flaky test"), "{out}");
    assert!(out.contains("Blocked by: ABC-0"));
    assert!(out.contains("Labels: bug, ci"));
}

/// GitHub Issues: provider keys, explicit open/closed states, label routing.
const GITHUB: &str = r#"---
tracker:
  kind: github
  provider:
    repo: acme/widgets
    token: $GITHUB_TOKEN
    api_url: https://api.github.com
  active_states: [open]
  terminal_states: [closed]
  required_labels: [Symphony, " Ready "]
polling:
  interval_ms: 60000
workspace:
  root: ./.symphony/workspaces
hooks:
  after_create: gh repo clone acme/widgets . -- --depth 50
agent:
  max_concurrent_agents: 2
codex:
  command: codex app-server
  approval_policy: on-request
  thread_sandbox: workspace-write
---
You are fixing GitHub issue {{ issue.identifier }} ({{ issue.url }}).

{{ issue.title }}

{% if issue.description %}{{ issue.description }}{% endif %}

{% case issue.priority %}{% when 1 %}Urgent.{% when 2 %}High priority.{% else %}Normal priority.{% endcase %}
Open a pull request that references the issue and move nothing else.
"#;

#[test]
fn github_tracker_with_provider_keys() {
    let w = load_ok(GITHUB);
    assert!(w.warnings.is_empty(), "{:?}", w.warnings);
    assert_eq!(w.tracker.kind, "github");
    assert_eq!(
        serde_json::Value::Object(w.tracker.provider.clone()),
        json!({"repo": "acme/widgets", "token": "$GITHUB_TOKEN", "api_url": "https://api.github.com"})
    );
    assert_eq!(w.tracker.active_states, ["open"]);
    assert!(w.tracker.is_terminal("CLOSED"));
    assert_eq!(w.tracker.required_labels, ["symphony", "ready"]);
    assert_eq!(w.workspace.root, p("/repo/.symphony/workspaces"));
    assert_eq!(w.codex.approval_policy, Some(json!("on-request")));
    let out = renders(&w);
    assert!(out.contains("High priority."), "{out}");
}

/// GitLab plus Symphony's extensions takt ignores (SSH workers, the terminal dashboard).
const GITLAB: &str = r#"---
tracker:
  kind: gitlab
  provider:
    project_path: platform/api
    api_key: $GITLAB_PAT
  active_states: [opened]
  terminal_states: [closed]
worker:
  ssh_hosts: [build-1.internal, build-2.internal]
  max_concurrent_agents_per_host: 2
observability:
  dashboard_enabled: false
  refresh_ms: 2000
server:
  port: 0
  host: 127.0.0.1
---
Resolve {{ issue.identifier }}: {{ issue.title }}
"#;

#[test]
fn gitlab_with_symphony_extensions() {
    let w = load_ok(GITLAB);
    assert_eq!(w.tracker.kind, "gitlab");
    assert_eq!(w.tracker.provider["project_path"], "platform/api");
    assert_eq!(warning_keys(&w), ["worker", "observability"]);
    assert_eq!(w.server.port, Some(0));
    assert_eq!(renders(&w), "Resolve ABC-1: Fix the flaky test");
}

/// The in-memory tracker Symphony uses for tests, prompt with every template variable.
const MEMORY: &str = "---\ntracker:\n  kind: memory\nagent:\n  max_turns: 3\n---\n\
{{ issue.identifier }}{% if attempt %} (attempt {{ attempt }}, {{ retry_kind }}){% endif %}\
{% if last_error %}\nLast error: {{ last_error }}{% endif %}{% if feedback %}\nFeedback: {{ feedback }}{% endif %}\n";

#[test]
fn memory_tracker_with_every_variable() {
    let w = load_ok(MEMORY);
    assert_eq!(w.tracker.kind, "memory");
    assert_eq!(w.agent.max_turns, 3);
    assert_eq!(renders(&w), "ABC-1");
}

/// takt's own sections alongside Symphony's (DESIGN.md §4).
const TAKT: &str = r#"---
tracker: {kind: local}
workspace: {root: .takt/workspaces, repo: ., base_branch: main}
agent:     {backend: builtin, max_concurrent_agents: 4, max_turns: 20, max_attempts: 4,
            max_run_duration_ms: 3600000}
command:   {run: ./scripts/codemod.sh}
publish:   {forge: local, auto_merge: true, branch_prefix: takt/}
gates:     [{name: unit, run: cargo test, timeout_ms: 600000}]
---
Implement {{ issue.title }}.
{% if feedback %}Reviewer feedback from the last round:
{{ feedback }}{% endif %}
"#;

#[test]
fn takt_design_example() {
    let w = load_ok(TAKT);
    assert_eq!(w.tracker.kind, "local");
    assert_eq!(w.workspace.root, p("/repo/.takt/workspaces"));
    assert_eq!(w.workspace.repo, RepoSource::Path(p("/repo")));
    assert_eq!(w.workspace.base_branch.as_deref(), Some("main"));
    assert_eq!(w.agent.backend, BackendKind::Builtin);
    assert!(w.publish.auto_merge);
    assert_eq!(warning_keys(&w), ["command"]);
    assert_eq!(w.gates.len(), 1);
    assert_eq!(w.gates[0].name, "unit");
    assert_eq!(w.gates[0].run, "cargo test");
    assert_eq!(
        w.risk.default_tier,
        takt_protocol::RiskTier::AutoShip,
        "auto_merge: true"
    );
    assert_eq!(renders(&w), "Implement Fix the flaky test.\n");
}

#[test]
fn a_prompt_only_file() {
    let w = load_ok("Fix {{ issue.identifier }}. Keep the change small.\n");
    assert_eq!(renders(&w), "Fix ABC-1. Keep the change small.");
}
