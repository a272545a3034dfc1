mod body;
mod github;
mod gitlab;
mod push;

use std::path::PathBuf;

use takt_test_support::{GitRepo, git};

/// The token the fakes accept; tests look for it where it must never appear.
pub const TOKEN: &str = "ghp_SECRETtoken0123456789";

/// A source repository (the daemon's mirror stands in: its `.git`) with `main` pushed to a
/// bare remote, the forge's side.
pub struct World {
    pub repo: GitRepo,
    pub remote: PathBuf,
}

impl World {
    pub fn new() -> World {
        let repo = GitRepo::new();
        let remote = repo.root().join("remote.git");
        git(
            repo.root(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        repo.git(&[
            "push",
            "-q",
            remote.to_str().unwrap(),
            "main:refs/heads/main",
        ]);
        World { repo, remote }
    }

    /// The repository the daemon pushes from.
    pub fn git_dir(&self) -> PathBuf {
        self.repo.path().join(".git")
    }

    /// A new commit on a side branch of the source; returns its sha.
    pub fn commit(&self, file: &str, text: &str) -> String {
        self.repo.commit_file(file, text, &format!("change {file}"))
    }

    /// The remote's `refs/heads/<branch>`, if any.
    pub fn remote_head(&self, branch: &str) -> Option<String> {
        let out = takt_test_support::git_output(
            &self.remote,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("refs/heads/{branch}"),
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Someone else pushes `commit` to `branch` of the remote (forced).
    pub fn push_as_someone_else(&self, commit: &str, branch: &str) {
        self.repo.git(&[
            "push",
            "-q",
            "-f",
            self.remote.to_str().unwrap(),
            &format!("{commit}:refs/heads/{branch}"),
        ]);
    }
}

/// Asserts that `text` never contains the token.
pub fn assert_no_token(what: &str, text: &str) {
    assert!(!text.contains(TOKEN), "{what} contains the token: {text}");
}

pub fn spec(branch: &str, title: &str, body: &str) -> takt_forge::PullRequestSpec {
    takt_forge::PullRequestSpec {
        branch: branch.to_owned(),
        base: "main".to_owned(),
        title: title.to_owned(),
        body: body.to_owned(),
        draft: false,
    }
}
