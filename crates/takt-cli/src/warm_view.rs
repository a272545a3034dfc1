//! Warm agent builds: where the agent sees its workspace, and the build cache below it.
//!
//! Build tools key their outputs by absolute path, so the frozen caches the gates make
//! (`verify.warm_cache`) are right only for a tree shown at the path they were made at, with
//! the base's files at the frozen mtime golden trees carry. bubblewrap shows the agent's
//! workspace there, and the root supervisor mounts the cache of the workspace's golden commit
//! over `target/` through an overlay whose upper layer goes with the workspace. The agent's
//! first `cargo build` then costs what an incremental build costs.

use takt_core::ports::{CacheOverlay, WorkspaceView};
use takt_sandbox::Sandbox;
use takt_verify::{AgentBuildCache, Verifier};
use takt_workspace::{Workspace, WorkspaceManager};

/// What a session is shown: the view, the lease that keeps its cache, and one line on why it
/// starts warm or cold (`None` when warm caches are off).
pub struct AgentView {
    pub view: Option<WorkspaceView>,
    pub note: Option<String>,
    _cache: Option<AgentBuildCache>,
}

impl AgentView {
    fn plain(note: Option<String>) -> AgentView {
        AgentView {
            view: None,
            note,
            _cache: None,
        }
    }
}

/// The view for a session in `workspace`. `caches` is `None` unless `verify.warm_cache` is
/// on.
pub async fn agent_view(
    caches: Option<&Verifier>,
    sandbox: &Sandbox,
    workspaces: &WorkspaceManager,
    workspace: &Workspace,
) -> AgentView {
    let Some(caches) = caches else {
        return AgentView::plain(None);
    };
    let cold = |reason: String| AgentView::plain(Some(format!("cold: {reason}")));
    if !sandbox.can_show_elsewhere() {
        return cold(format!(
            "the sandbox is {}, and only bubblewrap can show the workspace at the path build \
             caches are made at",
            sandbox.mechanism().as_str()
        ));
    }
    if !workspace.path.join("Cargo.toml").is_file() {
        return cold(
            "no build cache is known for this repository (takt keeps Cargo's target/ for a \
             Cargo.toml at the root)"
                .into(),
        );
    }
    let Some(layers) = workspaces.build_layers(workspace) else {
        return cold(
            "the workspace is a git worktree, and build caches are shown over overlay \
             workspaces only (workspace.overlay)"
                .into(),
        );
    };
    let at = match caches.warm_path() {
        Ok(at) => at,
        Err(error) => return cold(format!("the build caches' path cannot be used: {error}")),
    };
    let mut view = WorkspaceView {
        at,
        build_cache: None,
    };
    let cache = match caches.build_cache_for_agent(&layers.golden_commit).await {
        Ok(cache) => cache,
        Err(reason) => {
            return AgentView {
                view: Some(view),
                note: Some(format!("cold: {reason}")),
                _cache: None,
            };
        }
    };
    if let Some(why) = occupied(&workspace.path.join(cache.dir)) {
        return AgentView {
            view: Some(view),
            note: Some(format!("cold: the workspace's {}/ {why}", cache.dir)),
            _cache: None,
        };
    }
    let (upper, merged, frozen_at) = (
        layers.upper.clone(),
        workspace.path.clone(),
        cache.frozen_at,
    );
    let refreshed =
        tokio::task::spawn_blocking(move || refresh_older_changes(&upper, &merged, frozen_at))
            .await
            .map_err(std::io::Error::other)
            .and_then(|result| result);
    if let Err(error) = refreshed {
        return AgentView {
            view: Some(view),
            note: Some(format!(
                "cold: setting the times of the workspace's changes: {error}"
            )),
            _cache: None,
        };
    }
    // One upper layer per cache: outputs built over one cache are not right over another.
    let layer = layers.dir.join(&cache.key[..cache.key.len().min(16)]);
    view.build_cache = Some(CacheOverlay {
        dir: cache.dir.to_owned(),
        lower: cache.lower.clone(),
        upper: layer.join("upper"),
        work: layer.join("work"),
    });
    let note = format!(
        "warm: {}, the workspace at {}",
        cache.note,
        view.at.display()
    );
    AgentView {
        view: Some(view),
        note: Some(note),
        _cache: Some(cache),
    }
}

/// Why the cache cannot be shown at `path`, if it cannot: only over nothing or an empty
/// directory (outputs built without it would be hidden, a link would lead elsewhere).
fn occupied(path: &std::path::Path) -> Option<&'static str> {
    match fs_err::symlink_metadata(path) {
        Err(_) => None,
        Ok(meta) if meta.is_dir() => {
            fs_err::read_dir(path).map_or(Some("cannot be read"), |mut entries| {
                entries
                    .next()
                    .map(|_| "already holds outputs built without the cache")
            })
        }
        Ok(_) => Some("is not a directory"),
    }
}

/// Gives "now" to every file the workspace changed (its overlay's `upper` layer, touched
/// through the `merged` view) that is not newer than the cache: the build tool would take the
/// cache's outputs, built from the base's version, as fresh for it. Changes made after the
/// cache was frozen are newer than all its outputs already and keep their times.
fn refresh_older_changes(
    upper: &std::path::Path,
    merged: &std::path::Path,
    frozen_at: std::time::SystemTime,
) -> std::io::Result<()> {
    let now = std::time::SystemTime::now();
    let mut pending = vec![std::path::PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in fs_err::read_dir(upper.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let meta = entry.metadata()?;
            if meta.is_dir() {
                pending.push(path);
            } else if meta.modified()? <= frozen_at {
                // A whiteout (a deleted file) has nothing at the merged path: nothing to set.
                match takt_workspace::set_mtime(&merged.join(&path), now) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        return Err(error);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
