use takt_forge::fake::GithubFake;
use takt_forge::{
    CheckSource, CheckState, CommitStatus, ForgeError, MergeMethod, MergeOutcome, PullRequestState,
    StatusState, build,
};

use super::{TOKEN, World, assert_no_token, spec};

async fn setup() -> (World, GithubFake) {
    let world = World::new();
    let fake = GithubFake::start(&world.remote, "acme/widgets", TOKEN).await;
    (world, fake)
}

#[tokio::test]
async fn ensure_pull_request_twice_makes_one_and_updates_the_body_in_place() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("a.txt", "a\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t1", None)
        .await
        .unwrap();

    let first = forge
        .ensure_pull_request(&spec("takt/t1", "Fix a", "body v1"))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.head_sha, commit);
    let again = forge
        .ensure_pull_request(&spec("takt/t1", "Fix a", "body v1"))
        .await
        .unwrap();
    assert!(!again.created && !again.updated);
    assert_eq!(again.number, first.number);
    let updated = forge
        .ensure_pull_request(&spec("takt/t1", "Fix a", "body v2"))
        .await
        .unwrap();
    assert!(updated.updated);
    assert_eq!(updated.number, first.number);

    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].body, "body v2");
    assert_eq!(pulls[0].head, "takt/t1");
    let lists: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/repos/acme/widgets/pulls")
        .collect();
    assert_eq!(
        lists[0].query_param("head").as_deref(),
        Some("acme:takt/t1")
    );
    assert_eq!(lists[0].query_param("state").as_deref(), Some("open"));
    assert_eq!(lists[0].query_param("base").as_deref(), Some("main"));
    assert!(fake.requests().iter().all(|r| r.authorized));
}

#[tokio::test]
async fn a_fresh_instance_after_a_crash_finds_the_branch_and_the_request() {
    let (world, fake) = setup().await;
    let commit = world.commit("b.txt", "b\n");
    {
        // The first daemon pushed, then died before opening the request.
        let forge = build(fake.settings(TOKEN)).unwrap();
        forge
            .push_branch(&world.git_dir(), &commit, "takt/t2", None)
            .await
            .unwrap();
    }
    let forge = build(fake.settings(TOKEN)).unwrap();
    let pushed = forge
        .push_branch(&world.git_dir(), &commit, "takt/t2", None)
        .await
        .unwrap();
    assert_eq!(pushed, takt_forge::PushOutcome::AlreadyThere);
    let pr = forge
        .ensure_pull_request(&spec("takt/t2", "B", "b"))
        .await
        .unwrap();
    assert!(pr.created);
    // And once more, as if the answer to the create had been lost.
    let forge = build(fake.settings(TOKEN)).unwrap();
    let again = forge
        .ensure_pull_request(&spec("takt/t2", "B", "b"))
        .await
        .unwrap();
    assert_eq!(again.number, pr.number);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(
        world.remote_head("takt/t2").as_deref(),
        Some(commit.as_str())
    );
}

#[tokio::test]
async fn statuses_are_set_once_per_state_and_replaced_by_context() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("c.txt", "c\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t3", None)
        .await
        .unwrap();
    let pending = CommitStatus {
        state: StatusState::Pending,
        description: "verifying".to_owned(),
        target_url: Some("http://takt.local/tasks/t3".to_owned()),
    };
    forge.set_status(&commit, &pending).await.unwrap();
    forge.set_status(&commit, &pending).await.unwrap();
    let long = "x".repeat(300);
    forge
        .set_status(
            &commit,
            &CommitStatus {
                state: StatusState::Success,
                description: long,
                target_url: None,
            },
        )
        .await
        .unwrap();
    let statuses = fake.statuses(&commit);
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0].0, "takt/verify");
    assert_eq!(statuses[1].1, "success");
    assert_eq!(statuses[1].2.chars().count(), 140);
    // takt's own status is not one of the checks it reads back.
    let pr = forge
        .ensure_pull_request(&spec("takt/t3", "C", "c"))
        .await
        .unwrap();
    let state = forge.review_state(pr.number).await.unwrap();
    assert!(state.checks.is_empty(), "{:?}", state.checks);
}

