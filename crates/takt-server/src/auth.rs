//! Who may do what.
//!
//! - A request that changes state (any method but GET, HEAD, OPTIONS) needs
//!   `Authorization: Bearer <token>` when a token is configured.
//! - Reads are open while the server listens on loopback only; on an address other machines
//!   can reach, they need the token too (and [`crate::check_bind`] refuses such an address
//!   without one).
//! - Without a token, a browser page from another origin cannot change state: a request whose
//!   `Origin` is not the server's own (or whose `Sec-Fetch-Site` is `cross-site`) is refused, so
//!   a web page cannot cancel tasks through a loopback daemon.
//!
//! - Webhooks (`/hooks/github`, `/hooks/gitlab`, `/hooks/linear`, `/hooks/generic`) skip
//!   these rules: their senders cannot hold the API token, and each hook checks its own
//!   credential (GitHub's and Linear's signatures, GitLab's secret token, the hook token) in
//!   `routes::hooks`. None is something a browser page can forge, so the origin check is not
//!   needed there either.
//!
//! - The web dashboard (`crate::web`): a browser cannot send the bearer header, so a valid
//!   session cookie (set by `/login`, see `web::session`) stands in for it on reads anywhere
//!   and on the dashboard's own form posts, which also check a CSRF field. `/login` and
//!   `/assets/` are open. An unauthorized page view is redirected to `/login`.
//!
//! Tokens are compared as sha256 digests with a comparison that takes the same time wherever
//! they differ, so neither the token's content nor its length leaks through timing.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::error::ApiError;
use crate::routes::hooks;
use crate::web;

/// The sha256 of the configured token.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// The digest itself: the key the dashboard's session and CSRF values are derived with.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let presented = TokenDigest::of(presented);
        let difference = self
            .0
            .iter()
            .zip(presented.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

/// The middleware in front of every route.
pub async fn authorize(State(app): State<App>, request: Request, next: Next) -> Response {
    // The router matches paths exactly, so this is the same test that routes to a hook.
    let path = request.uri().path();
    if hooks::is_hook_path(path) || web::is_open_path(path) {
        return next.run(request).await;
    }
    let method = request.method();
    // A session cookie stands in for the token on reads, and on state changes only where the
    // handler checks a CSRF field too (the dashboard's forms), never on the JSON API's.
    let cookie_counts = (!changes_state(method) || web::is_form_path(path))
        && web::session::has_session(request.headers(), app.token.as_ref());
    let allowed = check(
        method,
        request.headers(),
        app.token.as_ref(),
        app.reads_need_token,
        cookie_counts,
    );
    match allowed {
        Ok(()) => next.run(request).await,
        Err(error) if error.code == "unauthorized" && web::is_page_path(path) => {
            web::login_redirect(request.uri())
        }
        Err(error) => error.into_response(),
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a request may go on: the rules of this module as one decision.
fn check(
    method: &Method,
    headers: &HeaderMap,
    token: Option<&TokenDigest>,
    reads_need_token: bool,
    session_cookie: bool,
) -> Result<(), ApiError> {
    let changes_state = changes_state(method);
    match token {
        Some(token) if changes_state || reads_need_token => {
            if session_cookie || bearer(headers).is_some_and(|presented| token.matches(presented)) {
                Ok(())
            } else {
                Err(ApiError::unauthorized())
            }
        }
        None if changes_state && from_foreign_origin(headers) => Err(ApiError::forbidden_origin()),
        _ => Ok(()),
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// A browser marked the request as coming from a page of another origin. Clients that are not
/// browsers send neither header and pass.
fn from_foreign_origin(headers: &HeaderMap) -> bool {
    let header_text = |name| headers.get(name).and_then(|value| value.to_str().ok());
    if header_text("sec-fetch-site").is_some_and(|site| site.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = header_text(header::ORIGIN.as_str()) else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    header_text(header::HOST.as_str()).is_none_or(|host| !host.eq_ignore_ascii_case(origin_host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_exact_token_matches() {
        let digest = TokenDigest::of("s3cret");
        assert!(digest.matches("s3cret"));
        assert!(!digest.matches("s3cre"));
        assert!(!digest.matches("s3cret "));
        assert!(!digest.matches(""));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&headers), None);
    }

    fn with_bearer(token: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(token));
        headers
    }

    #[test]
    fn on_loopback_reads_are_open_and_changes_need_the_token() {
        let token = TokenDigest::of("t0ken");
        let none = HeaderMap::new();
        let right = with_bearer("Bearer t0ken");
        let wrong = with_bearer("Bearer nope");
        assert_eq!(
            check(&Method::GET, &none, Some(&token), false, false),
            Ok(())
        );
        assert_eq!(
            check(&Method::HEAD, &none, Some(&token), false, false),
            Ok(())
        );
        for method in [Method::POST, Method::DELETE, Method::PUT, Method::PATCH] {
            for headers in [&none, &wrong] {
                let denied = check(&method, headers, Some(&token), false, false);
                assert_eq!(denied.map_err(|error| error.code), Err("unauthorized"));
            }
            assert_eq!(check(&method, &right, Some(&token), false, false), Ok(()));
        }
    }

    #[test]
    fn beyond_loopback_reads_need_the_token_too() {
        let token = TokenDigest::of("t0ken");
        let denied = check(&Method::GET, &HeaderMap::new(), Some(&token), true, false);
        assert_eq!(denied.map_err(|error| error.code), Err("unauthorized"));
        let wrong = check(
            &Method::GET,
            &with_bearer("Bearer t0ke"),
            Some(&token),
            true,
            false,
        );
        assert_eq!(wrong.map_err(|error| error.code), Err("unauthorized"));
        let right = with_bearer("Bearer t0ken");
        assert_eq!(
            check(&Method::GET, &right, Some(&token), true, false),
            Ok(())
        );
        assert_eq!(
            check(&Method::POST, &right, Some(&token), true, false),
            Ok(())
        );
    }

    #[test]
    fn a_session_cookie_the_caller_vouched_for_stands_in_for_the_token() {
        let token = TokenDigest::of("t0ken");
        let none = HeaderMap::new();
        assert_eq!(
            check(&Method::POST, &none, Some(&token), true, true),
            Ok(())
        );
        assert_eq!(check(&Method::GET, &none, Some(&token), true, true), Ok(()));
        let denied = check(&Method::POST, &none, Some(&token), true, false);
        assert_eq!(denied.map_err(|error| error.code), Err("unauthorized"));
    }

    #[test]
    fn without_a_token_only_foreign_pages_are_stopped() {
        let mut headers = HeaderMap::new();
        assert_eq!(check(&Method::POST, &headers, None, false, false), Ok(()));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert_eq!(check(&Method::GET, &headers, None, false, false), Ok(()));
        let denied = check(&Method::POST, &headers, None, false, false);
        assert_eq!(denied.map_err(|error| error.code), Err("forbidden_origin"));
    }

    #[test]
    fn a_page_of_another_origin_is_foreign_and_the_same_origin_is_not() {
        let mut headers = HeaderMap::new();
        assert!(!from_foreign_origin(&headers));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!from_foreign_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(from_foreign_origin(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(from_foreign_origin(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(from_foreign_origin(&headers));
    }
}
