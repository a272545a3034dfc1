//! Overlay workspaces (root only): a golden tree per base shared by tasks, a kernel overlay per
//! task, takt's commits unchanged, removal unmounting and leaving nothing behind.

use std::time::Instant;

use takt_test_support::UnmountBelow;
use takt_workspace::{OverlaySettings, WorkspaceManager, WorkspaceSettings};

use super::fixture::{Fixture, git, read, workspace, write};

fn overlay_manager(fx: &Fixture) -> Option<WorkspaceManager> {
    let dir = fx.path("state/overlay");
    std::fs::create_dir_all(&dir).unwrap();
    if let Err(error) = takt_workspace::overlays_work(&dir) {
        assert!(
            std::env::var_os("CI").is_none() || !is_root(),
            "overlays must work as root in CI: {error}"
        );
        eprintln!("skipped: overlays do not work here ({error})");
        return None;
    }
    Some(
        WorkspaceManager::new(WorkspaceSettings {
            overlay: Some(OverlaySettings { dir, owner: None }),
            ..fx.settings()
        })
        .unwrap(),
    )
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[tokio::test]
async fn tasks_share_a_golden_tree_and_commit_through_their_own_overlay() {
    let fx = Fixture::new();
    let _unmount = UnmountBelow(fx.dir.path().to_path_buf());
    write(&fx.source, "src/lib.rs", "pub fn one() {}\n");
    super::fixture::commit_all(&fx.source, "a file");
    let Some(manager) = overlay_manager(&fx) else {
        return;
    };
    let started = Instant::now();
    let (base, first) = workspace(&manager, "OV-1").await;
    let first_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let (_, second) = workspace(&manager, "OV-2").await;
    eprintln!(
        "first workspace (golden tree made) {first_ms} ms, second {} ms",
        started.elapsed().as_millis()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains(first.path.to_str().unwrap()),
        "an overlay is mounted"
    );
    assert_eq!(read(&first.path, "src/lib.rs"), "pub fn one() {}\n");
    // The working tree is clean straight away: the index came with the golden tree, its stat
    // data already matching (nothing for git to re-read).
    assert_eq!(git(&first.path, &["diff-files", "--name-only"]), "");
    assert_eq!(git(&first.path, &["status", "--porcelain"]), "");
    // The base's files carry the time warm build caches of the same commit are made with.
    use std::os::unix::fs::MetadataExt;
    for path in ["src/lib.rs", "src"] {
        let meta = std::fs::symlink_metadata(first.path.join(path)).unwrap();
        assert_eq!(meta.mtime(), takt_workspace::FROZEN_MTIME_SECS, "{path}");
    }
    // Build outputs shown over the workspace get layers that go with it.
    let layers = manager.build_layers(&first).expect("an overlay workspace");
    assert_eq!(layers.golden_commit, base.sha);
    let layers = layers.dir;
    assert!(
        layers.starts_with(fx.path("state/overlay/tasks")),
        "{layers:?}"
    );
    std::fs::create_dir_all(layers.join("cache/upper")).unwrap();

    // Tasks do not see each other's changes, and the golden tree is untouched.
    write(&first.path, "src/lib.rs", "pub fn two() {}\n");
    write(&first.path, "new.txt", "new\n");
    assert_eq!(read(&second.path, "src/lib.rs"), "pub fn one() {}\n");
    let golden = fx.path("state/overlay/golden").join(&base.sha);
    assert_eq!(read(&golden, "src/lib.rs"), "pub fn one() {}\n");

    let sha = manager
        .commit_all(&first, "change", "OV-1", None)
        .await
        .unwrap()
        .expect("a commit");
    assert_eq!(git(&fx.mirror, &["rev-parse", &first.branch]), sha);
    assert_eq!(git(&fx.mirror, &["show", &format!("{sha}:new.txt")]), "new");
    assert_eq!(git(&fx.mirror, &["rev-parse", &second.branch]), base.sha);

    // Reuse keeps the overlay and its edits.
    let again = manager.ensure("OV-1", &base).await.unwrap();
    assert!(!again.created_now);
    assert_eq!(read(&again.path, "new.txt"), "new\n");

    // After a reboot (the mount gone, its layers kept) the overlay comes back with its
    // uncommitted edits.
    write(&first.path, "uncommitted.txt", "kept\n");
    let unmounted = std::process::Command::new("umount")
        .arg(&first.path)
        .status()
        .unwrap();
    assert!(unmounted.success());
    assert!(!first.path.join("uncommitted.txt").exists(), "unmounted");
    let rebooted = manager.ensure("OV-1", &base).await.unwrap();
    assert!(!rebooted.created_now, "the same workspace, not a new one");
    assert_eq!(read(&rebooted.path, "uncommitted.txt"), "kept\n");
    assert_eq!(read(&rebooted.path, "src/lib.rs"), "pub fn two() {}\n");
    assert_eq!(
        git(&rebooted.path, &["status", "--porcelain"]),
        "?? uncommitted.txt"
    );

    // Without its golden tree the overlay cannot come back: the workspace is made again from
    // the task branch (a worktree), never reused as an empty directory.
    assert!(
        std::process::Command::new("umount")
            .arg(&first.path)
            .status()
            .unwrap()
            .success()
    );
    let moved = golden.with_extension("away");
    std::fs::rename(&golden, &moved).unwrap();
    let remade = manager.ensure("OV-1", &base).await.unwrap();
    std::fs::rename(&moved, &golden).unwrap();
    assert!(remade.created_now);
    assert_eq!(read(&remade.path, "new.txt"), "new\n", "the committed work");
    assert!(!remade.path.join("uncommitted.txt").exists());
    assert_eq!(git(&remade.path, &["status", "--porcelain"]), "");

    // Removal unmounts, and the layers go to the trash.
    manager.remove("OV-1").await.unwrap();
    assert!(!first.path.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(first.path.to_str().unwrap()), "unmounted");
    assert!(!fx.path("state/overlay/tasks/OV-1").exists());
    assert!(!layers.exists(), "the build layers went with the workspace");
    manager.remove("OV-2").await.unwrap();
}

#[tokio::test]
async fn a_prepared_golden_tree_serves_the_next_workspace_and_unfinished_ones_are_swept() {
    let fx = Fixture::new();
    let _unmount = UnmountBelow(fx.dir.path().to_path_buf());
    let Some(manager) = overlay_manager(&fx) else {
        return;
    };
    let base = manager.sync_mirror().await.unwrap();
    let goldens = fx.path("state/overlay/golden");
    manager.prepare_golden(&base.sha).await.unwrap();
    let golden = goldens.join(&base.sha);
    assert_eq!(read(&golden, "README.md"), read(&fx.source, "README.md"));
    let made = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&golden).unwrap().ino()
    };
    let ws = manager.ensure("OV-1", &base).await.unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        mounts.contains(&format!("lowerdir={}", golden.display())),
        "the workspace is an overlay of the prepared tree"
    );
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&golden).unwrap().ino(), made);
    }

    // A daemon stopped while making a golden tree leaves its halves; the next sweep removes
    // them, but never one this process is making.
    let gone = [
        goldens.join(format!(".tmp-{}-1", base.sha)),
        goldens.join(format!(".tmp-{}-1.index", base.sha)),
    ];
    std::fs::create_dir_all(&gone[0]).unwrap();
    std::fs::write(&gone[1], "").unwrap();
    let ours = goldens.join(format!(".tmp-{}-{}", base.sha, std::process::id()));
    std::fs::create_dir_all(&ours).unwrap();
    manager.gc(&["OV-1".to_owned()].into()).await.unwrap();
    assert!(!gone[0].exists() && !gone[1].exists());
    assert!(ours.exists());
    assert!(golden.exists(), "in use");
    manager.remove(ws.identifier.as_str()).await.unwrap();
}

