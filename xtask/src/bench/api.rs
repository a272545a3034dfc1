//! The HTTP API under load: `GET /api/v1/state` over a state of 1,000 tasks, and the journal
//! event stream fanned out to 100 subscribers. The server is takt's own (`takt_server::serve`)
//! over an in-memory port whose state the real core built.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use takt_core::{Event, OperatorCommand, Policy, State, handle};
use takt_protocol::{Issue, JournalEntry};
use takt_server::{
    DaemonPort, NewTask, PortError, RefreshQueued, Snapshot, WebhookDelivery, WebhookOutcome,
};
use tokio::sync::broadcast;

use super::{Dist, Machine, Section, ms, table};

const TASKS: usize = 1_000;
const REQUESTS: usize = 500;
const SUBSCRIBERS: usize = 100;
const EVENTS: u64 = 200;

struct Port {
    snapshot: Arc<Snapshot>,
    entries: broadcast::Sender<JournalEntry>,
}

#[async_trait]
impl DaemonPort for Port {
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        Some(self.snapshot.clone())
    }
    fn subscribe(&self) -> broadcast::Receiver<JournalEntry> {
        self.entries.subscribe()
    }
    async fn refresh(&self) -> Result<RefreshQueued, PortError> {
        Ok(RefreshQueued { coalesced: true })
    }
    async fn submit(&self, _: OperatorCommand) -> Result<(), PortError> {
        Err(PortError::Refused("read-only benchmark".into()))
    }
    async fn create_task(&self, _: NewTask) -> Result<Issue, PortError> {
        Err(PortError::Refused("read-only benchmark".into()))
    }
    async fn webhook(&self, _: WebhookDelivery) -> Result<WebhookOutcome, PortError> {
        Err(PortError::Refused("read-only benchmark".into()))
    }
    async fn webhook_refused(&self, _: &str, _: Option<String>, _: String) {}
    async fn journal_since(&self, _: u64, _: u32) -> Result<Vec<JournalEntry>, PortError> {
        Ok(Vec::new())
    }
    async fn task_journal(&self, _: &str) -> Result<Vec<JournalEntry>, PortError> {
        Ok(Vec::new())
    }
    async fn artifact(&self, _: &str) -> Result<Option<Vec<u8>>, PortError> {
        Ok(None)
    }
}

fn issue(n: usize) -> Issue {
    Issue {
        id: format!("id-{n}"),
        identifier: format!("BENCH-{n}"),
        title: format!("Task number {n} with a title of ordinary length"),
        description: Some("Do the thing the way the team likes it.".into()),
        priority: Some(i64::try_from(n % 4).unwrap_or(0) + 1),
        state: "Todo".into(),
        branch_name: None,
        url: None,
        assignee_id: None,
        labels: vec!["backend".into()],
        blocked_by: Vec::new(),
        dispatchable: true,
        created_at: None,
        updated_at: None,
        native_ref: None,
    }
}

/// A state of `TASKS` tasks as the core builds it: ten running, the rest queued.
fn state() -> State {
    let policy = Policy::default();
    let mut state = State::default();
    let issues = (0..TASKS).map(issue).collect();
    handle(
        &mut state,
        &policy,
        Event::CandidatesFetched { issues },
        1_700_000_000_000,
    );
    state
}

