//! every front-matter key, its type and default; plus takt's own keys.

use std::collections::BTreeMap;

use serde_json::json;
use takt_workflow::{
    BackendKind, DEFAULT_ACTIVE_STATES, DEFAULT_TERMINAL_STATES, ForgeKind, MergeMethod, Position,
    SecretRef, TRACKER_KINDS,
};

use super::{assert_error, env, load_err, load_ok, parse_with};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn r008_tracker_kind_defaults_to_local() {
    assert_eq!(load_ok("---\ntracker: {}\n---\n").tracker.kind, "local");
    assert_eq!(load_ok("---\ntracker:\n---\n").tracker.kind, "local");
}

#[test]
fn r008_every_supported_kind_loads() {
    for kind in TRACKER_KINDS {
        let text = format!(
            "---\ntracker:\n  kind: {kind}\n  active_states: [open]\n  terminal_states: [closed]\n---\n"
        );
        assert_eq!(load_ok(&text).tracker.kind, *kind);
    }
}

#[test]
fn r008_kind_is_trimmed_and_case_insensitive() {
    assert_eq!(
        load_ok("---\ntracker:\n  kind: ' Linear '\n---\n")
            .tracker
            .kind,
        "linear"
    );
}

#[test]
fn r008_unknown_kind_is_unsupported_tracker_kind() {
    let err = load_err("---\ntracker:\n  kind: jira\n---\n");
    assert_eq!(
        err.to_string(),
        "tracker kind `jira` (`tracker.kind`) in /repo/WORKFLOW.md line 3, column 9 is not supported; \
         use one of local, linear, github, gitlab, memory"
    );
    assert_eq!(err.category(), "unsupported_tracker_kind");
}

#[test]
fn r008_misspelled_kind_gets_a_suggestion() {
    let err = load_err("---\ntracker:\n  kind: linaer\n---\n");
    assert_error(
        &err,
        "unsupported_tracker_kind",
        &["`linaer`", "(did you mean `linear`?)"],
    );
}

#[test]
fn r008_non_string_kind_is_invalid_config() {
    let err = load_err("---\ntracker:\n  kind: 7\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`tracker.kind` must be a string, but it is the integer 7",
            "line 3, column 9",
        ],
    );
}

#[test]
fn r009_provider_is_kept_verbatim() {
    let workflow = load_ok(
        "---\ntracker:\n  kind: linear\n  provider:\n    project_slug: abc\n    api_key: $LINEAR_API_KEY\n    custom:\n      nested: [1, two, {three: 3}]\n    page_size: 25\n---\n",
    );
    assert_eq!(
        serde_json::Value::Object(workflow.tracker.provider.clone()),
        json!({
            "project_slug": "abc",
            "api_key": "$LINEAR_API_KEY",
            "custom": {"nested": [1, "two", {"three": 3}]},
            "page_size": 25
        })
    );
    assert!(
        workflow.warnings.is_empty(),
        "provider keys are the adapter's: {:?}",
        workflow.warnings
    );
}

#[test]
fn r009_provider_must_be_a_mapping() {
    let err = load_err("---\ntracker:\n  provider: [a]\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`tracker.provider` must be a mapping, but it is a list",
            "line 3",
        ],
    );
}

#[test]
fn r010_required_labels_are_trimmed_lowercased_and_deduplicated() {
    let workflow =
        load_ok("---\ntracker:\n  required_labels: [' Bug ', bug, Needs-Review, BUG]\n---\n");
    assert_eq!(
        workflow.tracker.required_labels,
        strings(&["bug", "needs-review"])
    );
    assert!(workflow.warnings.is_empty());
    assert!(load_ok("").tracker.required_labels.is_empty());
}

#[test]
fn r010_a_blank_required_label_is_kept_and_warned_about() {
    let workflow = load_ok("---\ntracker:\n  required_labels: ['  ', agent]\n---\n");
    assert_eq!(workflow.tracker.required_labels, strings(&["", "agent"]));
    assert_eq!(workflow.warnings.len(), 1);
    assert!(
        workflow.warnings[0].message.contains("blank label"),
        "{}",
        workflow.warnings[0]
    );
}

