//! Issue 3's benchmarks: the cost of takt's event pipeline per agent event (decide + journal),
//! and a scripted 20-tool-call session of the built-in agent against the mock model compared
//! with the mock answering the same 21 requests directly.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use takt_agents::builtin::{BuiltinBackend, BuiltinSettings, ModelApi};
use takt_core::ports::{AgentBackend, AgentEventSink, ModelAccess, SessionContext, TurnInput};
use takt_core::{Event, Policy, State, handle};
use takt_mock_model::{MockConfig, MockModel, Scenario, Step};
use takt_protocol::{AgentEvent, Issue};
use takt_store::{NewEntry, Store};

use super::{Dist, Machine, Section, ms, table};

const EVENTS: usize = 2_000;
const SESSIONS: usize = 30;

pub fn run(machine: &Machine) -> Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let (single, burst) = runtime.block_on(pipeline())?;
    let (sessions, direct) = runtime.block_on(sessions())?;
    let single_us = single * 1_000.0;
    let burst_us = burst * 1_000.0;
    let session = Dist::of(&sessions).context("no session samples")?;
    let baseline = Dist::of(&direct).context("no direct samples")?;
    let added = (session.p50 - baseline.p50) / baseline.p50 * 100.0;
    println!(
        "pipeline: {single_us:.1} us/event one by one, {burst_us:.1} us/event in bursts; \
         session p50 {} ms vs direct {} ms ({added:+.1}%)",
        ms(session.p50),
        ms(baseline.p50)
    );
    let verdict = |met: bool| if met { "**met**" } else { "**missed**" };
    let markdown = format!(
        "{measured}\n\n\
**What.** (a) The daemon's cost per agent event: `takt_core::handle` plus the journal append in\n\
a real SQLite store (WAL, `synchronous=FULL`), one transaction per event and, as the daemon\n\
does for a burst of worker reports, one transaction per 64 events. (b) A scripted session of\n\
the built-in agent (21 model round trips: 10 `write_file`, 10 `read_file`, `finish`) against\n\
the mock model over Chat Completions, against the same 21 requests sent straight to the mock.\n\n\
**How.** (a) {EVENTS} `message` agent events for one live run; wall time divided by events.\n\
(b) {SESSIONS} sessions, each in a fresh git workspace; timed is the turn (the session's\n\
one-time setup per run, reading AGENTS.md and building the toolbox, is not); the direct\n\
baseline replays the turn's own 21 request bodies (from the mock's log) in order with one HTTP\n\
client and reads every streamed body to its end.\n\n\
**Targets.** Pipeline < 50 µs per event; the session adds < 10 % to the mock's own time.\n\n\
{}\n{}\n\
**Reading.** One transaction per event pays an fsync each ({single_us:.0} µs): the target\n\
{}. In bursts, which is how the daemon journals worker reports that arrive together, the\n\
cost is {burst_us:.1} µs per event: {}. The session's extra {added:.1} % ({}) is takt's side\n\
of 21 round trips: building each request from the conversation, parsing the stream, running\n\
the tools in the workspace, and the event callbacks.\n",
        table(
            &["pipeline", "µs per event"],
            &[
                vec![
                    "one transaction per event".into(),
                    format!("{single_us:.1}")
                ],
                vec![
                    "bursts of 64 (the daemon's batching)".into(),
                    format!("{burst_us:.1}")
                ],
            ]
        ),
        table(
            &["20-tool-call session", "p50 ms", "p90", "max", "min"],
            &[
                row("built-in agent against the mock", &session),
                row("the same 21 requests straight to the mock", &baseline),
            ]
        ),
        verdict(single_us < 50.0),
        verdict(burst_us < 50.0),
        verdict(added < 10.0),
        measured = machine.measured_line(),
    );
    Ok(Section {
        name: "agents",
        markdown,
    })
}

fn row(label: &str, dist: &Dist) -> Vec<String> {
    vec![
        label.to_owned(),
        ms(dist.p50),
        ms(dist.p90),
        ms(dist.max),
        ms(dist.min),
    ]
}

