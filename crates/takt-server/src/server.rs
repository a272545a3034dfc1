//! Starting and stopping: [`serve`] runs the API on a listener until a shutdown future resolves
//! (mini-redis style); [`check_bind`] refuses an exposed address without a token before the
//! daemon binds it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::app::App;
use crate::auth::TokenDigest;
use crate::error::ServerError;
use crate::port::DaemonPort;
use crate::routes::router;

/// How the API is served.
#[derive(Clone)]
pub struct ServerConfig {
    /// The bearer token every state-changing request must present (and every request, when
    /// the server listens beyond loopback). `None`: no token; only loopback addresses may be
    /// served then.
    pub token: Option<String>,
    /// How often an idle event stream sends a keep-alive comment, so proxies and clients do
    /// not time it out.
    pub keep_alive: Duration,
    /// How long the server waits for the daemon to answer a call of [`DaemonPort`] (a command,
    /// a journal read) before answering 504 `orchestrator_timeout`.
    pub daemon_timeout: Duration,
    /// The secret of the GitHub webhook (the "Secret" field of the hook's settings), which
    /// signs every delivery to `POST /hooks/github`. `None`: that route answers 404.
    pub github_webhook_secret: Option<String>,
    /// The secret token of the GitLab webhook (its "Secret token" field), which GitLab sends
    /// verbatim with every delivery to `POST /hooks/gitlab`. `None`: that route answers 404.
    pub gitlab_webhook_secret: Option<String>,
    /// The signing secret of the Linear webhook (shown on the webhook's page in Linear), which
    /// signs every delivery to `POST /hooks/linear`. `None`: that route answers 404.
    pub linear_webhook_secret: Option<String>,
    /// The bearer token `POST /hooks/generic` requires (distinct from `token`, so a sender
    /// of tasks cannot approve or cancel them). `None`: that route answers 404.
    pub generic_webhook_token: Option<String>,
}

impl ServerConfig {
    /// The defaults with `token`.
    pub fn with_token(token: Option<String>) -> ServerConfig {
        ServerConfig {
            token,
            ..ServerConfig::default()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            token: None,
            keep_alive: Duration::from_secs(15),
            daemon_timeout: Duration::from_secs(15),
            github_webhook_secret: None,
            gitlab_webhook_secret: None,
            linear_webhook_secret: None,
            generic_webhook_token: None,
        }
    }
}

// The token and the webhook secrets stay out of logs.
impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("token", &redacted(&self.token))
            .field("keep_alive", &self.keep_alive)
            .field("daemon_timeout", &self.daemon_timeout)
            .field(
                "github_webhook_secret",
                &redacted(&self.github_webhook_secret),
            )
            .field(
                "gitlab_webhook_secret",
                &redacted(&self.gitlab_webhook_secret),
            )
            .field(
                "linear_webhook_secret",
                &redacted(&self.linear_webhook_secret),
            )
            .field(
                "generic_webhook_token",
                &redacted(&self.generic_webhook_token),
            )
            .finish()
    }
}

fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<redacted>")
}

/// A blank webhook secret would make signatures anyone can compute (HMAC with an empty key),
/// a blank GitLab token would match GitLab's hooks without a token, and a blank hook token
/// would let `Authorization: Bearer ` through.
fn check_webhooks(config: &ServerConfig) -> Result<(), ServerError> {
    for (hook, secret) in [
        ("github", &config.github_webhook_secret),
        ("gitlab", &config.gitlab_webhook_secret),
        ("linear", &config.linear_webhook_secret),
        ("generic", &config.generic_webhook_token),
    ] {
        if secret
            .as_deref()
            .is_some_and(|secret| secret.trim().is_empty())
        {
            return Err(ServerError::BlankWebhookSecret { hook });
        }
    }
    Ok(())
}

