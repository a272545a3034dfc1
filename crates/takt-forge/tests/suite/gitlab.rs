use takt_forge::fake::GitlabFake;
use takt_forge::{
    CheckSource, CommitStatus, ForgeError, MergeOutcome, PullRequestState, StatusState, build,
};

use super::{TOKEN, World, assert_no_token, spec};

async fn setup() -> (World, GitlabFake) {
    let world = World::new();
    let fake = GitlabFake::start(&world.remote, "acme/tools/widgets", TOKEN).await;
    (world, fake)
}

#[tokio::test]
async fn merge_requests_are_found_by_source_branch_and_updated_in_place() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("a.txt", "a\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t1", None)
        .await
        .unwrap();
    let first = forge
        .ensure_pull_request(&spec("takt/t1", "Fix a", "v1"))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.head_sha, commit);
    let second = forge
        .ensure_pull_request(&spec("takt/t1", "Fix a!", "v2"))
        .await
        .unwrap();
    assert!(!second.created && second.updated);
    assert_eq!(second.number, first.number);
    let requests = fake.merge_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].title.as_str(), requests[0].description.as_str()),
        ("Fix a!", "v2")
    );
    let recorded = fake.requests();
    assert!(recorded.iter().all(|r| r.authorized));
    assert!(
        recorded[0]
            .path
            .starts_with("/api/v4/projects/acme%2Ftools%2Fwidgets/"),
        "{}",
        recorded[0].path
    );
    let list = recorded
        .iter()
        .find(|r| r.method == "GET" && r.path.ends_with("/merge_requests"))
        .unwrap();
    assert_eq!(
        list.query_param("source_branch").as_deref(),
        Some("takt/t1")
    );
    assert_eq!(list.query_param("state").as_deref(), Some("opened"));
}

#[tokio::test]
async fn statuses_are_idempotent_by_name() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("b.txt", "b\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t2", None)
        .await
        .unwrap();
    let pending = CommitStatus {
        state: StatusState::Pending,
        description: "verifying".to_owned(),
        target_url: None,
    };
    forge.set_status(&commit, &pending).await.unwrap();
    forge.set_status(&commit, &pending).await.unwrap();
    // Even when the check before the post misses it, the forge's refusal to re-enter the same
    // state counts as done.
    forge
        .set_status(
            &commit,
            &CommitStatus {
                state: StatusState::Pending,
                description: "still verifying".to_owned(),
                target_url: None,
            },
        )
        .await
        .unwrap();
    forge
        .set_status(
            &commit,
            &CommitStatus {
                state: StatusState::Failure,
                description: "2 gates red".to_owned(),
                target_url: None,
            },
        )
        .await
        .unwrap();
    let statuses = fake.statuses(&commit);
    let states: Vec<_> = statuses
        .iter()
        .map(|s| (s.0.as_str(), s.1.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![("takt/verify", "pending"), ("takt/verify", "failed")]
    );
}

#[tokio::test]
async fn review_state_reads_approvals_requested_changes_and_pipeline_jobs() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("c.txt", "c\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t3", None)
        .await
        .unwrap();
    let mr = forge
        .ensure_pull_request(&spec("takt/t3", "C", "c"))
        .await
        .unwrap();
    fake.set_page_size(1); // pagination through x-next-page

    fake.approve(mr.number, "alice");
    fake.approve(mr.number, "alice");
    fake.approve(mr.number, "bob");
    fake.unapprove(mr.number, "bob");
    fake.request_changes(
        mr.number,
        "carol",
        "needs a test",
        &[("lib/x.rb", 12, "off by one")],
    );
    let job = fake.add_check(&commit, "rspec", "failed", "Failures:\n  1) X works\n");
    fake.add_check(&commit, "rubocop", "success", "ok");

    let state = forge.review_state(mr.number).await.unwrap();
    assert_eq!(state.state, PullRequestState::Open);
    let logins: Vec<&str> = state.approvals.iter().map(|a| a.login.as_str()).collect();
    assert_eq!(logins, ["alice"]);
    assert_eq!(
        state.approvals[0].commit, None,
        "GitLab does not say which commit"
    );
    assert!(
        state.approvals[0].approved_at.is_some(),
        "{:?}",
        state.approvals
    );
    assert_eq!(state.changes_requested.len(), 1);
    let carol = &state.changes_requested[0];
    assert_eq!(carol.author, "carol");
    let notes: Vec<_> = carol
        .comments
        .iter()
        .map(|c| (c.body.as_str(), c.path.as_deref(), c.line))
        .collect();
    assert_eq!(
        notes,
        vec![
            ("needs a test", None, None),
            ("off by one", Some("lib/x.rb"), Some(12))
        ]
    );
    assert_eq!(state.checks.len(), 2, "{:?}", state.checks);
    let failed = state.failed_checks();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].id, failed[0].source),
        (job, CheckSource::GitlabJob)
    );
    let log = forge.check_log(failed[0]).await.unwrap();
    assert!(log.contains("1) X works"));
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/discussions")
                && r.query_param("page").as_deref() == Some("2"))
    );
}