fn entry(seq: u64, sent_at_ns: u128) -> JournalEntry {
    JournalEntry {
        seq,
        at_ms: 1_700_000_000_000,
        kind: "agent_event_recorded".into(),
        task_id: Some("id-1".into()),
        payload: serde_json::json!({"sent_at_ns": sent_at_ns.to_string()}),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

pub fn run(machine: &Machine) -> Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(measure(machine))
}

async fn measure(machine: &Machine) -> Result<Section> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (entries, _) = broadcast::channel(4096);
    let snapshot = Arc::new(Snapshot {
        state: Arc::new(state()),
        poll_interval_ms: 30_000,
        next_poll_due_at_ms: Some(1_700_000_030_000),
        poll_in_flight: false,
        max_concurrent_agents: 10,
        schedules: Vec::new(),
    });
    let port = Arc::new(Port {
        snapshot,
        entries: entries.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(takt_server::serve(
        listener,
        port,
        takt_server::ServerConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();

    // GET /api/v1/state, one request at a time (latency, not throughput).
    let url = format!("{base}/api/v1/state");
    let mut samples = Vec::with_capacity(REQUESTS);
    let mut bytes = 0;
    for _ in 0..REQUESTS {
        let started = Instant::now();
        let body = client.get(&url).send().await?.bytes().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        bytes = body.len();
    }
    let state = Dist::of(&samples).context("no samples")?;
    println!(
        "  GET /api/v1/state ({TASKS} tasks, {bytes} bytes): p50 {:.2} ms, p99 {:.2} ms",
        state.p50, state.p99
    );
    let tasks_url = format!("{base}/api/v1/tasks");
    let mut samples = Vec::with_capacity(100);
    for _ in 0..100 {
        let started = Instant::now();
        client.get(&tasks_url).send().await?.bytes().await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let tasks = Dist::of(&samples).context("no samples")?;

    // SSE fan-out: SUBSCRIBERS streams, EVENTS entries broadcast; each subscriber notes when
    // each entry arrived.
    let clock = Instant::now();
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let response = client
            .get(format!("{base}/api/v1/events"))
            .header("Last-Event-ID", "0")
            .send()
            .await?;
        subscribers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut stream = response.bytes_stream();
            let mut buffer = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let event: String = buffer.drain(..end + 2).collect();
                    if let Some(sent) = event
                        .split("\"sent_at_ns\":\"")
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .and_then(|n| n.parse::<u128>().ok())
                    {
                        let now = clock.elapsed().as_nanos();
                        latencies.push(now.saturating_sub(sent) as f64 / 1e6);
                    }
                }
                if latencies.len() as u64 >= EVENTS {
                    break;
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for seq in 1..=EVENTS {
        let _ = entries.send(entry(seq, clock.elapsed().as_nanos()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut all = Vec::new();
    let mut complete = 0;
    for subscriber in subscribers {
        let latencies = tokio::time::timeout(Duration::from_secs(30), subscriber)
            .await
            .context("a subscriber did not receive every event")??;
        if latencies.len() as u64 == EVENTS {
            complete += 1;
        }
        all.extend(latencies);
    }
    let fanout = Dist::of(&all).context("no events received")?;
    println!(
        "  SSE to {SUBSCRIBERS} subscribers: {complete} received all {EVENTS}; delivery p50 {:.2} ms, p99 {:.2} ms",
        fanout.p50, fanout.p99
    );
    let _ = stop.send(());
    let _ = server.await;

    let rows = vec![
        vec![
            format!("`GET /api/v1/state`, {TASKS} tasks ({} KiB)", bytes / 1024),
            REQUESTS.to_string(),
            ms(state.p50),
            ms(state.p99),
        ],
        vec![
            format!("`GET /api/v1/tasks`, {TASKS} tasks"),
            "100".into(),
            ms(tasks.p50),
            ms(tasks.p99),
        ],
        vec![
            format!("SSE journal event to each of {SUBSCRIBERS} subscribers"),
            format!("{} deliveries", all.len()),
            ms(fanout.p50),
            ms(fanout.p99),
        ],
    ];
    let mut markdown = format!(
        "`cargo run --release -p xtask -- bench api` serves takt's HTTP API (`takt_server::serve`) \
         on loopback over an in-memory port whose state the core built from {TASKS} issues (ten \
         running), on {} CPUs. Requests are sequential (latency, not throughput); the event \
         stream test connects {SUBSCRIBERS} subscribers, then broadcasts {EVENTS} journal \
         entries 5 ms apart and measures from broadcast to arrival at each subscriber.\n\n",
        machine.cpus
    );
    markdown.push_str(&table(&["what", "samples", "p50 ms", "p99 ms"], &rows));
    markdown.push_str(&format!(
        "\n{complete} of {SUBSCRIBERS} subscribers received every event. `/api/v1/state` has \
         Symphony's shape: running, retrying and blocked rows only, so it stays small however \
         many tasks are queued; `/api/v1/tasks` carries every task in full.\n"
    ));
    Ok(Section {
        name: "api",
        markdown,
    })
}
