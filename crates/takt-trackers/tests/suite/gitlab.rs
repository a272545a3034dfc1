//! GitLab issues against the REST v4 fake.

use serde_json::json;
use takt_core::ports::TrackerError;
use takt_trackers::fake::{Failure, GitlabFake};

use super::*;

const PROJECT: &str = "acme/platform/widgets";

async fn setup(extra: serde_json::Value) -> (GitlabFake, Arc<dyn Tracker>) {
    let fake = GitlabFake::gitlab(PROJECT, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut pairs = json!({"project_path": PROJECT, "base_url": fake.url()});
    if let (Some(target), Some(source)) = (pairs.as_object_mut(), extra.as_object()) {
        for (k, v) in source {
            target.insert(k.clone(), v.clone());
        }
    }
    let tracker = build(&config("gitlab", &["opened"], &["closed"], provider(pairs)));
    (fake, tracker)
}

#[tokio::test]
async fn pages_keep_the_providers_order() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(230);
    let issues = tracker
        .fetch_issues_by_states(&states(&["opened"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<String> = (1..=230).map(|n| n.to_string()).collect();
    assert_eq!(ids(&issues), expected);
    assert_eq!(issues[0].identifier, "GL-1");
    assert_eq!(issues[0].state, "opened");
    assert_eq!(issues[0].author(), Some("octo-author"));
    assert_eq!(
        issues[0].url.as_deref(),
        Some("https://gitlab.com/acme/platform/widgets/-/issues/1")
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    for (index, request) in requests.iter().enumerate() {
        assert_eq!(
            request.path,
            "/api/v4/projects/acme%2Fplatform%2Fwidgets/issues"
        );
        let pairs = request.query_pairs();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("state"), Some("opened"));
        assert_eq!(get("per_page"), Some("100"));
        assert_eq!(get("order_by"), Some("updated_at"));
        assert_eq!(get("sort"), Some("asc"));
        assert_eq!(get("page").unwrap_or("1"), (index + 1).to_string());
    }
    assert_token_sent_and_contained(&requests);
}

#[tokio::test]
async fn by_id_batches_iids_omits_missing_and_fails_on_malformed() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(5);
    let wanted: Vec<String> = ["2", "GL-4", "404", "2"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let issues = tracker
        .fetch_issues_by_ids(&wanted)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut got = ids(&issues);
    got.sort();
    assert_eq!(got, ["2", "4"]);
    let request = &fake.requests()[0];
    let iids: Vec<String> = request
        .query_pairs()
        .into_iter()
        .filter(|(k, _)| k == "iids[]")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(iids, ["2", "4", "404"]);

    fake.update(3, |issue| issue.malformed = true);
    let error = tracker.fetch_issues_by_ids(&states(&["1", "3"])).await;
    assert!(
        matches!(&error, Err(TrackerError::Response(m)) if m.contains("malformed")),
        "{error:?}"
    );
}

#[tokio::test]
async fn rate_limits_and_auth_errors_map_to_their_categories() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    fake.fail_next(Failure::Unauthorized);
    match tracker.fetch_issues_by_states(&states(&["opened"])).await {
        Err(TrackerError::Status {
            status: 401,
            message,
        }) => {
            assert!(message.contains("401 Unauthorized") && !message.contains(TOKEN));
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::ServerError);
    let server = tracker.fetch_issues_by_ids(&states(&["1"])).await;
    assert!(
        matches!(server, Err(TrackerError::Status { status: 500, .. })),
        "{server:?}"
    );
    fake.fail_next(Failure::TooManyRequests { retry_after_s: 12 });
    let limited = tracker.fetch_issues_by_states(&states(&["opened"])).await;
    assert!(
        matches!(
            limited,
            Err(TrackerError::RateLimited {
                retry_after_ms: Some(12_000)
            })
        ),
        "{limited:?}"
    );
    // Honoured: the next poll is held back without a request.
    let requests = fake.requests().len();
    let held = tracker.fetch_issues_by_states(&states(&["opened"])).await;
    assert!(
        matches!(held, Err(TrackerError::RateLimited { .. })),
        "{held:?}"
    );
    assert_eq!(fake.requests().len(), requests);
}

#[tokio::test]
async fn state_labels_and_transitions() {
    let (fake, tracker) = setup(json!({"state_labels": {"Doing": "workflow::doing"}})).await;
    fake.seed(3);
    fake.update(3, |issue| issue.state = "closed".into());
    tracker
        .transition("1", "Doing")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fake.issue(1).map(|i| i.labels),
        Some(vec!["workflow::doing".to_owned()])
    );
    let doing = tracker
        .fetch_issues_by_states(&states(&["Doing"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&doing), ["1"]);
    assert_eq!(doing[0].state, "Doing");

    tracker
        .transition("GL-1", "closed")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.issue(1).map(|i| i.state), Some("closed".to_owned()));
    tracker
        .transition("3", "opened")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.issue(3).map(|i| i.state), Some("opened".to_owned()));
    let put = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(put, 3);
    let missing = tracker.transition("99", "closed").await;
    assert!(
        matches!(missing, Err(TrackerError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_missing_token_is_a_missing_secret() {
    let built = takt_trackers::build(
        &config(
            "gitlab",
            &["opened"],
            &["closed"],
            json!({"project_path": PROJECT}),
        ),
        &MapEnv::new(),
    );
    assert!(matches!(built, Err(TrackerError::MissingSecret(_))));
    let from_env = takt_trackers::build(
        &config(
            "gitlab",
            &["opened"],
            &["closed"],
            json!({"project_path": PROJECT}),
        ),
        &MapEnv::new().with_var("GITLAB_TOKEN", "glpat-x"),
    );
    assert!(from_env.is_ok());
}

#[tokio::test]
async fn takts_note_is_written_once_and_then_edited_in_place() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(3);
    let issue = tracker
        .fetch_issues_by_ids(&["3".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let marker = "<!-- takt:status -->";
    for status in ["started", "failed"] {
        tracker
            .upsert_comment(&issue, marker, &format!("{marker}\n{status}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(fake.comments(3), [format!("{marker}\nfailed")]);
    let writes: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    let notes = "/api/v4/projects/acme%2Fplatform%2Fwidgets/issues/3/notes";
    assert_eq!(
        writes[0],
        ("POST".to_owned(), notes.to_owned()),
        "{writes:?}"
    );
    assert_eq!(writes[1].0, "PUT", "{writes:?}");
    assert!(writes[1].1.starts_with(&format!("{notes}/")), "{writes:?}");
    assert_eq!(writes.len(), 2);
}

#[tokio::test]
async fn notes_since_a_time_are_read_with_their_authors() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    fake.add_comment(1, "early", "before the question");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    fake.add_comment(1, "grace", "@takt blue");
    let issue = tracker
        .fetch_issues_by_ids(&["1".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let comments = tracker
        .comments_since(&issue, since)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].author, "grace");
    assert_eq!(comments[0].body, "@takt blue");
}
