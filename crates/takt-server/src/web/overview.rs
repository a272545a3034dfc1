//! The overview (`GET /overview`): the metrics at a glance and charts of throughput (tasks
//! merged) and spend per day over the last two weeks, from the snapshot.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use takt_core::State as CoreState;
use takt_protocol::{Millis, TaskState};

use super::chart::{Bar, bar_chart};
use super::html::attr;
use super::html::{dollars, human};
use super::layout::{self, Section, Viewer};
use crate::app::App;
use crate::time::now_ms;

const DAY_MS: Millis = 86_400_000;
/// Days the charts cover, today included.
const CHART_DAYS: i64 = 14;

/// `GET /overview`.
pub async fn page(State(app): State<App>, headers: HeaderMap) -> Response {
    let viewer = Viewer::of(&app, &headers);
    let snapshot = match app.snapshot() {
        Ok(snapshot) => snapshot,
        Err(error) => return layout::error_page(&error, &viewer, None),
    };
    let state = &snapshot.state;
    let today = now_ms().div_euclid(DAY_MS);
    let days: Vec<i64> = (today - CHART_DAYS + 1..=today).collect();
    let label = |day: i64| {
        chrono::DateTime::from_timestamp_millis(day * DAY_MS)
            .map(|time| time.format("%m-%d").to_string())
            .unwrap_or_default()
    };
    let merged = merged_per_day(state, &days);
    let spend: Vec<u64> = days
        .iter()
        .map(|day| state.spend_by_day.get(day).map_or(0, |spend| spend.micros))
        .collect();
    let throughput_bars: Vec<Bar> = days
        .iter()
        .zip(&merged)
        .map(|(day, count)| Bar {
            label: label(*day),
            value: *count as f64,
        })
        .collect();
    let spend_bars: Vec<Bar> = days
        .iter()
        .zip(&spend)
        .map(|(day, micros)| Bar {
            label: label(*day),
            value: *micros as f64,
        })
        .collect();
    let rows: String = days
        .iter()
        .zip(merged.iter().zip(&spend))
        .rev()
        .map(|(day, (count, micros))| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{count}</td><td>{}</td></tr>",
                label(*day),
                dollars(*micros)
            )
        })
        .collect();
    let main = format!(
        r#"<h1>Overview</h1>
<section aria-labelledby="metrics-heading"><h2 id="metrics-heading">Metrics</h2>{metrics}</section>
<section aria-labelledby="charts-heading"><h2 id="charts-heading">The last {CHART_DAYS} days (UTC)</h2>
<div class="charts">
<figure>{throughput}<figcaption>Tasks merged per day</figcaption></figure>
<figure>{spend_chart}<figcaption>Spend per day</figcaption></figure>
</div>
<details><summary>The numbers</summary><table class="numbers"><thead><tr><th scope="col">Day</th><th scope="col">Merged</th><th scope="col">Spend</th></tr></thead><tbody>{rows}</tbody></table></details>
</section>"#,
        metrics = metrics(state, snapshot.max_concurrent_agents, today),
        throughput = bar_chart(
            "throughput",
            "Tasks merged per day",
            &throughput_bars,
            |v| { format!("{v:.0}") }
        ),
        spend_chart = bar_chart("spend", "Spend per day", &spend_bars, |v| {
            dollars(v as u64)
        }),
    );
    layout::html_response(
        StatusCode::OK,
        layout::page("Overview", Section::Overview, &viewer, &main),
    )
}

/// Tasks merged on each day of `days`.
fn merged_per_day(state: &CoreState, days: &[i64]) -> Vec<u64> {
    days.iter()
        .map(|day| {
            state
                .tasks
                .values()
                .filter(|task| {
                    task.merged_at_ms
                        .is_some_and(|at| at.div_euclid(DAY_MS) == *day)
                })
                .count() as u64
        })
        .collect()
}

fn metrics(state: &CoreState, max_agents: u32, today: i64) -> String {
    let count = |wanted: TaskState| {
        state
            .tasks
            .values()
            .filter(|task| task.state == wanted)
            .count()
    };
    let done = count(TaskState::Done);
    let failed = count(TaskState::Failed);
    let success = if done + failed > 0 {
        format!("{:.0}%", done as f64 * 100.0 / (done + failed) as f64)
    } else {
        "–".to_owned()
    };
    let totals = &state.totals;
    let mean_run = if totals.runs_finished > 0 {
        format!(
            "{:.1} s",
            totals.run_ms as f64 / totals.runs_finished as f64 / 1000.0
        )
    } else {
        "–".to_owned()
    };
    let spend_today = state
        .spend_by_day
        .get(&today)
        .map_or(0, |spend| spend.micros);
    let spend_total: u64 = state.spend_by_day.values().map(|spend| spend.micros).sum();
    let tiles = [
        (
            "Running",
            format!("{} of {max_agents}", count(TaskState::Running)),
        ),
        (
            "Awaiting review",
            count(TaskState::AwaitingReview).to_string(),
        ),
        ("Blocked", count(TaskState::Blocked).to_string()),
        ("Queued", count(TaskState::Queued).to_string()),
        ("Done", done.to_string()),
        ("Failed", failed.to_string()),
        ("Success rate", success),
        ("Runs started", totals.runs_started.to_string()),
        ("Mean run", mean_run),
        ("Model calls", totals.model_calls.to_string()),
        ("Tokens metered", totals.metered.total_tokens.to_string()),
        ("Spend today", dollars(spend_today)),
        ("Spend, all days", dollars(spend_total)),
    ];
    let tiles: String = tiles
        .iter()
        .map(|(label, value)| {
            format!(
                r#"<div class="tile" data-metric="{key}"><dt>{label}</dt><dd>{value}</dd></div>"#,
                key = attr(&human(&label.to_lowercase()).replace(' ', "-")),
            )
        })
        .collect();
    format!(r#"<dl class="tiles">{tiles}</dl>"#)
}