#[test]
fn r011_r012_default_states_for_local_linear_and_memory() {
    for kind in ["local", "linear", "memory"] {
        let workflow = load_ok(&format!("---\ntracker:\n  kind: {kind}\n---\n"));
        assert_eq!(
            workflow.tracker.active_states,
            strings(DEFAULT_ACTIVE_STATES)
        );
        assert_eq!(
            workflow.tracker.terminal_states,
            strings(DEFAULT_TERMINAL_STATES)
        );
    }
    assert_eq!(DEFAULT_ACTIVE_STATES, ["Todo", "In Progress"]);
    assert_eq!(
        DEFAULT_TERMINAL_STATES,
        ["Closed", "Cancelled", "Canceled", "Duplicate", "Done"]
    );
}

#[test]
fn r011_r012_github_and_gitlab_default_to_their_own_states() {
    let github = load_ok("---\ntracker:\n  kind: github\n  provider: {repo: o/r}\n---\n");
    assert_eq!(github.tracker.active_states, strings(&["open"]));
    assert_eq!(github.tracker.terminal_states, strings(&["closed"]));
    let gitlab = load_ok("---\ntracker:\n  kind: gitlab\n  active_states: [opened, Doing]\n---\n");
    assert_eq!(gitlab.tracker.active_states, strings(&["opened", "Doing"]));
    assert_eq!(gitlab.tracker.terminal_states, strings(&["closed"]));
}

#[test]
fn r011_explicit_states_keep_their_spelling_and_compare_case_insensitively() {
    let workflow =
        load_ok("---\ntracker:\n  active_states: [Todo, Rework]\n  terminal_states: [Done]\n---\n");
    assert_eq!(workflow.tracker.active_states, strings(&["Todo", "Rework"]));
    assert!(workflow.tracker.is_active("rework"));
    assert!(workflow.tracker.is_active("  TODO "));
    assert!(!workflow.tracker.is_active("In Progress"));
    assert!(workflow.tracker.is_terminal("done"));
}

#[test]
fn r011_states_must_be_a_list_of_non_blank_strings() {
    assert_error(
        &load_err("---\ntracker:\n  active_states: Todo\n---\n"),
        "invalid_workflow_config",
        &[
            "`tracker.active_states` must be a list of strings, but it is the string \"Todo\"",
            "line 3",
        ],
    );
    assert_error(
        &load_err("---\ntracker:\n  active_states: [Todo, 3]\n---\n"),
        "invalid_workflow_config",
        &[
            "item 1 of `tracker.active_states` must be a string, but it is the integer 3",
            "line 3, column 25",
        ],
    );
    assert_error(
        &load_err("---\ntracker:\n  terminal_states: [Done, '']\n---\n"),
        "invalid_workflow_config",
        &["item 1 of `tracker.terminal_states` is blank"],
    );
}

#[test]
fn r013_polling_interval_default_and_validation() {
    assert_eq!(load_ok("").polling.interval_ms, 30_000);
    assert_eq!(
        load_ok("---\npolling:\n  interval_ms: 1000\n---\n")
            .polling
            .interval_ms,
        1000
    );
    let err = load_err("---\npolling:\n  interval_ms: 0\n---\n");
    assert_eq!(
        err.to_string(),
        "`polling.interval_ms` must be a positive integer, but it is the integer 0 in /repo/WORKFLOW.md \
         line 3, column 16; write a whole number of 1 or more, for example `interval_ms: 30000`, or remove \
         the key to use the default (30000)"
    );
}

#[test]
fn r015_hooks_are_optional_multiline_scripts_and_null_means_absent() {
    let workflow = load_ok(
        "---\nhooks:\n  after_create: |\n    git clone $REPO .\n    npm ci\n  before_run: null\n  after_run: ~\n  before_remove: '   '\n---\n",
    );
    assert_eq!(
        workflow.hooks.after_create.as_deref(),
        Some("git clone $REPO .\nnpm ci\n")
    );
    assert_eq!(workflow.hooks.before_run, None);
    assert_eq!(workflow.hooks.after_run, None);
    assert_eq!(
        workflow.hooks.before_remove, None,
        "a blank script counts as absent"
    );
    assert!(workflow.warnings.is_empty());
}

#[test]
fn r015_a_hook_must_be_a_string() {
    assert_error(
        &load_err("---\nhooks:\n  before_run: [make, test]\n---\n"),
        "invalid_workflow_config",
        &[
            "`hooks.before_run` must be a shell script (a string), but it is a list",
            "line 3, column 15",
            "before_run: |",
        ],
    );
}