#[tokio::test]
async fn merge_squashes_checks_the_sha_and_is_idempotent() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("d.txt", "d\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t4", None)
        .await
        .unwrap();
    let mr = forge
        .ensure_pull_request(&spec("takt/t4", "D", "d"))
        .await
        .unwrap();
    fake.set_mergeable(false);
    assert!(matches!(
        forge.merge(mr.number, &commit).await,
        Err(ForgeError::Conflict(_))
    ));
    fake.set_mergeable(true);
    let other = world.commit("e.txt", "e\n");
    world.push_as_someone_else(&other, "takt/t4");
    assert!(matches!(
        forge.merge(mr.number, &commit).await,
        Err(ForgeError::Conflict(_))
    ));
    assert!(matches!(
        forge.merge(mr.number, &other).await.unwrap(),
        MergeOutcome::Merged { sha: Some(_) }
    ));
    assert_eq!(fake.merge_requests()[0].squash, Some(true));
    assert!(matches!(
        forge.merge(mr.number, &other).await.unwrap(),
        MergeOutcome::AlreadyMerged { .. }
    ));
}

#[tokio::test]
async fn rate_limits_and_bad_tokens() {
    let (_world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    fake.fail_next(
        429,
        &[("retry-after", "5"), ("ratelimit-remaining", "0")],
        "Retry later",
    );
    assert!(matches!(
        forge.review_state(1).await,
        Err(ForgeError::RateLimited {
            retry_after_ms: 5000
        })
    ));
    let bad = build(fake.settings("glpat-wrong")).unwrap();
    let error = bad.review_state(1).await.unwrap_err();
    assert!(
        matches!(error, ForgeError::Auth { status: 401, .. }),
        "{error:?}"
    );
    assert!(!format!("{error:?}").contains("glpat-wrong"));
    for request in fake.requests() {
        assert_no_token(
            "a recorded request",
            &format!(
                "{} {} {} {:?}",
                request.path, request.query, request.body, request.headers
            ),
        );
    }
}

#[tokio::test]
async fn crash_resume_and_a_racing_create_end_with_one_merge_request() {
    let (world, fake) = setup().await;
    let commit = world.commit("f.txt", "f\n");
    build(fake.settings(TOKEN))
        .unwrap()
        .push_branch(&world.git_dir(), &commit, "takt/t5", None)
        .await
        .unwrap();
    let forge = build(fake.settings(TOKEN)).unwrap();
    assert_eq!(
        forge
            .push_branch(&world.git_dir(), &commit, "takt/t5", None)
            .await
            .unwrap(),
        takt_forge::PushOutcome::AlreadyThere
    );
    let first = forge
        .ensure_pull_request(&spec("takt/t5", "F", "f"))
        .await
        .unwrap();
    assert!(first.created);
    // A stale listing: the create answers 409 and the client takes the existing request.
    fake.fail_next(200, &[("content-type", "application/json")], "[]");
    let again = build(fake.settings(TOKEN))
        .unwrap()
        .ensure_pull_request(&spec("takt/t5", "F", "f"))
        .await
        .unwrap();
    assert_eq!(again.number, first.number);
    assert!(!again.created);
    assert_eq!(fake.merge_requests().len(), 1);
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/merge_requests"))
        .count();
    assert_eq!(creates, 2, "the second create was refused as a duplicate");
}

#[tokio::test]
async fn closing_a_merge_request_comments_once_and_leaves_closed_or_unknown_ones_alone() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("h.txt", "h\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t8", None)
        .await
        .unwrap();
    let mr = forge
        .ensure_pull_request(&spec("takt/t8", "H", "h"))
        .await
        .unwrap();
    forge
        .close_pull_request(mr.number, "takt closed this pull request: cancelled (T-8).")
        .await
        .unwrap();
    assert_eq!(fake.merge_requests()[0].state, "closed");
    assert_eq!(
        fake.conversation(mr.number),
        ["takt closed this pull request: cancelled (T-8)."]
    );
    forge.close_pull_request(mr.number, "again").await.unwrap();
    forge.close_pull_request(999, "gone").await.unwrap();
    assert_eq!(fake.conversation(mr.number).len(), 1);
}