#[tokio::test]
async fn a_failing_overlay_gives_the_task_a_worktree_instead() {
    let fx = Fixture::new();
    let _unmount = UnmountBelow(fx.dir.path().to_path_buf());
    let Some(manager) = overlay_manager(&fx) else {
        return;
    };
    // A file where the golden trees go: no golden tree can be made.
    std::fs::write(fx.path("state/overlay/golden"), "in the way").unwrap();
    let (_, ws) = workspace(&manager, "OV-1").await;
    assert!(ws.created_now);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(ws.path.to_str().unwrap()),
        "not an overlay"
    );
    assert_eq!(read(&ws.path, "README.md"), read(&fx.source, "README.md"));
    assert_eq!(git(&ws.path, &["status", "--porcelain"]), "");
    manager.remove("OV-1").await.unwrap();
}

#[tokio::test]
async fn an_overlay_workspace_is_removed_cleanly_after_overlays_were_switched_off() {
    let fx = Fixture::new();
    let _unmount = UnmountBelow(fx.dir.path().to_path_buf());
    let Some(manager) = overlay_manager(&fx) else {
        return;
    };
    let (base, ws) = workspace(&manager, "OV-1").await;
    drop(manager);
    let plain = WorkspaceManager::new(fx.settings()).unwrap();
    let again = plain.ensure("OV-1", &base).await.unwrap();
    assert!(
        !again.created_now,
        "the mounted overlay is still the workspace"
    );
    plain.remove("OV-1").await.unwrap();
    assert!(!ws.path.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(ws.path.to_str().unwrap()), "unmounted");
}

/// A daemon killed between `git worktree add --no-checkout` and the overlay's mount left an
/// empty directory registered as the task's worktree, still locked as `initializing`. Reused,
/// it would commit the deletion of every file; it must be made again instead.
#[tokio::test]
async fn an_overlay_workspace_cut_short_before_its_mount_is_made_again() {
    let fx = Fixture::new();
    let _unmount = UnmountBelow(fx.dir.path().to_path_buf());
    let Some(manager) = overlay_manager(&fx) else {
        return;
    };
    let base = manager.sync_mirror().await.unwrap();
    let path = fx.root.join("OV-1");
    std::fs::create_dir_all(&fx.root).unwrap();
    git(
        &fx.mirror,
        &[
            "worktree",
            "add",
            "--quiet",
            "--no-checkout",
            "--lock",
            "--reason",
            "initializing",
            "-b",
            "takt/OV-1",
            path.to_str().unwrap(),
            &base.sha,
        ],
    );
    let ws = manager.ensure("OV-1", &base).await.unwrap();
    assert!(ws.created_now, "made again, not reused");
    assert_eq!(read(&ws.path, "README.md"), read(&fx.source, "README.md"));
    assert_eq!(git(&ws.path, &["status", "--porcelain"]), "");
    manager.remove("OV-1").await.unwrap();
}