#[test]
fn r016_hook_timeout_default_and_validation() {
    assert_eq!(load_ok("").hooks.timeout_ms, 60_000);
    assert_eq!(
        load_ok("---\nhooks: {timeout_ms: 900000}\n---\n")
            .hooks
            .timeout_ms,
        900_000
    );
    assert_error(
        &load_err("---\nhooks:\n  timeout_ms: -1\n---\n"),
        "invalid_workflow_config",
        &[
            "`hooks.timeout_ms` must be a positive integer, but it is the integer -1",
            "line 3",
        ],
    );
}

#[test]
fn r017_max_concurrent_agents_default_and_validation() {
    assert_eq!(load_ok("").agent.max_concurrent_agents, 10);
    assert_eq!(
        load_ok("---\nagent: {max_concurrent_agents: 3}\n---\n")
            .agent
            .max_concurrent_agents,
        3
    );
    assert_error(
        &load_err("---\nagent:\n  max_concurrent_agents: 0\n---\n"),
        "invalid_workflow_config",
        &["`agent.max_concurrent_agents` must be a positive integer"],
    );
}

#[test]
fn r018_max_turns_default_and_validation() {
    assert_eq!(load_ok("").agent.max_turns, 20);
    let err = load_err("---\nagent:\n  max_turns: \"x\"\n---\n");
    assert_eq!(
        err.to_string(),
        "`agent.max_turns` must be a positive integer, but it is the string \"x\" in /repo/WORKFLOW.md \
         line 3, column 14; write a whole number of 1 or more, for example `max_turns: 20`, or remove the \
         key to use the default (20)"
    );
    assert_eq!(err.problems()[0].key, "agent.max_turns");
    assert_eq!(err.position(), Some(Position::new(3, 14)));
    for bad in ["0", "1.5", "[1]", "true", "99999999999"] {
        let err = load_err(&format!("---\nagent:\n  max_turns: {bad}\n---\n"));
        assert_error(
            &err,
            "invalid_workflow_config",
            &["`agent.max_turns` must be a positive integer", "line 3"],
        );
    }
}

#[test]
fn r018_integer_strings_are_accepted_like_symphony() {
    assert_eq!(
        load_ok("---\nagent:\n  max_turns: \"7\"\n---\n")
            .agent
            .max_turns,
        7
    );
}

#[test]
fn r019_max_retry_backoff_default_and_validation() {
    assert_eq!(load_ok("").agent.max_retry_backoff_ms, 300_000);
    assert_eq!(
        load_ok("---\nagent: {max_retry_backoff_ms: 60000}\n---\n")
            .agent
            .max_retry_backoff_ms,
        60_000
    );
    assert_error(
        &load_err("---\nagent: {max_retry_backoff_ms: 0}\n---\n"),
        "invalid_workflow_config",
        &["`agent.max_retry_backoff_ms` must be a positive integer"],
    );
}

#[test]
fn r020_state_limits_are_normalized() {
    let workflow = load_ok(
        "---\nagent:\n  max_concurrent_agents: 8\n  max_concurrent_agents_by_state:\n    Todo: 2\n    ' In Progress ': 5\n    Merging: \"1\"\n---\n",
    );
    let expected: BTreeMap<String, u32> = [
        ("todo".to_owned(), 2),
        ("in progress".to_owned(), 5),
        ("merging".to_owned(), 1),
    ]
    .into();
    assert_eq!(workflow.agent.max_concurrent_agents_by_state, expected);
    assert_eq!(workflow.agent.max_concurrent_agents_for_state("TODO"), 2);
    assert_eq!(workflow.agent.max_concurrent_agents_for_state("Rework"), 8);
}

