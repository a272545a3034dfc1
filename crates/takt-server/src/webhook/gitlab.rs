//! GitLab: the secret token, the delivery id, and payloads reduced to a [`WebhookTrigger`].
//!
//! GitLab signs nothing: it sends the hook's secret token verbatim in `X-Gitlab-Token`, so the
//! check is a comparison (of digests, in constant time). Nothing in a delivery says when it was
//! sent either, so the only replay key is the delivery id, which the daemon deduplicates
//! durably.
//!
//! The payload is read only for the trigger's summary (project, iid, title, action), with
//! lenient lookups: the daemon polls the tracker for the truth whatever the payload says, and
//! `takt-server` may not depend on `takt-forge`, whose `gitlab_notice` reads the same payloads
//! for the forge side.

use sha2::{Digest, Sha256};

use super::{HookError, Parsed, delivery_id, first_delivery_id, number_at, text_at};
use crate::auth::TokenDigest;
use crate::port::{GITLAB_SOURCE, WebhookTrigger};

/// GitLab's secret token header.
pub const TOKEN_HEADER: &str = "x-gitlab-token";
/// GitLab's event name header (`Issue Hook`, ...).
pub const EVENT_HEADER: &str = "x-gitlab-event";
/// GitLab's idempotency key (17.4 and later): one per delivery, the same on GitLab's retries.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// GitLab's event UUID (15 and later). Unlike the idempotency key it is shared by every
/// delivery one request to GitLab caused (a bulk edit, an issue closed with a comment) and by
/// "recursive" hooks, so it identifies a delivery only together with its body.
pub const EVENT_UUID_HEADER: &str = "x-gitlab-event-uuid";
/// Both delivery id headers, in order of preference.
pub const DELIVERY_HEADERS: [&str; 2] = [IDEMPOTENCY_HEADER, EVENT_UUID_HEADER];
/// How a missing delivery id is named.
const MISSING_DELIVERY: &str = "idempotency-key (or x-gitlab-event-uuid)";

/// The events that can change what the daemon should run: issues and their comments (the
/// confidential ones arrive under their own names), merge requests, pipelines and jobs.
const TRIGGERS: [&str; 7] = [
    "Issue Hook",
    "Confidential Issue Hook",
    "Note Hook",
    "Confidential Note Hook",
    "Merge Request Hook",
    "Pipeline Hook",
    "Job Hook",
];

/// Whether `presented` (the header's value) is the configured secret token. The digests are
/// compared in constant time, so neither the token nor its length leaks through timing.
pub fn verify_token(expected: &TokenDigest, presented: Option<&str>) -> Result<(), HookError> {
    let presented = presented.ok_or(HookError::MissingCredential {
        header: "X-Gitlab-Token",
        sender: "GitLab",
    })?;
    if !expected.matches(presented) {
        return Err(HookError::BadToken {
            header: "X-Gitlab-Token",
        });
    }
    Ok(())
}

/// The delivery id (`value` reads a header): `Idempotency-Key` when GitLab sends one, else
/// `X-Gitlab-Event-UUID` followed by `:` and the first 16 hex digits of the body's sha256, so
/// that distinct deliveries sharing a UUID are not taken for replays of each other while a
/// delivery sent again (same UUID, same body) still is.
pub fn delivery<'a>(
    value: impl Fn(&str) -> Option<&'a str>,
    body: &[u8],
) -> Result<String, HookError> {
    if let Some(key) = value(IDEMPOTENCY_HEADER) {
        return delivery_id(Some(key), IDEMPOTENCY_HEADER);
    }
    let uuid = first_delivery_id(&value, &[EVENT_UUID_HEADER], MISSING_DELIVERY)?;
    let digest = Sha256::digest(body);
    let short: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok(format!("{uuid}:{short}"))
}

/// Reads a verified delivery of `event` (the `X-Gitlab-Event` header) with id `delivery`;
/// `payload` is the body, already a JSON object.
pub fn parse_gitlab(event: &str, delivery: &str, payload: &serde_json::Value) -> Parsed {
    if !TRIGGERS.contains(&event) {
        return Parsed::Ignored(event.to_owned());
    }
    let (number, title) = subject(event, payload);
    Parsed::Trigger(WebhookTrigger {
        source: GITLAB_SOURCE.to_owned(),
        delivery: delivery.to_owned(),
        event: event.to_owned(),
        action: action(event, payload),
        repository: text_at(payload, "/project/path_with_namespace"),
        number,
        title,
    })
}

/// What happened: the object's `action` (`open`, `update`, `merge`, `approved`, ...), or for
/// pipelines and jobs, which have none, their status.
fn action(event: &str, payload: &serde_json::Value) -> Option<String> {
    match event {
        "Pipeline Hook" => text_at(payload, "/object_attributes/status"),
        "Job Hook" => text_at(payload, "/build_status"),
        _ => text_at(payload, "/object_attributes/action"),
    }
}

