//! `commit_all` and `changed_since`: no empty commits, the trailer, attempt refs, agent commits.

use takt_workspace::WorkspaceError;

use super::fixture::{Fixture, commit_all, git, head, workspace, write};

#[tokio::test]
async fn commit_all_returns_none_when_nothing_changed() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (base, ws) = workspace(&manager, "ABC-1").await;
    let result = manager
        .commit_all(&ws, "nothing", "ABC-1", Some("refs/takt/runs/r1/1"))
        .await
        .unwrap();
    assert_eq!(result, None);
    assert_eq!(head(&ws.path), base.sha, "no empty commit");
    assert!(!manager.changed_since(&ws, &base.sha).await.unwrap());
    let missing = super::fixture::git_output(
        &fx.mirror,
        &["rev-parse", "--verify", "--quiet", "refs/takt/runs/r1/1"],
    );
    assert!(!missing.status.success(), "no attempt ref without a change");
}

#[tokio::test]
async fn commit_all_commits_everything_as_takt_with_the_trailer_and_the_attempt_ref() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (base, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "new/file.txt", "new\n");
    write(&ws.path, "README.md", "changed\n");
    assert_eq!(manager.dirty_files(&ws).await.unwrap().len(), 2);

    let sha = manager
        .commit_all(&ws, "Fix the thing", "ABC-1", Some("refs/takt/runs/r1/1"))
        .await
        .unwrap()
        .expect("a change was committed");
    assert_eq!(head(&ws.path), sha);
    assert_eq!(git(&ws.path, &["rev-parse", "HEAD^"]), base.sha);
    assert_eq!(
        git(&ws.path, &["log", "-1", "--format=%B"]),
        "Fix the thing\n\nTakt-Task: ABC-1"
    );
    assert_eq!(
        git(&ws.path, &["log", "-1", "--format=%an <%ae>|%cn <%ce>"]),
        "takt <takt@localhost>|takt <takt@localhost>"
    );
    assert_eq!(
        git(
            &ws.path,
            &["log", "-1", "--format=%(trailers:key=Takt-Task,valueonly)"]
        ),
        "ABC-1"
    );
    assert_eq!(git(&ws.path, &["status", "--porcelain"]), "");
    // The attempt ref and the branch live in the mirror.
    assert_eq!(git(&fx.mirror, &["rev-parse", "refs/takt/runs/r1/1"]), sha);
    assert_eq!(
        git(&fx.mirror, &["rev-parse", "refs/heads/takt/ABC-1"]),
        sha
    );
    assert!(manager.changed_since(&ws, &base.sha).await.unwrap());

    // A second call with nothing new still reports the change relative to the base.
    let again = manager
        .commit_all(&ws, "again", "ABC-1", None)
        .await
        .unwrap();
    assert_eq!(again, Some(sha.clone()));
    assert_eq!(head(&ws.path), sha, "no empty commit");
}

#[tokio::test]
async fn commits_made_by_the_agent_count_as_changes() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (base, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "agent.txt", "by the agent\n");
    let agent = commit_all(&ws.path, "agent's own commit");
    assert!(manager.changed_since(&ws, &base.sha).await.unwrap());
    let result = manager
        .commit_all(&ws, "unused", "ABC-1", Some("refs/takt/runs/r1/2"))
        .await
        .unwrap();
    assert_eq!(result, Some(agent.clone()));
    assert_eq!(
        git(&fx.mirror, &["rev-parse", "refs/takt/runs/r1/2"]),
        agent
    );
}

#[tokio::test]
async fn a_branch_behind_the_new_base_is_not_a_change() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    write(&fx.source, "later.txt", "later\n");
    commit_all(&fx.source, "later");
    let newer = manager.sync_mirror().await.unwrap();
    assert!(!manager.changed_since(&ws, &newer.sha).await.unwrap());
}

#[tokio::test]
async fn attempt_refs_outside_refs_takt_are_refused() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "x.txt", "x\n");
    for bad in [
        "refs/heads/main",
        "refs/takt/runs/a..b/1",
        "refs/takt/runs/ bad/1",
    ] {
        let err = manager
            .commit_all(&ws, "x", "ABC-1", Some(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WorkspaceError::InvalidRefName { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        git(&ws.path, &["status", "--porcelain"]),
        "?? x.txt",
        "nothing was committed"
    );
}

#[tokio::test]
async fn agent_controlled_git_hooks_do_not_run_when_takt_commits() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    // An agent could point the shared repository config at its own hooks.
    let hooks = fx.path("evil-hooks");
    let marker = fx.path("hook-ran");
    write(
        &hooks,
        "pre-commit",
        &format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    );
    use std::os::unix::fs::PermissionsExt;
    fs_err::set_permissions(
        hooks.join("pre-commit"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    git(
        &ws.path,
        &["config", "core.hooksPath", hooks.to_str().unwrap()],
    );
    write(&ws.path, "x.txt", "x\n");
    let sha = manager.commit_all(&ws, "x", "ABC-1", None).await.unwrap();
    assert!(sha.is_some());
    assert!(!marker.exists(), "the repository's hook must not run");
}

#[tokio::test]
async fn a_rewritten_dot_git_cannot_redirect_takts_commit() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    let (_, other) = workspace(&manager, "ABC-2").await;
    // The agent builds its own repository whose config runs a program on `git add` (a clean
    // filter), and points the workspace's .git at it.
    let evil = ws.path.join("evil-git");
    git(&ws.path, &["init", "-q", "--bare", evil.to_str().unwrap()]);
    let marker = fx.path("filter-ran");
    git(
        &evil,
        &[
            "config",
            "filter.pwn.clean",
            &format!("touch '{}'; cat", marker.display()),
        ],
    );
    write(&ws.path, ".gitattributes", "* filter=pwn\n");
    write(&ws.path, "x.txt", "x\n");
    fs_err::write(
        ws.path.join(".git"),
        format!("gitdir: {}\n", evil.display()),
    )
    .unwrap();

    let workspace_again = manager
        .ensure("ABC-1", &manager.sync_mirror().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        workspace_again.git_dir, ws.git_dir,
        "found from the mirror's side"
    );
    let sha = manager
        .commit_all(&workspace_again, "x", "ABC-1", None)
        .await
        .unwrap()
        .expect("a commit");
    assert!(
        !marker.exists(),
        "a filter of the agent's repository ran in the daemon"
    );
    // The commit is on this task's branch, not the other task's or the fake repository's.
    let branch = git(&fx.mirror, &["rev-parse", &ws.branch]);
    assert_eq!(branch.trim(), sha);
    assert_ne!(git(&fx.mirror, &["rev-parse", &other.branch]).trim(), sha);
    let dot_git = fs_err::read_to_string(ws.path.join(".git")).unwrap();
    assert!(
        dot_git.contains(ws.git_dir.to_str().unwrap()),
        "restored: {dot_git}"
    );
}
