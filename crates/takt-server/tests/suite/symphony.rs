//! Symphony's endpoints keep Symphony's exact field names (R-135..R-137).

use reqwest::StatusCode;

use super::{Server, expect_error, keys, set};

#[tokio::test]
async fn r135_state_has_symphonys_fields_mapped_from_takts_state() {
    let server = Server::start().await;
    let state = server.get_json("/api/v1/state").await;
    for field in [
        "generated_at",
        "counts",
        "running",
        "retrying",
        "blocked",
        "codex_totals",
        "rate_limits",
    ] {
        assert!(state.get(field).is_some(), "no {field} in {state}");
    }
    assert_eq!(
        state["counts"],
        serde_json::json!({"running": 1, "retrying": 1, "blocked": 1})
    );
    assert!(keys(&state["codex_totals"]).is_superset(&set(&[
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "seconds_running"
    ])));
    assert_eq!(state["codex_totals"]["total_tokens"], 150);
    assert_eq!(state["rate_limits"]["limit_id"], "codex");
    assert!(
        state["generated_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );

    let running = &state["running"][0];
    assert!(keys(running).is_superset(&set(&[
        "issue_id",
        "issue_identifier",
        "issue_url",
        "state",
        "session_id",
        "turn_count",
        "last_event",
        "last_message",
        "started_at",
        "last_event_at",
        "tokens",
        "workspace_path",
    ])));
    assert_eq!(running["issue_identifier"], "TAKT-1");
    assert_eq!(running["issue_url"], "https://tracker.example/TAKT-1");
    assert_eq!(running["state"], "Todo", "the tracker's state");
    assert_eq!(running["session_id"], "sess-1");
    assert_eq!(running["turn_count"], 1);
    assert_eq!(running["last_message"], "editing src/lib.rs");
    assert_eq!(running["spend_micros"], 1500, "the run's metered call");

    // takt's additions, which the remote terminal dashboard reads.
    assert_eq!(state["runs"]["started"], 5);
    assert_eq!(state["runs"]["finished"], 3);
    assert_eq!(state["runs"]["metered_tokens"]["input_tokens"], 1000);
    assert_eq!(state["quota_paused_until"], serde_json::Value::Null);
    assert_eq!(state["schedules"][0]["name"], "nightly");
    assert_eq!(
        state["schedules"][0]["next_due_at"],
        "2027-01-15T08:00:00.000Z"
    );
    assert_eq!(
        state["schedules"][0]["last_fired_at"],
        serde_json::Value::Null
    );
    assert_eq!(running["workspace_path"], "/ws/TAKT-1");
    assert_eq!(
        running["tokens"],
        serde_json::json!({"input_tokens": 120, "output_tokens": 30, "total_tokens": 150})
    );

    let retrying = &state["retrying"][0];
    assert!(keys(retrying).is_superset(&set(&[
        "issue_id",
        "issue_identifier",
        "issue_url",
        "attempt",
        "due_at",
        "error"
    ])));
    assert_eq!(retrying["issue_identifier"], "TAKT-3");
    assert_eq!(retrying["attempt"], 2, "the run that will start next");
    assert_eq!(retrying["error"], "agent exited with 1");

    let blocked = &state["blocked"][0];
    assert_eq!(blocked["issue_identifier"], "TAKT-2");
    assert_eq!(blocked["question"], "Which database?");
    assert_eq!(blocked["live"], true);

    assert_eq!(state["polling"]["checking"], false);
    assert_eq!(state["polling"]["poll_interval_ms"], 30_000);
    assert_eq!(state["max_concurrent_agents"], 2);
}

#[tokio::test]
async fn r136_an_issue_is_found_by_its_identifier_in_any_case() {
    let server = Server::start().await;
    let issue = server.get_json("/api/v1/takt-1").await;
    assert!(keys(&issue).is_superset(&set(&[
        "issue_identifier",
        "issue_id",
        "status",
        "workspace",
        "attempts",
        "running",
        "retry",
        "logs",
        "recent_events",
        "last_error",
        "tracked",
    ])));
    assert_eq!(issue["issue_identifier"], "TAKT-1");
    assert_eq!(issue["issue_id"], "id-1");
    assert_eq!(issue["status"], "running");
    assert_eq!(issue["workspace"]["path"], "/ws/TAKT-1");
    assert_eq!(
        issue["attempts"],
        serde_json::json!({"restart_count": 0, "current_retry_attempt": null})
    );
    assert_eq!(issue["running"]["session_id"], "sess-1");
    assert!(issue["retry"].is_null());
    assert_eq!(issue["logs"]["codex_session_logs"], serde_json::json!([]));
    assert_eq!(issue["tracked"], serde_json::json!({}));
    let events = issue["recent_events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .all(|event| { keys(event) == set(&["at", "event", "message"]) })
    );
    assert!(
        events
            .iter()
            .any(|event| event["event"] == "message" && event["message"] == "editing src/lib.rs"),
        "{events:?}"
    );
    assert_eq!(issue["task"]["identifier"], "TAKT-1");

    let retrying = server.get_json("/api/v1/TAKT-3").await;
    assert_eq!(retrying["status"], "retrying");
    assert_eq!(retrying["retry"]["attempt"], 2);
    assert_eq!(retrying["attempts"]["current_retry_attempt"], 1);
    assert_eq!(retrying["last_error"], "agent exited with 1");
    let review = server.get_json("/api/v1/TAKT-4").await;
    assert_eq!(review["status"], "awaiting_review");
}

#[tokio::test]
async fn r136_an_unknown_issue_is_issue_not_found() {
    let server = Server::start().await;
    let message = expect_error(
        server.get("/api/v1/NOPE-9").await,
        StatusCode::NOT_FOUND,
        "issue_not_found",
    )
    .await;
    assert!(message.contains("NOPE-9"));
}

#[tokio::test]
async fn r137_refresh_is_queued_and_a_second_one_coalesces() {
    let server = Server::start().await;
    let response = server.post("/api/v1/refresh", None).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        keys(&body),
        set(&["queued", "coalesced", "requested_at", "operations"])
    );
    assert_eq!(body["queued"], true);
    assert_eq!(body["coalesced"], false);
    assert_eq!(body["operations"], serde_json::json!(["poll", "reconcile"]));
    let again = server
        .post("/api/v1/refresh", Some(serde_json::json!({})))
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["coalesced"], true);
    assert_eq!(server.daemon.calls.lock().unwrap().refreshes, 2);
}

#[tokio::test]
async fn without_a_snapshot_state_answers_503_with_generated_at() {
    let server = Server::start().await;
    server.daemon.set_available(false);
    let response = server.get("/api/v1/state").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(keys(&body), set(&["generated_at", "error"]));
    assert_eq!(body["error"]["code"], "snapshot_unavailable");
    expect_error(
        server.post("/api/v1/refresh", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "orchestrator_unavailable",
    )
    .await;
    let health = server.get_json("/api/v1/health").await;
    assert_eq!(health["ok"], true);
    assert_eq!(health["orchestrator"], false);
}
