//! GitHub: the signature, and payloads reduced to a [`WebhookTrigger`].
//!
//! GitHub signs the raw body with HMAC-SHA256 keyed by the hook's secret and sends
//! `X-Hub-Signature-256: sha256=<hex>`. It signs no timestamp, so the only replay key is the
//! delivery id (`X-GitHub-Delivery`), which the daemon deduplicates durably.

use std::borrow::Cow;

use serde::Deserialize;

use super::{HmacScheme, HookError, Parsed, json_object};
use crate::port::{GITHUB_SOURCE, WebhookTrigger};

/// GitHub's signature header and its form.
pub const SIGNATURE: HmacScheme = HmacScheme {
    header: "x-hub-signature-256",
    name: "X-Hub-Signature-256",
    sender: "GitHub",
    prefix: "sha256=",
    format: "sha256=<64 hex digits>",
};
/// GitHub's delivery id header (a GUID, the same on a redelivery).
pub const DELIVERY_HEADER: &str = "x-github-delivery";
/// GitHub's event name header.
pub const EVENT_HEADER: &str = "x-github-event";

/// The parts of GitHub's payloads the trigger keeps; serde skips the rest.
#[derive(Debug, Default, Deserialize)]
struct Payload {
    action: Option<String>,
    repository: Option<Repository>,
    issue: Option<Subject>,
    pull_request: Option<Subject>,
    check_suite: Option<CheckSuite>,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: Option<String>,
}

