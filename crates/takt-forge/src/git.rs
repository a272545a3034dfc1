//! Pushing the task branch from the daemon's mirror with the daemon's credentials.
//!
//! The token reaches git only through its environment: `GIT_CONFIG_COUNT` /
//! `GIT_CONFIG_KEY_n` / `GIT_CONFIG_VALUE_n` set `http.<origin>/.extraHeader` to a Basic
//! `Authorization` header scoped to the remote's origin. It is never in argv (visible in
//! `ps`), never in the remote URL (stored in reflogs and printed in errors), never in a config
//! file, and never in the agent's sandbox: the push runs in the daemon, from the mirror. git's
//! stderr is redacted before it is kept in an error. A local remote (a path or `file://`, used
//! by tests) gets no header.

use std::path::Path;

use takt_workspace::Git;

use crate::error::ForgeError;
use crate::settings::{ForgeKind, Secret};

/// How a push went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The branch already pointed at the commit; nothing was sent.
    AlreadyThere,
    /// The branch was created or moved to the commit.
    Pushed,
}

/// What the push needs besides the commit.
pub(crate) struct PushTarget<'a> {
    pub kind: ForgeKind,
    pub remote: &'a str,
    pub token: &'a Secret,
}

/// The credential git sends: GitHub takes the token as the password of `x-access-token`,
/// GitLab as the password of `oauth2` (both documented for HTTPS git access).
fn auth_header(kind: ForgeKind, token: &Secret) -> String {
    let user = match kind {
        ForgeKind::Github => "x-access-token",
        ForgeKind::Gitlab => "oauth2",
    };
    let basic = base64(format!("{user}:{}", token.expose()).as_bytes());
    format!("Authorization: Basic {basic}")
}

/// `scheme://host[:port]/` of an HTTP(S) remote, or `None` for local and SSH remotes.
fn http_origin(remote: &str) -> Option<String> {
    let url = reqwest::Url::parse(remote).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    Some(format!("{}/", url.origin().ascii_serialization()))
}

/// The environment-only configuration for one git command against `remote`: no credential
/// helpers, and for HTTP(S) remotes the Basic header scoped to the remote's origin.
fn credential_env(target: &PushTarget<'_>) -> Vec<(String, String)> {
    let mut config: Vec<(String, String)> = vec![
        // An empty value resets the helper list: no helper of the daemon's user is asked,
        // and nothing is stored.
        ("credential.helper".to_owned(), String::new()),
    ];
    if let Some(origin) = http_origin(target.remote) {
        config.push((
            format!("http.{origin}.extraHeader"),
            auth_header(target.kind, target.token),
        ));
    }
    let mut env = vec![("GIT_CONFIG_COUNT".to_owned(), config.len().to_string())];
    for (index, (key, value)) in config.into_iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{index}"), key));
        env.push((format!("GIT_CONFIG_VALUE_{index}"), value));
    }
    env
}

fn git_error(token: &Secret, command: String, error: takt_workspace::GitError) -> ForgeError {
    let stderr = match &error {
        takt_workspace::GitError::Failed { stderr, .. } => stderr.clone(),
        other => other.to_string(),
    };
    ForgeError::Git {
        command: token.redact(&command),
        stderr: token.redact(&stderr),
    }
}

/// The sha `refs/heads/<branch>` has on the remote, if the branch exists.
async fn remote_head(
    git: &Git,
    git_dir: &Path,
    target: &PushTarget<'_>,
    branch: &str,
) -> Result<Option<String>, ForgeError> {
    let refname = format!("refs/heads/{branch}");
    let command = git.cmd(git_dir).env("GIT_DIR", git_dir).args([
        "ls-remote",
        "--end-of-options",
        target.remote,
        &refname,
    ]);
    let command = credential_env(target)
        .into_iter()
        .fold(command, |c, (k, v)| c.env(k, v));
    let text = command.command_string();
    let out = command
        .run()
        .await
        .map_err(|e| git_error(target.token, text, e))?;
    Ok(out.lines().find_map(|line| {
        let (sha, name) = line.split_once('\t')?;
        (name.trim() == refname).then(|| sha.trim().to_owned())
    }))
}

/// Pushes `commit` from the repository at `git_dir` to `refs/heads/<branch>` on the remote.
///
/// - the branch already at `commit`: nothing to do;
/// - the branch absent: created (with a lease that it still does not exist);
/// - the branch at `lease` (takt's previous push): moved to `commit`, even if not a
///   fast-forward, with `--force-with-lease` against `lease`;
/// - the branch elsewhere and no lease: a fast-forward push only;
/// - anything else is someone else's work: [`ForgeError::Conflict`], nothing overwritten.
pub(crate) async fn push_branch(
    git: &Git,
    git_dir: &Path,
    target: &PushTarget<'_>,
    commit: &str,
    branch: &str,
    lease: Option<&str>,
) -> Result<PushOutcome, ForgeError> {
    // Resolve the commit in the mirror first: a clear error beats git's "src refspec" one.
    let resolved = git
        .cmd(git_dir)
        .env("GIT_DIR", git_dir)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{commit}^{{commit}}"))
        .run()
        .await
        .map_err(|_| ForgeError::Git {
            command: format!("git rev-parse {commit}"),
            stderr: format!("commit {commit} is not in {}", git_dir.display()),
        })?;
    let refname = format!("refs/heads/{branch}");
    let current = remote_head(git, git_dir, target, branch).await?;
    let expect = match (&current, lease) {
        (Some(sha), _) if *sha == resolved => return Ok(PushOutcome::AlreadyThere),
        (None, _) => Some(String::new()),
        (Some(sha), Some(lease)) if sha == lease => Some(lease.to_owned()),
        (Some(sha), Some(lease)) => {
            return Err(ForgeError::Conflict(format!(
                "branch {branch} is at {sha}, not at takt's last push {lease}: someone else moved it; takt does not overwrite it"
            )));
        }
        (Some(_), None) => None,
    };
    let lease = expect.map(|expect| format!("--force-with-lease={refname}:{expect}"));
    let refused = match push(git, git_dir, target, lease, format!("{resolved}:{refname}")).await? {
        Pushed::Done(_) => return Ok(PushOutcome::Pushed),
        Pushed::Refused(why) => why,
    };
    Err(ForgeError::Conflict(format!(
        "the remote refused to move {branch} to {resolved} (someone else's commits are on it): {refused}"
    )))
}

