//! Host tools over HTTP: a run's token reaches that run's tools and no other's, and nothing
//! after the run ends.

use std::sync::Arc;

use takt_core::ports::{HostToolOutput, HostToolSpec, HostTools};
use takt_protocol::{HOST_TOOLS_CALL_PATH, HOST_TOOLS_PATH, HostToolList, HostToolResult};

use super::{client, gateway, mock, mock_upstream, post};

/// Tools that answer with the task they belong to.
#[derive(Debug)]
struct TaskTools(&'static str);

#[async_trait::async_trait]
impl HostTools for TaskTools {
    fn specs(&self) -> Vec<HostToolSpec> {
        vec![HostToolSpec {
            name: "issue_read",
            description: "reads the issue",
            input_schema: serde_json::json!({"type": "object", "properties": {}}),
        }]
    }

    async fn call(&self, name: &str, arguments: serde_json::Value) -> HostToolOutput {
        HostToolOutput::ok(format!("{name} of {} with {arguments}", self.0))
    }
}

#[tokio::test]
async fn a_runs_token_reaches_only_its_own_tools_and_only_while_it_lives() {
    let mock = mock(vec![]).await;
    let (gw, _calls) = gateway(mock_upstream(&mock)).await;
    let one = gw.grant("TAKT-1#1", "task-1", None);
    let two = gw.grant("TAKT-2#1", "task-2", None);
    let without_tools = gw.grant("TAKT-3#1", "task-3", None);
    gw.attach_host_tools("TAKT-1#1", Arc::new(TaskTools("TAKT-1")));
    gw.attach_host_tools("TAKT-2#1", Arc::new(TaskTools("TAKT-2")));
    let base = format!("http://{}", gw.addr());
    let call = |token: String| {
        let url = format!("{base}{HOST_TOOLS_CALL_PATH}");
        async move {
            post(
                &url,
                &token,
                &serde_json::json!({"name": "issue_read", "arguments": {"x": 1}}),
            )
            .await
        }
    };

    let list: HostToolList = client()
        .get(format!("{base}{HOST_TOOLS_PATH}"))
        .bearer_auth(&one.token)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(list.tools.len(), 1);
    assert_eq!(list.tools[0].name, "issue_read");

    let answer: HostToolResult = call(one.token.clone()).await.json().await.expect("json");
    assert_eq!(answer.text, "issue_read of TAKT-1 with {\"x\":1}");
    assert!(!answer.is_error);
    let answer: HostToolResult = call(two.token.clone()).await.json().await.expect("json");
    assert!(answer.text.contains("TAKT-2"), "{}", answer.text);

    assert_eq!(call("takt-run-forged".into()).await.status(), 401);
    assert_eq!(call(without_tools.token.clone()).await.status(), 404);
    let anonymous = client()
        .get(format!("{base}{HOST_TOOLS_PATH}"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);

    gw.revoke("TAKT-1#1");
    assert_eq!(call(one.token.clone()).await.status(), 401);
    // A later run of the same task gets a new token; the old one stays dead.
    let again = gw.grant("TAKT-1#1", "task-1", None);
    assert_eq!(
        call(again.token).await.status(),
        404,
        "tools are attached per run"
    );
    assert_eq!(call(one.token).await.status(), 401);
    assert!(
        mock.requests().is_empty(),
        "tool calls never reach the model upstream"
    );
}
