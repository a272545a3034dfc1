//! The review actions as form posts: approve, reject (comment required), answer (text
//! required). Each checks the CSRF field (when a token is configured), then takes the same path
//! as the JSON API's command (`routes::commands::submit_command`), and answers 303 to the
//! task's page, or an error page with the daemon's reason.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use takt_core::OperatorCommand;

use super::html::task_href;
use super::layout::{self, Viewer};
use super::see_other;
use super::session;
use crate::app::App;
use crate::error::ApiError;
use crate::extract::{Body, PathParam, operator_name, required_text};
use crate::routes::commands::submit_command;

/// A posted form's fields (`application/x-www-form-urlencoded`).
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn parse(body: &[u8]) -> FormFields {
        FormFields(
            form_urlencoded::parse(body)
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The CSRF check: with a token configured, the form must carry this server's CSRF value. The
/// auth middleware has already required the session cookie (or the bearer token).
pub fn check_csrf(app: &App, form: &FormFields) -> Result<(), ApiError> {
    let Some(token) = app.token.as_ref() else {
        // Without a token the auth middleware's origin check stops other sites' pages.
        return Ok(());
    };
    let presented = form.get(session::CSRF_FIELD).unwrap_or_default();
    if session::same_secret(&session::csrf_value(token), presented) {
        Ok(())
    } else {
        Err(ApiError::forbidden_csrf())
    }
}

/// What every action does around its command.
async fn act(
    app: App,
    headers: HeaderMap,
    reference: String,
    body: &[u8],
    command: impl FnOnce(
        &FormFields,
        String,
    ) -> Result<Box<dyn FnOnce(String) -> OperatorCommand + Send>, ApiError>,
) -> Response {
    let viewer = Viewer::of(&app, &headers);
    let form = FormFields::parse(body);
    let back = task_href(&reference);
    let outcome = async {
        check_csrf(&app, &form)?;
        let by = operator_name(Some(form.get("by").unwrap_or("web")))?;
        let build = command(&form, by.clone())?;
        let task = submit_command(&app, &reference, build).await?;
        Ok::<_, ApiError>((task, by))
    };
    match outcome.await {
        Ok((task, by)) => {
            let mut response = see_other(&task_href(&task.identifier));
            if let Ok(cookie) = HeaderValue::from_str(&session::operator_cookie(&by)) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(error) => layout::error_page(&error, &viewer, Some(&back)),
    }
}

/// The optional comment, trimmed; blank is none.
fn optional_comment(form: &FormFields) -> Option<String> {
    form.get("comment")
        .map(str::trim)
        .filter(|comment| !comment.is_empty())
        .map(str::to_owned)
}

/// `POST /tasks/{id}/approve`.
pub async fn approve(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    act(app, headers, reference, &body, |form, by| {
        let comment = optional_comment(form);
        Ok(Box::new(move |task| OperatorCommand::Approve {
            task,
            by,
            comment,
        }))
    })
    .await
}

/// `POST /tasks/{id}/reject`.
pub async fn reject(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    act(app, headers, reference, &body, |form, by| {
        let comment = required_text(form.get("comment").map(str::to_owned), "comment")?;
        Ok(Box::new(move |task| OperatorCommand::Reject {
            task,
            by,
            comment,
        }))
    })
    .await
}

/// `POST /tasks/{id}/answer`.
pub async fn answer(
    State(app): State<App>,
    PathParam(reference): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Response {
    act(app, headers, reference, &body, |form, by| {
        let text = required_text(form.get("text").map(str::to_owned), "text")?;
        Ok(Box::new(move |task| OperatorCommand::Answer {
            task,
            by,
            text,
        }))
    })
    .await
}