#[tokio::test]
async fn review_state_counts_distinct_latest_approvals_and_reports_changes_and_failed_checks() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("d.txt", "d\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t4", None)
        .await
        .unwrap();
    let pr = forge
        .ensure_pull_request(&spec("takt/t4", "D", "d"))
        .await
        .unwrap();
    fake.set_page_size(2); // pagination through Link headers

    fake.approve(pr.number, "alice");
    fake.approve(pr.number, "alice");
    fake.comment(pr.number, "alice", "nice");
    let bob = fake.approve(pr.number, "bob");
    fake.dismiss(bob);
    fake.approve(pr.number, "carol");
    fake.request_changes(
        pr.number,
        "carol",
        "please rename",
        &[("src/a.rs", 3, "this name"), ("src/b.rs", 9, "and this")],
    );
    fake.request_changes(pr.number, "dave", "not like this", &[]);
    fake.approve(pr.number, "dave");
    let failing = fake.add_check(
        &commit,
        "ci / test",
        Some("failure"),
        "running tests\nassertion failed: x == 1\n",
    );
    fake.add_check(&commit, "ci / lint", Some("success"), "ok");
    fake.add_check(&commit, "ci / slow", None, "");
    fake.add_status(&commit, "other/ci", "success", "fine");

    let state = forge.review_state(pr.number).await.unwrap();
    assert_eq!(state.state, PullRequestState::Open);
    assert_eq!(state.head_sha, commit);
    assert_eq!(state.mergeable, Some(true));
    let logins: Vec<&str> = state.approvals.iter().map(|a| a.login.as_str()).collect();
    assert_eq!(logins, ["alice", "dave"]);
    assert!(
        state
            .approvals
            .iter()
            .all(|a| a.commit.as_deref() == Some(commit.as_str()) && a.approved_at.is_some()),
        "{:?}",
        state.approvals
    );
    assert_eq!(state.changes_requested.len(), 1);
    let carol = &state.changes_requested[0];
    assert_eq!(carol.author, "carol");
    assert_eq!(carol.body, "please rename");
    let bodies: Vec<_> = carol
        .comments
        .iter()
        .map(|c| (c.path.clone().unwrap(), c.line.unwrap(), c.body.clone()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            ("src/a.rs".to_owned(), 3, "this name".to_owned()),
            ("src/b.rs".to_owned(), 9, "and this".to_owned())
        ]
    );
    assert_eq!(state.comments_after(carol.comments[0].id).len(), 1);
    assert_eq!(state.checks.len(), 4, "{:?}", state.checks);
    assert!(state.checks_pending());
    assert!(!state.checks_green());
    let failed = state.failed_checks();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "ci / test");
    assert_eq!(failed[0].id, failing);
    assert_eq!(failed[0].state, CheckState::Failure);
    assert_eq!(
        failed[0].source,
        CheckSource::GithubCheckRun { actions: true }
    );
    let log = forge.check_log(failed[0]).await.unwrap();
    assert!(log.contains("assertion failed: x == 1"), "{log}");
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path.ends_with("/reviews") && r.query_param("page").as_deref() == Some("2"))
    );
}

#[tokio::test]
async fn an_approval_names_the_commit_it_was_given_on_after_a_new_push() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let first = world.commit("g.txt", "g\n");
    forge
        .push_branch(&world.git_dir(), &first, "takt/t7", None)
        .await
        .unwrap();
    let pr = forge
        .ensure_pull_request(&spec("takt/t7", "G", "g"))
        .await
        .unwrap();
    fake.approve(pr.number, "alice");
    let second = world.commit("g.txt", "g2\n");
    forge
        .push_branch(&world.git_dir(), &second, "takt/t7", Some(&first))
        .await
        .unwrap();
    fake.approve(pr.number, "bob");

    let state = forge.review_state(pr.number).await.unwrap();
    assert_eq!(state.head_sha, second);
    let by: Vec<(&str, Option<&str>)> = state
        .approvals
        .iter()
        .map(|a| (a.login.as_str(), a.commit.as_deref()))
        .collect();
    assert_eq!(
        by,
        [
            ("alice", Some(first.as_str())),
            ("bob", Some(second.as_str()))
        ],
        "alice approved the first push only"
    );
}