#[test]
fn r020_invalid_state_limits_are_rejected_not_ignored() {
    let err = load_err(
        "---\nagent:\n  max_concurrent_agents_by_state:\n    Todo: 0\n    Rework: many\n    '  ': 2\n    Done: -1\n---\n",
    );
    assert_eq!(err.category(), "invalid_workflow_config");
    let problems: Vec<(String, u32)> = err
        .problems()
        .iter()
        .map(|p| (p.key.clone(), p.position.unwrap().line))
        .collect();
    assert_eq!(
        problems,
        [
            ("agent.max_concurrent_agents_by_state.todo".to_owned(), 4),
            ("agent.max_concurrent_agents_by_state.rework".to_owned(), 5),
            ("agent.max_concurrent_agents_by_state".to_owned(), 6),
            ("agent.max_concurrent_agents_by_state.done".to_owned(), 7),
        ]
    );
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "4 problems in workflow file /repo/WORKFLOW.md:",
            "line 4, column 11: the limit for state `Todo` in `agent.max_concurrent_agents_by_state` must be a positive integer, but it is the integer 0",
            "line 6, column 5: a state name in `agent.max_concurrent_agents_by_state` is blank",
            "takt rejects invalid limits instead of ignoring them",
        ],
    );
}

#[test]
fn r020_states_that_collide_after_normalization_are_rejected() {
    let err =
        load_err("---\nagent:\n  max_concurrent_agents_by_state:\n    Todo: 1\n    todo: 2\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["state `todo`", "same state as `Todo`", "line 5"],
    );
}

#[test]
fn r020_state_limits_must_be_a_mapping() {
    assert_error(
        &load_err("---\nagent:\n  max_concurrent_agents_by_state: [Todo]\n---\n"),
        "invalid_workflow_config",
        &["must be a mapping of state name to limit, but it is a list"],
    );
}

#[test]
fn r021_codex_command_default_and_raw() {
    assert_eq!(load_ok("").codex.command, "codex app-server");
    let raw = "codex app-server proxy --sock \"${CODEX_HOME:-$HOME/.codex}/s.sock\" ~/x";
    let workflow = load_ok(&format!("---\ncodex:\n  command: '{raw}'\n---\n"));
    assert_eq!(
        workflow.codex.command, raw,
        "no `~`/`$VAR` rewriting in commands"
    );
    let var_only = load_ok("---\ncodex:\n  command: $CODEX_CMD\n---\n");
    assert_eq!(var_only.codex.command, "$CODEX_CMD");
}

#[test]
fn r021_codex_command_must_not_be_blank() {
    assert_error(
        &load_err("---\ncodex:\n  command: '  '\n---\n"),
        "invalid_workflow_config",
        &["`codex.command` must not be blank", "line 3, column 12"],
    );
    assert_error(
        &load_err("---\ncodex:\n  command: [codex]\n---\n"),
        "invalid_workflow_config",
        &["`codex.command` must be a string, but it is a list"],
    );
}

#[test]
fn r022_approval_policy_is_passed_through() {
    assert_eq!(load_ok("").codex.approval_policy, None);
    assert_eq!(
        load_ok("---\ncodex:\n  approval_policy: never\n---\n")
            .codex
            .approval_policy,
        Some(json!("never"))
    );
    let workflow = load_ok(
        "---\ncodex:\n  approval_policy:\n    reject:\n      sandbox_approval: true\n      rules: true\n      mcp_elicitations: true\n---\n",
    );
    assert_eq!(
        workflow.codex.approval_policy,
        Some(
            json!({"reject": {"sandbox_approval": true, "rules": true, "mcp_elicitations": true}})
        )
    );
    assert_error(
        &load_err("---\ncodex:\n  approval_policy: [never]\n---\n"),
        "invalid_workflow_config",
        &["`codex.approval_policy` must be a string or a mapping, but it is a list"],
    );
}

#[test]
fn r023_thread_sandbox_is_passed_through() {
    assert_eq!(load_ok("").codex.thread_sandbox, None);
    assert_eq!(
        load_ok("---\ncodex: {thread_sandbox: danger-full-access}\n---\n")
            .codex
            .thread_sandbox
            .as_deref(),
        Some("danger-full-access")
    );
}

#[test]
fn r024_turn_sandbox_policy_is_passed_through_unchanged() {
    let workflow = load_ok(
        "---\ncodex:\n  turn_sandbox_policy:\n    type: workspaceWrite\n    writableRoots: [/srv/ws]\n    networkAccess: true\n    readOnlyAccess: {type: fullAccess}\n---\n",
    );
    assert_eq!(
        workflow.codex.turn_sandbox_policy,
        Some(json!({
            "type": "workspaceWrite",
            "writableRoots": ["/srv/ws"],
            "networkAccess": true,
            "readOnlyAccess": {"type": "fullAccess"}
        }))
    );
    assert_error(
        &load_err("---\ncodex:\n  turn_sandbox_policy: workspaceWrite\n---\n"),
        "invalid_workflow_config",
        &["`codex.turn_sandbox_policy` must be a mapping"],
    );
}

