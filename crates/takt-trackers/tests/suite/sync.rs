//! Incremental sync: a poll costs requests proportional to what changed, not to project size.

use serde_json::json;
use takt_trackers::fake::Fake;

use super::*;

struct Case {
    fake: Fake,
    tracker: Arc<dyn Tracker>,
    active: Vec<String>,
    closed: &'static str,
}

async fn case(kind: &str, full_sync_every: u32) -> Case {
    let (fake, provider_keys, active, terminal, closed) = match kind {
        "github" => {
            let fake = Fake::github("acme/big", TOKEN)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let keys = json!({"repo": "acme/big", "api_url": fake.url(), "token": TOKEN});
            (fake, keys, vec!["open"], vec!["closed"], "closed")
        }
        "gitlab" => {
            let fake = Fake::gitlab("acme/big", TOKEN)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let keys = json!({"project_path": "acme/big", "base_url": fake.url(), "token": TOKEN});
            (fake, keys, vec!["opened"], vec!["closed"], "closed")
        }
        _ => {
            let fake = Fake::linear("big", TOKEN)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let keys = json!({"project_slug": "big", "endpoint": fake.url(), "api_key": TOKEN});
            (
                fake,
                keys,
                vec!["Todo", "In Progress"],
                vec!["Done"],
                "Done",
            )
        }
    };
    let mut keys = provider_keys;
    keys["full_sync_every"] = json!(full_sync_every);
    let tracker = build(&config(kind, &active, &terminal, keys));
    Case {
        fake,
        tracker,
        active: states(&active),
        closed,
    }
}

/// Full poll, 10 changes, second poll: returns (full requests, incremental requests).
async fn poll_after_ten_changes(kind: &str, size: u64) -> (usize, usize) {
    let Case {
        fake,
        tracker,
        active,
        closed,
    } = case(kind, 20).await;
    fake.seed(size);
    let first = tracker
        .fetch_issues_by_states(&active)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.len() as u64, size);
    let full = fake.requests().len();
    fake.clear_requests();
    for n in 1..=9 {
        fake.update(n * 97, |issue| issue.title = format!("changed {n}"));
    }
    fake.update(size / 2, |issue| issue.state = closed.to_owned());
    let second = tracker
        .fetch_issues_by_states(&active)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        second.len() as u64,
        size - 1,
        "{kind}: the closed issue left"
    );
    assert!(
        second
            .iter()
            .all(|i| i.identifier != format!("X-{}", size / 2))
    );
    for n in 1..=9u64 {
        let title = second
            .iter()
            .find(|i| i.title == format!("changed {n}"))
            .map(|i| i.title.clone());
        assert!(title.is_some(), "{kind}: change {n} arrived");
    }
    (full, fake.requests().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_after_ten_changes_costs_requests_independent_of_project_size() {
    for kind in ["github", "gitlab", "linear"] {
        let (full_small, incremental_small) = poll_after_ten_changes(kind, 1_000).await;
        let (full_big, incremental_big) = poll_after_ten_changes(kind, 10_000).await;
        let page = if kind == "linear" { 50 } else { 100 };
        assert_eq!(
            full_big,
            10_000 / page,
            "{kind}: the first poll lists everything"
        );
        assert_eq!(full_small, 1_000 / page);
        assert_eq!(incremental_big, 1, "{kind}: ten changes fit in one page");
        assert_eq!(
            incremental_small, incremental_big,
            "{kind}: independent of project size"
        );
    }
}

#[tokio::test]
async fn deletions_are_noticed_by_the_periodic_full_listing() {
    for kind in ["github", "gitlab", "linear"] {
        let Case {
            fake,
            tracker,
            active,
            ..
        } = case(kind, 3).await;
        fake.seed(20);
        let poll = || async {
            tracker
                .fetch_issues_by_states(&active)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(poll().await.len(), 20); // 1: full
        fake.remove(5);
        assert_eq!(
            poll().await.len(),
            20,
            "{kind}: 2: incremental cannot see a deletion"
        );
        assert_eq!(poll().await.len(), 20, "{kind}: 3: incremental");
        assert_eq!(poll().await.len(), 19, "{kind}: 4: full listing notices it");
    }
}

#[tokio::test]
async fn issues_entering_and_leaving_the_requested_states_are_merged() {
    let Case {
        fake,
        tracker,
        active,
        closed,
    } = case("github", 20).await;
    fake.seed(5);
    fake.update(5, |issue| issue.state = closed.to_owned());
    assert_eq!(
        ids(&tracker
            .fetch_issues_by_states(&active)
            .await
            .unwrap_or_default()),
        ["1", "2", "3", "4"]
    );
    fake.update(5, |issue| issue.state = "open".to_owned());
    fake.update(2, |issue| issue.state = closed.to_owned());
    fake.add(takt_trackers::fake::FakeIssue::new(6, "open"));
    fake.update(6, |_| {});
    let issues = tracker
        .fetch_issues_by_states(&active)
        .await
        .unwrap_or_default();
    let mut got = ids(&issues);
    got.sort();
    assert_eq!(got, ["1", "3", "4", "5", "6"]);
    // The terminal-state listing keeps its own snapshot.
    let terminal = tracker
        .fetch_issues_by_states(&states(&["closed"]))
        .await
        .unwrap_or_default();
    assert_eq!(ids(&terminal), ["2"]);
}

#[tokio::test]
async fn full_sync_every_one_lists_in_full_each_poll() {
    let Case {
        fake,
        tracker,
        active,
        ..
    } = case("gitlab", 1).await;
    fake.seed(250);
    for _ in 0..3 {
        assert_eq!(
            tracker
                .fetch_issues_by_states(&active)
                .await
                .map(|v| v.len())
                .unwrap_or(0),
            250
        );
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), 9);
    assert!(requests.iter().all(|r| !r.query.contains("updated_after")));
}