/// How a `git push` of one refspec ended, short of an error.
enum Pushed {
    /// Pushed; git's porcelain report.
    Done(String),
    /// The remote refused it (not a fast-forward, or a stale lease); its words.
    Refused(String),
}

/// `git push --porcelain` of `refspec` from the mirror with the daemon's credentials in the
/// environment only; any other failure is a [`ForgeError::Git`] with the token redacted.
async fn push(
    git: &Git,
    git_dir: &Path,
    target: &PushTarget<'_>,
    lease: Option<String>,
    refspec: String,
) -> Result<Pushed, ForgeError> {
    let mut command =
        git.cmd(git_dir)
            .env("GIT_DIR", git_dir)
            .args(["push", "--porcelain", "--no-verify"]);
    if let Some(lease) = lease {
        command = command.arg(lease);
    }
    let command = command
        .args(["--end-of-options", target.remote])
        .arg(refspec);
    let command = credential_env(target)
        .into_iter()
        .fold(command, |c, (k, v)| c.env(k, v));
    let text = command.command_string();
    let out = command
        .output()
        .await
        .map_err(|e| git_error(target.token, text.clone(), e))?;
    let stdout = target.token.redact(out.stdout.trim());
    let stderr = target.token.redact(out.stderr.trim());
    if out.success() {
        return Ok(Pushed::Done(stdout));
    }
    let said = |word: &str| stdout.contains(word) || stderr.contains(word);
    if said("[rejected]") || said("stale info") {
        return Ok(Pushed::Refused(if stdout.is_empty() {
            stderr
        } else {
            stdout
        }));
    }
    Err(ForgeError::Git {
        command: target.token.redact(&text),
        stderr,
    })
}

/// Pushes `refs/notes/<notes_ref>` from the mirror to the remote, fast-forward only (takt is
/// the only writer of its notes; a remote ref that went elsewhere is not overwritten).
pub(crate) async fn push_notes(
    git: &Git,
    git_dir: &Path,
    target: &PushTarget<'_>,
    notes_ref: &str,
) -> Result<PushOutcome, ForgeError> {
    let refname = format!("refs/notes/{notes_ref}");
    let local = git
        .cmd(git_dir)
        .env("GIT_DIR", git_dir)
        .args([
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &refname,
        ])
        .run()
        .await
        .ok()
        .filter(|sha| !sha.is_empty());
    let Some(local) = local else {
        return Ok(PushOutcome::AlreadyThere);
    };
    match push(git, git_dir, target, None, format!("{local}:{refname}")).await? {
        // `=` marks a ref that was already up to date.
        Pushed::Done(report) if report.lines().any(|line| line.starts_with('=')) => {
            Ok(PushOutcome::AlreadyThere)
        }
        Pushed::Done(_) => Ok(PushOutcome::Pushed),
        Pushed::Refused(why) => Err(ForgeError::Conflict(format!(
            "the remote's {refname} is not behind takt's (someone else wrote notes there): {why}"
        ))),
    }
}

/// Standard base64 with padding (RFC 4648), for the Basic header.
pub(crate) fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"x-access-token:abc"), "eC1hY2Nlc3MtdG9rZW46YWJj");
    }

    #[test]
    fn credentials_go_only_to_http_remotes_scoped_to_their_origin() {
        let token = Secret::new("s3cret");
        let local = PushTarget {
            kind: ForgeKind::Github,
            remote: "/tmp/remote.git",
            token: &token,
        };
        let env = credential_env(&local);
        assert_eq!(env[0], ("GIT_CONFIG_COUNT".to_owned(), "1".to_owned()));
        assert!(env.iter().all(|(_, v)| !v.contains("Basic")));
        let https = PushTarget {
            kind: ForgeKind::Gitlab,
            remote: "https://gitlab.example.com:8443/g/p.git",
            token: &token,
        };
        let env = credential_env(&https);
        assert!(env.contains(&(
            "GIT_CONFIG_KEY_1".to_owned(),
            "http.https://gitlab.example.com:8443/.extraHeader".to_owned()
        )));
        assert!(env.contains(&(
            "GIT_CONFIG_VALUE_1".to_owned(),
            format!("Authorization: Basic {}", base64(b"oauth2:s3cret"))
        )));
    }
}