#[test]
fn r025_r026_r027_codex_timeouts() {
    let defaults = load_ok("").codex;
    assert_eq!(defaults.turn_timeout_ms, 3_600_000);
    assert_eq!(defaults.read_timeout_ms, 5_000);
    assert_eq!(defaults.stall_timeout_ms, 300_000);
    let set = load_ok(
        "---\ncodex:\n  turn_timeout_ms: 10\n  read_timeout_ms: 20\n  stall_timeout_ms: 0\n---\n",
    )
    .codex;
    assert_eq!(
        (
            set.turn_timeout_ms,
            set.read_timeout_ms,
            set.stall_timeout_ms
        ),
        (10, 20, 0)
    );
    assert_error(
        &load_err("---\ncodex:\n  stall_timeout_ms: -1\n---\n"),
        "invalid_workflow_config",
        &[
            "`codex.stall_timeout_ms` must be an integer of 0 or more, but it is the integer -1",
            "0 disables",
        ],
    );
    assert_error(
        &load_err("---\ncodex:\n  turn_timeout_ms: 0\n---\n"),
        "invalid_workflow_config",
        &["`codex.turn_timeout_ms` must be a positive integer"],
    );
    assert_error(
        &load_err("---\ncodex:\n  read_timeout_ms: 0\n---\n"),
        "invalid_workflow_config",
        &["`codex.read_timeout_ms` must be a positive integer"],
    );
}

#[test]
fn r029_legacy_flat_tracker_keys_are_copied_into_provider() {
    let workflow = load_ok(
        "---\ntracker:\n  kind: linear\n  project_slug: my-proj\n  api_key: $LINEAR_API_KEY\n  endpoint: https://linear.example/graphql\n  assignee: me\n  provider:\n    endpoint: https://provider-wins.example\n---\n",
    );
    assert_eq!(
        serde_json::Value::Object(workflow.tracker.provider.clone()),
        json!({
            "project_slug": "my-proj",
            "api_key": "$LINEAR_API_KEY",
            "endpoint": "https://provider-wins.example",
            "assignee": "me"
        })
    );
    assert!(workflow.warnings.is_empty());
}

#[test]
fn takt_agent_keys() {
    let defaults = load_ok("").agent;
    assert_eq!(defaults.backend, BackendKind::Codex);
    assert_eq!(defaults.max_attempts, 4);
    assert_eq!(defaults.max_run_duration_ms, 3_600_000);
    let set = load_ok(
        "---\nagent:\n  backend: builtin\n  max_attempts: 2\n  max_run_duration_ms: 60000\n---\n",
    )
    .agent;
    assert_eq!(
        (set.backend, set.max_attempts, set.max_run_duration_ms),
        (BackendKind::Builtin, 2, 60_000)
    );
    assert_eq!(
        load_ok("---\nagent: {backend: claude}\n---\n")
            .agent
            .backend,
        BackendKind::Claude
    );
    assert_error(
        &load_err("---\nagent:\n  backend: cladue\n---\n"),
        "invalid_workflow_config",
        &[
            "`agent.backend` \"cladue\" is not a known agent backend",
            "line 3, column 12",
            "did you mean `claude`?",
        ],
    );
    assert_error(
        &load_err("---\nagent:\n  max_attempts: 0\n---\n"),
        "invalid_workflow_config",
        &["`agent.max_attempts` must be a positive integer"],
    );
}

#[test]
fn takt_command_section() {
    let workflow = load_ok(
        "---\nagent:\n  backend: command\ncommand:\n  run: ./scripts/codemod.sh --fix\n---\n",
    );
    assert_eq!(
        workflow.command.as_ref().map(|c| c.run.as_str()),
        Some("./scripts/codemod.sh --fix")
    );
    assert_eq!(load_ok("").command, None);
    let err = load_err("---\nagent:\n  backend: command\n---\n");
    assert_error(
        &err,
        "invalid_workflow_config",
        &["`command.run` is required when `agent.backend` is `command`"],
    );
    let unused = load_ok("---\ncommand:\n  run: ./x.sh\n---\n");
    assert_eq!(
        unused.warnings[0].message,
        "section `command` is ignored because `agent.backend` is `codex`"
    );
}

