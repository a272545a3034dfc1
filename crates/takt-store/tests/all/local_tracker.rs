//! The local tracker against the tracker contract (R-049..R-052).

use std::collections::BTreeSet;

use takt_core::ports::{Tracker, TrackerError};
use takt_protocol::BlockerRef;
use takt_store::{LocalTracker, NewIssue, Store, StoreError};

use crate::support::temp_store;

fn tracker(store: Store) -> LocalTracker {
    LocalTracker::new(
        store,
        vec!["Todo".into(), "In Progress".into()],
        vec!["Done".into(), "Cancelled".into()],
    )
}

fn titled(title: &str) -> NewIssue {
    NewIssue {
        title: title.into(),
        ..NewIssue::default()
    }
}

#[tokio::test]
async fn identifiers_count_up_across_reopen() {
    let (dir, store) = temp_store().await;
    let local = tracker(store.clone());
    let a = local.create_issue(titled("a"), 1).await.unwrap();
    let b = local.create_issue(titled("b"), 2).await.unwrap();
    assert_eq!(a.identifier, "TAKT-1");
    assert_eq!(b.identifier, "TAKT-2");
    assert_ne!(a.id, b.id);
    assert!(uuid::Uuid::parse_str(&a.id).is_ok(), "{}", a.id);
    store.close().await;

    let local = tracker(Store::open(dir.path()).await.unwrap());
    let c = local.create_issue(titled("c"), 3).await.unwrap();
    assert_eq!(c.identifier, "TAKT-3");
    let all = local.list(None).await.unwrap();
    let identifiers: Vec<&str> = all.iter().map(|i| i.identifier.as_str()).collect();
    assert_eq!(identifiers, ["TAKT-1", "TAKT-2", "TAKT-3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creators_on_two_handles_get_distinct_identifiers() {
    let (dir, first) = temp_store().await;
    let second = Store::open(dir.path()).await.unwrap();
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let local = tracker(if worker % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        });
        tasks.push(tokio::spawn(async move {
            let mut identifiers = Vec::new();
            for n in 0..10 {
                let issue = local
                    .create_issue(titled(&format!("w{worker} n{n}")), n)
                    .await
                    .unwrap();
                identifiers.push(issue.identifier);
            }
            identifiers
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let unique: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(unique.len(), 40);
    let expected: BTreeSet<String> = (1..=40).map(|n| format!("TAKT-{n}")).collect();
    assert_eq!(unique, expected);
}

#[tokio::test]
async fn r049_a_new_issue_has_every_field_normalized() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store);
    let issue = local
        .create_issue(
            NewIssue {
                title: "Add a dark mode".into(),
                description: Some("Users ask for it.".into()),
                priority: Some(2),
                labels: vec![" UI ".into(), "ui".into(), "".into(), "Feature".into()],
                blocked_by: vec![],
                state: None,
                author: None,
            },
            1_700_000_000_000,
        )
        .await
        .unwrap();
    assert_eq!(issue.labels, vec!["ui", "feature"]);
    assert_eq!(issue.state, "Todo");
    assert_eq!(issue.priority, Some(2));
    assert_eq!(issue.description.as_deref(), Some("Users ask for it."));
    assert_eq!(issue.url, None);
    assert_eq!(issue.branch_name, None);
    assert!(issue.dispatchable);
    assert!(issue.has_required_fields());
    assert_eq!(
        issue.created_at.as_deref(),
        Some("2023-11-14T22:13:20.000Z")
    );
    assert_eq!(issue.updated_at, issue.created_at);
    // Every field is present in JSON, nullable ones as null.
    let json = serde_json::to_value(&issue).unwrap();
    for key in [
        "id",
        "identifier",
        "title",
        "description",
        "priority",
        "state",
        "branch_name",
        "url",
        "assignee_id",
        "labels",
        "blocked_by",
        "dispatchable",
        "created_at",
        "updated_at",
        "native_ref",
    ] {
        assert!(json.get(key).is_some(), "missing {key}: {json}");
    }
}

#[tokio::test]
async fn invalid_new_issues_are_rejected_without_using_an_identifier() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store);
    for priority in [-1, 5] {
        let err = local
            .create_issue(
                NewIssue {
                    title: "x".into(),
                    priority: Some(priority),
                    ..NewIssue::default()
                },
                1,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("0 to 4"), "{err}");
    }
    for title in ["", "   \t"] {
        let err = local.create_issue(titled(title), 1).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains("title"), "{err}");
    }
    let err = local
        .create_issue(
            NewIssue {
                title: "x".into(),
                blocked_by: vec!["TAKT-77".into()],
                ..NewIssue::default()
            },
            1,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(
        err.to_string().contains("unknown blocker 'TAKT-77'"),
        "{err}"
    );

    for priority in [0, 4] {
        let ok = NewIssue {
            title: "ok".into(),
            priority: Some(priority),
            ..NewIssue::default()
        };
        local.create_issue(ok, 1).await.unwrap();
    }
    let identifiers: Vec<String> = local
        .list(None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.identifier)
        .collect();
    assert_eq!(identifiers, ["TAKT-1", "TAKT-2"]);
}

