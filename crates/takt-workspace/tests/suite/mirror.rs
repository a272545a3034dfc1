//! `sync_mirror`: clone, fetch, base branch resolution and source validation.

use takt_workspace::{RepoSource, WorkspaceError, WorkspaceManager, WorkspaceSettings};

use super::fixture::{Fixture, commit_all, git, head, write};

#[tokio::test]
async fn mirror_clone_then_fetch_picks_up_a_new_commit() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let first = manager.sync_mirror().await.unwrap();
    assert_eq!(first.branch, "main");
    assert_eq!(first.sha, head(&fx.source));
    assert_eq!(
        git(&fx.mirror, &["rev-parse", "--is-bare-repository"]),
        "true"
    );

    write(&fx.source, "new.txt", "new\n");
    let second_sha = commit_all(&fx.source, "second");
    let second = manager.sync_mirror().await.unwrap();
    assert_eq!(second.sha, second_sha);
    assert_ne!(second.sha, first.sha);
}

#[tokio::test]
async fn mirror_keeps_source_branches_out_of_refs_heads_and_task_branches_survive_prune() {
    let fx = Fixture::new();
    git(&fx.source, &["branch", "feature"]);
    let manager = fx.manager();
    manager.sync_mirror().await.unwrap();
    assert_eq!(
        git(&fx.mirror, &["config", "--get-all", "remote.origin.fetch"]),
        "+refs/heads/*:refs/remotes/origin/*"
    );
    // Only remote-tracking refs for the source's branches.
    assert_eq!(
        git(
            &fx.mirror,
            &["for-each-ref", "--format=%(refname)", "refs/heads/"]
        ),
        ""
    );
    let remotes = git(
        &fx.mirror,
        &["for-each-ref", "--format=%(refname)", "refs/remotes/"],
    );
    assert!(remotes.contains("refs/remotes/origin/main"), "{remotes}");
    assert!(remotes.contains("refs/remotes/origin/feature"), "{remotes}");

    // A task branch and an attempt ref in the mirror survive `fetch --prune`.
    let sha = head(&fx.source);
    git(&fx.mirror, &["update-ref", "refs/heads/takt/X-1", &sha]);
    git(&fx.mirror, &["update-ref", "refs/takt/runs/r1/1", &sha]);
    git(&fx.source, &["branch", "-D", "feature"]);
    manager.sync_mirror().await.unwrap();
    assert_eq!(git(&fx.mirror, &["rev-parse", "refs/heads/takt/X-1"]), sha);
    assert_eq!(git(&fx.mirror, &["rev-parse", "refs/takt/runs/r1/1"]), sha);
    let remotes = git(
        &fx.mirror,
        &["for-each-ref", "--format=%(refname)", "refs/remotes/"],
    );
    assert!(!remotes.contains("feature"), "pruned: {remotes}");
}

#[tokio::test]
async fn default_base_is_the_source_head_branch_and_configured_base_wins() {
    let fx = Fixture::new();
    git(&fx.source, &["checkout", "--quiet", "-b", "trunk"]);
    write(&fx.source, "t.txt", "t\n");
    let trunk = commit_all(&fx.source, "on trunk");
    let base = fx.manager().sync_mirror().await.unwrap();
    assert_eq!(
        (base.branch.as_str(), base.sha.as_str()),
        ("trunk", trunk.as_str())
    );

    let manager = WorkspaceManager::new(WorkspaceSettings {
        base_branch: Some("main".into()),
        ..fx.settings()
    })
    .unwrap();
    let base = manager.sync_mirror().await.unwrap();
    assert_eq!(base.branch, "main");
    assert_eq!(base.sha, git(&fx.source, &["rev-parse", "main"]));
}

#[tokio::test]
async fn missing_base_branch_names_the_branches_that_exist() {
    let fx = Fixture::new();
    let manager = WorkspaceManager::new(WorkspaceSettings {
        base_branch: Some("develop".into()),
        ..fx.settings()
    })
    .unwrap();
    let err = manager.sync_mirror().await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::BaseBranchMissing { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("`develop` does not exist"), "{text}");
    assert!(text.contains("branches: main"), "{text}");
    assert!(text.contains("workspace.base_branch"), "{text}");
}

#[tokio::test]
async fn source_that_is_not_a_git_repository_gets_a_precise_error() {
    let fx = Fixture::new();
    let plain = fx.path("plain");
    fs_err::create_dir(&plain).unwrap();
    let manager = WorkspaceManager::new(WorkspaceSettings {
        source: RepoSource::Path(plain.clone()),
        ..fx.settings()
    })
    .unwrap();
    let err = manager.sync_mirror().await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::SourceNotRepository { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "workspace.repo {} is not a git repository: run `git init` there or point workspace.repo at a repository",
            plain.display()
        )
    );
    assert!(!fx.mirror.exists(), "no mirror is created for a bad source");
}

#[tokio::test]
async fn missing_source_subdirectory_source_and_empty_source_are_explained() {
    let fx = Fixture::new();
    let with_source = |source: std::path::PathBuf| {
        WorkspaceManager::new(WorkspaceSettings {
            source: RepoSource::Path(source),
            ..fx.settings()
        })
        .unwrap()
    };

    let err = with_source(fx.path("nope"))
        .sync_mirror()
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceError::SourceMissing { .. }),
        "{err:?}"
    );

    let sub = fx.source.join("sub");
    fs_err::create_dir(&sub).unwrap();
    let err = with_source(sub).sync_mirror().await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::SourceNotTopLevel { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("point workspace.repo at"), "{err}");

    let empty = fx.path("empty");
    fs_err::create_dir(&empty).unwrap();
    git(&empty, &["init", "--quiet", "--initial-branch=main"]);
    let err = with_source(empty).sync_mirror().await.unwrap_err();
    assert!(matches!(err, WorkspaceError::SourceEmpty { .. }), "{err:?}");
    assert!(err.to_string().contains("has no commits yet"), "{err}");
}

#[tokio::test]
async fn a_bare_source_works() {
    let fx = Fixture::new();
    let bare = fx.path("bare.git");
    git(
        fx.dir.path(),
        &[
            "clone",
            "--quiet",
            "--bare",
            fx.source.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let manager = WorkspaceManager::new(WorkspaceSettings {
        source: RepoSource::Path(bare),
        ..fx.settings()
    })
    .unwrap();
    let base = manager.sync_mirror().await.unwrap();
    assert_eq!(base.sha, head(&fx.source));
}

#[tokio::test]
async fn a_directory_at_the_mirror_path_that_is_not_a_mirror_is_reported() {
    let fx = Fixture::new();
    fs_err::create_dir_all(&fx.mirror).unwrap();
    write(&fx.mirror, "junk", "x");
    let err = fx.manager().sync_mirror().await.unwrap_err();
    assert!(
        matches!(err, WorkspaceError::MirrorInvalid { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("takt will re-create it"), "{err}");
}
