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

// ---------------------------------------------------------------------------------------------
// Comments: write-back and answers

const MARKER: &str = "<!-- takt:status -->";
/// 2025-06-15T00:00:00Z: comments placed around it are all in the past.
const ASKED_AT_MS: i64 = 1_749_945_600_000;

async fn fetch_one(tracker: &Arc<dyn Tracker>, n: u64) -> takt_protocol::Issue {
    tracker
        .fetch_issues_by_ids(&[lin(n)])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .pop()
        .unwrap_or_else(|| panic!("no issue {n}"))
}

/// The GraphQL operations recorded, by the operation name each body names.
fn operations(fake: &LinearFake, name: &str) -> Vec<takt_trackers::fake::Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.body.contains(name))
        .collect()
}

#[tokio::test]
async fn takts_comment_is_written_once_and_then_edited_in_place() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(2);
    let person = "Looks right <!-- not takt's --> to me";
    fake.add_comment(2, "grace", person);
    let issue = fetch_one(&tracker, 2).await;
    assert!(tracker.has_comments());
    for status in ["started", "merged"] {
        tracker
            .upsert_comment(&issue, MARKER, &format!("{MARKER}\n{status}"))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        fake.comments(2),
        [person.to_owned(), format!("{MARKER}\nmerged")]
    );
    assert!(fake.comments(1).is_empty());

    let creates = operations(&fake, "SymphonyLinearCreateComment");
    assert_eq!(creates.len(), 1, "created once");
    assert!(
        creates[0]
            .body
            .contains("commentCreate(input: {issueId: $issueId, body: $body}) { success")
    );
    // Linear's internal issue id (`Issue.id`), and the Markdown body verbatim, marker included.
    assert_eq!(creates[0].variables()["issueId"], json!(lin(2)));
    assert_eq!(
        creates[0].variables()["body"],
        json!(format!("{MARKER}\nstarted"))
    );
    let updates = operations(&fake, "SymphonyLinearUpdateComment");
    assert_eq!(updates.len(), 1, "then edited in place");
    assert!(
        updates[0]
            .body
            .contains("commentUpdate(id: $id, input: {body: $body}) { success")
    );
    assert!(
        updates[0].variables()["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("comment-"))
    );
    let lookups = operations(&fake, "SymphonyLinearIssueComments");
    assert_eq!(lookups.len(), 2, "one lookup before each write");
    for lookup in &lookups {
        assert_eq!(lookup.variables()["id"], json!(lin(2)));
        assert!(
            lookup.variables().get("filter").is_none(),
            "the lookup reads every comment"
        );
    }

    // The marker round-trips: the comment read back holds it as written.
    let read = tracker
        .comments_since(&issue, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bodies: Vec<(&str, &str)> = read
        .iter()
        .map(|c| (c.author.as_str(), c.body.as_str()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("grace", person),
            ("takt-bot", format!("{MARKER}\nmerged").as_str())
        ]
    );
}

#[tokio::test]
async fn the_marker_lookup_pages_until_it_finds_the_comment_and_no_further() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(2);
    // Issue 1: sixty older comments, so takt's own lands on the second page.
    for i in 0..60 {
        fake.add_comment_at(1, "grace", &format!("chatter {i}"), ASKED_AT_MS + i);
    }
    let first = fetch_one(&tracker, 1).await;
    let second = fetch_one(&tracker, 2).await;
    tracker
        .upsert_comment(&first, MARKER, &format!("{MARKER}\nstarted"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    fake.clear_requests();
    tracker
        .upsert_comment(&first, MARKER, &format!("{MARKER}\nmerged"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let comments = fake.comments(1);
    assert_eq!(comments.len(), 61, "edited, not added");
    assert_eq!(comments.iter().filter(|c| c.contains(MARKER)).count(), 1);
    assert_eq!(comments[60], format!("{MARKER}\nmerged"));
    let requests = fake.requests();
    let afters: Vec<serde_json::Value> = requests
        .iter()
        .filter(|r| r.body.contains("SymphonyLinearIssueComments"))
        .map(|r| r.variables()["after"].clone())
        .collect();
    assert_eq!(afters, [json!(null), json!("cursor:50")]);
    assert_eq!(requests.len(), 3);
    assert!(requests[2].body.contains("SymphonyLinearUpdateComment"));
    for request in &requests[..2] {
        assert_eq!(request.variables()["first"], json!(50));
        assert!(
            request
                .body
                .contains("comments(first: $first, after: $after, orderBy: createdAt")
        );
        assert!(request.body.contains("pageInfo { hasNextPage endCursor }"));
    }

    // Issue 2: takt's comment is the oldest; the pages after it are never read.
    tracker
        .upsert_comment(&second, MARKER, &format!("{MARKER}\nstarted"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let later = chrono::Utc::now().timestamp_millis() + 1_000;
    for i in 0..60 {
        fake.add_comment_at(2, "heidi", &format!("later {i}"), later + i);
    }
    fake.clear_requests();
    tracker
        .upsert_comment(&second, MARKER, &format!("{MARKER}\nfailed"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.comments(2)[0], format!("{MARKER}\nfailed"));
    assert_eq!(fake.comments(2).len(), 61);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one page, then the edit: {requests:?}");
    assert!(requests[1].body.contains("SymphonyLinearUpdateComment"));
}

#[tokio::test]
async fn comments_since_a_time_are_read_oldest_first_across_pages() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(2);
    for (i, before) in [1_i64, 1_000, 60_000].into_iter().enumerate() {
        fake.add_comment_at(1, "early", &format!("before {i}"), ASKED_AT_MS - before);
    }
    // Added newest first: the order read back is Linear's, not the insertion order.
    for i in (0..120_i64).rev() {
        fake.add_comment_at(1, "grace", &format!("answer {i}"), ASKED_AT_MS + i * 1_000);
    }
    fake.add_comment_at(2, "grace", "another issue", ASKED_AT_MS + 5);
    fake.add_bot_comment(1, "GitHub", "Linked a pull request");
    let issue = fetch_one(&tracker, 1).await;
    fake.clear_requests();
    let comments = tracker
        .comments_since(&issue, ASKED_AT_MS)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(comments.len(), 121, "120 answers and the bot's comment");
    let expected: Vec<String> = (0..120).map(|i| format!("answer {i}")).collect();
    let bodies: Vec<&str> = comments[..120].iter().map(|c| c.body.as_str()).collect();
    assert_eq!(bodies, expected);
    assert_eq!(
        comments[0].created_at_ms, ASKED_AT_MS,
        "a comment at the time counts"
    );
    assert!(
        comments
            .windows(2)
            .all(|w| w[0].created_at_ms <= w[1].created_at_ms),
        "oldest first"
    );
    // The handle (`displayName`), not the full name; no user → the bot name.
    assert!(comments[..120].iter().all(|c| c.author == "grace"));
    assert_eq!(comments[120].author, "linear-bot");
    assert_eq!(comments[120].body, "Linked a pull request");

    let requests = fake.requests();
    let afters: Vec<serde_json::Value> = requests
        .iter()
        .map(|r| r.variables()["after"].clone())
        .collect();
    assert_eq!(
        afters,
        [json!(null), json!("cursor:50"), json!("cursor:100")]
    );
    for request in &requests {
        assert!(request.body.contains("query SymphonyLinearIssueComments("));
        assert!(request.body.contains("user { name displayName }"));
        let variables = request.variables();
        assert_eq!(variables["id"], json!(lin(1)));
        assert_eq!(
            variables["filter"],
            json!({"createdAt": {"gte": "2025-06-15T00:00:00.000Z"}})
        );
    }
    assert_token_sent_and_contained(&requests);
}

#[tokio::test]
async fn comment_error_forms_map_onto_the_categories() {
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    let issue = fetch_one(&tracker, 1).await;
    let write = |status: &str| format!("{MARKER}\n{status}");

    fake.fail_next(Failure::GraphqlErrors);
    match tracker.comments_since(&issue, 0).await {
        Err(error @ TrackerError::Response(_)) => {
            assert_eq!(error.category(), "tracker_response");
            assert!(
                error
                    .to_string()
                    .contains("linear_graphql_errors: Cannot query field"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::Unauthorized);
    match tracker.upsert_comment(&issue, MARKER, &write("a")).await {
        Err(error @ TrackerError::Status { status: 401, .. }) => {
            assert_eq!(error.category(), "tracker_status");
            assert!(
                error
                    .to_string()
                    .contains("linear_api_status: the API key was rejected"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The lookup succeeds, the mutation fails.
    fake.fail_next(Failure::Pass);
    fake.fail_next(Failure::GraphqlErrors);
    match tracker.upsert_comment(&issue, MARKER, &write("b")).await {
        Err(TrackerError::Response(message)) => {
            assert!(message.starts_with("linear_graphql_errors"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::Pass);
    fake.fail_next(Failure::Unsuccessful);
    match tracker.upsert_comment(&issue, MARKER, &write("c")).await {
        Err(error @ TrackerError::Response(_)) => assert_eq!(
            error.to_string(),
            "tracker_response: linear_unknown_payload: commentCreate did not succeed"
        ),
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::ServerError);
    assert!(matches!(
        tracker.comments_since(&issue, 0).await,
        Err(TrackerError::Status { status: 500, .. })
    ));
    assert!(fake.comments(1).is_empty(), "no failed write landed");

    for i in 0..60 {
        fake.add_comment_at(1, "grace", &format!("c{i}"), ASKED_AT_MS + i);
    }
    fake.fail_next(Failure::MissingEndCursor);
    match tracker.comments_since(&issue, 0).await {
        Err(error @ TrackerError::Pagination(_)) => {
            assert!(error.to_string().contains("linear_missing_end_cursor"))
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(Failure::GraphqlRateLimited { reset_in_ms: 3_000 });
    assert!(matches!(
        tracker.comments_since(&issue, 0).await,
        Err(TrackerError::RateLimited {
            retry_after_ms: Some(_)
        })
    ));

    // An issue Linear does not know is an error, never an empty list.
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    let gone = takt_protocol::Issue {
        id: "lin-gone".into(),
        ..fetch_one(&tracker, 1).await
    };
    assert!(matches!(
        tracker.comments_since(&gone, 0).await,
        Err(TrackerError::Response(_))
    ));
    assert!(
        tracker
            .upsert_comment(&gone, MARKER, &write("d"))
            .await
            .is_err()
    );
    // Nothing stuck: the real issue still takes its comment.
    let issue = fetch_one(&tracker, 1).await;
    tracker
        .upsert_comment(&issue, MARKER, &write("e"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fake.comments(1), [write("e")]);
}

#[tokio::test]
async fn comment_calls_keep_the_api_key_out_of_logs_errors_and_requests() {
    let (captured, _guard) = capture_logs();
    let (fake, tracker) = setup(json!({})).await;
    fake.seed(1);
    let issue = fetch_one(&tracker, 1).await;
    let mut texts = Vec::new();
    for failure in [
        Failure::Unauthorized,
        Failure::ServerError,
        Failure::GraphqlErrors,
    ] {
        fake.fail_next(failure.clone());
        if let Err(error) = tracker.comments_since(&issue, 0).await {
            texts.push(format!("{error} {error:?}"));
        }
        fake.fail_next(Failure::Pass);
        fake.fail_next(failure);
        if let Err(error) = tracker.upsert_comment(&issue, MARKER, MARKER).await {
            texts.push(format!("{error} {error:?}"));
        }
    }
    assert_eq!(texts.len(), 6);
    tracker
        .upsert_comment(&issue, MARKER, MARKER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let logs = captured.text();
    assert!(logs.contains("linear_api_status"), "{logs}");
    assert!(!logs.contains(TOKEN));
    assert!(texts.iter().all(|t| !t.contains(TOKEN)), "{texts:?}");
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.body.contains("SymphonyLinearCreateComment"))
    );
    assert!(!format!("{requests:?}").contains(TOKEN));
    assert_token_sent_and_contained(&requests);
}
