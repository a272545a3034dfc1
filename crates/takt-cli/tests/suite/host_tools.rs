//! Host-side tools end to end: a task's agent reads its issue and comments on it through tools
//! the daemon runs with its own credentials, in every model-using backend (the built-in loop
//! directly, Codex through dynamic tools, Claude Code through takt's MCP server in the
//! sandbox). The fact the agent looks up is only in the issue's body or comments, never in the
//! prompt, so the model can only have seen it through the tool.

use std::path::Path;

use serde_json::json;
use takt_mock_model::{LoggedRequest, MockConfig, MockModel, Scenario, Step};
use takt_test_support::{GitRepo, Takt, write};

use super::TAKT;
use super::backends::agent_cli;

const FACT: &str = "PINK-FLAMINGO-7";
const TRACKER_TOKEN: &str = "ghp_e2e_host_tools_token_0123456789";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn body_text(request: &LoggedRequest) -> String {
    request.body.to_string()
}

/// Asserts that the model never saw [`FACT`] before the tool call, and saw it after.
fn assert_fact_reached_the_model_through_the_tool(requests: &[LoggedRequest]) {
    let model_requests: Vec<String> = requests
        .iter()
        .filter(|request| request.method == "POST")
        .map(body_text)
        .collect();
    assert!(model_requests.len() >= 2, "{model_requests:#?}");
    assert!(
        !model_requests[0].contains(FACT),
        "the prompt must not carry the fact: {}",
        model_requests[0]
    );
    assert!(
        model_requests.iter().any(|body| body.contains(FACT)),
        "the tool's answer never reached the model: {model_requests:#?}"
    );
}

/// Runs one task with `backend` (its WORKFLOW.md section `section`) against a mock whose
/// scenario reads the issue through `read_tool`, with the local tracker and a prompt that is
/// the title alone; the issue's body holds [`FACT`]. Returns the model requests and the
/// task's journal.
fn read_the_issue_with(
    backend: &str,
    section: &str,
    read_tool: &str,
) -> (Vec<LoggedRequest>, String) {
    let runtime = runtime();
    let mock = runtime
        .block_on(MockModel::start(MockConfig::with_scenarios(vec![
            Scenario::new(
                "tools",
                vec![Step::tool(read_tool, json!({})), Step::text("DONE")],
            ),
        ])))
        .unwrap();
    let (provider, base_url) = match backend {
        "claude" => ("anthropic", mock.base_url()),
        _ => ("openai", mock.openai_base_url()),
    };
    let repo = GitRepo::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    write(
        &repo.workflow_path(),
        &format!(
            "---\ntracker: {{kind: local}}\nagent: {{backend: {backend}, max_attempts: 1, max_turns: 1}}\n\
             model: {{provider: {provider}, base_url: {base_url}, api_key: $TAKT_E2E_PROVIDER_KEY, name: gpt-5.5}}\n\
             {section}\npublish: {{forge: local}}\n---\n{{{{ issue.title }}}}\n"
        ),
    );
    let takt = Takt::new(TAKT, repo.workflow_path());
    takt.add_task(
        "Look up the fact [[scenario:tools]]",
        &["--body", &format!("The fact is {FACT}.")],
    );
    let mut command = takt.command(&["run", "--once"]);
    command.env("TAKT_E2E_PROVIDER_KEY", "sk-e2e-provider-key");
    let out = takt_test_support::run_command(command);
    let journal = takt.ok(&["task", "events", "TAKT-1", "--json"]).stdout;
    let requests = mock.requests();
    runtime.block_on(mock.shutdown()).unwrap();
    (requests, format!("{out}\n{journal}"))
}