/// Milliseconds per event: one transaction each, then bursts of 64.
async fn pipeline() -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path()).await?;
    let policy = Policy::default();
    let mut state = State::default();
    let issue = Issue {
        id: "id-1".into(),
        identifier: "BENCH-1".into(),
        title: "bench".into(),
        description: None,
        priority: None,
        state: "Todo".into(),
        branch_name: None,
        url: None,
        assignee_id: None,
        labels: vec![],
        blocked_by: vec![],
        dispatchable: true,
        created_at: None,
        updated_at: None,
        native_ref: None,
    };
    let mut now = 1_700_000_000_000;
    handle(
        &mut state,
        &policy,
        Event::CandidatesFetched {
            issues: vec![issue],
        },
        now,
    );
    let mut timings = Vec::new();
    for burst in [1usize, 64] {
        let started = Instant::now();
        let mut pending = Vec::new();
        for i in 0..EVENTS {
            now += 1;
            let event = Event::AgentActivity {
                run_id: "BENCH-1#1".into(),
                event: AgentEvent::Message {
                    text: format!("step {i}: reading src/lib.rs and planning the change"),
                },
            };
            let step = handle(&mut state, &policy, event, now);
            for record in step.records.iter().filter(|record| record.is_durable()) {
                pending.push(NewEntry {
                    at_ms: now,
                    kind: record.kind(),
                    task_id: record.task_id().map(String::from),
                    payload: serde_json::to_value(record)?,
                });
            }
            if (i + 1) % burst == 0 {
                store.append(std::mem::take(&mut pending)).await?;
            }
        }
        store.append(pending).await?;
        timings.push(started.elapsed().as_secs_f64() * 1_000.0 / EVENTS as f64);
    }
    Ok((timings[0], timings[1]))
}

struct Quiet;

impl AgentEventSink for Quiet {
    fn emit(&self, _event: AgentEvent) {}
}

fn twenty_calls() -> Scenario {
    let mut steps = Vec::new();
    for i in 0..10 {
        let path = format!("src/file_{i}.txt");
        steps.push(Step::tool(
            "write_file",
            json!({"path": path, "content": format!("line {i}\n")}),
        ));
        steps.push(Step::tool("read_file", json!({"path": path})));
    }
    steps.push(Step::tool("finish", json!({"summary": "Wrote ten files."})));
    steps.push(Step::text("DONE"));
    Scenario::new("twenty-calls", steps)
}

/// Session wall times and direct-replay wall times, in ms.
async fn sessions() -> Result<(Vec<f64>, Vec<f64>)> {
    let mock = MockModel::start(MockConfig::with_scenarios(vec![twenty_calls()])).await?;
    let backend = BuiltinBackend::new(
        BuiltinSettings {
            api: ModelApi::ChatCompletions,
            ..BuiltinSettings::default()
        },
        unconfined(),
    )?;
    let client = takt_agents::builtin::client::http_client()?;
    let mut session_ms = Vec::new();
    let mut direct_ms = Vec::new();
    for round in 0..=SESSIONS {
        let dir = tempfile::tempdir()?;
        let workspace = dir.path().join("ws");
        fs_err::create_dir_all(workspace.join("src"))?;
        super::git(&workspace, &["init", "-q"])?;
        let context = SessionContext {
            git_dir: None,
            host_tools: None,
            view: None,
            task_id: "bench".into(),
            identifier: format!("BENCH-{round}"),
            run_id: format!("BENCH-{round}#1"),
            attempt: 1,
            workspace: workspace.clone(),
            run_dir: dir.path().join("run"),
            model: Some(ModelAccess {
                openai_base_url: mock.openai_base_url(),
                anthropic_base_url: mock.base_url(),
                token: "bench".into(),
                model: Some("bench".into()),
            }),
        };
        let before = mock.requests().len();
        let mut session = backend.start_session(context).await?;
        // The turn alone: session setup (reading AGENTS.md, the toolbox) happens once per run.
        let started = Instant::now();
        session
            .run_turn(
                TurnInput {
                    turn: 1,
                    prompt: "[[scenario:twenty-calls]] write ten files".into(),
                },
                &Quiet,
            )
            .await?;
        let took = started.elapsed().as_secs_f64() * 1_000.0;
        session.stop().await;
        let requests: Vec<serde_json::Value> = mock.requests()[before..]
            .iter()
            .map(|request| request.body.clone())
            .collect();
        // Replay the same bodies straight to the mock: its own time for this session.
        let started = Instant::now();
        for body in &requests {
            let response = client
                .post(format!("{}/chat/completions", mock.openai_base_url()))
                .bearer_auth("bench")
                .json(body)
                .send()
                .await?;
            response.bytes().await?;
        }
        let direct = started.elapsed().as_secs_f64() * 1_000.0;
        if round > 0 {
            // Round 0 warms connections and caches.
            session_ms.push(took);
            direct_ms.push(direct);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mock.shutdown().await?;
    Ok((session_ms, direct_ms))
}

/// The session benchmark measures the loop itself; sandbox launch cost is `bench sandbox`.
fn unconfined() -> std::sync::Arc<takt_sandbox::Sandbox> {
    std::sync::Arc::new(takt_sandbox::Sandbox::unconfined(
        takt_sandbox::Policy::default(),
    ))
}