#[test]
fn takt_publish_section() {
    let defaults = load_ok("").publish;
    assert_eq!(
        (
            defaults.forge,
            defaults.auto_merge,
            defaults.branch_prefix.as_str()
        ),
        (ForgeKind::Local, false, "takt/")
    );
    let set = load_ok(
        "---\npublish:\n  forge: local\n  auto_merge: true\n  branch_prefix: bots/takt-\n---\n",
    )
    .publish;
    assert!(set.auto_merge);
    assert_eq!(set.branch_prefix, "bots/takt-");
    assert_eq!(
        (
            defaults.max_ci_rounds,
            defaults.merge_method,
            defaults.token
        ),
        (2, MergeMethod::Squash, None)
    );
    assert_error(
        &load_err("---\npublish:\n  forge: locl\n---\n"),
        "invalid_workflow_config",
        &[
            "`publish.forge` \"locl\" is not a known forge",
            "did you mean `local`?",
        ],
    );
    assert_error(
        &load_err("---\npublish:\n  auto_merge: yes\n---\n"),
        "invalid_workflow_config",
        &["`publish.auto_merge` must be `true` or `false`, but it is the string \"yes\""],
    );
    assert_error(
        &load_err("---\npublish:\n  branch_prefix: 'my branch/'\n---\n"),
        "invalid_workflow_config",
        &["`publish.branch_prefix` (\"my branch/\") contains ' '"],
    );
}

#[test]
fn publish_to_github_with_defaults() {
    let env = env().with_var("GITHUB_TOKEN", "ghp_x");
    let workflow = parse_with(
        "---\nworkspace:\n  base_branch: develop\npublish:\n  forge: github\n  repo: acme/widgets\n---\n",
        &env,
    )
    .unwrap();
    let publish = workflow.publish;
    assert_eq!(publish.forge, ForgeKind::Github);
    assert_eq!(publish.repo.as_deref(), Some("acme/widgets"));
    assert_eq!(publish.api_url, None);
    assert_eq!(
        publish.token,
        Some(SecretRef {
            var: "GITHUB_TOKEN".to_owned(),
            value: Some("ghp_x".to_owned())
        })
    );
    assert_eq!(publish.merge_method, MergeMethod::Squash);
    assert_eq!(publish.max_ci_rounds, 2);
    assert_eq!(publish.base_branch.as_deref(), Some("develop"));
    assert!(workflow.warnings.is_empty(), "{:?}", workflow.warnings);
}

#[test]
fn publish_to_gitlab_with_every_key() {
    let env = env().with_var("FORGE_TOKEN", "glpat-x");
    let publish = parse_with(
        "---\npublish:\n  forge: gitlab\n  project_path: acme/tools/widgets\n  api_url: https://gitlab.example.com/api/v4/\n  token: $FORGE_TOKEN\n  remote: ssh://git@gitlab.example.com/acme/tools/widgets.git\n  merge_method: rebase\n  max_ci_rounds: 0\n  base_branch: release\n---\n",
        &env,
    )
    .unwrap()
    .publish;
    assert_eq!(publish.forge, ForgeKind::Gitlab);
    assert_eq!(publish.repo.as_deref(), Some("acme/tools/widgets"));
    assert_eq!(
        publish.api_url.as_deref(),
        Some("https://gitlab.example.com/api/v4")
    );
    assert_eq!(
        publish.token.as_ref().map(|t| t.var.as_str()),
        Some("FORGE_TOKEN")
    );
    assert_eq!(
        publish.token.and_then(|t| t.value).as_deref(),
        Some("glpat-x")
    );
    assert_eq!(
        publish.remote.as_deref(),
        Some("ssh://git@gitlab.example.com/acme/tools/widgets.git")
    );
    assert_eq!(publish.merge_method, MergeMethod::Rebase);
    assert_eq!(publish.max_ci_rounds, 0);
    assert_eq!(publish.base_branch.as_deref(), Some("release"));
}

