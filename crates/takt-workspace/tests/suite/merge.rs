//! `merge_to_source`: the local forge.

use takt_workspace::{
    MergeOutcome, RepoSource, WorkspaceError, WorkspaceManager, WorkspaceSettings,
};

use super::fixture::{Fixture, commit_all, git, git_output, head, read, rev, workspace, write};

/// A workspace for `identifier` with `file` set to `content` and committed by takt.
async fn task_commit(
    manager: &WorkspaceManager,
    identifier: &str,
    file: &str,
    content: &str,
) -> (takt_workspace::Workspace, String) {
    let (_, ws) = workspace(manager, identifier).await;
    write(&ws.path, file, content);
    let sha = manager
        .commit_all(&ws, "task change", identifier, None)
        .await
        .unwrap()
        .unwrap();
    (ws, sha)
}

#[tokio::test]
async fn merge_fast_forwards_the_checked_out_base_and_updates_the_mirror() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (ws, sha) = task_commit(&manager, "ABC-1", "feature.txt", "feature\n").await;
    let outcome = manager
        .merge_to_source(&ws.branch, &sha, "main", "Merge ABC-1")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Merged {
            sha: sha.clone(),
            fast_forward: true
        }
    );
    assert_eq!(rev(&fx.source, "main"), sha);
    // main is checked out in the source: files and index follow.
    assert_eq!(read(&fx.source, "feature.txt"), "feature\n");
    assert_eq!(git(&fx.source, &["status", "--porcelain"]), "");
    // The task branch is published in the source.
    assert_eq!(rev(&fx.source, "refs/heads/takt/ABC-1"), sha);
    // The mirror already sees the new base.
    assert_eq!(
        git(&fx.mirror, &["rev-parse", "refs/remotes/origin/main"]),
        sha
    );
    assert_eq!(manager.sync_mirror().await.unwrap().sha, sha);
}

#[tokio::test]
async fn merge_creates_a_merge_commit_when_the_base_moved() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (ws, sha) = task_commit(&manager, "ABC-1", "feature.txt", "feature\n").await;
    write(&fx.source, "other.txt", "other\n");
    let moved = commit_all(&fx.source, "meanwhile on main");

    let outcome = manager
        .merge_to_source(&ws.branch, &sha, "main", "Merge ABC-1 (takt)")
        .await
        .unwrap();
    let MergeOutcome::Merged {
        sha: merge,
        fast_forward,
    } = outcome
    else {
        panic!("unexpected {outcome:?}");
    };
    assert!(!fast_forward);
    assert_eq!(rev(&fx.source, "main"), merge);
    assert_eq!(
        git(&fx.source, &["log", "-1", "--format=%P"]),
        format!("{moved} {sha}")
    );
    assert_eq!(
        git(&fx.source, &["log", "-1", "--format=%an <%ae>|%s"]),
        "takt <takt@localhost>|Merge ABC-1 (takt)"
    );
    assert_eq!(read(&fx.source, "feature.txt"), "feature\n");
    assert_eq!(read(&fx.source, "other.txt"), "other\n");
    assert_eq!(git(&fx.source, &["status", "--porcelain"]), "");
}

#[tokio::test]
async fn merge_into_a_base_that_is_not_checked_out_uses_update_ref() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (ws, sha) = task_commit(&manager, "ABC-1", "feature.txt", "feature\n").await;
    // The person works on another branch, with uncommitted work there.
    git(&fx.source, &["checkout", "--quiet", "-b", "dev"]);
    write(&fx.source, "wip.txt", "uncommitted on dev\n");
    let main_before = rev(&fx.source, "main");

    let outcome = manager
        .merge_to_source(&ws.branch, &sha, "main", "m")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        MergeOutcome::Merged {
            sha: sha.clone(),
            fast_forward: true
        }
    );
    assert_eq!(rev(&fx.source, "main"), sha);
    assert_ne!(main_before, sha);
    // The person's checkout is untouched.
    assert_eq!(git(&fx.source, &["symbolic-ref", "--short", "HEAD"]), "dev");
    assert_eq!(read(&fx.source, "wip.txt"), "uncommitted on dev\n");
    assert!(!fx.source.join("feature.txt").exists());

    // And a non-fast-forward merge into the unchecked-out base works too.
    git(&fx.source, &["checkout", "--quiet", "main"]);
    write(&fx.source, "main2.txt", "m2\n");
    let moved = commit_all(&fx.source, "main moves");
    git(&fx.source, &["checkout", "--quiet", "dev"]);
    let (ws2, sha2) = task_commit(&manager, "ABC-2", "second.txt", "2\n").await;
    let outcome = manager
        .merge_to_source(&ws2.branch, &sha2, "main", "m2")
        .await
        .unwrap();
    let MergeOutcome::Merged {
        sha: merge,
        fast_forward: false,
    } = outcome
    else {
        panic!("unexpected {outcome:?}");
    };
    assert_eq!(
        git(&fx.source, &["log", "-1", "--format=%P", "main"]),
        format!("{moved} {sha2}")
    );
    assert_eq!(rev(&fx.source, "main"), merge);
    assert_eq!(git(&fx.source, &["show", "main:second.txt"]), "2");
}

