//! `remove` and `gc`: orphans only, never outside the root, branches kept.

use std::collections::HashSet;

use takt_workspace::{Hooks, workspace_key};

use super::fixture::{Fixture, git, read, workspace, write};

#[tokio::test]
async fn gc_removes_orphans_only() {
    let fx = Fixture::new();
    let marker = fx.path("removed.log");
    let manager = fx.manager_with_hooks(Hooks {
        before_remove: Some(format!(
            "echo \"$TAKT_WORKSPACE_KEY\" >> '{}'",
            marker.display()
        )),
        ..Hooks::default()
    });
    let (_, live) = workspace(&manager, "LIVE-1").await;
    let (_, orphan) = workspace(&manager, "a/b").await;
    write(&live.path, "keep.txt", "keep\n");
    // A stray file with a key-like name, a directory takt did not name, and an escaping link.
    fs_err::write(fx.root.join("stray-file"), "x").unwrap();
    write(&fx.root.join("not a key"), "f.txt", "user data\n");
    let outside = fx.path("outside");
    write(&outside, "precious.txt", "keep me\n");
    std::os::unix::fs::symlink(&outside, fx.root.join("escape")).unwrap();

    let live_keys: HashSet<String> = [workspace_key("LIVE-1")].into_iter().collect();
    let mut removed = manager.gc(&live_keys).await.unwrap();
    removed.sort();
    let mut expected = vec![orphan.path.clone(), fx.root.join("stray-file")];
    expected.sort();
    assert_eq!(removed, expected);

    assert!(!orphan.path.exists());
    assert_eq!(read(&live.path, "keep.txt"), "keep\n");
    assert_eq!(read(&fx.root.join("not a key"), "f.txt"), "user data\n");
    assert_eq!(read(&outside, "precious.txt"), "keep me\n");
    assert!(
        fx.root.join("escape").symlink_metadata().is_ok(),
        "escaping link is left for a person"
    );
    assert_eq!(
        fs_err::read_to_string(&marker).unwrap(),
        format!("{}\n", orphan.key)
    );

    let worktrees = git(&fx.mirror, &["worktree", "list", "--porcelain"]);
    assert!(
        worktrees.contains(live.path.to_str().unwrap()),
        "{worktrees}"
    );
    assert!(
        !worktrees.contains(orphan.path.to_str().unwrap()),
        "{worktrees}"
    );
    // Branches hold the work and are kept.
    git(
        &fx.mirror,
        &[
            "rev-parse",
            "--verify",
            &format!("refs/heads/{}", orphan.branch),
        ],
    );
}

#[tokio::test]
async fn gc_of_a_missing_root_is_empty() {
    let fx = Fixture::new();
    assert!(fx.manager().gc(&HashSet::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn r098_remove_by_recorded_path_and_removing_twice_is_fine() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "ABC-1").await;
    write(&ws.path, "dirty.txt", "uncommitted\n");
    manager.remove(&ws.path).await.unwrap();
    assert!(!ws.path.exists());
    manager.remove(&ws.path).await.unwrap();
    manager.remove("ABC-1").await.unwrap();
    let worktrees = git(&fx.mirror, &["worktree", "list", "--porcelain"]);
    assert!(!worktrees.contains("ABC-1"), "{worktrees}");
}

#[tokio::test]
async fn remove_falls_back_to_deleting_a_directory_git_does_not_know() {
    let fx = Fixture::new();
    let manager = fx.manager();
    manager.sync_mirror().await.unwrap();
    write(&fx.root.join("ABC-1"), "sub/file.txt", "x");
    manager.remove("ABC-1").await.unwrap();
    assert!(!fx.root.join("ABC-1").exists());
}

#[tokio::test]
async fn remove_unlinks_a_symlink_inside_the_root_without_following_it() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, target) = workspace(&manager, "TARGET-1").await;
    std::os::unix::fs::symlink(&target.path, fx.root.join("alias")).unwrap();
    manager.remove("alias").await.unwrap();
    assert!(fx.root.join("alias").symlink_metadata().is_err());
    assert!(
        target.path.join("README.md").is_file(),
        "the link target is untouched"
    );
}

#[tokio::test]
async fn removal_renames_into_the_trash_and_the_reaper_empties_it_later() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (_, ws) = workspace(&manager, "GONE-1").await;
    write(&ws.path, "big/file.txt", "data\n");
    let outside = fx.path("outside");
    write(&outside, "precious.txt", "keep me\n");
    std::os::unix::fs::symlink(&outside, ws.path.join("link-out")).unwrap();
    manager.remove("GONE-1").await.unwrap();
    assert!(!ws.path.exists(), "gone from its path at once");
    let worktrees = git(&fx.mirror, &["worktree", "list", "--porcelain"]);
    assert!(
        !worktrees.contains("GONE-1"),
        "registration pruned: {worktrees}"
    );
    let trash = fx.root.join(takt_workspace::TRASH_DIR);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(&trash).map(|d| d.count()).unwrap_or(0) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the reaper never emptied the trash"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        read(&outside, "precious.txt"),
        "keep me\n",
        "links were not followed"
    );
    // A workspace can be made again at the same path.
    let (_, again) = workspace(&manager, "GONE-1").await;
    assert!(again.path.exists());
}
