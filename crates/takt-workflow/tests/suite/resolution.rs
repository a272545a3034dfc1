//! defaults, `$VAR` and `~` resolution, validation and error categories.

use takt_workflow::{
    BackendKind, ForgeKind, MapEnv, Position, RepoSource, TRACKER_KINDS, WorkflowError,
    env_reference, resolve_secret,
};

use super::{assert_error, env, load_err, load_ok, p, parse_with};

#[test]
fn r030_defaults_apply_to_every_omitted_value() {
    let w = load_ok("Just a prompt.");
    assert_eq!(w.path, p("/repo/WORKFLOW.md"));
    assert_eq!(w.dir, p("/repo"));
    assert_eq!(w.tracker.kind, "local");
    assert_eq!(w.tracker.active_states, ["Todo", "In Progress"]);
    assert_eq!(
        w.tracker.terminal_states,
        ["Closed", "Cancelled", "Canceled", "Duplicate", "Done"]
    );
    assert!(w.tracker.required_labels.is_empty());
    assert!(w.tracker.provider.is_empty());
    assert_eq!(w.polling.interval_ms, 30_000);
    assert_eq!(w.workspace.root, p("/repo/.takt/workspaces"));
    assert_eq!(w.workspace.repo, RepoSource::Path(p("/repo")));
    assert_eq!(w.workspace.base_branch, None);
    assert_eq!(
        (
            &w.hooks.after_create,
            &w.hooks.before_run,
            &w.hooks.after_run,
            &w.hooks.before_remove
        ),
        (&None, &None, &None, &None)
    );
    assert_eq!(w.hooks.timeout_ms, 60_000);
    assert_eq!(w.agent.backend, BackendKind::Codex);
    assert_eq!(w.agent.max_concurrent_agents, 10);
    assert_eq!(w.agent.max_turns, 20);
    assert_eq!(w.agent.max_retry_backoff_ms, 300_000);
    assert!(w.agent.max_concurrent_agents_by_state.is_empty());
    assert_eq!(w.agent.max_attempts, 4);
    assert_eq!(w.agent.max_run_duration_ms, 3_600_000);
    assert_eq!(w.codex.command, "codex app-server");
    assert_eq!(w.codex.approval_policy, None);
    assert_eq!(w.codex.thread_sandbox, None);
    assert_eq!(w.codex.turn_sandbox_policy, None);
    assert_eq!(w.codex.turn_timeout_ms, 3_600_000);
    assert_eq!(w.codex.read_timeout_ms, 5_000);
    assert_eq!(w.codex.stall_timeout_ms, 300_000);
    assert_eq!(w.command, None);
    assert_eq!(w.publish.forge, ForgeKind::Local);
    assert!(!w.publish.auto_merge);
    assert_eq!(w.publish.branch_prefix, "takt/");
    assert_eq!(w.server.port, None);
    assert_eq!(w.server.host, "127.0.0.1");
    assert!(w.extensions.is_empty());
    assert!(w.warnings.is_empty());
}

#[test]
fn r031_environment_never_overrides_yaml() {
    let env = env()
        .with_var("POLLING_INTERVAL_MS", "1")
        .with_var("interval_ms", "1")
        .with_var("TAKT_AGENT_MAX_TURNS", "1")
        .with_var("max_turns", "1");
    let w = parse_with("---\npolling: {interval_ms: 500}\n---\n", &env).unwrap();
    assert_eq!(w.polling.interval_ms, 500);
    assert_eq!(w.agent.max_turns, 20);
}

#[test]
fn r032_var_only_when_whole_value() {
    let env = env().with_var("ROOT", "/srv/takt");
    let whole = parse_with("---\nworkspace:\n  root: $ROOT\n---\n", &env).unwrap();
    assert_eq!(whole.workspace.root, p("/srv/takt"));
    assert!(whole.warnings.is_empty());
    let partial = parse_with("---\nworkspace:\n  root: $ROOT/sub\n---\n", &env).unwrap();
    assert_eq!(partial.workspace.root, p("/repo/$ROOT/sub"));
    assert_eq!(partial.warnings.len(), 1);
    assert_eq!(
        partial.warnings[0].to_string(),
        "`workspace.root` contains `$`, but only a whole value `$NAME` is expanded, so \"$ROOT/sub\" is \
         used literally in /repo/WORKFLOW.md line 3, column 9; write the value as exactly `$NAME`, or an \
         explicit path"
    );
    let braces = parse_with("---\nworkspace:\n  root: ${ROOT}\n---\n", &env).unwrap();
    assert_eq!(braces.workspace.root, p("/repo/${ROOT}"));
}

