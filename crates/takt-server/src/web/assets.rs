//! The dashboard's static files, compiled into the binary. Pages link them as
//! `/assets/<name>?v=<hash of the content>`, so they can be cached for a year: a new build with
//! a changed file links a new URL.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "takt.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/takt.css"),
    },
    Asset {
        name: "live.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/live.js"),
    },
    // htmx 2.0.4 (`npm pack htmx.org@2.0.4`, dist/htmx.min.js), 0BSD: htmx.LICENSE.txt.
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/htmx.min.js"),
    },
    Asset {
        name: "htmx.LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../../assets/htmx.LICENSE.txt"),
    },
];

/// The first 12 hex digits of each asset's sha256, by position in [`ASSETS`].
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            Sha256::digest(asset.body)
                .iter()
                .take(6)
                .map(|byte| format!("{byte:02x}"))
                .collect()
        })
        .collect()
});

/// The URL a page links `name` by (with its content hash).
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|asset| asset.name == name) {
        Some(index) => format!("/assets/{name}?v={}", VERSIONS[index]),
        None => format!("/assets/{name}"),
    }
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}
