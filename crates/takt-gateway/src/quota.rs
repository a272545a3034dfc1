//! Quota windows: when the provider says the credential is out of quota until some time, every
//! run sharing it waits for that time instead of burning retries or failing.
//!
//! A 429 (or Anthropic's 529 "overloaded") marks the upstream paused until the reset time the
//! response names ([`reset_after`]); without one, for an exponentially growing, bounded backoff.
//! Requests that arrive while it is paused are held, not refused, so an agent sees a slow answer
//! rather than an error; the request that was refused is sent again once the window opens. Both
//! waits are bounded by [`QuotaPolicy::max_wait`] per request, after which the request goes out
//! anyway and a 429 passes through to the agent.
//!
//! The daemon sees the pause as [`QuotaNotice`]s on a watch (for a countdown in status and to
//! hold dispatches) and can ask [`crate::Gateway::paused_until`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;

/// How quota errors are waited out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaPolicy {
    /// The longest one request is held for a quota window (its own 429s included) before it is
    /// forwarded regardless. Agents' HTTP clients time out after minutes, so this stays below
    /// them. Default: 4 minutes.
    pub max_wait: Duration,
    /// The first pause after a 429 that names no reset time; it doubles with each consecutive
    /// such 429. Default: 1 s.
    pub backoff_base: Duration,
    /// The longest such pause. Default: 60 s.
    pub backoff_max: Duration,
}

impl Default for QuotaPolicy {
    fn default() -> QuotaPolicy {
        QuotaPolicy {
            max_wait: Duration::from_secs(240),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
        }
    }
}

/// The shortest pause: a reset time of "now" or in the past must not turn the retry loop into a
/// busy loop against the provider.
const MIN_PAUSE: Duration = Duration::from_millis(250);

/// Whether the credential may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaNotice {
    /// Usable: the window opened again (also the state before any pause).
    Resumed,
    /// The provider refused for quota; requests are held until `until`.
    Paused {
        until: DateTime<Utc>,
        /// The status that caused the pause (429 or 529).
        status: u16,
    },
}

/// Whether an upstream status is a quota or overload refusal that waiting cures.
pub fn is_quota_status(status: u16) -> bool {
    status == 429 || status == 529
}

/// How long the provider asks to wait, from the response's headers: `retry-after-ms`, then
/// `retry-after` (seconds or an HTTP date), then the rate-limit reset headers of the limits that
/// are exhausted (`x-ratelimit-reset-requests` / `-tokens` as `1m30s` or `250ms`,
/// `anthropic-ratelimit-*-reset` as RFC 3339), else of all limits; the longest of those wins,
/// since waiting for a shorter one would just earn another 429.
pub fn reset_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    reset_header(headers, now).map(|wait| wait.min(MAX_RESET))
}

/// The longest reset believed: a provider's header is data from outside, and a wait of years (or
/// a value that overflows) must not wedge the credential.
const MAX_RESET: Duration = Duration::from_secs(24 * 3_600);

fn seconds(secs: f64) -> Option<Duration> {
    if !secs.is_finite() {
        return None;
    }
    Duration::try_from_secs_f64(secs.min(MAX_RESET.as_secs_f64())).ok()
}

fn reset_header(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(wait) = text("retry-after-ms")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|ms| seconds(ms / 1_000.0))
    {
        return Some(wait);
    }
    if let Some(value) = text("retry-after") {
        let value = value.trim();
        if let Some(wait) = value.parse::<f64>().ok().and_then(seconds) {
            return Some(wait);
        }
        if let Ok(at) = DateTime::parse_from_rfc2822(value) {
            return Some(until(now, at.with_timezone(&Utc)));
        }
    }
    let mut exhausted = Vec::new();
    let mut all = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        let Ok(value) = value.to_str() else {
            continue;
        };
        let (wait, remaining) = if let Some(limit) = name.strip_prefix("x-ratelimit-reset-") {
            (go_duration(value), format!("x-ratelimit-remaining-{limit}"))
        } else if let Some(limit) = name
            .strip_prefix("anthropic-ratelimit-")
            .and_then(|rest| rest.strip_suffix("-reset"))
        {
            let at = DateTime::parse_from_rfc3339(value.trim())
                .ok()
                .map(|at| until(now, at.with_timezone(&Utc)));
            (at, format!("anthropic-ratelimit-{limit}-remaining"))
        } else {
            continue;
        };
        let Some(wait) = wait else {
            continue;
        };
        if text(&remaining).is_some_and(|left| left.trim() == "0") {
            exhausted.push(wait);
        }
        all.push(wait);
    }
    exhausted
        .into_iter()
        .max()
        .or_else(|| all.into_iter().max())
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

