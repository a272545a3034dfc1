//! `ensure`: creation, reuse, after_create semantics and path safety.

use std::time::Duration;

use takt_workspace::{HookKind, Hooks, WorkspaceError, workspace_key};

use super::fixture::{Fixture, commit_all, git, head, process_is_dead, read, workspace, write};

#[tokio::test]
async fn r101_ensure_creates_a_worktree_on_the_task_branch_from_the_base() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (base, ws) = workspace(&manager, "ABC-1").await;
    assert!(ws.created_now);
    assert_eq!(ws.key, "ABC-1");
    assert_eq!(ws.identifier, "ABC-1");
    assert_eq!(ws.branch, "takt/ABC-1");
    assert_eq!(ws.path, fx.root.join("ABC-1"));
    assert_eq!(ws.base_sha, base.sha);
    assert_eq!(head(&ws.path), base.sha);
    assert_eq!(
        git(&ws.path, &["symbolic-ref", "HEAD"]),
        "refs/heads/takt/ABC-1"
    );
    assert_eq!(read(&ws.path, "README.md"), "hello\n");
    // The branch lives in the mirror; the source is untouched.
    assert_eq!(
        git(&fx.mirror, &["rev-parse", "refs/heads/takt/ABC-1"]),
        base.sha
    );
    assert!(git(&fx.source, &["branch", "--list", "takt/*"]).is_empty());
}

#[tokio::test]
async fn r102_reuse_keeps_local_edits_and_commits() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (base, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "work.txt", "in progress\n");
    write(&ws.path, "README.md", "edited\n");
    write(&ws.path, "committed.txt", "c\n");
    git(&ws.path, &["add", "committed.txt"]);
    git(&ws.path, &["commit", "--quiet", "-m", "agent commit"]);
    let agent_head = head(&ws.path);

    // The base moves on; the reused workspace must not be reset to it.
    write(&fx.source, "later.txt", "later\n");
    commit_all(&fx.source, "later");
    let new_base = manager.sync_mirror().await.unwrap();
    assert_ne!(new_base.sha, base.sha);

    let again = manager.ensure("ABC-1", &new_base).await.unwrap();
    assert!(!again.created_now);
    assert_eq!(again.path, ws.path);
    assert_eq!(read(&ws.path, "work.txt"), "in progress\n");
    assert_eq!(read(&ws.path, "README.md"), "edited\n");
    assert_eq!(head(&ws.path), agent_head);
}

#[tokio::test]
async fn r102_after_create_failure_removes_the_partial_workspace_and_the_next_ensure_reruns_it() {
    let fx = Fixture::new();
    let runs = fx.path("runs.log");
    let allow = fx.path("allow");
    let script = format!(
        "echo run >> '{}'; echo partial > partial.txt; test -f '{}'",
        runs.display(),
        allow.display()
    );
    let manager = fx.manager_with_hooks(Hooks {
        after_create: Some(script),
        ..Hooks::default()
    });
    let base = manager.sync_mirror().await.unwrap();

    let err = manager.ensure("ABC-1", &base).await.unwrap_err();
    match &err {
        WorkspaceError::Hook(hook) => assert_eq!(hook.kind(), HookKind::AfterCreate),
        other => panic!("unexpected {other:?}"),
    }
    let path = fx.root.join("ABC-1");
    assert!(!path.exists(), "the partial workspace is removed");
    let worktrees = git(&fx.mirror, &["worktree", "list", "--porcelain"]);
    assert!(
        !worktrees.contains("ABC-1"),
        "registration removed: {worktrees}"
    );

    fs_err::write(&allow, "").unwrap();
    let ws = manager.ensure("ABC-1", &base).await.unwrap();
    assert!(ws.created_now);
    assert_eq!(fs_err::read_to_string(&runs).unwrap(), "run\nrun\n");
    assert_eq!(read(&ws.path, "partial.txt"), "partial\n");

    // A reused workspace does not run after_create again.
    let again = manager.ensure("ABC-1", &base).await.unwrap();
    assert!(!again.created_now);
    assert_eq!(fs_err::read_to_string(&runs).unwrap(), "run\nrun\n");
}

#[tokio::test]
async fn r101_a_file_at_the_workspace_path_is_replaced() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let base = manager.sync_mirror().await.unwrap();
    fs_err::create_dir_all(&fx.root).unwrap();
    fs_err::write(fx.root.join("ABC-1"), "not a dir").unwrap();
    let ws = manager.ensure("ABC-1", &base).await.unwrap();
    assert!(ws.created_now);
    assert!(ws.path.is_dir());
    assert_eq!(head(&ws.path), base.sha);
}

#[tokio::test]
async fn a_leftover_directory_that_is_not_a_worktree_is_replaced() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let base = manager.sync_mirror().await.unwrap();
    write(&fx.root.join("ABC-1"), "junk.txt", "junk");
    let ws = manager.ensure("ABC-1", &base).await.unwrap();
    assert!(ws.created_now);
    assert!(!ws.path.join("junk.txt").exists());
    assert_eq!(
        git(&ws.path, &["symbolic-ref", "--short", "HEAD"]),
        "takt/ABC-1"
    );
}

#[tokio::test]
async fn an_existing_task_branch_is_reused_not_reset() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "agent.txt", "work\n");
    let work = commit_all(&ws.path, "agent work");
    manager.remove("ABC-1").await.unwrap();
    assert!(!ws.path.exists());
    // The branch is kept and checked out again, with its work.
    assert_eq!(
        git(&fx.mirror, &["rev-parse", "refs/heads/takt/ABC-1"]),
        work
    );
    let (_, again) = workspace(&manager, "ABC-1").await;
    assert!(again.created_now);
    assert_eq!(head(&again.path), work);
    assert_eq!(read(&again.path, "agent.txt"), "work\n");
}

