//! Linear: the signature, the freshness of a delivery, and payloads reduced to a
//! [`WebhookTrigger`].
//!
//! Linear signs the raw body with HMAC-SHA256 keyed by the webhook's signing secret and sends
//! the hex digest in `Linear-Signature`. The signed body carries `webhookTimestamp`, when the
//! delivery was sent (Unix milliseconds); like Linear's own SDK, a delivery more than a minute
//! from this server's clock is refused, so a captured delivery cannot be replayed later even
//! under a new delivery id. Within that minute the delivery id (`Linear-Delivery`) is the
//! replay key, which the daemon deduplicates durably.

use takt_protocol::Millis;

use super::{HmacScheme, HookError, Parsed, number_at, text_at};
use crate::port::{LINEAR_SOURCE, WebhookTrigger};

/// Linear's signature header and its form.
pub const SIGNATURE: HmacScheme = HmacScheme {
    header: "linear-signature",
    name: "Linear-Signature",
    sender: "Linear",
    prefix: "",
    format: "<64 hex digits>",
};
/// Linear's delivery id header (a UUID per delivery).
pub const DELIVERY_HEADER: &str = "linear-delivery";
/// Linear's event header: the entity type (`Issue`), as the body's `type`.
pub const EVENT_HEADER: &str = "linear-event";
/// The body field with the send time, in Unix milliseconds.
pub const TIMESTAMP_FIELD: &str = "webhookTimestamp";
/// How far a delivery's send time may be from this server's clock, either way, as Linear's SDK
/// allows.
pub const MAX_SKEW_MS: Millis = 60_000;
/// What a payload is named in messages.
const PAYLOAD: &str = "Linear";

/// The entity types whose changes can change what the daemon should run: issues, their
/// comments, and labels (a label can be what makes an issue eligible).
const TRIGGERS: [&str; 3] = ["Issue", "Comment", "IssueLabel"];

/// Refuses a delivery whose `webhookTimestamp` is missing or more than [`MAX_SKEW_MS`] from
/// `now_ms`. `payload` is the verified body.
pub fn check_fresh(payload: &serde_json::Value, now_ms: Millis) -> Result<(), HookError> {
    let sent = payload
        .get(TIMESTAMP_FIELD)
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| HookError::Malformed {
            event: PAYLOAD.to_owned(),
            reason: format!("it has no integer `{TIMESTAMP_FIELD}`"),
        })?;
    let skew = now_ms.saturating_sub(sent);
    if skew.unsigned_abs() <= MAX_SKEW_MS.unsigned_abs() {
        return Ok(());
    }
    Err(HookError::Stale {
        field: TIMESTAMP_FIELD,
        sender: PAYLOAD,
        seconds: (skew / 1000).saturating_abs(),
        direction: if skew > 0 { "behind" } else { "ahead of" },
        limit: MAX_SKEW_MS / 1000,
    })
}

/// The entity type: the signed body's `type`, else the (unsigned) `Linear-Event` header.
pub fn event(payload: &serde_json::Value, header: Option<&str>) -> Result<String, HookError> {
    match text_at(payload, "/type") {
        Some(kind) if !kind.trim().is_empty() => Ok(kind.trim().to_owned()),
        _ => super::event_name(header, EVENT_HEADER),
    }
}