#[test]
fn publish_forge_errors_name_the_key_and_the_fix() {
    assert_error(
        &load_err("---\npublish:\n  forge: github\n---\n"),
        "invalid_workflow_config",
        &[
            "`publish.repo` is required when `publish.forge` is `github`",
            "add `repo: acme/widgets`",
        ],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: gitlab\n  repo: a/b\n---\n"),
        "invalid_workflow_config",
        &[
            "`publish.repo` is not a gitlab setting",
            "`project_path: acme/tools/widgets`",
            "`publish.project_path` is required when `publish.forge` is `gitlab`",
        ],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: github\n  repo: widgets\n---\n"),
        "invalid_workflow_config",
        &["`publish.repo` \"widgets\" is not `owner/name`", "line 4"],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: github\n  repo: a/b\n  token: ghp_literal\n---\n"),
        "invalid_workflow_config",
        &[
            "`publish.token` holds a literal value",
            "token: $GITHUB_TOKEN",
        ],
    );
    assert_error(
        &load_err(
            "---\npublish:\n  forge: github\n  repo: a/b\n  remote: https://me:pw@github.com/a/b.git\n---\n",
        ),
        "invalid_workflow_config",
        &[
            "`publish.remote` carries credentials",
            "takt pushes with `publish.token`",
        ],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: github\n  repo: a/b\n  merge_method: fast\n---\n"),
        "invalid_workflow_config",
        &["`publish.merge_method` \"fast\" is not one of merge, squash, rebase"],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: github\n  repo: a/b\n  max_ci_rounds: -1\n---\n"),
        "invalid_workflow_config",
        &["publish.max_ci_rounds"],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: github\n  repo: a/b\n  api_url: api.github.com\n---\n"),
        "invalid_workflow_config",
        &["`publish.api_url` \"api.github.com\" is not an http(s) URL"],
    );
    assert_error(
        &load_err("---\npublish:\n  forge: gitlabb\n---\n"),
        "invalid_workflow_config",
        &["did you mean `gitlab`?"],
    );
}

#[test]
fn publish_forge_warnings() {
    // The token's variable unset: the file loads, `takt run` will refuse to publish.
    let workflow = load_ok("---\npublish:\n  forge: github\n  repo: a/b\n---\n");
    assert_eq!(
        workflow.publish.token.as_ref().map(|t| t.value.is_none()),
        Some(true)
    );
    assert!(
        workflow.warnings.iter().any(|w| w
            .message
            .contains("$GITHUB_TOKEN, the default `publish.token`, is not set")),
        "{:?}",
        workflow.warnings
    );
    let named =
        load_ok("---\npublish:\n  forge: gitlab\n  project_path: g/p\n  token: $MISSING\n---\n");
    assert!(named.warnings.iter().any(|w| w.message
        == "`publish.token` names $MISSING, which is not set; `takt run` will not publish to the forge without it"));
    // Forge keys under `forge: local` do nothing, and say so.
    let local = load_ok("---\npublish:\n  repo: a/b\n---\n");
    assert_eq!(local.publish.repo, None);
    assert!(
        local
            .warnings
            .iter()
            .any(|w| w.message == "`publish.repo` is ignored because `publish.forge` is `local`")
    );
}

#[test]
fn server_port_range() {
    assert_eq!(
        load_ok("---\nserver: {port: 0}\n---\n").server.port,
        Some(0)
    );
    assert_error(
        &load_err("---\nserver:\n  port: 70000\n---\n"),
        "invalid_workflow_config",
        &[
            "`server.port` must be a port number from 0 to 65535, but it is the integer 70000",
            "line 3, column 9",
        ],
    );
}

#[test]
fn server_token_comes_from_the_environment_never_from_the_file() {
    let with_token = super::env().with_var("TAKT_API_TOKEN", "s3cret");
    let workflow = super::parse_with("---\nserver: {token: $TAKT_API_TOKEN}\n---\n", &with_token)
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        workflow
            .server
            .token
            .as_ref()
            .and_then(|t| t.value.as_deref()),
        Some("s3cret")
    );
    assert_eq!(load_ok("---\nserver: {port: 0}\n---\n").server.token, None);
    let unset = load_ok("---\nserver: {token: $TAKT_API_TOKEN}\n---\n");
    let token = unset
        .server
        .token
        .clone()
        .unwrap_or_else(|| panic!("a token reference"));
    assert_eq!((token.var.as_str(), token.value), ("TAKT_API_TOKEN", None));
    assert!(
        !format!("{:?}", workflow.server).contains("s3cret"),
        "secrets stay out of Debug"
    );
    assert!(
        unset.warnings[0]
            .message
            .contains("`takt run` will not serve the API without it"),
        "{:?}",
        unset.warnings
    );
    assert_error(
        &load_err("---\nserver: {token: hunter2}\n---\n"),
        "invalid_workflow_config",
        &[
            "`server.token` holds a literal value",
            "token: $TAKT_API_TOKEN",
        ],
    );
}