/// An issue or a pull request.
#[derive(Debug, Deserialize)]
struct Subject {
    number: Option<u64>,
    title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckSuite {
    #[serde(default)]
    pull_requests: Vec<Subject>,
}

/// The actions of each handled event that can change what the daemon should run; the
/// others (`assigned`, `deleted` comments, `requested` suites, ...) cannot and are ignored.
fn handled(event: &str, action: &str) -> bool {
    match event {
        "issues" => matches!(
            action,
            "opened" | "reopened" | "edited" | "labeled" | "unlabeled" | "closed"
        ),
        "issue_comment" => action == "created",
        "pull_request" => matches!(action, "opened" | "synchronize" | "closed" | "reopened"),
        "check_suite" => action == "completed",
        _ => false,
    }
}

/// Reads a verified delivery of `event` with id `delivery`. `body` is the JSON payload
/// (already taken out of a form body, see [`json_payload`]).
pub fn parse_github(event: &str, delivery: &str, body: &[u8]) -> Result<Parsed, HookError> {
    let malformed = |reason: String| HookError::Malformed {
        event: event.to_owned(),
        reason,
    };
    let value = json_object(event, body)?;
    if event == "ping" {
        return Ok(Parsed::Ping);
    }
    if !matches!(
        event,
        "issues" | "issue_comment" | "pull_request" | "check_suite"
    ) {
        return Ok(Parsed::Ignored(event.to_owned()));
    }
    let payload: Payload =
        serde_json::from_value(value).map_err(|error| malformed(error.to_string()))?;
    let action = payload
        .action
        .ok_or_else(|| malformed("it has no `action`".to_owned()))?;
    if !handled(event, &action) {
        return Ok(Parsed::Ignored(format!("{event}.{action}")));
    }
    let subject = match event {
        "issues" | "issue_comment" => payload.issue,
        "pull_request" => payload.pull_request,
        // A suite names no title; its first pull request, when it ran for one, is the subject.
        _ => payload
            .check_suite
            .ok_or_else(|| malformed("it has no `check_suite`".to_owned()))?
            .pull_requests
            .into_iter()
            .next()
            .map(|pull| Subject {
                number: pull.number,
                title: None,
            }),
    };
    if subject.is_none() && event != "check_suite" {
        let field = if event == "pull_request" {
            "pull_request"
        } else {
            "issue"
        };
        return Err(malformed(format!("it has no `{field}`")));
    }
    let (number, title) = subject.map_or((None, None), |subject| (subject.number, subject.title));
    Ok(Parsed::Trigger(WebhookTrigger {
        source: GITHUB_SOURCE.to_owned(),
        delivery: delivery.to_owned(),
        event: event.to_owned(),
        action: Some(action),
        repository: payload
            .repository
            .and_then(|repository| repository.full_name),
        number,
        title,
    }))
}

/// The JSON payload of a GitHub delivery: the body itself, or its `payload` field when the hook
/// is set to the `application/x-www-form-urlencoded` content type (GitHub signs the form body
/// as sent, so the signature is checked before this).
pub fn json_payload<'a>(content_type: Option<&str>, body: &'a [u8]) -> Cow<'a, [u8]> {
    let form = content_type.is_some_and(|value| {
        value.split(';').next().is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form {
        return Cow::Borrowed(body);
    }
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map_or(Cow::Borrowed(&[][..]), |(_, value)| {
            Cow::Owned(value.into_owned().into_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::tests::hex_hmac;
    use crate::webhook::verify_hmac;

    /// HMAC-SHA256 as GitHub sends it.
    fn sign(secret: &str, body: &[u8]) -> String {
        format!("sha256={}", hex_hmac(secret, body))
    }

    fn verify_signature(
        secret: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<(), HookError> {
        verify_hmac(&SIGNATURE, secret, body, signature)
    }

    #[test]
    fn githubs_documented_example_verifies() {
        // The example of GitHub's "Validating webhook deliveries" page.
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify_signature(
                "It's a Secret to Everybody",
                b"Hello, World!",
                Some(signature)
            ),
            Ok(())
        );
        let upper = signature.to_ascii_uppercase().replace("SHA256=", "sha256=");
        assert_eq!(
            verify_signature("It's a Secret to Everybody", b"Hello, World!", Some(&upper)),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_secret_body_or_format_is_refused() {
        let body = br#"{"action":"opened"}"#;
        let good = sign("s3cret", body);
        let bad_signature = Err(HookError::BadSignature {
            header: "X-Hub-Signature-256",
        });
        assert_eq!(verify_signature("s3cret", body, Some(&good)), Ok(()));
        assert_eq!(verify_signature("other", body, Some(&good)), bad_signature);
        assert_eq!(
            verify_signature("s3cret", b"{}", Some(&good)),
            bad_signature
        );
        assert!(matches!(
            verify_signature("s3cret", body, None),
            Err(HookError::MissingCredential {
                sender: "GitHub",
                ..
            })
        ));
        // The bare hex without GitHub's prefix is Linear's form, not GitHub's.
        let bare = good.trim_start_matches("sha256=").to_owned();
        for bad in [
            "",
            "sha1=abcd",
            "sha256=xyz",
            &good[..good.len() - 2],
            "sha256=",
            &bare,
        ] {
            assert!(
                matches!(
                    verify_signature("s3cret", body, Some(bad)),
                    Err(HookError::MalformedSignature { .. })
                ),
                "{bad}"
            );
        }
    }

    fn trigger(event: &str, body: serde_json::Value) -> Result<Parsed, HookError> {
        parse_github(event, "d-1", body.to_string().as_bytes())
    }

    #[test]
    fn handled_events_become_triggers() {
        let repository = serde_json::json!({"full_name": "acme/app", "id": 1});
        let issue = serde_json::json!({"number": 7, "title": "Crash", "state": "open"});
        let Ok(Parsed::Trigger(opened)) = trigger(
            "issues",
            serde_json::json!({"action": "opened", "issue": issue, "repository": repository}),
        ) else {
            panic!("not a trigger");
        };
        assert_eq!(
            opened,
            WebhookTrigger {
                source: "github".into(),
                delivery: "d-1".into(),
                event: "issues".into(),
                action: Some("opened".into()),
                repository: Some("acme/app".into()),
                number: Some(7),
                title: Some("Crash".into()),
            }
        );
        let comment = trigger(
            "issue_comment",
            serde_json::json!({"action": "created", "issue": issue, "comment": {"body": "hi"}}),
        );
        assert!(matches!(comment, Ok(Parsed::Trigger(t)) if t.number == Some(7)));
        let pull = trigger(
            "pull_request",
            serde_json::json!({"action": "synchronize", "number": 9,
                "pull_request": {"number": 9, "title": "Fix"}}),
        );
        assert!(
            matches!(pull, Ok(Parsed::Trigger(t)) if t.number == Some(9) && t.title.as_deref() == Some("Fix"))
        );
        let suite = trigger(
            "check_suite",
            serde_json::json!({"action": "completed",
                "check_suite": {"conclusion": "failure", "pull_requests": [{"number": 9}]}}),
        );
        assert!(
            matches!(suite, Ok(Parsed::Trigger(t)) if t.number == Some(9) && t.title.is_none())
        );
        let suite_without_pull = trigger(
            "check_suite",
            serde_json::json!({"action": "completed", "check_suite": {"pull_requests": []}}),
        );
        assert!(matches!(suite_without_pull, Ok(Parsed::Trigger(t)) if t.number.is_none()));
    }

    #[test]
    fn other_events_and_actions_are_ignored_and_ping_is_ping() {
        assert_eq!(
            trigger(
                "ping",
                serde_json::json!({"zen": "Keep it logically awesome."})
            ),
            Ok(Parsed::Ping)
        );
        assert_eq!(
            trigger("push", serde_json::json!({"ref": "refs/heads/main"})),
            Ok(Parsed::Ignored("push".into()))
        );
        assert_eq!(
            trigger(
                "issues",
                serde_json::json!({"action": "assigned", "issue": {"number": 1}})
            ),
            Ok(Parsed::Ignored("issues.assigned".into()))
        );
        assert_eq!(
            trigger("check_suite", serde_json::json!({"action": "requested"})),
            Ok(Parsed::Ignored("check_suite.requested".into()))
        );
    }

    #[test]
    fn malformed_payloads_are_refused() {
        assert!(matches!(
            parse_github("issues", "d", b"{not json"),
            Err(HookError::Malformed { .. })
        ));
        assert!(matches!(
            parse_github("push", "d", b"[1]"),
            Err(HookError::Malformed { .. })
        ));
        for body in [
            serde_json::json!({"issue": {"number": 1}}),
            serde_json::json!({"action": "opened"}),
            serde_json::json!({"action": "opened", "issue": {"number": "seven"}}),
        ] {
            assert!(
                matches!(
                    trigger("issues", body.clone()),
                    Err(HookError::Malformed { .. })
                ),
                "{body}"
            );
        }
        assert!(matches!(
            trigger("check_suite", serde_json::json!({"action": "completed"})),
            Err(HookError::Malformed { .. })
        ));
    }

    #[test]
    fn a_form_body_carries_the_json_in_payload() {
        let form = b"payload=%7B%22zen%22%3A1%7D";
        assert_eq!(
            &*json_payload(Some("application/x-www-form-urlencoded"), form),
            br#"{"zen":1}"#
        );
        assert_eq!(&*json_payload(Some("application/json"), b"{}"), b"{}");
        assert_eq!(&*json_payload(None, b"{}"), b"{}");
    }
}