/// Reads a verified, fresh delivery about `event` with id `delivery`.
pub fn parse_linear(event: &str, delivery: &str, payload: &serde_json::Value) -> Parsed {
    if !TRIGGERS.contains(&event) {
        return Parsed::Ignored(event.to_owned());
    }
    let (number, title) = match event {
        "Issue" => (
            number_at(payload, "/data/number"),
            text_at(payload, "/data/title"),
        ),
        "Comment" => (None, text_at(payload, "/data/issue/title")),
        _ => (None, None),
    };
    Parsed::Trigger(WebhookTrigger {
        source: LINEAR_SOURCE.to_owned(),
        delivery: delivery.to_owned(),
        event: event.to_owned(),
        action: text_at(payload, "/action"),
        // Linear has no repositories; the daemon polls the configured project.
        repository: None,
        number,
        title,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::webhook::tests::hex_hmac;
    use crate::webhook::verify_hmac;

    const NOW: Millis = 1_714_478_400_000;

    #[test]
    fn the_signature_is_bare_hex_of_the_raw_body() {
        let body = br#"{"type":"Issue","action":"create"}"#;
        let signature = hex_hmac("lin-s3cret", body);
        assert_eq!(
            verify_hmac(&SIGNATURE, "lin-s3cret", body, Some(&signature)),
            Ok(())
        );
        assert_eq!(
            verify_hmac(
                &SIGNATURE,
                "lin-s3cret",
                body,
                Some(&signature.to_ascii_uppercase())
            ),
            Ok(())
        );
        let other_body = br#"{"type":"Issue","action":"remove"}"#;
        assert_eq!(
            verify_hmac(&SIGNATURE, "lin-s3cret", other_body, Some(&signature)),
            Err(HookError::BadSignature {
                header: "Linear-Signature"
            })
        );
        assert!(matches!(
            verify_hmac(
                &SIGNATURE,
                "lin-s3cret",
                body,
                Some(&format!("sha256={signature}"))
            ),
            Err(HookError::MalformedSignature { .. })
        ));
        assert!(matches!(
            verify_hmac(&SIGNATURE, "lin-s3cret", body, None),
            Err(HookError::MissingCredential {
                sender: "Linear",
                ..
            })
        ));
    }

    #[test]
    fn a_delivery_more_than_a_minute_off_is_stale() {
        let at = |sent: Millis| check_fresh(&json!({ "webhookTimestamp": sent }), NOW);
        assert_eq!(at(NOW), Ok(()));
        assert_eq!(at(NOW - 60_000), Ok(()));
        assert_eq!(at(NOW + 60_000), Ok(()));
        let Err(HookError::Stale {
            seconds, direction, ..
        }) = at(NOW - 60_001)
        else {
            panic!("an old delivery is stale");
        };
        assert_eq!((seconds, direction), (60, "behind"));
        assert!(matches!(
            at(NOW + 3_600_000),
            Err(HookError::Stale {
                seconds: 3600,
                direction: "ahead of",
                ..
            })
        ));
        assert!(matches!(at(0), Err(HookError::Stale { .. })));
        for payload in [
            json!({}),
            json!({"webhookTimestamp": "1714478400000"}),
            json!({"webhookTimestamp": 1.5}),
        ] {
            assert!(
                matches!(check_fresh(&payload, NOW), Err(HookError::Malformed { .. })),
                "{payload}"
            );
        }
    }

    #[test]
    fn the_event_is_the_signed_type_else_the_header() {
        assert_eq!(
            event(&json!({"type": "Issue"}), Some("Comment")),
            Ok("Issue".to_owned())
        );
        assert_eq!(event(&json!({}), Some("Comment")), Ok("Comment".to_owned()));
        assert_eq!(
            event(&json!({"type": " "}), None),
            Err(HookError::MissingHeader(EVENT_HEADER))
        );
    }

    #[test]
    fn issues_comments_and_labels_trigger_and_the_rest_is_ignored() {
        let issue = json!({"type": "Issue", "action": "update",
            "data": {"id": "uuid", "number": 42, "title": "Crash", "identifier": "ENG-42"}});
        assert_eq!(
            parse_linear("Issue", "d-1", &issue),
            Parsed::Trigger(WebhookTrigger {
                source: "linear".into(),
                delivery: "d-1".into(),
                event: "Issue".into(),
                action: Some("update".into()),
                repository: None,
                number: Some(42),
                title: Some("Crash".into()),
            })
        );
        let comment = json!({"type": "Comment", "action": "create",
            "data": {"body": "hi", "issue": {"id": "uuid", "title": "Crash"}}});
        assert!(matches!(
            parse_linear("Comment", "d-2", &comment),
            Parsed::Trigger(t) if t.title.as_deref() == Some("Crash") && t.number.is_none()
        ));
        assert!(matches!(
            parse_linear("IssueLabel", "d-3", &json!({"action": "remove"})),
            Parsed::Trigger(_)
        ));
        for ignored in ["Project", "Cycle", "Reaction", "issue"] {
            assert_eq!(
                parse_linear(ignored, "d", &json!({})),
                Parsed::Ignored(ignored.to_owned())
            );
        }
    }
}