/// Go-style durations as OpenAI sends them: `1m30s`, `250ms`, `6s`, `1h2m3.5s`, `20ms`.
fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3_600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    seconds(total)
}

struct State {
    /// When requests may go out again; `None` while open.
    until: Option<Instant>,
    /// Bumped on every change, so a timer set for an older pause does not end a newer one.
    generation: u64,
    /// Consecutive 429s without a reset time, for the backoff.
    blind: u32,
}

/// The pause state of the one credential the gateway forwards with.
pub(crate) struct Quota {
    state: Mutex<State>,
    notices: watch::Sender<QuotaNotice>,
}

impl Quota {
    pub(crate) fn new() -> Quota {
        Quota {
            state: Mutex::new(State {
                until: None,
                generation: 0,
                blind: 0,
            }),
            notices: watch::Sender::new(QuotaNotice::Resumed),
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<QuotaNotice> {
        self.notices.subscribe()
    }

    pub(crate) fn paused_until(&self) -> Option<DateTime<Utc>> {
        match &*self.notices.borrow() {
            QuotaNotice::Paused { until, .. } => Some(*until),
            QuotaNotice::Resumed => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long to pause after a quota refusal: the provider's reset time, else the backoff
    /// for one more consecutive blind 429.
    pub(crate) fn pause_for(&self, reset: Option<Duration>, policy: &QuotaPolicy) -> Duration {
        let wait = match reset {
            Some(reset) => reset,
            None => {
                let mut state = self.lock();
                let doublings = state.blind.min(16);
                state.blind = state.blind.saturating_add(1);
                policy
                    .backoff_base
                    .saturating_mul(1u32 << doublings)
                    .min(policy.backoff_max)
            }
        };
        wait.max(MIN_PAUSE)
    }

    /// Pauses the credential for `wait` (a pause that already lasts longer stays), announces
    /// it, and arms the timer that announces the end.
    pub(crate) fn pause(self: &Arc<Self>, wait: Duration, status: u16, now: DateTime<Utc>) {
        let until = Instant::now() + wait;
        let wall = now + chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
        let generation = {
            let mut state = self.lock();
            if state.until.is_some_and(|current| current >= until) {
                return;
            }
            state.until = Some(until);
            state.generation += 1;
            // Announced under the lock, so a concurrent resume cannot overwrite it out of order.
            self.notices.send_replace(QuotaNotice::Paused {
                until: wall,
                status,
            });
            state.generation
        };
        let quota = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(until).await;
            quota.resume_if(generation);
        });
    }

    fn resume_if(&self, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.until = None;
            self.notices.send_replace(QuotaNotice::Resumed);
        }
    }

    /// A response that was not a quota refusal: the blind backoff starts over.
    pub(crate) fn success(&self) {
        let mut state = self.lock();
        state.blind = 0;
    }

    /// Opens the window now (a new credential has its own quota).
    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.until = None;
        state.blind = 0;
        state.generation += 1;
        self.notices.send_if_modified(|notice| {
            let changed = *notice != QuotaNotice::Resumed;
            *notice = QuotaNotice::Resumed;
            changed
        });
    }

