//! `bench webhook`: the latency from a `POST /hooks/generic` delivery to the dispatch decision
//! (the `run_dispatched` journal entry of the task it creates) and to the start of its agent
//! process, with `takt run --port 0` already running (the same agent,
//! workflow and 30 s poll interval as `bench dispatch`, so only the delivery explains a fast
//! dispatch). Target (issue 7): p50 under 50 ms.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::dispatch::{
    BenchProject, Daemon, bench_project, now_ns, to_ms, wait_for_run_end, wait_for_stamp,
};
use super::{Dist, Machine, Section, ms, table, verdict};

const TASKS: usize = 30;
const WARM_UP: usize = 3;
const TARGET_P50_MS: f64 = 50.0;
const TOKEN: &str = "bench-webhook-token";

pub fn run(root: &Path, machine: &Machine) -> Result<Section> {
    let takt = root.join("target").join("release").join("takt");
    anyhow::ensure!(
        takt.is_file(),
        "{} is missing; build it first with `cargo build --release -p takt-cli`",
        takt.display()
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let project = bench_project("webhook", |text| {
        text.replacen(
            "publish:",
            "server:\n  webhook_token: $TAKT_BENCH_WEBHOOK_TOKEN\npublish:",
            1,
        )
    })?;
    let BenchProject {
        stamps,
        workflow,
        state_dir,
        ..
    } = &project;
    let child = Command::new(&takt)
        .arg("-w")
        .arg(workflow)
        .args(["run", "--port", "0"])
        .env("TAKT_BENCH_WEBHOOK_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting takt run --port 0")?;
    let mut daemon = Daemon { child };
    let addr_file = state_dir.join("api.addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !addr_file.exists() {
        if daemon.child.try_wait()?.is_some() || Instant::now() > deadline {
            bail!("takt run --port 0 did not start its API");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!(
        "http://{}/hooks/generic",
        fs_err::read_to_string(&addr_file)?.trim()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    let mut samples = Vec::new();
    let mut decisions = Vec::new();
    let events_base = url.replacen("/hooks/generic", "/api/v1/tasks", 1);
    for n in 0..WARM_UP + TASKS {
        let body = serde_json::json!({"title": format!("Webhook task {n}")});
        let submitted = now_ns()?;
        let response = runtime.block_on(
            client
                .post(&url)
                .bearer_auth(TOKEN)
                .header("X-Delivery-Id", format!("bench-{n}"))
                .json(&body)
                .send(),
        )?;
        let status = response.status();
        let issue: serde_json::Value = runtime.block_on(response.json())?;
        if !status.is_success() {
            bail!("the webhook answered {status}: {issue}");
        }
        let identifier = issue["task"]["identifier"]
            .as_str()
            .context("the webhook's answer names no task")?
            .to_owned();
        let Some(started) = wait_for_stamp(&stamps.join(&identifier))? else {
            bail!("the agent of {identifier} never started");
        };
        let journal: serde_json::Value = runtime.block_on(async {
            client
                .get(format!("{events_base}/{identifier}/events"))
                .send()
                .await?
                .json()
                .await
        })?;
        let dispatched_ms = journal["events"]
            .as_array()
            .and_then(|events| events.iter().find(|e| e["kind"] == "run_dispatched"))
            .and_then(|entry| entry["at_ms"].as_i64())
            .with_context(|| format!("no run_dispatched entry for {identifier}: {journal}"))?;
        if n >= WARM_UP {
            samples.push(to_ms(started - submitted));
            // The journal stamps whole milliseconds.
            decisions.push(dispatched_ms as f64 - to_ms(submitted));
        }
        wait_for_run_end(state_dir, &identifier);
    }
    let _ = daemon.stop();
    let dist = Dist::of(&samples).context("no samples")?;
    let decision = Dist::of(&decisions).context("no samples")?;
    println!(
        "  webhook -> dispatch decision: p50 {:.1} ms, p90 {:.1} ms; -> agent start: p50 {:.1} \
         ms, p90 {:.1} ms, p99 {:.1} ms",
        decision.p50, decision.p90, dist.p50, dist.p90, dist.p99
    );
    let mut markdown = format!(
        "`cargo run --release -p xtask -- bench webhook` posts {TASKS} deliveries (after \
         {WARM_UP} warm-ups) to `POST /hooks/generic` of a running release `takt run --port 0` \
         and measures from just before the request to the dispatch decision (the task's \
         `run_dispatched` journal entry, stamped in whole milliseconds) and to the agent's \
         first command (`date +%s%N` in the command backend's script), on {} CPUs. The poll \
         interval is 30 s, so only the delivery can explain a fast dispatch.\n\n",
        machine.cpus
    );
    let row = |label: String, dist: &Dist| {
        vec![
            label,
            ms(dist.p50),
            ms(dist.p90),
            ms(dist.p99),
            ms(dist.max),
        ]
    };
    markdown.push_str(&table(
        &[
            "webhook delivery ->",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
        ],
        &[
            row(format!("dispatch decision ({TASKS} tasks)"), &decision),
            row(format!("agent start ({TASKS} tasks)"), &dist),
        ],
    ));
    markdown.push_str(&format!(
        "\nTarget (issue 7: a dispatch decision within 50 ms): p50 under {TARGET_P50_MS:.0} ms \
         — {}.\n",
        verdict(decision.p50 < TARGET_P50_MS)
    ));
    markdown.push_str(
        "\nFrom the decision to the agent's first command the path is the one `bench dispatch` \
         measures (section 1): the workspace (mirror sync and worktree) and the agent sandbox's \
         launch (section 5) plus hooks; a verification running at the same time holds the \
         mirror's lock.\n",
    );
    Ok(Section {
        name: "webhook",
        markdown,
    })
}