#[tokio::test]
async fn merge_checks_the_head_and_is_idempotent() {
    let (world, fake) = setup().await;
    let mut settings = fake.settings(TOKEN);
    settings.merge_method = MergeMethod::Rebase;
    let forge = build(settings).unwrap();
    let commit = world.commit("e.txt", "e\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t5", None)
        .await
        .unwrap();
    let pr = forge
        .ensure_pull_request(&spec("takt/t5", "E", "e"))
        .await
        .unwrap();

    fake.set_mergeable(false);
    assert!(matches!(
        forge.merge(pr.number, &commit).await,
        Err(ForgeError::Conflict(_))
    ));
    fake.set_mergeable(true);

    // Someone pushes on top: the verified head is no longer the head.
    let other = world.commit("f.txt", "f\n");
    world.push_as_someone_else(&other, "takt/t5");
    let moved = forge.merge(pr.number, &commit).await;
    assert!(
        matches!(&moved, Err(ForgeError::Conflict(m)) if m.contains(&other)),
        "{moved:?}"
    );
    assert!(!moved.unwrap_err().is_retryable());

    let merged = forge.merge(pr.number, &other).await.unwrap();
    assert!(matches!(merged, MergeOutcome::Merged { sha: Some(_) }));
    assert_eq!(fake.pulls()[0].merge_method.as_deref(), Some("rebase"));
    let again = forge.merge(pr.number, &other).await.unwrap();
    assert!(matches!(again, MergeOutcome::AlreadyMerged { .. }));
    let state = forge.review_state(pr.number).await.unwrap();
    assert_eq!(state.state, PullRequestState::Merged);
    let put = fake
        .requests()
        .into_iter()
        .rfind(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(put.json()["sha"], other.as_str());
}

#[tokio::test]
async fn rate_limits_and_bad_credentials_map_to_their_errors_without_the_token() {
    let (_world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();

    fake.fail_next(
        403,
        &[("retry-after", "42"), ("content-type", "application/json")],
        r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
    );
    let error = forge.review_state(1).await.unwrap_err();
    assert!(
        matches!(
            error,
            ForgeError::RateLimited {
                retry_after_ms: 42_000
            }
        ),
        "{error:?}"
    );
    assert!(error.is_retryable());

    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 30;
    fake.fail_next(
        403,
        &[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset.to_string()),
        ],
        r#"{"message":"API rate limit exceeded"}"#,
    );
    let error = forge.review_state(1).await.unwrap_err();
    let ForgeError::RateLimited { retry_after_ms } = error else {
        panic!("{error:?}")
    };
    assert!(
        (20_000..=31_000).contains(&retry_after_ms),
        "{retry_after_ms}"
    );

    fake.fail_next(429, &[("retry-after", "3")], "");
    assert!(matches!(
        forge.review_state(1).await,
        Err(ForgeError::RateLimited {
            retry_after_ms: 3000
        })
    ));

    fake.fail_next(502, &[], "<html>bad gateway</html>");
    let error = forge.review_state(1).await.unwrap_err();
    assert!(
        matches!(error, ForgeError::Status { status: 502, .. }) && error.is_retryable(),
        "{error:?}"
    );

    // A wrong token: 401, not retryable, and neither token shows up anywhere.
    let mut wrong = fake.settings("wrong-token-value");
    wrong.token = takt_forge::Secret::new("wrong-token-value");
    let bad = build(wrong.clone()).unwrap();
    let error = bad
        .ensure_pull_request(&spec("takt/x", "X", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ForgeError::Auth { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(!format!("{error} {error:?}").contains("wrong-token-value"));
    assert!(!format!("{wrong:?}").contains("wrong-token-value"));
    assert_no_token("settings Debug", &format!("{:?}", fake.settings(TOKEN)));

    // The fake saw the token only in the credential header.
    for request in fake.requests() {
        assert_no_token(
            "a recorded request",
            &format!(
                "{} {} {} {:?}",
                request.path, request.query, request.body, request.headers
            ),
        );
    }
    assert!(fake.requests().iter().any(|r| !r.authorized));
}

#[tokio::test]
async fn a_create_that_races_an_existing_request_uses_it() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("g.txt", "g\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t6", None)
        .await
        .unwrap();
    let first = forge
        .ensure_pull_request(&spec("takt/t6", "G", "g"))
        .await
        .unwrap();
    // The next listing is stale (the request was opened after it was computed): the create
    // answers 422 "already exists", and the client takes the existing request.
    fake.fail_next(200, &[("content-type", "application/json")], "[]");
    let again = forge
        .ensure_pull_request(&spec("takt/t6", "G", "g2"))
        .await
        .unwrap();
    assert_eq!(again.number, first.number);
    assert!(!again.created && again.updated);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.pulls()[0].body, "g2");
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/repos/acme/widgets/pulls")
        .count();
    assert_eq!(creates, 2, "the second create was refused as a duplicate");
}

#[tokio::test]
async fn a_forge_that_echoes_the_token_does_not_leak_it_into_errors() {
    let (_world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    fake.fail_next(
        500,
        &[],
        &format!(r#"{{"message":"boom for Bearer {TOKEN}"}}"#),
    );
    let error = forge.review_state(1).await.unwrap_err();
    assert!(
        matches!(error, ForgeError::Status { status: 500, .. }),
        "{error:?}"
    );
    assert_no_token("the error", &format!("{error} {error:?}"));
    assert!(error.to_string().contains("boom for Bearer ***"), "{error}");
}

#[tokio::test]
async fn checks_of_other_apps_give_their_summary_as_the_log() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("h.txt", "h\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t7", None)
        .await
        .unwrap();
    let pr = forge
        .ensure_pull_request(&spec("takt/t7", "H", "h"))
        .await
        .unwrap();
    fake.add_app_check(
        &commit,
        "circleci: build",
        "circleci-checks",
        Some("timed_out"),
        "step 3 hung",
    );
    let state = forge.review_state(pr.number).await.unwrap();
    let failed = state.failed_checks();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].state, CheckState::Cancelled);
    assert_eq!(
        failed[0].source,
        CheckSource::GithubCheckRun { actions: false }
    );
    let log = forge.check_log(failed[0]).await.unwrap();
    assert!(log.contains("step 3 hung"), "{log}");
    assert!(
        !fake
            .requests()
            .iter()
            .any(|r| r.path.contains("/actions/jobs/"))
    );
}

#[tokio::test]
async fn closing_a_pull_request_comments_once_and_leaves_closed_or_unknown_ones_alone() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("h.txt", "h\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t8", None)
        .await
        .unwrap();
    let pr = forge
        .ensure_pull_request(&spec("takt/t8", "H", "h"))
        .await
        .unwrap();
    forge
        .close_pull_request(pr.number, "takt closed this pull request: cancelled (T-8).")
        .await
        .unwrap();
    assert!(!fake.pulls()[0].open);
    assert_eq!(
        fake.conversation(pr.number),
        ["takt closed this pull request: cancelled (T-8)."]
    );
    // Again (a retry after a crash), and an unknown number: nothing more happens.
    forge.close_pull_request(pr.number, "again").await.unwrap();
    forge.close_pull_request(999, "gone").await.unwrap();
    assert_eq!(fake.conversation(pr.number).len(), 1);
}

