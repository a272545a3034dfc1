//! Reading requests: path parameters, bodies, the operator header. Every failure is an
//! [`ApiError`], so even a malformed path or an oversized body answers in the envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The header naming the person behind a command (`approve`, `reject`, ...) or a new task.
pub const OPERATOR_HEADER: &str = "x-takt-operator";
/// Who acts when a request does not say.
pub const DEFAULT_OPERATOR: &str = "api";
/// Longest operator name accepted.
const MAX_OPERATOR_CHARS: usize = 100;

/// The one path parameter of a route (a task reference, an identifier, a hash), decoded.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParam, ApiError> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParam(value)),
            Err(rejection) => Err(ApiError::rejected(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// The raw request body (at most axum's default 2 MiB; more is 413 in the envelope).
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) => Err(ApiError::rejected(
                rejection.status(),
                rejection.body_text(),
            )),
        }
    }
}

/// The operator named by `X-Takt-Operator`, or `api` without the header. A header that is
/// blank, not UTF-8 or longer than 100 characters is refused rather than replaced, so an
/// action is never attributed to someone other than who the client meant.
pub fn operator(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(value) = headers.get(OPERATOR_HEADER) else {
        return Ok(DEFAULT_OPERATOR.to_owned());
    };
    operator_name(value.to_str().ok())
}

/// An operator name as given (a header, a form field): trimmed, not blank, at most 100
/// characters; refused otherwise.
pub fn operator_name(given: Option<&str>) -> Result<String, ApiError> {
    let name = given
        .map(str::trim)
        .filter(|name| !name.is_empty() && name.chars().count() <= MAX_OPERATOR_CHARS)
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "the operator ({OPERATOR_HEADER}, or a form's `by`) must be a visible name of \
                 at most {MAX_OPERATOR_CHARS} characters"
            ))
        })?;
    Ok(name.to_owned())
}

/// Parses a JSON request body; an empty body reads as `{}`. Unknown fields are errors (the
/// types deny them), so a misspelt `comment` is not silently dropped.
pub fn json_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid(format!("the request body is not valid: {error}")))
}

/// A required text field: present and not blank, returned trimmed.
pub fn required_text(value: Option<String>, field: &str) -> Result<String, ApiError> {
    value
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .ok_or_else(|| ApiError::invalid(format!("`{field}` is required and must not be blank")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_operator_defaults_to_api_and_is_trimmed() {
        let mut headers = HeaderMap::new();
        assert_eq!(operator(&headers), Ok("api".to_owned()));
        headers.insert(OPERATOR_HEADER, HeaderValue::from_static("  ada "));
        assert_eq!(operator(&headers), Ok("ada".to_owned()));
        headers.insert(OPERATOR_HEADER, HeaderValue::from_static("   "));
        assert_eq!(
            operator(&headers).map_err(|error| error.code),
            Err("invalid_request")
        );
    }

    #[test]
    fn an_empty_body_reads_as_the_default() {
        #[derive(Debug, Default, PartialEq, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            comment: Option<String>,
        }
        assert_eq!(
            json_body::<Body>(&Bytes::from_static(b" \n")),
            Ok(Body::default())
        );
        assert_eq!(
            json_body::<Body>(&Bytes::from_static(br#"{"comment":"ok"}"#)),
            Ok(Body {
                comment: Some("ok".into())
            })
        );
        let typo = json_body::<Body>(&Bytes::from_static(br#"{"coment":"ok"}"#));
        assert!(typo.is_err_and(|error| error.message.contains("coment")));
    }
}
