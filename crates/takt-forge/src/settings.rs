//! What a forge client needs: which forge, where its API is, which repository, the daemon's
//! token, where to push, how to merge.

use std::fmt;

use crate::error::ForgeError;

/// Which forge's API the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForgeKind {
    /// GitHub or GitHub Enterprise Server: REST v3.
    Github,
    /// GitLab.com or self-managed GitLab: REST v4.
    Gitlab,
}

impl ForgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ForgeKind::Github => "github",
            ForgeKind::Gitlab => "gitlab",
        }
    }

    /// The public service's API root.
    pub fn default_api_url(self) -> &'static str {
        match self {
            ForgeKind::Github => "https://api.github.com",
            ForgeKind::Gitlab => "https://gitlab.com/api/v4",
        }
    }
}

/// How an approved request is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MergeMethod {
    /// A merge commit.
    Merge,
    /// All commits squashed into one (the default: one task, one commit).
    #[default]
    Squash,
    /// The commits rebased onto the base. On GitLab the project's merge method decides; takt
    /// merges without squashing.
    Rebase,
}

impl MergeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMethod::Merge => "merge",
            MergeMethod::Squash => "squash",
            MergeMethod::Rebase => "rebase",
        }
    }
}

/// A credential. Its `Debug` and `Display` never show the value; only [`Secret::expose`]
/// does, at the one place a request or a git environment is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for an `Authorization` header or git's environment. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The status context takt reports its gate results under unless configured otherwise.
pub const DEFAULT_STATUS_CONTEXT: &str = "takt/verify";

/// Everything a forge client needs. `Debug` shows the token as `Secret(***)`.
#[derive(Debug, Clone)]
pub struct ForgeSettings {
    pub kind: ForgeKind,
    /// The API root without a trailing slash: `https://api.github.com`,
    /// `https://ghe.example.com/api/v3`, `https://gitlab.example.com/api/v4`.
    pub api_url: String,
    /// GitHub: `owner/name`. GitLab: the project's full path, `group/subgroup/project`.
    pub repo: String,
    /// The daemon's token (never the agent's).
    pub token: Secret,
    /// Where `git push` goes. `None`: derived from `api_url` and `repo`
    /// (`https://github.com/owner/name.git`); tests point it at a local bare repository.
    pub remote_url: Option<String>,
    pub merge_method: MergeMethod,
    /// The commit status context takt sets, and ignores when reading checks back.
    pub status_context: String,
}

impl ForgeSettings {
    /// Settings with the public service's API URL, no remote override, squash merges and the
    /// default status context.
    pub fn new(kind: ForgeKind, repo: impl Into<String>, token: Secret) -> ForgeSettings {
        ForgeSettings {
            kind,
            api_url: kind.default_api_url().to_owned(),
            repo: repo.into(),
            token,
            remote_url: None,
            merge_method: MergeMethod::default(),
            status_context: DEFAULT_STATUS_CONTEXT.to_owned(),
        }
    }

    /// Checks the settings and normalizes `api_url` (no trailing slash) and `repo`.
    pub fn validated(mut self) -> Result<ForgeSettings, ForgeError> {
        self.api_url = self.api_url.trim().trim_end_matches('/').to_owned();
        self.repo = self.repo.trim().trim_matches('/').to_owned();
        if self.token.expose().trim().is_empty() {
            return Err(ForgeError::Config(format!(
                "the {} token is empty; export the variable `publish.token` names",
                self.kind.as_str()
            )));
        }
        if reqwest::Url::parse(&self.api_url).is_err() {
            return Err(ForgeError::Config(format!(
                "the API URL {:?} is not a URL",
                self.api_url
            )));
        }
        let parts: Vec<&str> = self.repo.split('/').collect();
        let shape_ok = match self.kind {
            ForgeKind::Github => parts.len() == 2,
            ForgeKind::Gitlab => parts.len() >= 2,
        };
        if !shape_ok || parts.iter().any(|part| part.trim().is_empty()) {
            return Err(ForgeError::Config(match self.kind {
                ForgeKind::Github => {
                    format!("the repository {:?} is not `owner/name`", self.repo)
                }
                ForgeKind::Gitlab => {
                    format!("the project path {:?} is not `group/project`", self.repo)
                }
            }));
        }
        if self.status_context.trim().is_empty() {
            self.status_context = DEFAULT_STATUS_CONTEXT.to_owned();
        }
        Ok(self)
    }

