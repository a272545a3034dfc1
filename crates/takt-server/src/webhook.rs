//! Webhook deliveries as data: GitHub's signature, GitHub's payloads reduced to a
//! [`WebhookTrigger`], and the generic hook's delivery id. No I/O here; `routes::hooks` does
//! the HTTP side and the daemon calls.
//!
//! GitHub signs the raw body with HMAC-SHA256 keyed by the hook's secret and sends
//! `X-Hub-Signature-256: sha256=<hex>`. It signs no timestamp, so the only replay key is the
//! delivery id (`X-GitHub-Delivery`), which the daemon deduplicates durably.

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::port::{GITHUB_SOURCE, WebhookTrigger};

/// GitHub's signature header.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// GitHub's delivery id header (a GUID, the same on a redelivery).
pub const DELIVERY_HEADER: &str = "x-github-delivery";
/// GitHub's event name header.
pub const EVENT_HEADER: &str = "x-github-event";
/// The generic hook's delivery id headers, in order of preference.
pub const GENERIC_DELIVERY_HEADERS: [&str; 2] = ["idempotency-key", "x-delivery-id"];
/// Longest delivery id accepted: GitHub's are 36-character GUIDs; the rest is room for other
/// senders' keys without letting a request put an essay into the journal.
const MAX_DELIVERY_CHARS: usize = 200;

/// Why a webhook request is refused. The messages go to the sender and to the journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("no X-Hub-Signature-256 header: configure the webhook's secret on GitHub")]
    MissingSignature,
    #[error("X-Hub-Signature-256 is not `sha256=<64 hex digits>`")]
    MalformedSignature,
    #[error(
        "X-Hub-Signature-256 does not match the body: the secrets differ or the body was altered"
    )]
    BadSignature,
    #[error("the {0} header is required")]
    MissingHeader(&'static str),
    #[error("the {0} header must be 1 to 200 visible ASCII characters")]
    BadHeader(&'static str),
    #[error("the body is not a valid {event} payload: {reason}")]
    Malformed { event: String, reason: String },
}

/// Whether `signature` (the header's value) is HMAC-SHA256(`secret`, `body`).
///
/// The comparison is `Mac::verify_slice`'s, which takes the same time wherever the digests
/// differ, so a forger learns nothing from timing.
pub fn verify_signature(
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), HookError> {
    let signature = signature.ok_or(HookError::MissingSignature)?;
    let digest = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .filter(|digest| digest.len() == 32)
        .ok_or(HookError::MalformedSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| HookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| HookError::BadSignature)
}

/// Hex digits (either case) as bytes; `None` when there are others or an odd number.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            u8::try_from(high * 16 + low).ok()
        })
        .collect()
}

/// A delivery id header's value: present, 1..=200 visible ASCII characters. Anything else is
/// refused rather than cleaned, since the id is a deduplication key and must be the sender's.
pub fn delivery_id(value: Option<&str>, header: &'static str) -> Result<String, HookError> {
    let value = value
        .map(str::trim)
        .ok_or(HookError::MissingHeader(header))?;
    if value.is_empty()
        || value.len() > MAX_DELIVERY_CHARS
        || !value.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(HookError::BadHeader(header));
    }
    Ok(value.to_owned())
}

/// A delivery id to journal beside a refusal: the claimed one when it is plausible, so an
/// operator can match it with the sender's log, and never arbitrary text from an
/// unauthenticated request.
pub fn claimed_delivery(value: Option<&str>) -> Option<String> {
    delivery_id(value, DELIVERY_HEADER).ok()
}