/// Whether the API may be served on `addr` with `token`: an address other machines can reach
/// (anything but 127.0.0.0/8 and ::1, including 0.0.0.0 and ::) needs a token, and a token must
/// not be blank. Call it before binding, to fail with a clear message; [`serve`] checks again.
pub fn check_bind(addr: SocketAddr, token: Option<&str>) -> Result<(), ServerError> {
    match token {
        Some(token) if token.trim().is_empty() => Err(ServerError::BlankToken),
        None if !addr.ip().is_loopback() => Err(ServerError::TokenRequired { addr }),
        _ => Ok(()),
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting, ends the open
/// event streams and waits for in-flight requests to finish.
///
/// Fails at once with [`ServerError::TokenRequired`] or [`ServerError::BlankToken`] when
/// [`check_bind`] refuses the listener's address, and with [`ServerError::BlankWebhookSecret`]
/// when a configured webhook secret or token is blank.
pub async fn serve(
    listener: TcpListener,
    daemon: Arc<dyn DaemonPort>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().map_err(ServerError::LocalAddr)?;
    check_bind(addr, config.token.as_deref())?;
    check_webhooks(&config)?;
    let (stopping, stopping_rx) = watch::channel(false);
    let app = App {
        daemon,
        token: config.token.as_deref().map(TokenDigest::of),
        reads_need_token: !addr.ip().is_loopback(),
        keep_alive: config.keep_alive,
        daemon_timeout: config.daemon_timeout,
        github_secret: config.github_webhook_secret.as_deref().map(Arc::from),
        gitlab_token: config.gitlab_webhook_secret.as_deref().map(TokenDigest::of),
        linear_secret: config.linear_webhook_secret.as_deref().map(Arc::from),
        generic_token: config.generic_webhook_token.as_deref().map(TokenDigest::of),
        shutdown: stopping_rx,
    };
    tracing::info!(
        %addr,
        token = config.token.is_some(),
        github_hook = config.github_webhook_secret.is_some(),
        gitlab_hook = config.gitlab_webhook_secret.is_some(),
        linear_hook = config.linear_webhook_secret.is_some(),
        generic_hook = config.generic_webhook_token.is_some(),
        "serving the HTTP API"
    );
    let signal = async move {
        shutdown.await;
        // Event streams never end on their own; graceful shutdown waits for them otherwise.
        stopping.send_replace(true);
    };
    axum::serve(listener, router(app))
        .with_graceful_shutdown(signal)
        .await
        .map_err(ServerError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposed_address_needs_a_token_and_loopback_does_not() {
        let exposed: SocketAddr = "0.0.0.0:7070".parse().expect("addr");
        let loopback: SocketAddr = "127.0.0.1:7070".parse().expect("addr");
        let loopback6: SocketAddr = "[::1]:7070".parse().expect("addr");
        assert!(matches!(
            check_bind(exposed, None),
            Err(ServerError::TokenRequired { .. })
        ));
        assert!(check_bind(exposed, Some("t0ken")).is_ok());
        assert!(check_bind(loopback, None).is_ok());
        assert!(check_bind(loopback6, None).is_ok());
        assert!(matches!(
            check_bind(loopback, Some("  ")),
            Err(ServerError::BlankToken)
        ));
    }

    #[test]
    fn the_token_and_the_webhook_secrets_are_not_printed() {
        let config = ServerConfig {
            github_webhook_secret: Some("gh-s3cret".into()),
            gitlab_webhook_secret: Some("gl-s3cret".into()),
            linear_webhook_secret: Some("lin-s3cret".into()),
            generic_webhook_token: Some("hook-t0ken".into()),
            ..ServerConfig::with_token(Some("hunter2".into()))
        };
        let printed = format!("{config:?}");
        for secret in [
            "hunter2",
            "gh-s3cret",
            "gl-s3cret",
            "lin-s3cret",
            "hook-t0ken",
        ] {
            assert!(!printed.contains(secret), "{printed}");
        }
        for field in [
            "github_webhook_secret",
            "gitlab_webhook_secret",
            "linear_webhook_secret",
        ] {
            assert!(printed.contains(field), "{printed}");
        }
    }

    #[test]
    fn a_blank_webhook_secret_is_refused() {
        let blank = ServerConfig {
            github_webhook_secret: Some(" ".into()),
            ..ServerConfig::default()
        };
        assert!(matches!(
            check_webhooks(&blank),
            Err(ServerError::BlankWebhookSecret { hook: "github" })
        ));
        let blank = ServerConfig {
            gitlab_webhook_secret: Some("\t".into()),
            ..ServerConfig::default()
        };
        assert!(matches!(
            check_webhooks(&blank),
            Err(ServerError::BlankWebhookSecret { hook: "gitlab" })
        ));
        let blank = ServerConfig {
            linear_webhook_secret: Some(String::new()),
            ..ServerConfig::default()
        };
        assert!(matches!(
            check_webhooks(&blank),
            Err(ServerError::BlankWebhookSecret { hook: "linear" })
        ));
        let blank = ServerConfig {
            generic_webhook_token: Some(String::new()),
            ..ServerConfig::default()
        };
        assert!(matches!(
            check_webhooks(&blank),
            Err(ServerError::BlankWebhookSecret { hook: "generic" })
        ));
        assert!(check_webhooks(&ServerConfig::default()).is_ok());
    }
}
