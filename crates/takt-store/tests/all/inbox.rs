//! The operator inbox: a CLI process enqueues, the daemon completes, the CLI reads the result.

use serde_json::json;
use takt_store::Store;

use crate::support::temp_store;

#[tokio::test]
async fn commands_flow_from_a_client_to_the_daemon_and_back() {
    let (dir, daemon) = temp_store().await;
    let client = Store::open(dir.path()).await.unwrap();
    assert!(daemon.pending_commands().await.unwrap().is_empty());

    let cancel = client
        .enqueue_command("cancel", json!({"task": "TAKT-1"}), 100)
        .await
        .unwrap();
    let answer = client
        .enqueue_command("answer", json!({"task": "TAKT-2", "text": "yes"}), 200)
        .await
        .unwrap();
    assert!(answer > cancel);

    let pending = daemon.pending_commands().await.unwrap();
    assert_eq!(
        pending.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![cancel, answer],
        "oldest first"
    );
    assert_eq!(pending[0].kind, "cancel");
    assert_eq!(pending[0].payload, json!({"task": "TAKT-1"}));
    assert_eq!(pending[0].created_at_ms, 100);
    assert_eq!(pending[0].done_at_ms, None);
    assert_eq!(pending[0].result, None);

    daemon
        .complete_command(cancel, json!({"ok": true}), 300)
        .await
        .unwrap();
    let pending = daemon.pending_commands().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, answer);

    let done = client.get_command(cancel).await.unwrap().unwrap();
    assert_eq!(done.done_at_ms, Some(300));
    assert_eq!(done.result, Some(json!({"ok": true})));
    assert!(client.get_command(answer + 100).await.unwrap().is_none());
}
