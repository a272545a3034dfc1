//! The page shell every dashboard page shares (head, skip link, navigation, main landmark),
//! the headers every HTML answer carries, and who is looking ([`Viewer`]).

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::assets;
use super::html::{attr, text};
use super::session;
use crate::app::App;
use crate::error::ApiError;

/// Scripts and styles only from this server, no inline script, no framing: a title that slips
/// past escaping still cannot run.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Who is looking at a page, as far as the page's forms care.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The server has a token: acting needs a login.
    pub token_configured: bool,
    /// The request carries a valid session cookie.
    pub logged_in: bool,
    /// The CSRF value forms must carry (only with a token).
    pub csrf: Option<String>,
    /// The name forms fill in for `by`.
    pub operator: String,
}

impl Viewer {
    pub fn of(app: &App, headers: &HeaderMap) -> Viewer {
        let token = app.token.as_ref();
        Viewer {
            token_configured: token.is_some(),
            logged_in: session::has_session(headers, token),
            csrf: token.map(session::csrf_value),
            operator: session::remembered_operator(headers).unwrap_or_else(|| "web".to_owned()),
        }
    }

    /// Whether this viewer's form posts can succeed.
    pub fn can_act(&self) -> bool {
        !self.token_configured || self.logged_in
    }

    /// The hidden CSRF field for a form (nothing without a token).
    pub fn csrf_field(&self) -> String {
        match &self.csrf {
            Some(value) => format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                session::CSRF_FIELD,
                attr(value)
            ),
            None => String::new(),
        }
    }
}

/// Which navigation entry is the current page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Board,
    Overview,
    Task,
    Login,
}

/// A whole page: `title` (plain text, escaped here) and `main` (markup).
pub fn page(title: &str, section: Section, viewer: &Viewer, main: &str) -> String {
    let nav_link = |href: &str, label: &str, this: Section| {
        let current = if section == this {
            r#" aria-current="page""#
        } else {
            ""
        };
        format!(r#"<a href="{href}"{current}>{label}</a>"#)
    };
    let account = if !viewer.token_configured {
        String::new()
    } else if viewer.logged_in {
        format!(
            r#"<form method="post" action="/logout" class="inline">{}<button type="submit">Log out</button></form>"#,
            viewer.csrf_field()
        )
    } else {
        nav_link("/login", "Log in", Section::Login)
    };
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{{"includeIndicatorStyles":false,"allowEval":false}}'>
<title>{title} · takt</title>
<link rel="stylesheet" href="{css}">
<script src="{htmx}" defer></script>
<script src="{live}" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<nav aria-label="Main"><span class="brand">takt</span>{board}{overview}{account}</nav>
</header>
<main id="main" tabindex="-1">
{main}
</main>
</body>
</html>
"##,
        title = text(title),
        css = assets::url("takt.css"),
        htmx = assets::url("htmx.min.js"),
        live = assets::url("live.js"),
        board = nav_link("/", "Board", Section::Board),
        overview = nav_link("/overview", "Overview", Section::Overview),
    )
}

/// An HTML answer with the dashboard's headers.
pub fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (HeaderName::from_static("x-frame-options"), "DENY"),
        ],
        body,
    )
        .into_response()
}

/// A page explaining what went wrong, with the error's status.
pub fn error_page(error: &ApiError, viewer: &Viewer, back: Option<&str>) -> Response {
    let back = back.map_or(String::new(), |href| {
        format!(r#"<p><a href="{}">Back</a></p>"#, attr(href))
    });
    let main = format!(
        r#"<h1>{status}</h1><p class="error" role="alert">{message}</p><p class="muted">Code: <code>{code}</code></p>{back}"#,
        status = text(error.status.canonical_reason().unwrap_or("Error")),
        message = text(&error.message),
        code = text(error.code),
    );
    html_response(error.status, page("Error", Section::Board, viewer, &main))
}

/// A state badge: the state's name, styled by state.
pub fn state_badge(state: &str) -> String {
    format!(
        r#"<span class="badge state-{state}">{label}</span>"#,
        state = attr(state),
        label = text(&super::html::human(state))
    )
}
