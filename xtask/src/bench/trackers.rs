//! `bench trackers`: requests and wall time per poll of the remote tracker adapters against
//! their fake servers (`takt_trackers::fake`) holding a 10,000-issue project: the first poll (a
//! full listing), a poll after 10 changes (9 edits and 1 close), and a poll with no change.
//! Target (issue 8): the second poll costs requests proportional to the changes, not to the
//! project's size.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use takt_core::ports::Tracker;
use takt_trackers::fake::Fake;
use takt_workflow::{MapEnv, TrackerConfig};

use super::{Dist, Machine, Section, ms, table, verdict};

const ISSUES: u64 = 10_000;
const CHANGES: u64 = 10;
const REPETITIONS: usize = 5;
const TOKEN: &str = "bench-tracker-token";

struct Sample {
    requests: [usize; 3],
    millis: [f64; 3],
}

async fn one(kind: &str) -> Result<Sample> {
    let (fake, provider, active, terminal, closed) = match kind {
        "github" => {
            let fake = Fake::github("acme/big", TOKEN).await?;
            let keys = json!({"repo": "acme/big", "api_url": fake.url(), "token": TOKEN});
            (fake, keys, vec!["open"], vec!["closed"], "closed")
        }
        "gitlab" => {
            let fake = Fake::gitlab("acme/big", TOKEN).await?;
            let keys = json!({"project_path": "acme/big", "base_url": fake.url(), "token": TOKEN});
            (fake, keys, vec!["opened"], vec!["closed"], "closed")
        }
        _ => {
            let fake = Fake::linear("big", TOKEN).await?;
            let keys = json!({"project_slug": "big", "endpoint": fake.url(), "api_key": TOKEN});
            (
                fake,
                keys,
                vec!["Todo", "In Progress"],
                vec!["Done"],
                "Done",
            )
        }
    };
    let config = TrackerConfig {
        kind: kind.to_owned(),
        active_states: active.iter().map(|s| (*s).to_owned()).collect(),
        terminal_states: terminal.iter().map(|s| (*s).to_owned()).collect(),
        required_labels: Vec::new(),
        provider: provider.as_object().cloned().unwrap_or_default(),
        transitions: Default::default(),
        answer_mention: "@takt".into(),
    };
    let tracker: Arc<dyn Tracker> = takt_trackers::build(&config, &MapEnv::new())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let states: Vec<String> = config.active_states.clone();
    fake.seed(ISSUES);
    let mut requests = [0; 3];
    let mut millis = [0.0; 3];
    for poll in 0..3 {
        if poll == 1 {
            for n in 1..CHANGES {
                fake.update(n * 911, |issue| issue.title = format!("changed {n}"));
            }
            fake.update(ISSUES / 2, |issue| issue.state = closed.to_owned());
        }
        fake.clear_requests();
        let started = Instant::now();
        let issues = tracker
            .fetch_issues_by_states(&states)
            .await
            .map_err(|error| anyhow::anyhow!("{kind} poll {poll}: {error}"))?;
        millis[poll] = started.elapsed().as_secs_f64() * 1000.0;
        requests[poll] = fake.requests().len();
        let expected = if poll == 0 { ISSUES } else { ISSUES - 1 };
        ensure!(
            issues.len() as u64 == expected,
            "{kind} poll {poll}: {} issues, expected {expected}",
            issues.len()
        );
    }
    Ok(Sample { requests, millis })
}

pub fn run(machine: &Machine) -> Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the runtime")?;
    let mut rows = Vec::new();
    let mut met = true;
    for kind in ["github", "gitlab", "linear"] {
        let mut samples = Vec::new();
        for _ in 0..REPETITIONS {
            samples.push(runtime.block_on(one(kind))?);
        }
        let requests = samples[0].requests;
        ensure!(
            samples.iter().all(|s| s.requests == requests),
            "{kind}: request counts differ between repetitions"
        );
        let p50 = |poll: usize| {
            let values: Vec<f64> = samples.iter().map(|s| s.millis[poll]).collect();
            Dist::of(&values).map_or(0.0, |d| d.p50)
        };
        met &= requests[1] <= 2;
        println!(
            "{kind}: full {} req {:.1} ms; after {CHANGES} changes {} req {:.1} ms; unchanged {} req {:.1} ms",
            requests[0],
            p50(0),
            requests[1],
            p50(1),
            requests[2],
            p50(2)
        );
        rows.push(vec![
            format!("`{kind}`"),
            requests[0].to_string(),
            ms(p50(0)),
            requests[1].to_string(),
            ms(p50(1)),
            requests[2].to_string(),
            ms(p50(2)),
        ]);
    }
    let markdown = format!(
        "{}\n\n`cargo run --release -p xtask -- bench trackers` polls each adapter against its fake \
         server (`takt-trackers` feature `fake`, over loopback HTTP) holding a {ISSUES}-issue \
         project, {REPETITIONS} times from a fresh adapter: the first poll lists the project in \
         full, then {CHANGES} issues change (9 edits, 1 closed) and a second poll runs, then a \
         third with no change. Requests are counted by the fake; times are p50 wall times of \
         the whole `fetch_issues_by_states` call, fake included.\n\n{}\n\
         Target: the poll after {CHANGES} changes costs requests proportional to the changes, \
         not to the project's size — {}. The full listing pages by 100 (GitHub, GitLab) and 50 \
         (Linear, R-060); incremental polls ask for issues updated since the cursor \
         (`since`, `updated_after`, `updatedAt: {{gte}}`). GitHub's unchanged poll is a \
         conditional request answered 304, which does not count against the rate limit. A full \
         listing still runs every `full_sync_every` polls (default 20) to notice deletions.",
        machine.measured_line(),
        table(
            &[
                "adapter",
                "full poll requests",
                "full poll p50 ms",
                "after 10 changes: requests",
                "p50 ms",
                "unchanged: requests",
                "p50 ms",
            ],
            &rows
        ),
        verdict(met)
    );
    Ok(Section {
        name: "trackers",
        markdown,
    })
}