#[test]
fn r032_var_names_follow_the_pattern() {
    assert_eq!(env_reference("$LINEAR_API_KEY"), Some("LINEAR_API_KEY"));
    assert_eq!(env_reference("$_private1"), Some("_private1"));
    assert_eq!(env_reference("$1ROOT"), None);
    assert_eq!(env_reference("$ROOT-DIR"), None);
    let w = parse_with(
        "---\nworkspace:\n  root: $1ROOT\n---\n",
        &env().with_var("1ROOT", "/x"),
    )
    .unwrap();
    assert_eq!(w.workspace.root, p("/repo/$1ROOT"));
}

#[test]
fn r032_unset_or_empty_var_falls_back_to_the_default_root() {
    for env in [
        env(),
        env().with_var("ROOT", ""),
        env().with_var("ROOT", "  "),
    ] {
        let w = parse_with("---\nworkspace:\n  root: $ROOT\n---\n", &env).unwrap();
        assert_eq!(w.workspace.root, p("/repo/.takt/workspaces"));
        assert_eq!(w.warnings.len(), 1);
        assert_eq!(w.warnings[0].key, "workspace.root");
        assert!(
            w.warnings[0]
                .message
                .contains("`ROOT` is not set or empty; using the default")
        );
    }
}

#[test]
fn r032_tilde_is_expanded_in_local_paths() {
    let w = load_ok("---\nworkspace:\n  root: ~/.takt/ws\n  repo: ~/code/app\n---\n");
    assert_eq!(w.workspace.root, p("/home/tester/.takt/ws"));
    assert_eq!(
        w.workspace.repo,
        RepoSource::Path(p("/home/tester/code/app"))
    );
    let bare = load_ok("---\nworkspace:\n  root: '~'\n---\n");
    assert_eq!(bare.workspace.root, p("/home/tester"));
}

#[test]
fn r032_tilde_without_a_home_is_an_error() {
    let err = parse_with("---\nworkspace:\n  root: ~/ws\n---\n", &MapEnv::new()).unwrap_err();
    assert_error(
        &err,
        "invalid_workflow_config",
        &[
            "`workspace.root` starts with `~`, but the home directory is unknown",
            "line 3, column 9",
            "set HOME",
        ],
    );
}

#[test]
fn r032_commands_urls_and_hooks_are_not_rewritten() {
    let env = env().with_var("REPO", "/should/not/appear");
    let w = parse_with(
        "---\nworkspace:\n  repo: https://example.com/$REPO/~x.git\nhooks:\n  after_create: cd ~ && echo $REPO\ncodex:\n  command: ~/bin/codex --home $HOME app-server\ntracker:\n  provider: {api_key: $REPO}\n---\n",
        &env,
    )
    .unwrap();
    assert_eq!(
        w.workspace.repo,
        RepoSource::Url("https://example.com/$REPO/~x.git".into())
    );
    assert_eq!(w.hooks.after_create.as_deref(), Some("cd ~ && echo $REPO"));
    assert_eq!(w.codex.command, "~/bin/codex --home $HOME app-server");
    assert_eq!(w.tracker.provider["api_key"], "$REPO");
}

#[test]
fn r014_relative_root_resolves_against_the_workflow_directory() {
    let w = parse_with("---\nworkspace:\n  root: ../workspaces\n---\n", &env()).unwrap();
    assert_eq!(w.workspace.root, p("/workspaces"));
    let nested = takt_workflow::parse(
        "---\nworkspace:\n  root: ./ws/./a/../b\n---\n",
        std::path::Path::new("/srv/project/WORKFLOW.md"),
        &env(),
    )
    .unwrap();
    assert_eq!(nested.workspace.root, p("/srv/project/ws/b"));
}

#[test]
fn r014_a_var_may_hold_a_relative_or_tilde_path() {
    let env = env().with_var("WS", "~/ws").with_var("REL", "rel/ws");
    let tilde = parse_with("---\nworkspace: {root: $WS}\n---\n", &env).unwrap();
    assert_eq!(tilde.workspace.root, p("/home/tester/ws"));
    let rel = parse_with("---\nworkspace: {root: $REL}\n---\n", &env).unwrap();
    assert_eq!(rel.workspace.root, p("/repo/rel/ws"));
}

