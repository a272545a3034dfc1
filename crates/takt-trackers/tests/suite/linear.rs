//! Linear against the GraphQL fake: Symphony's profile (R-058..R-066).

use serde_json::json;
use takt_core::ports::TrackerError;
use takt_trackers::fake::{Failure, FakeIssue, LinearFake};

use super::*;

const SLUG: &str = "takt-3f9a";
const ACTIVE: &[&str] = &["Todo", "In Progress"];
const TERMINAL: &[&str] = &["Done", "Cancelled"];

async fn setup(extra: serde_json::Value) -> (LinearFake, Arc<dyn Tracker>) {
    let fake = LinearFake::linear(SLUG, TOKEN)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut pairs = json!({"api_key": TOKEN, "project_slug": SLUG, "endpoint": fake.url()});
    if let (Some(target), Some(source)) = (pairs.as_object_mut(), extra.as_object()) {
        for (k, v) in source {
            target.insert(k.clone(), v.clone());
        }
    }
    let tracker = build(&config("linear", ACTIVE, TERMINAL, pairs));
    (fake, tracker)
}

fn lin(n: u64) -> String {
    format!("lin-{n:08}")
}

#[tokio::test]
async fn the_candidate_query_pages_by_50_in_order() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(120);
    fake.add(FakeIssue {
        in_project: false,
        ..FakeIssue::new(500, "Todo")
    });
    fake.add(FakeIssue::new(501, "Done"));
    let issues = tracker
        .fetch_issues_by_states(&states(ACTIVE))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<String> = (1..=120).map(lin).collect();
    assert_eq!(ids(&issues), expected);
    assert_eq!(issues[0].identifier, "ENG-1");
    assert_eq!(issues[0].branch_name.as_deref(), Some("eng-1"));
    assert_eq!(issues[0].author(), Some("octo-author"));

    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    let afters: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| r.variables()["after"].clone())
        .collect();
    assert_eq!(
        afters,
        [json!(null), json!("cursor:50"), json!("cursor:100")]
    );
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/graphql");
        assert!(
            request
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
        );
        let body: serde_json::Value = serde_json::from_str(&request.body).unwrap_or_default();
        let query = body["query"].as_str().unwrap_or("");
        assert!(query.contains("query SymphonyLinearPoll("));
        assert!(query.contains("project: {slugId: {eq: $projectSlug}}"));
        assert!(query.contains("state: {name: {in: $stateNames}}"));
        assert!(query.contains("inverseRelations(first: $relationFirst)"));
        assert!(query.contains("pageInfo { hasNextPage endCursor }"));
        let variables = request.variables();
        assert_eq!(variables["first"], json!(50));
        assert_eq!(variables["relationFirst"], json!(50));
        assert_eq!(variables["projectSlug"], json!(SLUG));
        assert_eq!(variables["stateNames"], json!(ACTIVE));
    }
    // the raw key, no `Bearer`.
    assert_token_sent_and_contained(&requests);
}

#[tokio::test]
async fn by_id_batches_of_50_keep_request_order_and_omit_the_invisible() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(80);
    fake.update(7, |issue| issue.in_project = false);
    let mut wanted: Vec<String> = (1..=80).rev().map(lin).collect();
    wanted.push("lin-missing".to_owned());
    let issues = tracker
        .fetch_issues_by_ids(&wanted)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let expected: Vec<String> = (1..=80).rev().filter(|n| *n != 7).map(lin).collect();
    assert_eq!(ids(&issues), expected);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "81 ids are two batches");
    assert_eq!(
        requests[0].variables()["ids"].as_array().map(Vec::len),
        Some(50)
    );
    assert_eq!(
        requests[1].variables()["ids"].as_array().map(Vec::len),
        Some(31)
    );
    assert!(requests[0].body.contains("$ids: [ID!]!"));
    assert!(requests[0].body.contains("SymphonyLinearIssuesById"));
    assert!(
        requests[0].variables().get("after").is_none(),
        "the by-id query has no cursor"
    );

    fake.update(3, |issue| issue.malformed = true);
    match tracker.fetch_issues_by_ids(&[lin(2), lin(3)]).await {
        Err(TrackerError::Response(message)) => {
            assert!(message.starts_with("linear_unknown_payload"))
        }
        other => panic!("{other:?}"),
    }
    // The candidate listing drops it instead.
    let listed = tracker
        .fetch_issues_by_states(&states(ACTIVE))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!ids(&listed).contains(&lin(3)) && ids(&listed).contains(&lin(2)));
}