/// What a verified GitHub delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubDelivery {
    /// GitHub checking the hook after it was created or edited.
    Ping,
    /// A change the daemon should look at now.
    Trigger(WebhookTrigger),
    /// An event or action takt does not act on, named `event` or `event.action`.
    Ignored(String),
}

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
pub fn parse_github(event: &str, delivery: &str, body: &[u8]) -> Result<GithubDelivery, HookError> {
    let malformed = |reason: String| HookError::Malformed {
        event: event.to_owned(),
        reason,
    };
    // Every payload must be a JSON object, even of an event that is then ignored: a body
    // that is not is a sender's bug worth journaling.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| malformed(error.to_string()))?;
    if !value.is_object() {
        return Err(malformed("it is not a JSON object".to_owned()));
    }
    if event == "ping" {
        return Ok(GithubDelivery::Ping);
    }
    if !matches!(
        event,
        "issues" | "issue_comment" | "pull_request" | "check_suite"
    ) {
        return Ok(GithubDelivery::Ignored(event.to_owned()));
    }
    let payload: Payload =
        serde_json::from_value(value).map_err(|error| malformed(error.to_string()))?;
    let action = payload
        .action
        .ok_or_else(|| malformed("it has no `action`".to_owned()))?;
    if !handled(event, &action) {
        return Ok(GithubDelivery::Ignored(format!("{event}.{action}")));
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
    Ok(GithubDelivery::Trigger(WebhookTrigger {
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

    /// HMAC-SHA256 as GitHub sends it.
    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("sha256={hex}")
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
        assert_eq!(verify_signature("s3cret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_signature("other", body, Some(&good)),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify_signature("s3cret", b"{}", Some(&good)),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify_signature("s3cret", body, None),
            Err(HookError::MissingSignature)
        );
        for bad in [
            "",
            "sha1=abcd",
            "sha256=xyz",
            &good[..good.len() - 2],
            "sha256=",
        ] {
            assert_eq!(
                verify_signature("s3cret", body, Some(bad)),
                Err(HookError::MalformedSignature),
                "{bad}"
            );
        }
    }

    #[test]
    fn delivery_ids_are_visible_ascii_and_bounded() {
        assert_eq!(
            delivery_id(
                Some(" 72d3162e-cc78-11e3-81ab-4c9367dc0958 "),
                DELIVERY_HEADER
            ),
            Ok("72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned())
        );
        assert_eq!(
            delivery_id(None, DELIVERY_HEADER),
            Err(HookError::MissingHeader(DELIVERY_HEADER))
        );
        for bad in ["", "a b", &"x".repeat(201)] {
            assert_eq!(
                delivery_id(Some(bad), DELIVERY_HEADER),
                Err(HookError::BadHeader(DELIVERY_HEADER))
            );
        }
    }

    fn trigger(event: &str, body: serde_json::Value) -> Result<GithubDelivery, HookError> {
        parse_github(event, "d-1", body.to_string().as_bytes())
    }

    #[test]
    fn handled_events_become_triggers() {
        let repository = serde_json::json!({"full_name": "acme/app", "id": 1});
        let issue = serde_json::json!({"number": 7, "title": "Crash", "state": "open"});
        let Ok(GithubDelivery::Trigger(opened)) = trigger(
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
        assert!(matches!(comment, Ok(GithubDelivery::Trigger(t)) if t.number == Some(7)));
        let pull = trigger(
            "pull_request",
            serde_json::json!({"action": "synchronize", "number": 9,
                "pull_request": {"number": 9, "title": "Fix"}}),
        );
        assert!(
            matches!(pull, Ok(GithubDelivery::Trigger(t)) if t.number == Some(9) && t.title.as_deref() == Some("Fix"))
        );
        let suite = trigger(
            "check_suite",
            serde_json::json!({"action": "completed",
                "check_suite": {"conclusion": "failure", "pull_requests": [{"number": 9}]}}),
        );
        assert!(
            matches!(suite, Ok(GithubDelivery::Trigger(t)) if t.number == Some(9) && t.title.is_none())
        );
        let suite_without_pull = trigger(
            "check_suite",
            serde_json::json!({"action": "completed", "check_suite": {"pull_requests": []}}),
        );
        assert!(matches!(suite_without_pull, Ok(GithubDelivery::Trigger(t)) if t.number.is_none()));
    }

    #[test]
    fn other_events_and_actions_are_ignored_and_ping_is_ping() {
        assert_eq!(
            trigger(
                "ping",
                serde_json::json!({"zen": "Keep it logically awesome."})
            ),
            Ok(GithubDelivery::Ping)
        );
        assert_eq!(
            trigger("push", serde_json::json!({"ref": "refs/heads/main"})),
            Ok(GithubDelivery::Ignored("push".into()))
        );
        assert_eq!(
            trigger(
                "issues",
                serde_json::json!({"action": "assigned", "issue": {"number": 1}})
            ),
            Ok(GithubDelivery::Ignored("issues.assigned".into()))
        );
        assert_eq!(
            trigger("check_suite", serde_json::json!({"action": "requested"})),
            Ok(GithubDelivery::Ignored("check_suite.requested".into()))
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
