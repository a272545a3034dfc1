//! docs/openapi.json is the document the code generates.

use std::path::PathBuf;

const REGENERATE: &str = "TAKT_UPDATE_OPENAPI";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = takt_server::openapi_json();
    let path = committed_path();
    if std::env::var_os(REGENERATE).is_some() {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the document the code generates; regenerate it with \
         `{REGENERATE}=1 cargo test -p takt-server --test all openapi` and commit it"
    );
}

#[test]
fn the_document_lists_every_route() {
    let document: serde_json::Value =
        serde_json::from_str(&takt_server::openapi_json()).expect("json");
    let paths = document["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/v1/state", "get"),
        ("/api/v1/{issue_identifier}", "get"),
        ("/api/v1/refresh", "post"),
        ("/api/v1/tasks", "get"),
        ("/api/v1/tasks", "post"),
        ("/api/v1/tasks/{id}", "get"),
        ("/api/v1/tasks/{id}/cancel", "post"),
        ("/api/v1/tasks/{id}/retry", "post"),
        ("/api/v1/tasks/{id}/approve", "post"),
        ("/api/v1/tasks/{id}/reject", "post"),
        ("/api/v1/tasks/{id}/answer", "post"),
        ("/api/v1/tasks/{id}/events", "get"),
        ("/api/v1/tasks/{id}/evidence", "get"),
        ("/api/v1/artifacts/{hash}", "get"),
        ("/api/v1/cost", "get"),
        ("/api/v1/health", "get"),
        ("/api/v1/events", "get"),
        ("/metrics", "get"),
        ("/hooks/github", "post"),
        ("/hooks/gitlab", "post"),
        ("/hooks/linear", "post"),
        ("/hooks/generic", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|item| item.get(method)).is_some(),
            "{method} {path} is not in the document"
        );
    }
    assert_eq!(paths.len(), 21);
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        document["components"]["securitySchemes"]["generic_webhook"]["scheme"],
        "bearer"
    );
    // The hooks authenticate themselves; the API token is not theirs.
    for hook in ["/hooks/github", "/hooks/gitlab", "/hooks/linear"] {
        assert!(
            document["paths"][hook]["post"]["security"].is_null(),
            "{hook}"
        );
    }
}