#[test]
fn workspace_repo_paths_and_urls() {
    assert_eq!(
        load_ok("---\nworkspace: {repo: ../app}\n---\n")
            .workspace
            .repo,
        RepoSource::Path(p("/app"))
    );
    assert_eq!(
        load_ok("---\nworkspace: {repo: 'git@github.com:org/app.git'}\n---\n")
            .workspace
            .repo,
        RepoSource::Url("git@github.com:org/app.git".into())
    );
    assert_eq!(
        load_ok("---\nworkspace: {repo: 'file:///srv/app'}\n---\n")
            .workspace
            .repo,
        RepoSource::Url("file:///srv/app".into())
    );
    let env = env().with_var("APP_REPO", "https://github.com/org/app.git");
    assert_eq!(
        parse_with("---\nworkspace: {repo: $APP_REPO}\n---\n", &env)
            .unwrap()
            .workspace
            .repo,
        RepoSource::Url("https://github.com/org/app.git".into())
    );
    let unset = load_ok("---\nworkspace: {repo: $APP_REPO}\n---\n");
    assert_eq!(unset.workspace.repo, RepoSource::Path(p("/repo")));
    assert_eq!(unset.warnings[0].key, "workspace.repo");
    assert_eq!(
        load_ok("---\nworkspace: {base_branch: main}\n---\n")
            .workspace
            .base_branch
            .as_deref(),
        Some("main")
    );
    assert_error(
        &load_err("---\nworkspace:\n  base_branch: 'has space'\n---\n"),
        "invalid_workflow_config",
        &[
            "`workspace.base_branch` (\"has space\") contains ' '",
            "line 3",
        ],
    );
}

#[test]
fn r033_secrets_resolve_like_symphony_adapters() {
    let env = env()
        .with_var("LINEAR_API_KEY", "canonical")
        .with_var("MINE", "mine")
        .with_var("EMPTY", "");
    let fallback = Some("LINEAR_API_KEY");
    assert_eq!(
        resolve_secret(Some("$MINE"), fallback, &env).as_deref(),
        Some("mine")
    );
    assert_eq!(
        resolve_secret(Some("$UNSET"), fallback, &env).as_deref(),
        Some("canonical")
    );
    assert_eq!(
        resolve_secret(None, fallback, &env).as_deref(),
        Some("canonical")
    );
    assert_eq!(
        resolve_secret(Some("$EMPTY"), fallback, &env),
        None,
        "empty counts as missing"
    );
    assert_eq!(
        resolve_secret(Some("lin_literal"), fallback, &env).as_deref(),
        Some("lin_literal")
    );
}

#[test]
fn r035_validation_reports_every_problem_at_once() {
    let err = load_err(
        "---\npolling:\n  interval_ms: 0\nagent:\n  max_turns: -3\n  backend: robot\ncodex:\n  read_timeout_ms: soon\npublish:\n  auto_merg: true\n---\n",
    );
    let lines: Vec<(String, u32)> = err
        .problems()
        .iter()
        .map(|p| (p.key.clone(), p.position.map_or(0, |pos| pos.line)))
        .collect();
    assert_eq!(
        lines,
        [
            ("polling.interval_ms".to_owned(), 3),
            ("agent.max_turns".to_owned(), 5),
            ("agent.backend".to_owned(), 6),
            ("codex.read_timeout_ms".to_owned(), 8),
            ("publish.auto_merg".to_owned(), 10),
        ]
    );
    assert!(
        err.to_string()
            .starts_with("5 problems in workflow file /repo/WORKFLOW.md:\n  - line 3, column 16: ")
    );
}

#[test]
fn r036_every_error_category() {
    let cases: [(&str, &str); 6] = [
        ("---\n[1, 2\n---\n", "workflow_parse_error"),
        ("---\n- a\n---\n", "workflow_front_matter_not_a_map"),
        ("{{ issue.title | nope }}", "template_parse_error"),
        (
            "---\ntracker: {kind: asana}\n---\n",
            "unsupported_tracker_kind",
        ),
        (
            "---\nagent: {max_turns: 0}\n---\n",
            "invalid_workflow_config",
        ),
        ("---\npublish: {nope: 1}\n---\n", "invalid_workflow_config"),
    ];
    for (text, category) in cases {
        assert_eq!(load_err(text).category(), category, "{text}");
    }
    let missing =
        takt_workflow::load(std::path::Path::new("/nonexistent/WORKFLOW.md"), &env()).unwrap_err();
    assert_eq!(missing.category(), "missing_workflow_file");
    let render = load_ok("{{ nope }}")
        .render_prompt(&takt_workflow::PromptContext::first_run(&super::issue()));
    assert_eq!(render.unwrap_err().category(), "template_render_error");
    assert!(TRACKER_KINDS.contains(&"memory"));
}

#[test]
fn r036_template_errors_are_flagged_as_such() {
    assert!(load_err("{% if %}").is_template_error());
    assert!(!load_err("---\n- a\n---\n").is_template_error());
}

#[test]
fn errors_expose_path_and_position() {
    let err: WorkflowError = load_err("---\nagent:\n  max_turns: 0\n---\n");
    assert_eq!(err.path(), p("/repo/WORKFLOW.md"));
    assert_eq!(err.position(), Some(Position::new(3, 14)));
}