#[test]
fn the_builtin_agent_reads_its_issue_and_comments_on_it_with_the_daemons_token() {
    let runtime = runtime();
    let issues = runtime
        .block_on(takt_trackers::fake::GithubFake::github(
            "acme/widgets",
            TRACKER_TOKEN,
        ))
        .unwrap();
    let mut issue = takt_trackers::fake::FakeIssue::new(1, "open");
    issue.title = "Recolor the widget [[scenario:tools]]".into();
    issue.body = Some("See the comments.".into());
    issues.add(issue);
    issues.add_comment(1, "grace", &format!("The color code is {FACT}."));
    let mock = runtime
        .block_on(MockModel::start(MockConfig::with_scenarios(vec![
            Scenario::new(
                "tools",
                vec![
                    Step::tool("issue_read", json!({})),
                    Step::tool(
                        "issue_comment",
                        json!({"body": "Found the color; cc @alice and @takt-bot"}),
                    ),
                    Step::tool("issue_comment", json!({"body": "second"})),
                    Step::tool("issue_comment", json!({"body": "third"})),
                    Step::tool("issue_comment", json!({"body": "fourth, over the limit"})),
                    Step::tool("pull_request_checks", json!({})),
                    Step::tool(
                        "write_file",
                        json!({"path": "color.txt", "content": "pink\n"}),
                    ),
                    Step::tool("finish", json!({"summary": "recolored"})),
                    Step::text("DONE"),
                ],
            ),
        ])))
        .unwrap();
    let repo = GitRepo::new_in(Path::new(env!("CARGO_TARGET_TMPDIR")));
    write(
        &repo.workflow_path(),
        &format!(
            "---\ntracker:\n  kind: github\n  answer_mention: \"@takt-bot\"\n  provider:\n    \
             repo: acme/widgets\n    api_url: {}\n    token: $TAKT_E2E_TRACKER_TOKEN\n\
             agent: {{backend: builtin, max_attempts: 1, max_turns: 1}}\n\
             model: {{provider: openai, base_url: {}, api_key: $TAKT_E2E_PROVIDER_KEY, name: gpt-5.5}}\n\
             publish: {{forge: local}}\n---\n{{{{ issue.title }}}}\n",
            issues.url(),
            mock.openai_base_url()
        ),
    );
    let takt = Takt::new(TAKT, repo.workflow_path());
    let mut command = takt.command(&["run", "--once"]);
    command
        .env("TAKT_E2E_PROVIDER_KEY", "sk-e2e-provider-key")
        .env("TAKT_E2E_TRACKER_TOKEN", TRACKER_TOKEN);
    let out = takt_test_support::run_command(command);
    assert_eq!(takt.state_of("GH-1"), "awaiting_review", "{out}");

    let requests = mock.requests();
    assert_fact_reached_the_model_through_the_tool(&requests);
    let last = requests.last().map(body_text).unwrap_or_default();
    let agent_comments: Vec<String> = issues
        .comments(1)
        .into_iter()
        .filter(|body| body.contains("<!-- takt:agent"))
        .collect();
    assert_eq!(
        agent_comments.len(),
        3,
        "three comments per run: {agent_comments:#?}"
    );
    let first = &agent_comments[0];
    assert!(first.contains("Found the color"), "{first}");
    assert!(
        first.contains("@\u{200B}alice") && !first.contains("@alice"),
        "mentions are defused: {first:?}"
    );
    assert!(
        last.contains("this run already posted 3 comments"),
        "the fourth comment was refused to the agent: {last}"
    );
    assert!(
        last.contains("unknown tool `pull_request_checks`"),
        "without a forge there is no pull request tool: {last}"
    );
    // The agent's own mention of the bot is not an answer to anything, and the token never
    // left the daemon.
    let journal = takt.ok(&["task", "events", "GH-1", "--json"]).stdout;
    assert!(journal.contains("issue_read"), "{journal}");
    assert!(!journal.contains(TRACKER_TOKEN), "{journal}");
    assert!(
        requests
            .iter()
            .all(|r| !r.body.to_string().contains(TRACKER_TOKEN)),
        "the tracker token reached the model"
    );
    runtime.block_on(mock.shutdown()).unwrap();
}

#[test]
fn codex_reads_its_issue_through_a_dynamic_tool() {
    let Some(codex) = agent_cli("codex", "TAKT_CODEX_BIN") else {
        return;
    };
    let section = format!(
        "codex: {{command: \"{} app-server\", turn_timeout_ms: 120000}}",
        codex.display()
    );
    let (requests, journal) = read_the_issue_with("codex", &section, "issue_read");
    assert_fact_reached_the_model_through_the_tool(&requests);
    assert!(journal.contains("issue_read"), "{journal}");
}

#[test]
fn claude_code_reads_its_issue_through_takts_mcp_server_in_the_sandbox() {
    let Some(claude) = agent_cli("claude", "TAKT_CLAUDE_BIN") else {
        return;
    };
    let section = format!("claude: {{command: \"{}\"}}", claude.display());
    let (requests, journal) = read_the_issue_with("claude", &section, "mcp__takt__issue_read");
    assert_fact_reached_the_model_through_the_tool(&requests);
    assert!(journal.contains("mcp__takt__issue_read"), "{journal}");
}
