//! `GET /api/v1/artifacts/{hash}`: content-addressed artifacts (gate output, transcripts) as
//! raw bytes.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::PathParam;

/// One stored artifact, byte for byte.
///
/// The hash is the artifact's sha256 in hex (the `stdout_hash`/`stderr_hash` of a gate run,
/// a call's `transcript`); upper case is accepted.
#[utoipa::path(get, path = "/api/v1/artifacts/{hash}", tag = "evidence",
    params(("hash" = String, Path, description = "sha256, 64 hex digits")),
    responses(
        (status = 200, description = "The bytes", content_type = "application/octet-stream",
            body = Vec<u8>),
        (status = 400, description = "`invalid_request`: not a sha256", body = ErrorEnvelope),
        (status = 404, description = "`artifact_not_found`", body = ErrorEnvelope),
    ))]
pub async fn get_artifact(
    State(app): State<App>,
    PathParam(hash): PathParam,
) -> Result<Response, ApiError> {
    let hash = sha256_hex(&hash).ok_or_else(|| {
        ApiError::invalid(format!(
            "`{hash}` is not a sha256: artifacts are named by 64 hex digits"
        ))
    })?;
    let Some(bytes) = app.ask(app.daemon.artifact(&hash)).await? else {
        return Err(ApiError::artifact_not_found(&hash));
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // Content-addressed: the bytes behind a hash never change.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok(response)
}

/// The hash in lower case, when it is 64 hex digits.
fn sha256_hex(hash: &str) -> Option<String> {
    (hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_hex_digits_name_an_artifact() {
        let hash = "AB".repeat(32);
        assert_eq!(sha256_hex(&hash), Some("ab".repeat(32)));
        assert_eq!(sha256_hex("abc"), None);
        assert_eq!(sha256_hex(&"g".repeat(64)), None);
        assert_eq!(sha256_hex(&format!("../{}", "a".repeat(61))), None);
    }
}