#[tokio::test]
async fn blockers_keep_an_issue_undispatchable_until_they_are_terminal() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store);
    let blocker = local.create_issue(titled("schema"), 1).await.unwrap();
    let blocked = local
        .create_issue(
            NewIssue {
                title: "api".into(),
                blocked_by: vec!["takt-1".into(), blocker.id.clone()],
                ..NewIssue::default()
            },
            2,
        )
        .await
        .unwrap();
    assert!(!blocked.dispatchable);
    assert_eq!(
        blocked.blocked_by,
        vec![BlockerRef {
            id: Some(blocker.id.clone()),
            identifier: Some("TAKT-1".into()),
            state: Some("Todo".into()),
        }],
        "one entry per blocker, however it was named"
    );

    local.set_state("TAKT-1", "In Progress", 3).await.unwrap();
    let now = local.get("TAKT-2").await.unwrap().unwrap();
    assert!(!now.dispatchable);
    assert_eq!(now.blocked_by[0].state.as_deref(), Some("In Progress"));

    // Terminal states compare case-insensitively.
    local.set_state(&blocker.id, "done", 4).await.unwrap();
    let now = local.get("TAKT-2").await.unwrap().unwrap();
    assert!(now.dispatchable);
    let fetched = local
        .fetch_issues_by_ids(std::slice::from_ref(&blocked.id))
        .await
        .unwrap();
    assert!(fetched[0].dispatchable);
}

#[tokio::test]
async fn a_blocker_that_disappeared_keeps_blocking() {
    let (dir, store) = temp_store().await;
    let local = tracker(store);
    let blocker = local.create_issue(titled("a"), 1).await.unwrap();
    let blocked = local
        .create_issue(
            NewIssue {
                title: "b".into(),
                blocked_by: vec!["TAKT-1".into()],
                ..NewIssue::default()
            },
            2,
        )
        .await
        .unwrap();
    let mut raw = crate::support::tamper_connection(dir.path()).await;
    sqlx::query("DELETE FROM issues WHERE id = ?")
        .bind(&blocker.id)
        .execute(&mut raw)
        .await
        .unwrap();
    let now = local.get(&blocked.id).await.unwrap().unwrap();
    assert!(!now.dispatchable);
    assert_eq!(
        now.blocked_by,
        vec![BlockerRef {
            id: Some(blocker.id),
            identifier: None,
            state: None,
        }]
    );
}

#[tokio::test]
async fn r050_fetch_by_states_is_case_insensitive_and_includes_undispatchable_issues() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store);
    local.create_issue(titled("a"), 1).await.unwrap();
    local
        .create_issue(
            NewIssue {
                title: "b".into(),
                blocked_by: vec!["TAKT-1".into()],
                ..NewIssue::default()
            },
            2,
        )
        .await
        .unwrap();
    let c = local.create_issue(titled("c"), 3).await.unwrap();
    local
        .set_state(&c.identifier, "In Progress", 4)
        .await
        .unwrap();
    local.create_issue(titled("d"), 5).await.unwrap();
    local.set_state("TAKT-4", "Done", 6).await.unwrap();

    let todo = local
        .fetch_issues_by_states(&["  TODO ".to_owned()])
        .await
        .unwrap();
    let identifiers: Vec<&str> = todo.iter().map(|i| i.identifier.as_str()).collect();
    assert_eq!(identifiers, ["TAKT-1", "TAKT-2"]);
    assert!(
        !todo[1].dispatchable,
        "non-dispatchable issues are returned too"
    );

    let active = local
        .fetch_issues_by_states(&["todo".to_owned(), "in progress".to_owned()])
        .await
        .unwrap();
    assert_eq!(active.len(), 3);
    assert_eq!(active[2].state, "In Progress", "the spelling is kept");

    let listed = local.list(Some(&["DONE".to_owned()])).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].identifier, "TAKT-4");
}

#[tokio::test]
async fn r050_an_empty_state_list_returns_nothing_without_a_query() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store.clone());
    local.create_issue(titled("a"), 1).await.unwrap();
    // With the database closed, any query would fail: the empty call must not make one.
    store.close().await;
    assert_eq!(local.fetch_issues_by_states(&[]).await.unwrap(), vec![]);
    assert_eq!(local.fetch_issues_by_ids(&[]).await.unwrap(), vec![]);
    let err = local
        .fetch_issues_by_states(&["Todo".to_owned()])
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Request(_)), "{err:?}");
}

#[tokio::test]
async fn r051_fetch_by_ids_omits_missing_ids_and_returns_each_once() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store);
    let a = local.create_issue(titled("a"), 1).await.unwrap();
    let b = local.create_issue(titled("b"), 2).await.unwrap();
    local.create_issue(titled("c"), 3).await.unwrap();
    let fetched = local
        .fetch_issues_by_ids(&[
            b.id.clone(),
            "no-such-id".to_owned(),
            a.id.clone(),
            b.id.clone(),
        ])
        .await
        .unwrap();
    let mut ids: Vec<String> = fetched.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(
        fetched.iter().find(|i| i.id == a.id),
        Some(&a),
        "full snapshots"
    );
}

#[tokio::test]
async fn transition_moves_the_issue_and_reports_unknown_ids() {
    let (_dir, store) = temp_store().await;
    let local = tracker(store);
    assert_eq!(local.kind(), "local");
    let a = local.create_issue(titled("a"), 1).await.unwrap();
    local.transition(&a.id, "Human Review").await.unwrap();
    assert_eq!(
        local.get(&a.id).await.unwrap().unwrap().state,
        "Human Review"
    );
    let err = local.transition("missing", "Done").await.unwrap_err();
    assert!(matches!(err, TrackerError::NotFound(_)), "{err:?}");
}
