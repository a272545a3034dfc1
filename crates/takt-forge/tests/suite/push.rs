use takt_forge::fake::GithubFake;
use takt_forge::{ForgeError, PushOutcome, build};

use super::{TOKEN, World, assert_no_token};

#[tokio::test]
async fn a_lease_lets_takt_move_its_own_branch_but_never_someone_elses() {
    let world = World::new();
    let fake = GithubFake::start(&world.remote, "acme/widgets", TOKEN).await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let git_dir = world.git_dir();

    let first = world.commit("a.txt", "1\n");
    assert_eq!(
        forge
            .push_branch(&git_dir, &first, "takt/p", None)
            .await
            .unwrap(),
        PushOutcome::Pushed
    );
    assert_eq!(
        forge
            .push_branch(&git_dir, &first, "takt/p", None)
            .await
            .unwrap(),
        PushOutcome::AlreadyThere
    );

    // A new round rewrote history (not a fast-forward): allowed against takt's last push.
    world.repo.git(&["reset", "-q", "--hard", "HEAD~1"]);
    let rewritten = world.commit("a.txt", "2\n");
    let result = forge
        .push_branch(&git_dir, &rewritten, "takt/p", Some(&first))
        .await;
    assert_eq!(result.unwrap(), PushOutcome::Pushed);
    assert_eq!(
        world.remote_head("takt/p").as_deref(),
        Some(rewritten.as_str())
    );

    // Someone else moves the branch: a push with takt's (now stale) lease is refused.
    let theirs = world.commit("theirs.txt", "x\n");
    world.push_as_someone_else(&theirs, "takt/p");
    world.repo.git(&["reset", "-q", "--hard", &rewritten]);
    let next = world.commit("a.txt", "3\n");
    let error = forge
        .push_branch(&git_dir, &next, "takt/p", Some(&rewritten))
        .await
        .unwrap_err();
    assert!(matches!(error, ForgeError::Conflict(_)), "{error:?}");
    assert_eq!(
        world.remote_head("takt/p").as_deref(),
        Some(theirs.as_str())
    );
    // Without a lease, only a fast-forward would go through; this is not one.
    let error = forge
        .push_branch(&git_dir, &next, "takt/p", None)
        .await
        .unwrap_err();
    assert!(matches!(error, ForgeError::Conflict(_)), "{error:?}");
    assert_eq!(
        world.remote_head("takt/p").as_deref(),
        Some(theirs.as_str())
    );
}

#[tokio::test]
async fn push_failures_name_git_without_the_token() {
    let world = World::new();
    let fake = GithubFake::start(&world.remote, "acme/widgets", TOKEN).await;
    // An HTTPS remote nobody listens on: the token goes into git's environment as a header,
    // and must not come back in the error.
    let mut settings = fake.settings(TOKEN);
    settings.remote_url = Some("http://127.0.0.1:9/acme/widgets.git".to_owned());
    let forge = build(settings).unwrap();
    let commit = world.commit("a.txt", "1\n");
    let error = forge
        .push_branch(&world.git_dir(), &commit, "takt/q", None)
        .await
        .unwrap_err();
    assert!(matches!(error, ForgeError::Git { .. }), "{error:?}");
    assert_no_token("the git error", &format!("{error} {error:?}"));
    assert!(error.is_retryable(), "{error:?}");

    // Against an HTTP remote that answers (the fake: it serves no git, but records what
    // arrives): the credential arrives as the header git was given in its environment only.
    let mut settings = fake.settings(TOKEN);
    settings.remote_url = Some(format!("{}/acme/widgets.git", fake.api_url()));
    let forge = build(settings).unwrap();
    let error = forge
        .push_branch(&world.git_dir(), &commit, "takt/q", None)
        .await
        .unwrap_err();
    assert_no_token("the git error", &format!("{error} {error:?}"));
    let git_requests: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/acme/widgets.git/info/refs")
        .collect();
    assert!(!git_requests.is_empty());
    assert!(
        git_requests.iter().all(|r| r.authorized),
        "{git_requests:?}"
    );
    for request in &git_requests {
        assert_no_token(
            "git's request",
            &format!("{} {} {:?}", request.path, request.query, request.headers),
        );
    }

    let missing = forge
        .push_branch(
            &world.git_dir(),
            "0123456789012345678901234567890123456789",
            "takt/q",
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, ForgeError::Git { .. }), "{missing:?}");
}

#[tokio::test]
async fn attestation_notes_are_pushed_fast_forward_only() {
    let world = World::new();
    let fake = GithubFake::start(&world.remote, "acme/widgets", TOKEN).await;
    let forge = build(fake.settings(TOKEN)).unwrap();
    let git_dir = world.git_dir();
    assert_eq!(
        forge.push_notes(&git_dir, "takt").await.unwrap(),
        PushOutcome::AlreadyThere,
        "no notes yet: nothing to push"
    );

    let commit = world.commit("n.txt", "1\n");
    world.repo.git(&[
        "notes",
        "--ref",
        "takt",
        "add",
        "-m",
        "statement 1",
        &commit,
    ]);
    assert_eq!(
        forge.push_notes(&git_dir, "takt").await.unwrap(),
        PushOutcome::Pushed
    );
    let note =
        takt_test_support::git_output(&world.remote, &["notes", "--ref", "takt", "show", &commit]);
    assert_eq!(String::from_utf8_lossy(&note.stdout).trim(), "statement 1");
    assert_eq!(
        forge.push_notes(&git_dir, "takt").await.unwrap(),
        PushOutcome::AlreadyThere
    );

    // Someone else's notes on the remote are never overwritten.
    let other = world.commit("n.txt", "2\n");
    world.repo.git(&[
        "notes",
        "--ref",
        "elsewhere",
        "add",
        "-m",
        "not takt's",
        &other,
    ]);
    world.repo.git(&[
        "push",
        "-q",
        "-f",
        world.remote.to_str().unwrap(),
        "refs/notes/elsewhere:refs/notes/takt",
    ]);
    world
        .repo
        .git(&["notes", "--ref", "takt", "add", "-m", "statement 2", &other]);
    let error = forge.push_notes(&git_dir, "takt").await.unwrap_err();
    assert!(matches!(error, ForgeError::Conflict(_)), "{error:?}");
}
