//! Hooks through the manager: timeouts kill the process group (R-103), failure semantics
//! (R-104).

use std::time::Duration;

use takt_workspace::{HookError, HookKind, Hooks, WorkspaceManager, WorkspaceSettings};

use super::fixture::{Fixture, process_is_dead, workspace};

/// Waits (bounded) until every pid is dead; returns the survivors.
async fn survivors(pids: &[u32]) -> Vec<u32> {
    for _ in 0..200 {
        if pids.iter().all(|pid| process_is_dead(*pid)) {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pids.iter()
        .copied()
        .filter(|pid| !process_is_dead(*pid))
        .collect()
}

#[tokio::test]
async fn r103_hook_timeout_kills_the_whole_process_group() {
    let fx = Fixture::new();
    let pids = fx.path("pids");
    // Two background children and a grandchild, then the shell itself blocks.
    let script = format!(
        "sleep 1000 & echo $! >> '{p}'; (sleep 1000 & echo $! >> '{p}'; wait) & echo $! >> '{p}'; echo started; sleep 1000",
        p = pids.display()
    );
    let manager = WorkspaceManager::new(WorkspaceSettings {
        hooks: Hooks {
            before_run: Some(script),
            ..Hooks::default()
        },
        hook_timeout: Duration::from_secs(2),
        ..fx.settings()
    })
    .unwrap();
    let (_, ws) = workspace(&manager, "ABC-1").await;

    let err = manager
        .run_hook(HookKind::BeforeRun, &ws)
        .await
        .unwrap_err();
    match &err {
        HookError::TimedOut { kind, output, .. } => {
            assert_eq!(*kind, HookKind::BeforeRun);
            assert!(output.contains("started"), "{output}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("timed out"), "{err}");

    let pids: Vec<u32> = fs_err::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{pids:?}");
    let alive = survivors(&pids).await;
    assert!(
        alive.is_empty(),
        "hook children survived the timeout: {alive:?}"
    );
}

#[tokio::test]
async fn r104_before_run_failure_is_reported_and_unconfigured_hooks_succeed() {
    let fx = Fixture::new();
    let manager = fx.manager_with_hooks(Hooks {
        before_run: Some("echo nope >&2; exit 7".into()),
        ..Hooks::default()
    });
    let (_, ws) = workspace(&manager, "ABC-1").await;
    let err = manager
        .run_hook(HookKind::BeforeRun, &ws)
        .await
        .unwrap_err();
    match err {
        HookError::Failed { status, output, .. } => {
            assert_eq!(status, Some(7));
            assert!(output.contains("nope"));
        }
        other => panic!("unexpected {other:?}"),
    }
    manager.run_hook(HookKind::AfterRun, &ws).await.unwrap();
}

#[tokio::test]
async fn r103_hooks_receive_the_workspace_context() {
    let fx = Fixture::new();
    let manager = fx.manager_with_hooks(Hooks {
        after_run: Some(r#"printf '%s|%s|%s' "$TAKT_WORKSPACE" "$TAKT_ISSUE_IDENTIFIER" "$TAKT_WORKSPACE_KEY" > ctx.txt"#.into()),
        ..Hooks::default()
    });
    let (_, ws) = workspace(&manager, "a/b").await;
    manager.run_hook(HookKind::AfterRun, &ws).await.unwrap();
    let ctx = fs_err::read_to_string(ws.path.join("ctx.txt")).unwrap();
    assert_eq!(ctx, format!("{}|a/b|{}", ws.path.display(), ws.key));
}

#[tokio::test]
async fn r104_before_remove_failure_does_not_stop_removal() {
    let fx = Fixture::new();
    let marker = fx.path("before_remove.ran");
    let manager = fx.manager_with_hooks(Hooks {
        before_remove: Some(format!(
            "echo \"$TAKT_WORKSPACE_KEY\" > '{}'; exit 1",
            marker.display()
        )),
        ..Hooks::default()
    });
    let (_, ws) = workspace(&manager, "ABC-1").await;
    manager.remove("ABC-1").await.unwrap();
    assert!(!ws.path.exists());
    assert_eq!(fs_err::read_to_string(&marker).unwrap(), "ABC-1\n");
    let worktrees = super::fixture::git(&fx.mirror, &["worktree", "list", "--porcelain"]);
    assert!(!worktrees.contains("ABC-1"), "{worktrees}");

    // No directory, no hook (R-104): removing again is a no-op that does not run it.
    fs_err::remove_file(&marker).unwrap();
    manager.remove("ABC-1").await.unwrap();
    assert!(!marker.exists());
}

#[tokio::test]
async fn r104_before_remove_that_times_out_does_not_stop_removal() {
    let fx = Fixture::new();
    let manager = WorkspaceManager::new(WorkspaceSettings {
        hooks: Hooks {
            before_remove: Some("sleep 1000".into()),
            ..Hooks::default()
        },
        hook_timeout: Duration::from_millis(300),
        ..fx.settings()
    })
    .unwrap();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    manager.remove("ABC-1").await.unwrap();
    assert!(!ws.path.exists());
}
