//! Repo mirrors, git worktrees, lifecycle hooks, path safety and cleanup (git via its CLI).
