mod agent_sections;
mod bad_input;
mod discovery;
mod examples;
mod format;
mod reload;
mod resolution;
mod schema;
mod template;
mod verification;

use std::path::{Path, PathBuf};

use takt_protocol::{BlockerRef, Issue};
use takt_workflow::{MapEnv, Workflow, WorkflowError, parse};

/// Where parsed-from-text workflows pretend to live.
pub const PATH: &str = "/repo/WORKFLOW.md";

pub fn env() -> MapEnv {
    MapEnv::new()
        .with_home("/home/tester")
        .with_temp_dir("/tmp")
}

pub fn parse_with(text: &str, env: &MapEnv) -> Result<Workflow, WorkflowError> {
    parse(text, Path::new(PATH), env)
}

pub fn load_ok(text: &str) -> Workflow {
    match parse_with(text, &env()) {
        Ok(workflow) => workflow,
        Err(err) => panic!(
            "expected the workflow to load, got [{}] {err}",
            err.category()
        ),
    }
}

pub fn load_err(text: &str) -> WorkflowError {
    match parse_with(text, &env()) {
        Ok(workflow) => panic!("expected an error, got {workflow:#?}"),
        Err(err) => err,
    }
}

/// Asserts the error's category and that its message contains every fragment.
pub fn assert_error(err: &WorkflowError, category: &str, fragments: &[&str]) {
    let message = err.to_string();
    assert_eq!(err.category(), category, "message: {message}");
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "{fragment:?} not in {message:?}"
        );
    }
}

pub fn p(path: &str) -> PathBuf {
    PathBuf::from(path)
}

pub fn issue() -> Issue {
    Issue {
        id: "id-1".into(),
        identifier: "ABC-1".into(),
        title: "Fix the flaky test".into(),
        description: Some("The test `foo` fails one run in ten.".into()),
        priority: Some(2),
        state: "Todo".into(),
        branch_name: Some("abc-1-fix".into()),
        url: Some("https://tracker.example/ABC-1".into()),
        assignee_id: None,
        labels: vec!["bug".into(), "ci".into()],
        blocked_by: vec![BlockerRef {
            id: Some("id-0".into()),
            identifier: Some("ABC-0".into()),
            state: Some("In Progress".into()),
        }],
        dispatchable: true,
        created_at: Some("2026-01-02T03:04:05Z".into()),
        updated_at: None,
        native_ref: Some(serde_json::json!({"number": 1})),
    }
}