#[tokio::test]
async fn a_second_look_at_an_unchanged_pull_request_costs_only_not_modified_answers() {
    let (world, fake) = setup().await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let commit = world.commit("i.txt", "i\n");
    forge
        .push_branch(&world.git_dir(), &commit, "takt/t9", None)
        .await
        .unwrap();
    let pr = forge
        .ensure_pull_request(&spec("takt/t9", "I", "i"))
        .await
        .unwrap();
    fake.add_check(&commit, "ci / test", Some("success"), "ok");
    let first = forge.review_state(pr.number).await.unwrap();

    let before = fake.requests().len();
    let again = forge.review_state(pr.number).await.unwrap();
    assert_eq!(first, again);
    let looked: Vec<(String, u16)> = fake.requests()[before..]
        .iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.status))
        .collect();
    assert!(!looked.is_empty());
    assert!(
        looked.iter().all(|(_, status)| *status == 304),
        "every read was conditional and unchanged: {looked:?}"
    );

    // A change is seen at once: only what changed is read in full.
    fake.approve(pr.number, "alice");
    let before = fake.requests().len();
    let after = forge.review_state(pr.number).await.unwrap();
    assert_eq!(after.approvals.len(), 1, "{after:?}");
    let full: Vec<String> = fake.requests()[before..]
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        full,
        [format!("/repos/acme/widgets/pulls/{}/reviews", pr.number)]
    );
}
