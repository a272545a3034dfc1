//! The header: agents, throughput, runtime, tokens, spend, runs, rate limits, the next tracker
//! poll and a quota pause, in a box whose title names the source and carries the online or
//! offline marker.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use serde_json::Value;
use takt_protocol::Millis;

use super::offline_marker;
use crate::format::{compact, count, duration, seconds_until, tps, usd};
use crate::model::{DaemonStatus, Dashboard};
use crate::sanitize::sanitize;
use crate::throughput::Throughput;

const GAP: &str = "  ";

pub(super) fn render(
    frame: &mut Frame,
    area: Rect,
    dashboard: &Dashboard,
    throughput: &Throughput,
    now_ms: Millis,
) {
    let marker = match offline_marker(dashboard, now_ms) {
        Some(offline) => Span::styled(
            format!(" {offline} "),
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ),
        None => Span::styled(
            match dashboard.daemon {
                DaemonStatus::Running { pid: Some(pid) } => format!(" ● online, daemon pid {pid} "),
                _ => " ● online ".into(),
            },
            Style::default().fg(Color::Green),
        ),
    };
    let mut block = Block::bordered()
        .title(Span::styled(
            format!(" takt · {} ", sanitize(&dashboard.source)),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .title_top(Line::from(marker).right_aligned());
    if let Some(url) = &dashboard.dashboard_url {
        block = block.title_bottom(format!(" dashboard {} ", sanitize(url)));
    }
    let lines = vec![
        figures_line(dashboard, throughput, now_ms),
        spend_line(dashboard),
        Line::from(vec![
            label("Rate limits"),
            Span::raw(rate_limits_summary(dashboard.rate_limits.as_ref(), now_ms)),
        ]),
        poll_line(dashboard, now_ms),
    ];
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn label(text: &str) -> Span<'static> {
    Span::styled(format!("{text} "), Style::default().fg(Color::DarkGray))
}

/// Agents n/max, throughput, runtime and tokens.
fn figures_line(dashboard: &Dashboard, throughput: &Throughput, now_ms: Millis) -> Line<'static> {
    let live_seconds: i64 = dashboard
        .live_runs
        .iter()
        .map(|run| crate::format::seconds_since(run.started_at_ms, now_ms))
        .sum();
    let runtime = i64::try_from(dashboard.totals.seconds_running)
        .unwrap_or(i64::MAX)
        .saturating_add(live_seconds);
    let tokens = dashboard.totals.metered;
    // An agent slot is held by a live run; verification holds none.
    let agents = dashboard.live_runs.len();
    Line::from(vec![
        label("Agents"),
        Span::styled(
            format!("{agents}/{}", dashboard.max_agents),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::raw(GAP),
        label("Throughput"),
        Span::raw(format!("{} tps", tps(throughput.tps()))),
        Span::raw(GAP),
        label("Runtime"),
        Span::raw(duration(runtime)),
        Span::raw(GAP),
        label("Tokens"),
        Span::raw(format!(
            "in {} · out {} · total {}",
            compact(tokens.input_tokens),
            compact(tokens.output_tokens),
            compact(tokens.total_tokens)
        )),
    ])
}

/// Spend today and this month, runs and model calls.
fn spend_line(dashboard: &Dashboard) -> Line<'static> {
    let totals = &dashboard.totals;
    let refused = match totals.model_calls_refused {
        0 => String::new(),
        refused => format!(" ({} refused)", count(refused)),
    };
    Line::from(vec![
        label("Spend"),
        Span::raw(format!(
            "today {} · month {}",
            usd(dashboard.spend_today.micros),
            usd(dashboard.spend_month.micros),
        )),
        Span::raw(GAP),
        label("Runs"),
        Span::raw(format!(
            "{} started · {} finished",
            count(totals.runs_started),
            count(totals.runs_finished),
        )),
        Span::raw(GAP),
        label("Model calls"),
        Span::raw(format!("{}{refused}", count(totals.model_calls))),
    ])
}

/// The next tracker poll and a quota pause.
fn poll_line(dashboard: &Dashboard, now_ms: Millis) -> Line<'static> {
    // Offline, nobody is polling (or nobody can say when): no countdown to a poll that
    // may not happen.
    let offline = offline_marker(dashboard, now_ms).is_some();
    let next_poll = match dashboard.next_poll_at_ms {
        _ if offline => "—".to_owned(),
        None => "—".to_owned(),
        Some(at) if at <= now_ms => "checking now…".to_owned(),
        Some(at) => format!("in {}", duration(seconds_until(at, now_ms))),
    };
    let mut spans = vec![label("Next refresh"), Span::raw(next_poll)];
    if let Some(until) = dashboard
        .quota_paused_until_ms
        .filter(|until| *until > now_ms)
    {
        spans.push(Span::raw(GAP));
        spans.push(Span::styled(
            format!(
                "Quota window closed: dispatch resumes in {}",
                duration(seconds_until(until, now_ms))
            ),
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// One line from a rate-limit report: `codex: primary 20% (resets in 1h 05m) · secondary 5%
/// · credits 12.50`. Understands Codex's camelCase payload and the snake_case spelling; an
/// unknown shape reads `reported`, none reads `n/a`.
pub(super) fn rate_limits_summary(limits: Option<&Value>, now_ms: Millis) -> String {
    let Some(limits) = limits.filter(|limits| !limits.is_null()) else {
        return "n/a".into();
    };
    let mut parts = Vec::new();
    for window in ["primary", "secondary"] {
        let Some(window_limits) = limits.get(window).filter(|value| value.is_object()) else {
            continue;
        };
        let Some(used) =
            field(window_limits, "usedPercent", "used_percent").and_then(Value::as_f64)
        else {
            continue;
        };
        let resets = field(window_limits, "resetsAt", "resets_at")
            .and_then(Value::as_i64)
            .map(|at_seconds| {
                format!(
                    " (resets in {})",
                    duration(seconds_until(at_seconds.saturating_mul(1_000), now_ms))
                )
            })
            .unwrap_or_default();
        parts.push(format!("{window} {used:.0}%{resets}"));
    }
    if let Some(credits) = limits.get("credits").filter(|value| value.is_object()) {
        let unlimited = credits.get("unlimited").and_then(Value::as_bool) == Some(true);
        let has_credits = field(credits, "hasCredits", "has_credits").and_then(Value::as_bool);
        let balance = credits.get("balance").and_then(|balance| match balance {
            Value::String(text) => Some(sanitize(text)),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        });
        parts.push(match (unlimited, has_credits, balance) {
            (true, _, _) => "credits unlimited".into(),
            (false, _, Some(balance)) => format!("credits {balance}"),
            (false, Some(false), None) => "credits none".into(),
            (false, _, None) => "credits n/a".into(),
        });
    }
    if parts.is_empty() {
        return "reported".into();
    }
    let summary = parts.join(" · ");
    match field(limits, "limitId", "limit_id").and_then(Value::as_str) {
        Some(id) => format!("{}: {summary}", sanitize(id)),
        None => summary,
    }
}

fn field<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value.get(camel).or_else(|| value.get(snake))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::rate_limits_summary;

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn codex_rate_limits_in_one_line() {
        let limits = json!({
            "limitId": "codex",
            "primary": {"usedPercent": 20, "windowDurationMins": 300, "resetsAt": NOW / 1_000 + 3_900},
            "secondary": {"usedPercent": 5.4, "windowDurationMins": 10_080},
            "credits": {"hasCredits": true, "unlimited": false, "balance": "12.50"}
        });
        assert_eq!(
            rate_limits_summary(Some(&limits), NOW),
            "codex: primary 20% (resets in 1h 05m) · secondary 5% · credits 12.50"
        );
    }

    #[test]
    fn snake_case_and_missing_parts() {
        let limits =
            json!({"limit_id": "codex", "primary": {"used_percent": 20}, "secondary": null});
        assert_eq!(
            rate_limits_summary(Some(&limits), NOW),
            "codex: primary 20%"
        );
        let no_credits = json!({"credits": {"has_credits": false, "unlimited": false}});
        assert_eq!(rate_limits_summary(Some(&no_credits), NOW), "credits none");
    }

    #[test]
    fn unknown_or_absent_reports() {
        assert_eq!(rate_limits_summary(None, NOW), "n/a");
        assert_eq!(rate_limits_summary(Some(&json!(null)), NOW), "n/a");
        assert_eq!(
            rate_limits_summary(Some(&json!({"tier": "x"})), NOW),
            "reported"
        );
    }

    #[test]
    fn hostile_limit_ids_are_sanitized() {
        let limits = json!({"limitId": "co\u{1b}[2Jdex", "primary": {"usedPercent": 1}});
        assert_eq!(rate_limits_summary(Some(&limits), NOW), "codex: primary 1%");
    }
}
