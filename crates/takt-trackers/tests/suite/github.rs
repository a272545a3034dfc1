//! GitHub Issues against the REST fake.

use serde_json::json;
use takt_core::ports::TrackerError;
use takt_trackers::fake::{Failure, FakeIssue, GithubFake};

use super::*;

const REPO: &str = "acme/widgets";

async fn setup(extra: serde_json::Value) -> (GithubFake, Arc<dyn Tracker>) {
    let fake = GithubFake::github(REPO, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut pairs = json!({"repo": REPO, "api_url": fake.url()});
    if let (Some(target), Some(source)) = (pairs.as_object_mut(), extra.as_object()) {
        for (k, v) in source {
            target.insert(k.clone(), v.clone());
        }
    }
    let tracker = build(&config("github", &["open"], &["closed"], provider(pairs)));
    (fake, tracker)
}

#[tokio::test]
async fn pages_keep_the_providers_order_and_skip_pull_requests() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(250);
    fake.update(5, |issue| issue.pull_request = true);
    let issues = tracker
        .fetch_issues_by_states(&states(&["open"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<String> = (1..=250)
        .filter(|n| *n != 5)
        .map(|n| n.to_string())
        .collect();
    // #5 was updated last (and is a pull request anyway): order is `updated` ascending.
    assert_eq!(ids(&issues), expected);
    let first = &issues[0];
    assert_eq!(first.identifier, "GH-1");
    assert_eq!(first.state, "open");
    assert_eq!(first.author(), Some("octo-author"));
    assert_eq!(
        first.native_ref.as_ref().and_then(|r| r.get("repo")),
        Some(&json!(REPO))
    );
    assert!(first.dispatchable);

    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    for (index, request) in requests.iter().enumerate() {
        assert_eq!(request.path, "/repos/acme/widgets/issues");
        let pairs = request.query_pairs();
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("state"), Some("open"));
        assert_eq!(get("per_page"), Some("100"));
        assert_eq!(get("sort"), Some("updated"));
        assert_eq!(get("direction"), Some("asc"));
        assert_eq!(get("page").unwrap_or("1"), (index + 1).to_string());
        assert!(
            request
                .header("user-agent")
                .is_some_and(|ua| ua.starts_with("takt/"))
        );
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
    }
    assert_token_sent_and_contained(&requests);
}

#[tokio::test]
async fn state_labels_map_open_issues_and_closed_stays_closed() {
    let (fake, tracker) = setup(json!({"state_labels": {"In Progress": "Status:Doing"}})).await;
    fake.seed(3);
    fake.update(1, |issue| {
        issue.labels = vec!["status:doing".into(), "P2".into()]
    });
    fake.update(3, |issue| issue.state = "closed".into());
    let issues = tracker
        .fetch_issues_by_states(&states(&["open", "In Progress"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let by_id = |id: &str| issues.iter().find(|i| i.id == id).cloned();
    assert_eq!(by_id("1").map(|i| i.state), Some("In Progress".to_owned()));
    assert_eq!(by_id("1").and_then(|i| i.priority), Some(2));
    assert_eq!(by_id("2").map(|i| i.state), Some("open".to_owned()));
    assert!(by_id("3").is_none());
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.query.contains("state=open"))
    );

    let only_doing = tracker
        .fetch_issues_by_states(&states(&["in progress"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&only_doing), ["1"]);
    fake.clear_requests();
    let closed = tracker
        .fetch_issues_by_states(&states(&["closed"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&closed), ["3"]);
    assert_eq!(closed[0].state, "closed");
    assert!(fake.requests()[0].query.contains("state=closed"));
}

#[tokio::test]
async fn empty_state_and_id_lists_make_no_request() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(2);
    assert!(
        tracker
            .fetch_issues_by_states(&[])
            .await
            .is_ok_and(|v| v.is_empty())
    );
    assert!(
        tracker
            .fetch_issues_by_ids(&[])
            .await
            .is_ok_and(|v| v.is_empty())
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn by_id_omits_missing_items_and_fails_on_malformed_ones() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(4);
    fake.update(4, |issue| issue.pull_request = true);
    let issues = tracker
        .fetch_issues_by_ids(&states(&["3", "99", "1", "4", "3"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&issues), ["3", "1"]);

    fake.update(2, |issue| issue.malformed = true);
    let error = tracker.fetch_issues_by_ids(&states(&["1", "2"])).await;
    assert!(
        matches!(&error, Err(TrackerError::Response(m)) if m.contains("malformed")),
        "{error:?}"
    );
    // A listing drops the malformed record instead.
    let listed = tracker
        .fetch_issues_by_states(&states(&["open"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&listed), ["1", "3"]);
}

#[tokio::test]
async fn rate_limits_become_tracker_rate_limited_with_the_providers_delay() {
    let open = states(&["open"]);
    let cases = [
        (
            Failure::SecondaryRateLimit {
                retry_after_s: Some(30),
            },
            30_000,
            30_000,
        ),
        (
            Failure::SecondaryRateLimit {
                retry_after_s: None,
            },
            60_000,
            60_000,
        ),
        (Failure::TooManyRequests { retry_after_s: 5 }, 5_000, 5_000),
        (
            Failure::PrimaryRateLimit { reset_in_s: 120 },
            118_000,
            120_000,
        ),
    ];
    for (failure, low, high) in cases {
        let (fake, tracker) = setup(json!({})).await;
        fake.seed(1);
        fake.fail_next(failure.clone());
        match tracker.fetch_issues_by_states(&open).await {
            Err(
                error @ TrackerError::RateLimited {
                    retry_after_ms: Some(ms),
                },
            ) => {
                assert!((low..=high).contains(&ms), "{failure:?}: {ms}");
                assert_eq!(error.category(), "tracker_rate_limited");
            }
            other => panic!("{failure:?}: {other:?}"),
        }
        // The delay is honoured: until it passes, polls fail without a request.
        for _ in 0..2 {
            match tracker.fetch_issues_by_ids(&states(&["1"])).await {
                Err(TrackerError::RateLimited {
                    retry_after_ms: Some(ms),
                }) => assert!(ms <= high && ms > 0, "{ms}"),
                other => panic!("{failure:?}: {other:?}"),
            }
        }
        assert_eq!(fake.requests().len(), 1, "{failure:?}: held back");
    }
}

#[tokio::test]
async fn a_server_error_does_not_hold_back_the_next_poll() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    fake.fail_next(Failure::ServerError);
    assert!(
        tracker
            .fetch_issues_by_states(&states(&["open"]))
            .await
            .is_err()
    );
    let issues = tracker.fetch_issues_by_states(&states(&["open"])).await;
    assert!(issues.is_ok_and(|v| v.len() == 1));
}

#[tokio::test]
async fn bad_credentials_and_server_errors_are_tracker_status() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    fake.fail_next(Failure::Unauthorized);
    match tracker.fetch_issues_by_states(&states(&["open"])).await {
        Err(error @ TrackerError::Status { status: 401, .. }) => {
            assert_eq!(error.category(), "tracker_status");
            let text = error.to_string();
            assert!(text.contains("credential was rejected") && text.contains("Bad credentials"));
            assert!(!text.contains(TOKEN));
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::ServerError);
    match tracker.fetch_issues_by_ids(&states(&["1"])).await {
        Err(TrackerError::Status {
            status: 500,
            message,
        }) => {
            assert!(message.contains("Internal Server Error"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_token_is_rejected_by_the_provider_as_401() {
    let fake = GithubFake::github(REPO, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tracker = build(&config(
        "github",
        &["open"],
        &["closed"],
        json!({"repo": REPO, "api_url": fake.url(), "token": "wrong"}),
    ));
    let error = tracker.fetch_issues_by_states(&states(&["open"])).await;
    assert!(
        matches!(error, Err(TrackerError::Status { status: 401, .. })),
        "{error:?}"
    );
    assert!(!fake.requests()[0].authorized);
}

#[tokio::test]
async fn an_unchanged_incremental_poll_is_a_conditional_304() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(10);
    let open = states(&["open"]);
    for _ in 0..3 {
        let issues = tracker
            .fetch_issues_by_states(&open)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(issues.len(), 10);
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(
        !requests[0].query.contains("since="),
        "the first poll is a full listing"
    );
    assert!(requests[1].query.contains("since=") && requests[1].query.contains("state=all"));
    assert!(!requests[1].conditional && requests[1].status == 200);
    assert!(requests[2].conditional, "the repeat carries If-None-Match");
    assert_eq!(requests[2].status, 304);

    // A change makes the next answer a 200 again, and the change arrives.
    fake.update(4, |issue| issue.title = "Renamed".into());
    let issues = tracker
        .fetch_issues_by_states(&open)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        issues
            .iter()
            .find(|i| i.id == "4")
            .map(|i| i.title.as_str()),
        Some("Renamed")
    );
    assert_eq!(fake.requests().last().map(|r| r.status), Some(200));
}

#[tokio::test]
async fn transitions_close_and_move_state_labels() {
    let (fake, tracker) = setup(json!({"state_labels": {
        "In Progress": "status:doing", "Human Review": "status:review"}}))
    .await;
    fake.seed(1);
    fake.update(1, |issue| {
        issue.labels = vec!["bug".into(), "status:review".into()]
    });
    tracker
        .transition("1", "In Progress")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let issue = fake.issue(1).unwrap_or_else(|| panic!("gone"));
    assert_eq!(issue.state, "open");
    assert_eq!(issue.labels, ["bug", "status:doing"]);
    tracker
        .transition("1", "closed")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.issue(1).map(|i| i.state), Some("closed".to_owned()));
    let unknown = tracker.transition("1", "Limbo").await;
    assert!(
        matches!(unknown, Err(TrackerError::InvalidConfig(_))),
        "{unknown:?}"
    );
    let missing = tracker.transition("77", "closed").await;
    assert!(
        matches!(missing, Err(TrackerError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn configuration_errors_and_secret_resolution() {
    let base = |provider: serde_json::Value| config("github", &["open"], &["closed"], provider);
    let missing = takt_trackers::build(&base(json!({"repo": REPO})), &MapEnv::new());
    assert!(matches!(missing, Err(TrackerError::MissingSecret(_))));
    let empty_var = takt_trackers::build(
        &base(json!({"repo": REPO, "token": "$GH"})),
        &MapEnv::new().with_var("GH", ""),
    );
    assert!(
        matches!(empty_var, Err(TrackerError::MissingSecret(_))),
        "R-033: empty is missing"
    );
    let from_env = takt_trackers::build(
        &base(json!({"repo": REPO})),
        &MapEnv::new().with_var("GITHUB_TOKEN", "x"),
    );
    assert!(from_env.is_ok());
    let no_repo = takt_trackers::build(&base(json!({"token": "x"})), &MapEnv::new());
    assert!(matches!(no_repo, Err(TrackerError::InvalidConfig(_))));
    let plain_http = takt_trackers::build(
        &base(json!({"repo": REPO, "token": "x", "api_url": "http://github.example"})),
        &MapEnv::new(),
    );
    assert!(matches!(plain_http, Err(TrackerError::InvalidConfig(_))));
}

#[tokio::test]
async fn secrets_never_reach_logs_or_errors() {
    let (captured, _guard) = capture_logs();
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(150);
    fake.add(FakeIssue {
        malformed: true,
        ..FakeIssue::new(500, "open")
    });
    let mut errors = Vec::new();
    assert!(
        tracker
            .fetch_issues_by_states(&states(&["open"]))
            .await
            .is_ok()
    );
    if let Err(error) = tracker.fetch_issues_by_ids(&states(&["500"])).await {
        errors.push(format!("{error} {error:?}"));
    }
    for failure in [
        Failure::Unauthorized,
        Failure::ServerError,
        Failure::SecondaryRateLimit {
            retry_after_s: None,
        },
    ] {
        fake.fail_next(failure);
        if let Err(error) = tracker.fetch_issues_by_ids(&states(&["1"])).await {
            errors.push(format!("{error} {error:?}"));
        }
    }
    assert_eq!(errors.len(), 4);
    let logs = captured.text();
    assert!(
        logs.contains("tracker request"),
        "logging was captured: {logs}"
    );
    assert!(logs.contains("dropping a malformed issue"));
    assert!(!logs.contains(TOKEN), "token in logs");
    for error in errors {
        assert!(!error.contains(TOKEN), "token in {error}");
    }
    assert_token_sent_and_contained(&fake.requests());
}

#[tokio::test]
async fn pull_request_updates_advance_the_incremental_cursor() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(5);
    let open = states(&["open"]);
    let since = |request: &takt_trackers::fake::Recorded| {
        request
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "since")
            .map(|(_, v)| v)
    };
    assert!(tracker.fetch_issues_by_states(&open).await.is_ok());
    fake.add(FakeIssue {
        pull_request: true,
        ..FakeIssue::new(6, "open")
    });
    fake.update(6, |_| {});
    let issues = tracker
        .fetch_issues_by_states(&open)
        .await
        .unwrap_or_default();
    assert_eq!(
        ids(&issues),
        ["1", "2", "3", "4", "5"],
        "pull requests are never issues"
    );
    assert!(tracker.fetch_issues_by_states(&open).await.is_ok());
    let requests = fake.requests();
    let (first, second) = (since(&requests[1]), since(&requests[2]));
    assert!(first.is_some() && second.is_some());
    assert!(
        second > first,
        "the cursor moved past the pull request: {first:?} -> {second:?}"
    );
}

#[tokio::test]
async fn takts_comment_is_written_once_and_then_edited_in_place() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(2);
    let issue = tracker
        .fetch_issues_by_ids(&["2".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let marker = "<!-- takt:status -->";
    tracker
        .upsert_comment(&issue, marker, &format!("{marker}\nstarted"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tracker
        .upsert_comment(&issue, marker, &format!("{marker}\nmerged"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.comments(2), [format!("{marker}\nmerged")]);
    assert!(fake.comments(1).is_empty());
    let writes: Vec<(String, String)> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        writes[0],
        (
            "POST".into(),
            "/repos/acme/widgets/issues/2/comments".into()
        )
    );
    assert_eq!(writes[1].0, "PATCH");
    assert!(
        writes[1]
            .1
            .starts_with("/repos/acme/widgets/issues/comments/")
    );
}

#[tokio::test]
async fn comments_since_a_time_are_read_oldest_first_with_their_authors() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    fake.add_comment(1, "early", "before the question");
    // GitHub stamps whole seconds: the next second.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let since = chrono::Utc::now().timestamp_millis();
    fake.add_comment(1, "grace", "@takt blue");
    fake.add_comment(1, "heidi", "agreed");
    let issue = tracker
        .fetch_issues_by_ids(&["1".to_owned()])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0);
    let comments = tracker
        .comments_since(&issue, since)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen: Vec<(&str, &str)> = comments
        .iter()
        .map(|c| (c.author.as_str(), c.body.as_str()))
        .collect();
    assert_eq!(seen, [("grace", "@takt blue"), ("heidi", "agreed")]);
    let read = fake
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/issues/1/comments"))
        .unwrap_or_else(|| panic!("no comments request"));
    assert!(read.query.contains("since="), "{}", read.query);
}
