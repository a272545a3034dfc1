//! takt's task endpoints: list, create, show, the journal, the evidence.

use reqwest::StatusCode;
use serde_json::json;

use super::{Server, expect_error};

fn identifiers(list: &serde_json::Value) -> Vec<String> {
    list["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|task| task["identifier"].as_str().expect("identifier").to_owned())
        .collect()
}

#[tokio::test]
async fn tasks_are_listed_sorted_and_filtered_by_state() {
    let server = Server::start().await;
    let all = server.get_json("/api/v1/tasks").await;
    assert_eq!(
        identifiers(&all),
        ["TAKT-1", "TAKT-2", "TAKT-3", "TAKT-4", "TAKT-5", "TAKT-6"]
    );
    let summary = &all["tasks"][0];
    for field in [
        "id",
        "state",
        "tracker_state",
        "attempts",
        "metered_usage",
        "issue",
    ] {
        assert!(summary.get(field).is_some(), "no {field} in {summary}");
    }
    let some = server
        .get_json("/api/v1/tasks?state=queued&state=done,blocked")
        .await;
    assert_eq!(identifiers(&some), ["TAKT-2", "TAKT-5", "TAKT-6"]);
    let message = expect_error(
        server.get("/api/v1/tasks?state=sleeping").await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(message.contains("awaiting_review"), "{message}");
}

#[tokio::test]
async fn a_task_is_found_by_id_or_identifier() {
    let server = Server::start().await;
    let by_identifier = server.get_json("/api/v1/tasks/takt-4").await;
    let by_id = server.get_json("/api/v1/tasks/id-4").await;
    assert_eq!(by_identifier, by_id);
    assert_eq!(by_id["state"], "awaiting_review");
    assert_eq!(by_id["commit"], "abc123");
    expect_error(
        server.get("/api/v1/tasks/TAKT-99").await,
        StatusCode::NOT_FOUND,
        "task_not_found",
    )
    .await;
}

#[tokio::test]
async fn creating_a_task_answers_201_with_the_issue_and_the_author() {
    let server = Server::start().await;
    let response = server
        .client
        .post(server.url("/api/v1/tasks"))
        .header("x-takt-operator", "ada")
        .json(
            &json!({"title": "  Add a flag  ", "body": "details", "priority": 2,
            "labels": ["cli", " "], "blocked_by": ["takt-1"]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let issue: serde_json::Value = response.json().await.expect("json");
    assert_eq!(issue["title"], "Add a flag");
    assert_eq!(
        location,
        format!("/api/v1/tasks/{}", issue["identifier"].as_str().unwrap())
    );
    let created = server.daemon.calls.lock().unwrap().created.clone();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].author, "ada");
    assert_eq!(created[0].labels, ["cli"]);
    assert_eq!(created[0].blocked_by, ["takt-1"]);
    assert_eq!(created[0].body.as_deref(), Some("details"));
    let task = server.get_json(&location).await;
    assert_eq!(task["state"], "queued");

    let default_author = server
        .post("/api/v1/tasks", Some(json!({"title": "t"})))
        .await;
    assert_eq!(default_author.status(), StatusCode::CREATED);
    assert_eq!(server.daemon.calls.lock().unwrap().created[1].author, "api");
}

#[tokio::test]
async fn a_bad_new_task_is_an_invalid_request() {
    let server = Server::start().await;
    for body in [
        json!({}),
        json!({"title": "   "}),
        json!({"title": "t", "priority": 9}),
        json!({"title": "t", "label": ["typo"]}),
        json!({"title": "t", "blocked_by": ["NOPE-1"]}),
        json!(["not", "an", "object"]),
    ] {
        expect_error(
            server.post("/api/v1/tasks", Some(body.clone())).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
    }
    let message = expect_error(
        server
            .post(
                "/api/v1/tasks",
                Some(json!({"title": "t", "blocked_by": ["NOPE-1"]})),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(message.contains("NOPE-1"), "the daemon's reason: {message}");
}

#[tokio::test]
async fn a_tasks_events_are_its_journal_entries_in_order() {
    let server = Server::start().await;
    let events = server.get_json("/api/v1/tasks/TAKT-4/events").await;
    assert_eq!(events["task_id"], "id-4");
    assert_eq!(events["identifier"], "TAKT-4");
    let entries = events["events"].as_array().expect("events");
    assert!(entries.iter().all(|entry| entry["task_id"] == "id-4"));
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"task_queued"));
    assert!(kinds.contains(&"verified"), "{kinds:?}");
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]));
    expect_error(
        server.get("/api/v1/tasks/TAKT-99/events").await,
        StatusCode::NOT_FOUND,
        "task_not_found",
    )
    .await;
}

#[tokio::test]
async fn evidence_is_the_latest_verification_or_not_verified() {
    let server = Server::start().await;
    let evidence = server.get_json("/api/v1/tasks/TAKT-4/evidence").await;
    assert_eq!(evidence["task"], "TAKT-4");
    assert_eq!(evidence["outcome"], "passed");
    assert_eq!(evidence["report"]["commit"], "abc123");
    assert_eq!(evidence["report"]["gates"][0]["gate"], "cargo-test");
    assert_eq!(evidence["risk"]["tier"], "review");
    assert_eq!(evidence["approvals"], json!([]));
    assert_eq!(evidence["approvals_required"], 1);
    let message = expect_error(
        server.get("/api/v1/tasks/TAKT-5/evidence").await,
        StatusCode::NOT_FOUND,
        "not_verified",
    )
    .await;
    assert!(message.contains("TAKT-5"), "{message}");
}
