//! `/login` and `/logout`: the operator pastes the API token once; the server answers with the
//! session cookie (`session`), so forms and the event stream work without a header.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::forms::{FormFields, check_csrf};
use super::html::attr;
use super::layout::{self, Section, Viewer};
use super::{see_other, session};
use crate::app::App;

/// Where to go after logging in: a local path only, so the login page cannot be used to send
/// the operator to another site.
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn next_param(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(key, _)| key == "next")
        .map(|(_, value)| value.into_owned())
}

fn form(viewer: &Viewer, next: &str, problem: Option<&str>, status: StatusCode) -> Response {
    let notice = if !viewer.token_configured {
        r#"<p>This server has no token: the dashboard needs no login.</p>"#.to_owned()
    } else if viewer.logged_in {
        r#"<p>You are logged in.</p>"#.to_owned()
    } else {
        String::new()
    };
    let problem = problem.map_or(String::new(), |problem| {
        format!(
            r#"<p class="error" role="alert">{}</p>"#,
            super::html::text(problem)
        )
    });
    let main = format!(
        r#"<h1>Log in</h1>
{notice}{problem}
<form method="post" action="/login" class="action">
<input type="hidden" name="next" value="{next}">
<label>API token <input type="password" name="token" id="token" autocomplete="current-password" required autofocus></label>
<button type="submit" class="primary" id="login">Log in</button>
</form>
<p class="muted">The token is the one set as <code>server.token</code>. The browser keeps a cookie derived from it, not the token itself.</p>"#,
        next = attr(next),
    );
    layout::html_response(
        status,
        layout::page("Log in", Section::Login, viewer, &main),
    )
}

/// `GET /login`.
pub async fn page(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    let next = local_target(next_param(query.as_deref()).as_deref());
    form(&viewer, &next, None, StatusCode::OK)
}

/// `POST /login`: the token right, the session cookie set and on to `next`; wrong, 401 and the
/// form again.
pub async fn submit(
    State(app): State<App>,
    headers: HeaderMap,
    crate::extract::Body(body): crate::extract::Body,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    let fields = FormFields::parse(&body);
    let next = local_target(fields.get("next"));
    let Some(token) = app.token.as_ref() else {
        return see_other(&next);
    };
    let presented = fields.get("token").unwrap_or_default().trim();
    if !token.matches(presented) {
        return form(
            &viewer,
            &next,
            Some("That is not the token."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let mut response = see_other(&next);
    if let Ok(cookie) = HeaderValue::from_str(&session::session_cookie(token)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /logout`: the session cookie cleared.
pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    crate::extract::Body(body): crate::extract::Body,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    if let Err(error) = check_csrf(&app, &FormFields::parse(&body)) {
        return layout::error_page(&error, &viewer, Some("/"));
    }
    let mut response = see_other("/login");
    if let Ok(cookie) = HeaderValue::from_str(&session::expired_session_cookie()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_target(Some("/tasks/TAKT-1")), "/tasks/TAKT-1");
        assert_eq!(local_target(Some("//evil.example/")), "/");
        assert_eq!(local_target(Some("https://evil.example/")), "/");
        assert_eq!(local_target(Some("/\\evil.example")), "/");
        assert_eq!(local_target(None), "/");
    }
}