#[tokio::test]
async fn conflict_leaves_the_source_untouched_and_names_the_files() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (ws, sha) = task_commit(&manager, "ABC-1", "README.md", "from the task\n").await;
    write(&fx.source, "README.md", "from a person\n");
    let moved = commit_all(&fx.source, "conflicting change");
    let status_before = git(&fx.source, &["status", "--porcelain"]);

    let outcome = manager
        .merge_to_source(&ws.branch, &sha, "main", "m")
        .await
        .unwrap();
    let MergeOutcome::Conflict { files, details } = outcome else {
        panic!("unexpected {outcome:?}");
    };
    assert_eq!(files, vec!["README.md".to_owned()]);
    assert!(details.contains("CONFLICT"), "{details}");
    assert_eq!(rev(&fx.source, "main"), moved);
    assert_eq!(head(&fx.source), moved);
    assert_eq!(read(&fx.source, "README.md"), "from a person\n");
    assert_eq!(git(&fx.source, &["status", "--porcelain"]), status_before);
    assert!(!fx.source.join(".git/MERGE_HEAD").exists());
}

#[tokio::test]
async fn merging_again_reports_already_merged_without_a_second_merge_commit() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (ws, sha) = task_commit(&manager, "ABC-1", "feature.txt", "feature\n").await;
    write(&fx.source, "other.txt", "other\n");
    commit_all(&fx.source, "meanwhile");
    let MergeOutcome::Merged { sha: merge, .. } = manager
        .merge_to_source(&ws.branch, &sha, "main", "m")
        .await
        .unwrap()
    else {
        panic!("expected a merge");
    };
    let again = manager
        .merge_to_source(&ws.branch, &sha, "main", "m")
        .await
        .unwrap();
    assert_eq!(again, MergeOutcome::AlreadyMerged { sha: merge.clone() });
    assert_eq!(rev(&fx.source, "main"), merge);
    assert_eq!(
        git(&fx.source, &["rev-list", "--count", "--merges", "main"]),
        "1"
    );
}

#[tokio::test]
async fn a_dirty_checked_out_base_is_refused_and_left_alone() {
    let fx = Fixture::new();
    let manager = fx.manager();
    let (ws, sha) = task_commit(&manager, "ABC-1", "feature.txt", "feature\n").await;
    write(&fx.source, "README.md", "uncommitted edit\n");
    let before = rev(&fx.source, "main");

    let err = manager
        .merge_to_source(&ws.branch, &sha, "main", "m")
        .await
        .unwrap_err();
    let WorkspaceError::SourceDirty { branch, files, .. } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(branch, "main");
    assert_eq!(files, &vec![" M README.md".to_owned()]);
    assert!(err.to_string().contains("commit or stash"), "{err}");
    assert_eq!(rev(&fx.source, "main"), before);
    assert_eq!(read(&fx.source, "README.md"), "uncommitted edit\n");
    assert!(!fx.source.join("feature.txt").exists());

    // Untracked files do not count as dirty.
    git(&fx.source, &["checkout", "--", "README.md"]);
    write(&fx.source, "untracked.txt", "u\n");
    let outcome = manager
        .merge_to_source(&ws.branch, &sha, "main", "m")
        .await
        .unwrap();
    assert!(
        matches!(outcome, MergeOutcome::Merged { .. }),
        "{outcome:?}"
    );
    assert_eq!(read(&fx.source, "untracked.txt"), "u\n");
}

#[tokio::test]
async fn url_sources_cannot_be_merged_locally_and_unknown_commits_are_reported() {
    let fx = Fixture::new();
    let manager = WorkspaceManager::new(WorkspaceSettings {
        source: RepoSource::Url(format!("file://{}", fx.source.display())),
        ..fx.settings()
    })
    .unwrap();
    // A URL source still mirrors and makes workspaces.
    let (_, ws) = workspace(&manager, "ABC-1").await;
    let err = manager
        .merge_to_source(&ws.branch, &ws.base_sha, "main", "m")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceError::MergeUnsupported { .. }),
        "{err:?}"
    );

    let local = fx.manager();
    local.sync_mirror().await.unwrap();
    let err = local
        .merge_to_source(
            "takt/x",
            "0123456789012345678901234567890123456789",
            "main",
            "m",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, WorkspaceError::UnknownCommit { .. }),
        "{err:?}"
    );
    let no_branch = git_output(
        &fx.source,
        &["rev-parse", "--verify", "--quiet", "refs/heads/takt/x"],
    );
    assert!(!no_branch.status.success());
}