#[tokio::test]
async fn error_forms_map_onto_the_categories() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(60);
    let active = states(ACTIVE);

    fake.fail_next(Failure::GraphqlErrors);
    match tracker.fetch_issues_by_states(&active).await {
        Err(error @ TrackerError::Response(_)) => {
            assert_eq!(error.category(), "tracker_response");
            assert!(
                error
                    .to_string()
                    .contains("linear_graphql_errors: Cannot query field")
            );
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::Unauthorized);
    match tracker.fetch_issues_by_states(&active).await {
        Err(TrackerError::Status {
            status: 401,
            message,
        }) => {
            assert!(message.starts_with("linear_api_status"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::ServerError);
    match tracker.fetch_issues_by_states(&active).await {
        Err(TrackerError::Status {
            status: 500,
            message,
        }) => {
            assert_eq!(
                message,
                "linear_api_status: <html> <body>Internal Server Error</body> </html>"
            );
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::MissingEndCursor);
    match tracker.fetch_issues_by_states(&active).await {
        Err(error @ TrackerError::Pagination(_)) => {
            assert!(error.to_string().contains("linear_missing_end_cursor"));
        }
        other => panic!("{other:?}"),
    }
    // Nothing stuck: the next poll lists everything.
    let issues = tracker
        .fetch_issues_by_states(&active)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(issues.len(), 60);
    fake.fail_next(Failure::GraphqlRateLimited { reset_in_ms: 4_000 });
    match tracker.fetch_issues_by_states(&active).await {
        Err(TrackerError::RateLimited {
            retry_after_ms: Some(ms),
        }) => {
            assert!((2_000..=4_000).contains(&ms), "{ms}");
        }
        other => panic!("{other:?}"),
    }
    // A fresh adapter: the first one now holds back for the delay it was given.
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    fake.fail_next(Failure::TooManyRequests { retry_after_s: 3 });
    let limited = tracker.fetch_issues_by_states(&active).await;
    assert!(matches!(
        limited,
        Err(TrackerError::RateLimited {
            retry_after_ms: Some(3_000)
        })
    ));
    let held = tracker.fetch_issues_by_states(&active).await;
    assert!(
        matches!(held, Err(TrackerError::RateLimited { .. })),
        "{held:?}"
    );
    assert_eq!(fake.requests().len(), 1, "held back without a request");
}

#[tokio::test]
async fn configuration_error_forms() {
    let env = MapEnv::new();
    let build_with = |provider: serde_json::Value, env: &MapEnv| {
        takt_trackers::build(&config("linear", ACTIVE, TERMINAL, provider), env).map(|_| ())
    };
    let no_key = build_with(json!({"project_slug": SLUG}), &env);
    assert!(
        matches!(&no_key, Err(TrackerError::MissingSecret(m)) if m.starts_with("missing_linear_api_token"))
    );
    let empty_ref = build_with(
        json!({"project_slug": SLUG, "api_key": "$LIN"}),
        &MapEnv::new().with_var("LIN", ""),
    );
    assert!(
        matches!(empty_ref, Err(TrackerError::MissingSecret(_))),
        "R-033"
    );
    let no_slug = build_with(json!({"api_key": "k"}), &env);
    assert!(
        matches!(&no_slug, Err(TrackerError::InvalidConfig(m)) if m.starts_with("missing_linear_project_slug"))
    );
    let endpoint = build_with(
        json!({"api_key": "k", "project_slug": SLUG, "endpoint": "ftp://x"}),
        &env,
    );
    assert!(
        matches!(&endpoint, Err(TrackerError::InvalidConfig(m)) if m.starts_with("invalid_linear_endpoint"))
    );
    let assignee = build_with(
        json!({"api_key": "k", "project_slug": SLUG, "assignee": 7}),
        &env,
    );
    assert!(
        matches!(&assignee, Err(TrackerError::InvalidConfig(m)) if m.starts_with("invalid_linear_assignee"))
    );
    let from_env = build_with(
        json!({"project_slug": SLUG}),
        &MapEnv::new().with_var("LINEAR_API_KEY", "lin_api_x"),
    );
    assert!(from_env.is_ok());
}

#[tokio::test]
async fn assignee_me_resolves_through_the_viewer() {
    let (fake, tracker) = setup(json!({"assignee": "me"})).await;
    fake.seed(3);
    fake.update(1, |issue| issue.assignee = Some("user-me".into()));
    fake.update(2, |issue| issue.assignee = Some("someone-else".into()));
    let issues = tracker
        .fetch_issues_by_states(&states(ACTIVE))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dispatchable: Vec<bool> = issues.iter().map(|i| i.dispatchable).collect();
    assert_eq!(ids(&issues), [lin(1), lin(2), lin(3)]);
    assert_eq!(
        dispatchable,
        [true, false, false],
        "unassigned issues are not routed"
    );
    let viewer_asks = fake
        .requests()
        .iter()
        .filter(|r| r.body.contains("viewer"))
        .count();
    assert_eq!(viewer_asks, 1);
    tracker
        .fetch_issues_by_ids(&[lin(1)])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let viewer_asks = fake
        .requests()
        .iter()
        .filter(|r| r.body.contains("viewer"))
        .count();
    assert_eq!(viewer_asks, 1, "asked once");

    let (fake, tracker) = setup(json!({"assignee": "me"})).await;
    fake.seed(1);
    fake.set_viewer(None);
    match tracker.fetch_issues_by_states(&states(ACTIVE)).await {
        Err(TrackerError::Response(m)) => assert!(m.starts_with("missing_linear_viewer_identity")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn blockers_decide_dispatchability_and_follow_incremental_changes() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(5);
    fake.update(2, |issue| issue.blocked_by = vec![1]);
    fake.update(3, |issue| {
        issue.state = "In Progress".into();
        issue.blocked_by = vec![1];
    });
    fake.update(4, |issue| issue.blocked_by = vec![5]);
    fake.update(5, |issue| issue.state = "Done".into());
    let active = states(ACTIVE);
    let issues = tracker
        .fetch_issues_by_states(&active)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let get = |issues: &[takt_protocol::Issue], n: u64| {
        issues
            .iter()
            .find(|i| i.id == lin(n))
            .cloned()
            .unwrap_or_else(|| panic!("no {n}"))
    };
    assert!(!get(&issues, 2).dispatchable, "Todo blocked by a Todo");
    assert_eq!(
        get(&issues, 2).blocked_by[0].identifier.as_deref(),
        Some("ENG-1")
    );
    assert!(
        get(&issues, 3).dispatchable,
        "In Progress is not stopped by blockers"
    );
    assert!(
        get(&issues, 4).dispatchable,
        "a Done blocker does not block"
    );

    // The blocker finishes; only it changed, yet issue 2 becomes dispatchable on the next
    // (incremental) poll.
    fake.clear_requests();
    fake.update(1, |issue| issue.state = "Done".into());
    let issues = tracker
        .fetch_issues_by_states(&active)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(get(&issues, 2).dispatchable);
    assert!(!ids(&issues).contains(&lin(1)), "Done left the active set");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].body.contains("SymphonyLinearPollUpdated"));
    assert!(requests[0].body.contains("updatedAt: {gte: $updatedSince}"));
}

#[tokio::test]
async fn transition_sets_the_team_state_by_name() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    tracker
        .transition(&lin(1), "human review")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fake.issue(1).map(|i| i.state),
        Some("Human Review".to_owned())
    );
    let unknown = tracker.transition(&lin(1), "Limbo").await;
    assert!(
        matches!(unknown, Err(TrackerError::InvalidConfig(_))),
        "{unknown:?}"
    );
    let missing = tracker.transition("lin-nope", "Done").await;
    assert!(
        matches!(missing, Err(TrackerError::NotFound(_))),
        "{missing:?}"
    );
}

#[tokio::test]
async fn secrets_never_reach_logs_or_errors() {
    let (captured, _guard) = capture_logs();
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(3);
    let mut texts = Vec::new();
    for failure in [
        Failure::Unauthorized,
        Failure::ServerError,
        Failure::GraphqlErrors,
    ] {
        fake.fail_next(failure);
        if let Err(error) = tracker.fetch_issues_by_states(&states(ACTIVE)).await {
            texts.push(format!("{error} {error:?}"));
        }
    }
    assert_eq!(texts.len(), 3);
    assert!(
        tracker
            .fetch_issues_by_states(&states(ACTIVE))
            .await
            .is_ok()
    );
    let logs = captured.text();
    assert!(logs.contains("linear_api_status"), "{logs}");
    assert!(!logs.contains(TOKEN));
    assert!(texts.iter().all(|t| !t.contains(TOKEN)));
    assert_token_sent_and_contained(&fake.requests());
}