    /// The URL `git push` uses: the override, or the forge's HTTPS clone URL.
    pub fn push_url(&self) -> String {
        if let Some(remote) = &self.remote_url {
            return remote.clone();
        }
        let web = web_root(self.kind, &self.api_url);
        format!("{web}/{}.git", self.repo)
    }

    /// The owner of a GitHub repository (`owner` of `owner/name`).
    pub fn owner(&self) -> &str {
        self.repo.split('/').next().unwrap_or_default()
    }
}

impl ForgeSettings {
    /// The settings `publish:` in WORKFLOW.md describes: `Ok(None)` for `forge: local`;
    /// [`ForgeError::Config`] when the token's variable is unset or the repository is missing
    /// (the workflow's validation already reported both).
    pub fn from_publish(
        publish: &takt_workflow::PublishConfig,
    ) -> Result<Option<ForgeSettings>, ForgeError> {
        let kind = match publish.forge {
            takt_workflow::ForgeKind::Local => return Ok(None),
            takt_workflow::ForgeKind::Github => ForgeKind::Github,
            takt_workflow::ForgeKind::Gitlab => ForgeKind::Gitlab,
        };
        let Some(repo) = publish.repo.clone() else {
            return Err(ForgeError::Config(format!(
                "`publish.forge` is `{}` but no repository is named",
                kind.as_str()
            )));
        };
        let token = match &publish.token {
            Some(secret) => match &secret.value {
                Some(value) => Secret::new(value.clone()),
                None => {
                    return Err(ForgeError::Config(format!(
                        "${} (`publish.token`) is not set; export it before starting takt",
                        secret.var
                    )));
                }
            },
            None => {
                return Err(ForgeError::Config(
                    "`publish.token` names no variable".to_owned(),
                ));
            }
        };
        let mut settings = ForgeSettings::new(kind, repo, token);
        if let Some(api_url) = &publish.api_url {
            settings.api_url = api_url.clone();
        }
        settings.remote_url = publish.remote.clone();
        settings.merge_method = match publish.merge_method {
            takt_workflow::MergeMethod::Merge => MergeMethod::Merge,
            takt_workflow::MergeMethod::Squash => MergeMethod::Squash,
            takt_workflow::MergeMethod::Rebase => MergeMethod::Rebase,
        };
        settings.validated().map(Some)
    }
}

/// The web root of a forge from its API root: `https://api.github.com` -> `https://github.com`,
/// `https://ghe/api/v3` -> `https://ghe`, `https://gitlab.com/api/v4` -> `https://gitlab.com`.
pub fn web_root(kind: ForgeKind, api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    match kind {
        ForgeKind::Github => {
            if let Some(rest) = api.strip_prefix("https://api.") {
                format!("https://{rest}")
            } else {
                api.trim_end_matches("/api/v3").to_owned()
            }
        }
        ForgeKind::Gitlab => api.trim_end_matches("/api/v4").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_urls_derive_from_the_api_root() {
        let token = Secret::new("t0k");
        let github = ForgeSettings::new(ForgeKind::Github, "o/r", token.clone());
        assert_eq!(github.push_url(), "https://github.com/o/r.git");
        let mut ghe = github;
        ghe.api_url = "https://ghe.example.com/api/v3".to_owned();
        assert_eq!(ghe.push_url(), "https://ghe.example.com/o/r.git");
        let gitlab = ForgeSettings::new(ForgeKind::Gitlab, "g/s/p", token);
        assert_eq!(gitlab.push_url(), "https://gitlab.com/g/s/p.git");
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = ForgeSettings::new(ForgeKind::Github, "just-a-name", Secret::new("x"));
        assert!(matches!(bad.validated(), Err(ForgeError::Config(m)) if m.contains("owner/name")));
        let empty = ForgeSettings::new(ForgeKind::Gitlab, "g/p", Secret::new(" "));
        assert!(matches!(empty.validated(), Err(ForgeError::Config(m)) if m.contains("empty")));
    }
}