#[tokio::test]
async fn a_workspace_deleted_by_hand_is_recreated_on_its_branch() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (base, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "agent.txt", "work\n");
    let work = commit_all(&ws.path, "agent work");
    fs_err::remove_dir_all(&ws.path).unwrap();
    let again = manager.ensure("ABC-1", &base).await.unwrap();
    assert!(again.created_now);
    assert_eq!(head(&again.path), work);
}

#[tokio::test]
async fn a_task_branch_without_own_commits_moves_forward_to_the_new_base() {
    let fx = Fixture::new();
    let manager = fx.manager();
    workspace(&manager, "ABC-1").await;
    manager.remove("ABC-1").await.unwrap();
    write(&fx.source, "later.txt", "later\n");
    let later = commit_all(&fx.source, "later");
    let (base, ws) = workspace(&manager, "ABC-1").await;
    assert_eq!(base.sha, later);
    assert_eq!(head(&ws.path), later);
}

#[tokio::test]
async fn r106_nasty_identifiers_get_workspaces_directly_under_the_root() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let base = manager.sync_mirror().await.unwrap();
    for identifier in [
        "../escape",
        "a/b",
        "$(touch pwned)",
        "x;y",
        "`id`",
        "..",
        "ünï",
        "a..b",
    ] {
        let ws = manager.ensure(identifier, &base).await.unwrap();
        assert_eq!(ws.path.parent(), Some(fx.root.as_path()), "{identifier}");
        assert_eq!(ws.key, workspace_key(identifier));
        assert_eq!(head(&ws.path), base.sha);
        assert!(git(&ws.path, &["symbolic-ref", "HEAD"]).starts_with("refs/heads/takt/"));
    }
    assert!(!fx.path("escape").exists());
    assert!(!fx.root.join("pwned").exists() && !fx.path("pwned").exists());
}

#[tokio::test]
async fn r106_symlink_escape_is_refused_by_ensure_and_remove() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let base = manager.sync_mirror().await.unwrap();
    let outside = fx.path("outside");
    write(&outside, "precious.txt", "keep me\n");
    fs_err::create_dir_all(&fx.root).unwrap();
    std::os::unix::fs::symlink(&outside, fx.root.join("evil")).unwrap();

    let err = manager.ensure("evil", &base).await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::SymlinkEscape { .. }),
        "{err:?}"
    );
    let err = manager.remove("evil").await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::SymlinkEscape { .. }),
        "{err:?}"
    );
    let err = manager
        .remove(fx.root.join("evil").as_path())
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceError::SymlinkEscape { .. }),
        "{err:?}"
    );
    assert_eq!(read(&outside, "precious.txt"), "keep me\n");
    assert!(
        fx.root
            .join("evil")
            .symlink_metadata()
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn remove_refuses_paths_outside_the_root_and_the_root_itself() {
    let fx = Fixture::new();
    let manager = fx.manager();
    workspace(&manager, "ABC-1").await;
    for path in [
        fx.root.clone(),
        fx.source.clone(),
        fx.root.join("ABC-1/.."),
        fx.root.join("ABC-1/sub"),
    ] {
        let err = manager.remove(path.as_path()).await.unwrap_err();
        assert!(
            matches!(err, WorkspaceError::InvalidPath { .. }),
            "{}: {err:?}",
            path.display()
        );
    }
    assert!(fx.root.join("ABC-1").is_dir());
    assert!(fx.source.join("README.md").is_file());
}

#[tokio::test]
async fn concurrent_ensures_of_different_issues_all_succeed() {
    let fx = Fixture::new();
    let manager = std::sync::Arc::new(fx.manager());
    let base = manager.sync_mirror().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let manager = manager.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            manager.ensure(&format!("T-{i}"), &base).await
        }));
    }
    for task in tasks {
        let ws = task.await.unwrap().unwrap();
        assert!(ws.created_now);
        assert_eq!(head(&ws.path), base.sha);
    }
}

#[tokio::test]
async fn r102_a_workspace_whose_after_create_was_cut_short_is_recreated() {
    let fx = Fixture::new();
    let pid_file = fx.path("hook.pid");
    let manager = fx.manager_with_hooks(Hooks {
        after_create: Some(format!(
            "echo half > half.txt; sleep 1000 & echo $! > '{}'; wait",
            pid_file.display()
        )),
        ..Hooks::default()
    });
    let base = manager.sync_mirror().await.unwrap();

    // The daemon "stops" during after_create: the ensure future is dropped mid-hook.
    let wait_for_pid = async {
        loop {
            if let Ok(text) = fs_err::read_to_string(&pid_file)
                && let Ok(pid) = text.trim().parse::<u32>()
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let pid = tokio::select! {
        result = manager.ensure("ABC-1", &base) => panic!("the hook cannot finish: {result:?}"),
        pid = wait_for_pid => pid,
    };
    // Cancelling the hook killed its process group.
    let mut dead = false;
    for _ in 0..200 {
        dead = process_is_dead(pid);
        if dead {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dead, "the hook's child {pid} survived the cancellation");
    assert!(fx.root.join("ABC-1").join("half.txt").exists());

    // The next ensure does not trust the half-made workspace: it recreates it and re-runs the hook.
    let ok = fx.manager_with_hooks(Hooks {
        after_create: Some("echo full > full.txt".into()),
        ..Hooks::default()
    });
    let ws = ok.ensure("ABC-1", &base).await.unwrap();
    assert!(ws.created_now);
    assert!(!ws.path.join("half.txt").exists());
    assert_eq!(read(&ws.path, "full.txt"), "full\n");
    // And once complete, it is reused.
    assert!(!ok.ensure("ABC-1", &base).await.unwrap().created_now);
}
