//! The dashboard's browser session: a browser cannot send `Authorization` with a form post or
//! an `EventSource`, so after the operator pastes the token on `/login` the server sets a
//! cookie. The cookie does not carry the token: it carries HMAC(token digest, "session"), so
//! a leaked cookie does not reveal the token (and stops working when the token changes).
//!
//! Forms also carry a CSRF value, HMAC(token digest, "csrf"), checked on every post. The
//! cookie is `SameSite=Strict` as well, so two independent checks stand between another site
//! and a state change.

use axum::http::{HeaderMap, header};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::TokenDigest;

/// The cookie holding the session value.
pub const SESSION_COOKIE: &str = "takt_session";
/// The cookie remembering the operator's name between forms (not a credential).
pub const OPERATOR_COOKIE: &str = "takt_operator";
/// The hidden form field carrying the CSRF value.
pub const CSRF_FIELD: &str = "csrf";

/// HMAC-SHA256(token digest, `purpose`) as lowercase hex.
fn derive(token: &TokenDigest, purpose: &str) -> String {
    // HMAC accepts keys of any length; the error type exists only for fixed-size MACs.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token.bytes()) else {
        return String::new();
    };
    mac.update(purpose.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The session cookie's value for `token`.
pub fn session_value(token: &TokenDigest) -> String {
    derive(token, "takt web session v1")
}

/// The CSRF field's value for `token`.
pub fn csrf_value(token: &TokenDigest) -> String {
    derive(token, "takt web csrf v1")
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn same_secret(expected: &str, presented: &str) -> bool {
    TokenDigest::of(expected).matches(presented)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Whether the request carries a valid session cookie for `token`. Without a configured token
/// there is no session to present.
pub fn has_session(headers: &HeaderMap, token: Option<&TokenDigest>) -> bool {
    match (token, cookie(headers, SESSION_COOKIE)) {
        (Some(token), Some(presented)) => same_secret(&session_value(token), presented),
        _ => false,
    }
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &TokenDigest) -> String {
    format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        session_value(token)
    )
}

/// The `Set-Cookie` value that ends a session.
pub fn expired_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The `Set-Cookie` value remembering the operator's name (percent-encoded: names may hold
/// spaces or characters a cookie cannot).
pub fn operator_cookie(name: &str) -> String {
    format!(
        "{OPERATOR_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000",
        super::html::path_segment(name)
    )
}

/// The operator name remembered in the cookie, decoded.
pub fn remembered_operator(headers: &HeaderMap) -> Option<String> {
    let raw = cookie(headers, OPERATOR_COOKIE)?;
    let decoded: String = form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())?;
    Some(decoded.trim().to_owned()).filter(|name| !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_is_derived_from_the_token_and_is_not_the_token() {
        let token = TokenDigest::of("t0ken");
        let value = session_value(&token);
        assert_eq!(value.len(), 64);
        assert!(!value.contains("t0ken"));
        assert_ne!(value, csrf_value(&token));
        assert_ne!(value, session_value(&TokenDigest::of("other")));
    }

    #[test]
    fn a_session_cookie_is_accepted_only_for_the_configured_token() {
        let token = TokenDigest::of("t0ken");
        let mut headers = HeaderMap::new();
        assert!(!has_session(&headers, Some(&token)));
        let cookie = format!("a=b; {SESSION_COOKIE}={}", session_value(&token));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).expect("header"),
        );
        assert!(has_session(&headers, Some(&token)));
        assert!(!has_session(&headers, Some(&TokenDigest::of("other"))));
        assert!(!has_session(&headers, None));
    }

    #[test]
    fn the_operator_name_round_trips_through_its_cookie() {
        let set = operator_cookie("Ada L.");
        let value = set
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, value)| value.to_owned())
            .expect("value");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{OPERATOR_COOKIE}={value}")).expect("header"),
        );
        assert_eq!(remembered_operator(&headers).as_deref(), Some("Ada L."));
    }
}