/// The issue's or merge request's iid and title: the object itself for issue and merge request
/// events, the commented issue or merge request for notes, the merge request a pipeline ran
/// for. A job names none.
fn subject(event: &str, payload: &serde_json::Value) -> (Option<u64>, Option<String>) {
    let of = |object: &str| {
        (
            number_at(payload, &format!("/{object}/iid")),
            text_at(payload, &format!("/{object}/title")),
        )
    };
    match event {
        "Note Hook" | "Confidential Note Hook" => {
            if payload.get("issue").is_some() {
                of("issue")
            } else {
                of("merge_request")
            }
        }
        "Pipeline Hook" => of("merge_request"),
        "Job Hook" => (None, None),
        _ => of("object_attributes"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_token_must_be_the_configured_one() {
        let expected = TokenDigest::of("gl-s3cret");
        assert_eq!(verify_token(&expected, Some("gl-s3cret")), Ok(()));
        for wrong in ["gl-s3cre", "gl-s3cret ", "GL-S3CRET", ""] {
            assert_eq!(
                verify_token(&expected, Some(wrong)),
                Err(HookError::BadToken {
                    header: "X-Gitlab-Token"
                }),
                "{wrong}"
            );
        }
        assert!(matches!(
            verify_token(&expected, None),
            Err(HookError::MissingCredential {
                sender: "GitLab",
                ..
            })
        ));
    }

    fn headers(
        present: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<&'static str> {
        move |name: &str| {
            present
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| *value)
        }
    }

    #[test]
    fn the_idempotency_key_is_preferred_and_the_event_uuid_is_tied_to_the_body() {
        let both = headers(&[("idempotency-key", "key-1"), ("x-gitlab-event-uuid", "u-1")]);
        assert_eq!(delivery(both, b"{}"), Ok("key-1".to_owned()));
        let uuid = headers(&[("x-gitlab-event-uuid", "u-1")]);
        let first = delivery(&uuid, br#"{"a":1}"#).unwrap();
        assert!(
            first.starts_with("u-1:") && first.len() == "u-1:".len() + 16,
            "{first}"
        );
        assert_eq!(
            delivery(&uuid, br#"{"a":1}"#).unwrap(),
            first,
            "same body, same id"
        );
        assert_ne!(delivery(&uuid, br#"{"a":2}"#).unwrap(), first);
        assert_eq!(
            delivery(headers(&[]), b"{}"),
            Err(HookError::MissingHeader(MISSING_DELIVERY))
        );
        assert_eq!(
            delivery(headers(&[("idempotency-key", "a b")]), b"{}"),
            Err(HookError::BadHeader("idempotency-key"))
        );
    }

    fn trigger(event: &str, payload: serde_json::Value) -> WebhookTrigger {
        match parse_gitlab(event, "d-1", &payload) {
            Parsed::Trigger(trigger) => trigger,
            other => panic!("not a trigger: {other:?}"),
        }
    }

    #[test]
    fn issue_note_merge_request_pipeline_and_job_hooks_trigger() {
        let project = json!({"id": 1, "path_with_namespace": "acme/app"});
        let issue = trigger(
            "Issue Hook",
            json!({"object_kind": "issue", "project": project,
                "object_attributes": {"iid": 7, "title": "Crash", "action": "open"}}),
        );
        assert_eq!(
            issue,
            WebhookTrigger {
                source: "gitlab".into(),
                delivery: "d-1".into(),
                event: "Issue Hook".into(),
                action: Some("open".into()),
                repository: Some("acme/app".into()),
                number: Some(7),
                title: Some("Crash".into()),
            }
        );
        let note = trigger(
            "Note Hook",
            json!({"object_attributes": {"noteable_type": "Issue", "note": "hi"},
                "issue": {"iid": 7, "title": "Crash"}}),
        );
        assert_eq!(
            (note.number, note.title.as_deref()),
            (Some(7), Some("Crash"))
        );
        let mr_note = trigger(
            "Note Hook",
            json!({"object_attributes": {"noteable_type": "MergeRequest"},
                "merge_request": {"iid": 3, "title": "Fix"}}),
        );
        assert_eq!(mr_note.number, Some(3));
        let merge = trigger(
            "Merge Request Hook",
            json!({"object_attributes": {"iid": 3, "title": "Fix", "action": "approved"}}),
        );
        assert_eq!(
            (merge.number, merge.action.as_deref()),
            (Some(3), Some("approved"))
        );
        let pipeline = trigger(
            "Pipeline Hook",
            json!({"object_attributes": {"status": "failed"}, "merge_request": {"iid": 3}}),
        );
        assert_eq!(
            (pipeline.number, pipeline.action.as_deref()),
            (Some(3), Some("failed"))
        );
        let job = trigger("Job Hook", json!({"build_status": "success"}));
        assert_eq!((job.number, job.action.as_deref()), (None, Some("success")));
        // Fields of unexpected types are left out rather than refused: the payload is a hint.
        let odd = trigger(
            "Confidential Issue Hook",
            json!({"object_attributes": {"iid": "seven"}}),
        );
        assert_eq!((odd.number, odd.title), (None, None));
    }

    #[test]
    fn other_events_are_ignored() {
        for event in ["Push Hook", "Tag Push Hook", "Wiki Page Hook", "issue hook"] {
            assert_eq!(
                parse_gitlab(event, "d", &json!({"object_kind": "push"})),
                Parsed::Ignored(event.to_owned())
            );
        }
    }
}
