//! `takt status --remote URL`: the dashboard of a daemon on another machine (or in another
//! directory), read through its HTTP API instead of the state directory.
//!
//! Three reads per refresh: `/api/v1/state` (live runs, polling, schedules, totals),
//! `/api/v1/tasks` (every task) and `/api/v1/cost` (spend). The token, when needed (reads on
//! an address other machines can reach), comes from `$TAKT_API_TOKEN` and is sent only as a
//! bearer header.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use takt_protocol::{Millis, TaskSummary, TokenUsage};

use crate::clock::now_ms;

/// The environment variable holding the API token for `--remote`.
pub const TOKEN_ENV: &str = "TAKT_API_TOKEN";

/// A daemon's API, for reading.
pub struct RemoteDaemon {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl RemoteDaemon {
    /// `url` is the daemon's base address (`http://host:port`, a trailing `/` or an
    /// `/api/v1/...` path is tolerated).
    pub fn new(url: &str, token: Option<String>) -> Result<RemoteDaemon> {
        let trimmed = url.trim().trim_end_matches('/');
        let base = trimmed
            .split_once("/api/")
            .map_or(trimmed, |(base, _)| base)
            .to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!(
                "`--remote {url}` is not an HTTP address; give the daemon's base URL, for \
                 example `--remote http://127.0.0.1:8080` (the address `takt run --port` prints)"
            );
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(RemoteDaemon {
            base,
            token: token.filter(|token| !token.is_empty()),
            client,
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {url}: the daemon did not answer"))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!(
                "GET {url}: 401, the daemon wants its API token for reads from this address; \
                 set ${TOKEN_ENV} to the value of `server.token`"
            );
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("GET {url}: {status}: {}", body.trim());
        }
        response
            .json()
            .await
            .with_context(|| format!("GET {url}: the answer is not the JSON takt serves"))
    }

    /// One dashboard snapshot.
    pub async fn dashboard(&self) -> Result<takt_tui::Dashboard> {
        let (state, tasks, cost) = tokio::try_join!(
            self.get::<StateView>("/api/v1/state"),
            self.get::<TaskList>("/api/v1/tasks"),
            self.get::<CostView>("/api/v1/cost"),
        )?;
        let now = now_ms();
        let live_runs = state
            .running
            .iter()
            .map(|row| {
                Ok(takt_tui::LiveRun {
                    task_id: row.issue_id.clone(),
                    run_id: row.run_id.clone(),
                    started_at_ms: parse_time(&row.started_at)?,
                    turns: row.turn_count,
                    session_id: row.session_id.clone(),
                    last_event: row.last_event.clone(),
                    last_event_at_ms: row.last_event_at.as_deref().map(parse_time).transpose()?,
                    last_message: row.last_message.clone(),
                    tokens: row.tokens,
                    spend_micros: row.spend_micros,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let schedules = state
            .schedules
            .iter()
            .map(|row| {
                Ok(takt_tui::ScheduleRow {
                    name: row.name.clone(),
                    cron: row.cron.clone(),
                    timezone: Some(row.timezone.clone()),
                    next_due_ms: row.next_due_at.as_deref().map(parse_time).transpose()?,
                    last_fired_ms: row.last_fired_at.as_deref().map(parse_time).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(takt_tui::Dashboard {
            generated_at_ms: now,
            daemon: takt_tui::DaemonStatus::Running { pid: None },
            source: self.base.clone(),
            dashboard_url: Some(format!("{}/", self.base)),
            max_agents: state.max_concurrent_agents,
            tasks: tasks.tasks,
            live_runs,
            totals: takt_tui::Totals {
                runs_started: state.runs.started,
                runs_finished: state.runs.finished,
                seconds_running: u64::try_from(state.runs.finished_seconds).unwrap_or(0),
                metered: state.runs.metered_tokens,
                model_calls: cost.model_calls,
                model_calls_refused: cost.model_calls_refused,
            },
            spend_today: cost.today.into(),
            spend_month: cost.month.into(),
            rate_limits: state.rate_limits,
            next_poll_at_ms: state
                .polling
                .next_poll_in_ms
                .map(|in_ms| now.saturating_add(in_ms)),
            quota_paused_until_ms: state
                .quota_paused_until
                .as_deref()
                .map(parse_time)
                .transpose()?,
            schedules,
            unreachable: None,
        })
    }
}

fn parse_time(text: &str) -> Result<Millis> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.timestamp_millis())
        .map_err(|error| anyhow!("the daemon sent a time that is not RFC 3339: {text:?}: {error}"))
}

// The subset of the API's answers the dashboard reads (docs/api.md has the full shapes).

#[derive(Deserialize)]
struct StateView {
    running: Vec<RunningRow>,
    rate_limits: Option<serde_json::Value>,
    polling: Polling,
    max_concurrent_agents: u32,
    runs: RunCounts,
    quota_paused_until: Option<String>,
    schedules: Vec<ScheduleRow>,
}

#[derive(Deserialize)]
struct RunningRow {
    issue_id: String,
    run_id: String,
    started_at: String,
    turn_count: u32,
    session_id: Option<String>,
    last_event: Option<String>,
    last_event_at: Option<String>,
    last_message: Option<String>,
    tokens: TokenUsage,
    spend_micros: u64,
}

#[derive(Deserialize)]
struct Polling {
    next_poll_in_ms: Option<i64>,
}

#[derive(Deserialize)]
struct RunCounts {
    started: u64,
    finished: u64,
    finished_seconds: i64,
    metered_tokens: TokenUsage,
}

#[derive(Deserialize)]
struct ScheduleRow {
    name: String,
    cron: String,
    timezone: String,
    next_due_at: Option<String>,
    last_fired_at: Option<String>,
}

#[derive(Deserialize)]
struct TaskList {
    tasks: Vec<TaskSummary>,
}

#[derive(Deserialize)]
struct CostView {
    today: SpendView,
    month: SpendView,
    model_calls: u64,
    model_calls_refused: u64,
}

#[derive(Deserialize)]
struct SpendView {
    tokens: u64,
    micros: u64,
}

impl From<SpendView> for takt_tui::Spend {
    fn from(spend: SpendView) -> takt_tui::Spend {
        takt_tui::Spend {
            tokens: spend.tokens,
            micros: spend.micros,
        }
    }
}