    /// Waits until the window is open or `deadline` passes; returns how long it waited (zero
    /// when the window was open).
    pub(crate) async fn wait_open(&self, deadline: Instant) -> Duration {
        let started = Instant::now();
        let mut slept = false;
        loop {
            let until = self.lock().until;
            let Some(until) = until else {
                break;
            };
            let now = Instant::now();
            if until <= now || now >= deadline {
                break;
            }
            // A pause can be extended while waiting: look again after each sleep.
            tokio::time::sleep_until(until.min(deadline)).await;
            slept = true;
        }
        if slept {
            started.elapsed()
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn retry_after_in_seconds_milliseconds_or_an_http_date() {
        let at = |pairs| reset_after(&headers(pairs), now());
        assert_eq!(at(&[("retry-after", "1")]), Some(Duration::from_secs(1)));
        assert_eq!(
            at(&[("retry-after-ms", "1500"), ("retry-after", "9")]),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(
            at(&[("retry-after", "Sun, 22 Nov 2026 10:00:30 GMT")]),
            Some(Duration::from_secs(30))
        );
        // A date in the past means "now", not a negative wait.
        assert_eq!(
            at(&[("retry-after", "Sun, 22 Nov 2026 09:00:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(at(&[("retry-after", "soon")]), None);
        assert_eq!(at(&[("retry-after", "-3")]), None);
        assert_eq!(at(&[]), None);
        // Absurd values are capped instead of overflowing.
        assert_eq!(at(&[("retry-after", "1e300")]), Some(MAX_RESET));
        assert_eq!(at(&[("retry-after-ms", "1e300")]), Some(MAX_RESET));
        assert_eq!(
            at(&[("x-ratelimit-reset-tokens", "99999999999999999999h")]),
            Some(MAX_RESET)
        );
    }

    #[test]
    fn openai_reset_headers_prefer_the_exhausted_limit() {
        let at = |pairs| reset_after(&headers(pairs), now());
        assert_eq!(
            at(&[("x-ratelimit-reset-requests", "1m30s")]),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            at(&[
                ("x-ratelimit-reset-requests", "250ms"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-tokens", "40s"),
                ("x-ratelimit-remaining-tokens", "9000"),
            ]),
            Some(Duration::from_millis(250))
        );
        // No limit says it is exhausted: the longest reset, so the retry does not hit it again.
        assert_eq!(
            at(&[
                ("x-ratelimit-reset-requests", "250ms"),
                ("x-ratelimit-reset-tokens", "6s"),
            ]),
            Some(Duration::from_secs(6))
        );
    }

    #[test]
    fn anthropic_reset_headers_are_timestamps() {
        let at = |pairs| reset_after(&headers(pairs), now());
        assert_eq!(
            at(&[
                ("anthropic-ratelimit-tokens-reset", "2026-11-22T10:00:12Z"),
                ("anthropic-ratelimit-tokens-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2026-11-22T10:00:02Z"),
                ("anthropic-ratelimit-requests-remaining", "10"),
            ]),
            Some(Duration::from_secs(12))
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            go_duration("1h2m3.5s"),
            Some(Duration::from_secs_f64(3_723.5))
        );
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("6s"), Some(Duration::from_secs(6)));
        assert_eq!(go_duration("s"), None);
        assert_eq!(go_duration("1e400s"), None);
        assert_eq!(go_duration("5 minutes"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn blind_backoff_doubles_up_to_its_bound_and_success_resets_it() {
        let quota = Quota::new();
        let policy = QuotaPolicy {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5),
            ..QuotaPolicy::default()
        };
        let waits: Vec<u64> = (0..5)
            .map(|_| quota.pause_for(None, &policy).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        quota.success();
        assert_eq!(quota.pause_for(None, &policy), Duration::from_secs(1));
        // A provider reset of zero still waits the floor.
        assert_eq!(quota.pause_for(Some(Duration::ZERO), &policy), MIN_PAUSE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_is_announced_held_and_ended_by_its_timer() {
        let quota = Arc::new(Quota::new());
        let mut notices = quota.subscribe();
        quota.pause(Duration::from_secs(2), 429, now());
        assert_eq!(
            *notices.borrow_and_update(),
            QuotaNotice::Paused {
                until: now() + chrono::TimeDelta::seconds(2),
                status: 429
            }
        );
        // A shorter pause does not cut the longer one short.
        quota.pause(Duration::from_secs(1), 429, now());
        assert_eq!(
            quota.paused_until(),
            Some(now() + chrono::TimeDelta::seconds(2))
        );
        let waited = quota
            .wait_open(Instant::now() + Duration::from_secs(60))
            .await;
        assert_eq!(waited.as_secs(), 2);
        notices.changed().await.expect("resumed");
        assert_eq!(*notices.borrow(), QuotaNotice::Resumed);
        assert_eq!(quota.paused_until(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_is_bounded_by_the_deadline() {
        let quota = Arc::new(Quota::new());
        quota.pause(Duration::from_secs(600), 529, now());
        let waited = quota
            .wait_open(Instant::now() + Duration::from_secs(3))
            .await;
        assert_eq!(waited.as_secs(), 3);
        assert!(quota.paused_until().is_some(), "still paused for others");
        quota.clear();
        assert_eq!(quota.paused_until(), None);
    }
}