#[test]
fn gitlab_and_linear_webhook_secrets_come_from_the_environment() {
    let env = super::env()
        .with_var("GL_HOOK", "gl-s3cret")
        .with_var("LIN_HOOK", "lin-s3cret");
    let workflow = super::parse_with(
        "---\nserver:\n  gitlab_webhook_secret: $GL_HOOK\n  linear_webhook_secret: $LIN_HOOK\n---\n",
        &env,
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let value = |secret: &Option<takt_workflow::SecretRef>| {
        secret
            .as_ref()
            .map(|secret| (secret.var.clone(), secret.value.clone()))
    };
    assert_eq!(
        value(&workflow.server.gitlab_webhook_secret),
        Some(("GL_HOOK".to_owned(), Some("gl-s3cret".to_owned())))
    );
    assert_eq!(
        value(&workflow.server.linear_webhook_secret),
        Some(("LIN_HOOK".to_owned(), Some("lin-s3cret".to_owned())))
    );
    let printed = format!("{:?}", workflow.server);
    assert!(
        !printed.contains("gl-s3cret") && !printed.contains("lin-s3cret"),
        "secrets stay out of Debug: {printed}"
    );
    let defaults = load_ok("---\nserver: {port: 0}\n---\n");
    assert_eq!(defaults.server.gitlab_webhook_secret, None);
    assert_eq!(defaults.server.linear_webhook_secret, None);
    // An unset variable is a warning naming the key; `takt run` refuses to serve without it.
    let unset = load_ok("---\nserver: {linear_webhook_secret: $LIN_HOOK}\n---\n");
    assert!(
        unset.warnings[0]
            .message
            .contains("`server.linear_webhook_secret` names $LIN_HOOK, which is not set"),
        "{:?}",
        unset.warnings
    );
    for key in ["gitlab_webhook_secret", "linear_webhook_secret"] {
        assert_error(
            &load_err(&format!("---\nserver:\n  {key}: literal\n---\n")),
            "invalid_workflow_config",
            &[
                &format!("`server.{key}` holds a literal value"),
                "line 3, column",
                &format!("{key}: $TAKT_"),
            ],
        );
    }
    // A misspelt key is still caught, with the right suggestion.
    let typo = load_ok("---\nserver:\n  gitlab_webhook_secert: $GL_HOOK\n---\n");
    assert_eq!(typo.warnings.len(), 1, "{:?}", typo.warnings);
    assert_eq!(typo.warnings[0].key, "server.gitlab_webhook_secert");
    assert_eq!(
        typo.warnings[0].fix,
        "did you mean `gitlab_webhook_secret`?"
    );
    assert_eq!(typo.server.gitlab_webhook_secret, None);
}

#[test]
fn a_section_must_be_a_mapping() {
    assert_error(
        &load_err("---\nagent: 5\n---\n"),
        "invalid_workflow_config",
        &[
            "`agent` must be a mapping, but it is the integer 5",
            "line 2, column 8",
        ],
    );
}

#[test]
fn r028_codex_policy_values_are_not_validated_locally() {
    let w = load_ok(
        "---\ncodex:\n  approval_policy: some-future-policy\n  thread_sandbox: future-mode\n  turn_sandbox_policy: {type: futurePolicy, extra: [1]}\n---\n",
    );
    assert_eq!(w.codex.approval_policy, Some(json!("some-future-policy")));
    assert_eq!(w.codex.thread_sandbox.as_deref(), Some("future-mode"));
    assert_eq!(
        w.codex.turn_sandbox_policy,
        Some(json!({"type": "futurePolicy", "extra": [1]}))
    );
}
