//! Webhook deliveries as data: each sender's credential check, its payloads reduced to a
//! [`WebhookTrigger`](crate::port::WebhookTrigger), and delivery ids. No I/O here;
//! `routes::hooks` does the HTTP side and the daemon calls.
//!
//! What the senders have in common lives here: HMAC-SHA256 signatures over the raw body
//! (GitHub, Linear), delivery ids as deduplication keys, JSON object payloads, and what a
//! verified delivery comes to ([`Parsed`]). Each sender's specifics are in its module.

pub mod github;
pub mod gitlab;
pub mod linear;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::port::WebhookTrigger;

/// The generic hook's delivery id headers, in order of preference.
pub const GENERIC_DELIVERY_HEADERS: [&str; 2] = ["idempotency-key", "x-delivery-id"];
/// Longest delivery id accepted: GitHub's and GitLab's are 36-character GUIDs; the rest is room
/// for other senders' keys without letting a request put an essay into the journal.
const MAX_DELIVERY_CHARS: usize = 200;

/// Why a webhook request is refused. The messages go to the sender and to the journal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("no {header} header: configure the webhook's secret on {sender}")]
    MissingCredential {
        header: &'static str,
        sender: &'static str,
    },
    #[error("{header} is not `{format}`")]
    MalformedSignature {
        header: &'static str,
        format: &'static str,
    },
    #[error("{header} does not match the body: the secrets differ or the body was altered")]
    BadSignature { header: &'static str },
    #[error("{header} is not the webhook's secret token: the secrets differ")]
    BadToken { header: &'static str },
    /// A signed delivery whose signed send time is too far from this server's clock: a
    /// captured delivery sent again keeps its valid signature, so only its age gives it away.
    #[error(
        "the delivery's {field} is {seconds} s {direction} this server's clock; {sender} \
         deliveries more than {limit} s off are refused as possible replays (check the clock)"
    )]
    Stale {
        field: &'static str,
        sender: &'static str,
        seconds: i64,
        direction: &'static str,
        limit: i64,
    },
    #[error("the {0} header is required")]
    MissingHeader(&'static str),
    #[error("the {0} header must be 1 to 200 visible ASCII characters")]
    BadHeader(&'static str),
    #[error("the body is not a valid {event} payload: {reason}")]
    Malformed { event: String, reason: String },
}

impl HookError {
    /// Whether the refusal is about the sender's credentials (401) rather than the request's
    /// shape (400).
    pub fn is_credential(&self) -> bool {
        matches!(
            self,
            HookError::MissingCredential { .. }
                | HookError::MalformedSignature { .. }
                | HookError::BadSignature { .. }
                | HookError::BadToken { .. }
                | HookError::Stale { .. }
        )
    }
}

/// How a sender presents HMAC-SHA256(secret, raw body) in a header.
#[derive(Debug, Clone, Copy)]
pub struct HmacScheme {
    /// The header, lowercase, as looked up.
    pub header: &'static str,
    /// The header as the sender's documentation spells it, for messages.
    pub name: &'static str,
    /// Who sends it, for messages (`GitHub`).
    pub sender: &'static str,
    /// What precedes the hex digest (`sha256=`), or nothing.
    pub prefix: &'static str,
    /// The header's expected form, for messages.
    pub format: &'static str,
}

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The sender checking the hook after it was created or edited (GitHub's `ping`).
    Ping,
    /// A change the daemon should look at now.
    Trigger(WebhookTrigger),
    /// An event (or event and action) takt does not act on, named for the answer.
    Ignored(String),
}

/// Whether `signature` (the header's value) is HMAC-SHA256(`secret`, `body`) as `scheme`
/// presents it.
///
/// The comparison is `Mac::verify_slice`'s, which takes the same time wherever the digests
/// differ, so a forger learns nothing from timing.
pub fn verify_hmac(
    scheme: &HmacScheme,
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), HookError> {
    let signature = signature.ok_or(HookError::MissingCredential {
        header: scheme.name,
        sender: scheme.sender,
    })?;
    let digest = signature
        .trim()
        .strip_prefix(scheme.prefix)
        .and_then(decode_hex)
        .filter(|digest| digest.len() == 32)
        .ok_or(HookError::MalformedSignature {
            header: scheme.name,
            format: scheme.format,
        })?;
    let bad = HookError::BadSignature {
        header: scheme.name,
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| bad.clone())?;
    mac.update(body);
    mac.verify_slice(&digest).map_err(|_| bad)
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

/// The delivery id in the first of `headers` that is present (`value` reads a header), checked;
/// `missing` names them all when none is.
pub fn first_delivery_id<'a>(
    value: impl Fn(&str) -> Option<&'a str>,
    headers: &[&'static str],
    missing: &'static str,
) -> Result<String, HookError> {
    headers
        .iter()
        .find_map(|header| value(header).map(|text| delivery_id(Some(text), header)))
        .unwrap_or(Err(HookError::MissingHeader(missing)))
}

/// A delivery id to journal beside a refusal: the claimed one when it is plausible, so an
/// operator can match it with the sender's log, and never arbitrary text from an
/// unauthenticated request.
pub fn claimed_delivery(value: Option<&str>) -> Option<String> {
    delivery_id(value, "delivery").ok()
}

/// An event name header's value, trimmed and not empty.
pub fn event_name(value: Option<&str>, header: &'static str) -> Result<String, HookError> {
    value
        .map(str::trim)
        .filter(|event| !event.is_empty())
        .map(str::to_owned)
        .ok_or(HookError::MissingHeader(header))
}

/// The body as a JSON object. Every payload must be one, even of an event that is then
/// ignored: a body that is not is a sender's bug worth journaling.
pub fn json_object(event: &str, body: &[u8]) -> Result<serde_json::Value, HookError> {
    let malformed = |reason: String| HookError::Malformed {
        event: event.to_owned(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| malformed(error.to_string()))?;
    if !value.is_object() {
        return Err(malformed("it is not a JSON object".to_owned()));
    }
    Ok(value)
}

/// The string at `pointer` (`/project/path_with_namespace`), when there is one.
fn text_at(value: &serde_json::Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// The unsigned integer at `pointer`, when there is one.
fn number_at(value: &serde_json::Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer).and_then(serde_json::Value::as_u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// HMAC-SHA256 of `body` keyed by `secret`, lowercase hex.
    pub(crate) fn hex_hmac(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn delivery_ids_are_visible_ascii_and_bounded() {
        let header = "x-github-delivery";
        assert_eq!(
            delivery_id(Some(" 72d3162e-cc78-11e3-81ab-4c9367dc0958 "), header),
            Ok("72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned())
        );
        assert_eq!(
            delivery_id(None, header),
            Err(HookError::MissingHeader(header))
        );
        for bad in ["", "a b", &"x".repeat(201)] {
            assert_eq!(
                delivery_id(Some(bad), header),
                Err(HookError::BadHeader(header))
            );
        }
    }

    #[test]
    fn the_first_present_delivery_header_counts() {
        let headers = ["idempotency-key", "x-delivery-id"];
        let lookup = |present: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                present
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| *value)
            }
        };
        assert_eq!(
            first_delivery_id(lookup(&[("x-delivery-id", "b")]), &headers, "any"),
            Ok("b".to_owned())
        );
        assert_eq!(
            first_delivery_id(
                lookup(&[("x-delivery-id", "b"), ("idempotency-key", "a")]),
                &headers,
                "any"
            ),
            Ok("a".to_owned())
        );
        // A present but bad preferred header is refused, not skipped for the other.
        assert_eq!(
            first_delivery_id(
                lookup(&[("idempotency-key", " "), ("x-delivery-id", "b")]),
                &headers,
                "any"
            ),
            Err(HookError::BadHeader("idempotency-key"))
        );
        assert_eq!(
            first_delivery_id(lookup(&[]), &headers, "any"),
            Err(HookError::MissingHeader("any"))
        );
    }

    #[test]
    fn a_payload_must_be_a_json_object() {
        assert!(json_object("Issue Hook", br#"{"a": 1}"#).is_ok());
        for body in [&b"{not json"[..], b"[1]", b"\"text\"", b""] {
            assert!(
                matches!(
                    json_object("Issue Hook", body),
                    Err(HookError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
    }
}
