//! Issue 5's benchmarks: what the model gateway adds to a model call. (a) Latency per proxied
//! non-streaming call against calling the mock model directly; (b) streaming time to first
//! byte through the gateway against direct; (c) 200 concurrent streaming calls through the
//! gateway.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use takt_core::budget::{Budget, Limit};
use takt_gateway::{Gateway, GatewayConfig, Upstream, UpstreamKind};
use takt_mock_model::{MockConfig, MockModel, Scenario, Step, UsageSpec};

use super::{Dist, Machine, Section, ms, table, verdict};

/// Non-streaming calls per path (after warm-up).
const CALLS: usize = 600;
/// Streaming calls per path for time to first byte.
const STREAMS: usize = 300;
const WARMUP: usize = 50;
const CONCURRENT: usize = 200;
const KEY: &str = "sk-bench-provider-key-0123456789";

pub fn run(machine: &Machine) -> Result<Section> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a runtime")?;
    let results = runtime.block_on(measure())?;
    let Results {
        direct,
        proxied,
        ttfb_direct,
        ttfb_proxied,
        end_direct,
        end_proxied,
        burst,
        burst_direct,
    } = results;
    let added_p50 = proxied.p50 - direct.p50;
    let added_p95 = proxied.p95 - direct.p95;
    let ttfb_added = ttfb_proxied.p50 - ttfb_direct.p50;
    println!(
        "non-streaming p50/p95 {}/{} ms direct, {}/{} ms via gateway (+{} ms p50); \
         streaming first byte p50 {} vs {} ms (+{} ms), whole stream p50 {} vs {} ms; \
         {CONCURRENT} concurrent streams via gateway: {} errors, {} ms total, p50 {} ms, p95 {} ms \
         (direct: {} errors, {} ms total)",
        ms(direct.p50),
        ms(direct.p95),
        ms(proxied.p50),
        ms(proxied.p95),
        ms(added_p50),
        ms(ttfb_direct.p50),
        ms(ttfb_proxied.p50),
        ms(ttfb_added),
        ms(end_direct.p50),
        ms(end_proxied.p50),
        burst.errors,
        ms(burst.total_ms),
        ms(burst.latency.p50),
        ms(burst.latency.p95),
        burst_direct.errors,
        ms(burst_direct.total_ms),
    );
    let latency_rows = vec![
        row("straight to the mock", &direct),
        row("through the gateway", &proxied),
        vec![
            "added by the gateway".into(),
            ms(added_p50),
            ms(added_p95),
            "".into(),
            "".into(),
        ],
    ];
    let ttfb_rows = vec![
        row("first byte, straight to the mock", &ttfb_direct),
        row("first byte, through the gateway", &ttfb_proxied),
        vec![
            "added by the gateway".into(),
            ms(ttfb_added),
            ms(ttfb_proxied.p95 - ttfb_direct.p95),
            "".into(),
            "".into(),
        ],
        row("whole stream, straight to the mock", &end_direct),
        row("whole stream, through the gateway", &end_proxied),
    ];
    let burst_rows = vec![
        burst_row("straight to the mock", &burst_direct),
        burst_row("through the gateway", &burst),
    ];
    let markdown = format!(
        "{measured}\n\n\
**What.** The model gateway in front of the mock model server, both in one process with the\n\
client, all on loopback: (a) the latency a proxied non-streaming call pays over calling the\n\
mock directly; (b) a streamed call's time to first byte (the first body chunk) and to its\n\
last, through the gateway and direct; (c) {CONCURRENT} streamed calls started at once through the gateway (and,\n\
for reference, straight to the mock).\n\n\
**How.** Chat Completions requests (~300 bytes) answered with a short text and scripted usage.\n\
The gateway runs as the daemon configures it: a run token, a budget with every cap set (so each\n\
call is checked and charged), transcripts on (each call's bodies captured and redacted), the\n\
built-in price table. One HTTP client with pooled connections; direct and proxied calls\n\
alternate so both see the same load; {WARMUP} warm-up calls each are not counted. (a) {CALLS}\n\
calls per path, each timed to the end of its body. (b) {STREAMS} streamed calls per path.\n\
(c) One burst of {CONCURRENT}; each call timed from the burst's start to the end of its body;\n\
an error is any transport failure or non-200 status.\n\n\
**Targets.** Added p50 < 2 ms per call; streaming time to first byte unchanged within 1 ms;\n\
{CONCURRENT} concurrent streaming calls on 2 cores without errors.\n\n\
(a) Non-streaming call, ms\n\n{}\n\
(b) Streaming: time to first byte and to the end of the stream, ms\n\n{}\n\
(c) {CONCURRENT} concurrent streaming calls\n\n{}\n\
**Reading.** The gateway adds {} ms at the median per call: {}. Time to first byte moves by\n\
{} ms: {}. The burst of {CONCURRENT} finished with {} errors in {} ms: {}. The added time is\n\
one more loopback hop (the gateway's own HTTP server and client) plus the per-call work: the\n\
token lookup, the budget check and charge, metering the stream, and copying and redacting the\n\
transcript.\n",
        table(&["", "p50", "p95", "max", "min"], &latency_rows),
        table(&["", "p50", "p95", "max", "min"], &ttfb_rows),
        table(
            &["", "errors", "total ms", "p50 ms", "p95 ms", "max ms"],
            &burst_rows
        ),
        ms(added_p50),
        verdict(added_p50 < 2.0),
        ms(ttfb_added),
        verdict(ttfb_added.abs() < 1.0),
        burst.errors,
        ms(burst.total_ms),
        verdict(burst.errors == 0),
        measured = machine.measured_line(),
    );
    Ok(Section {
        name: "gateway",
        markdown,
    })
}

fn row(label: &str, dist: &Pct) -> Vec<String> {
    vec![
        label.to_owned(),
        ms(dist.p50),
        ms(dist.p95),
        ms(dist.max),
        ms(dist.min),
    ]
}

fn burst_row(label: &str, burst: &Burst) -> Vec<String> {
    vec![
        label.to_owned(),
        burst.errors.to_string(),
        ms(burst.total_ms),
        ms(burst.latency.p50),
        ms(burst.latency.p95),
        ms(burst.latency.max),
    ]
}

/// The percentiles this benchmark reports (nearest rank).
struct Pct {
    min: f64,
    p50: f64,
    p95: f64,
    max: f64,
}

impl Pct {
    fn of(samples: &[f64]) -> Result<Pct> {
        let dist = Dist::of(samples).context("no samples")?;
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let index = ((0.95 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
        Ok(Pct {
            min: dist.min,
            p50: dist.p50,
            p95: sorted[index],
            max: dist.max,
        })
    }
}

struct Burst {
    errors: usize,
    total_ms: f64,
    latency: Pct,
}

struct Results {
    direct: Pct,
    proxied: Pct,
    ttfb_direct: Pct,
    ttfb_proxied: Pct,
    end_direct: Pct,
    end_proxied: Pct,
    burst: Burst,
    burst_direct: Burst,
}

fn body(stream: bool) -> serde_json::Value {
    json!({
        "model": "gpt-5",
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are a benchmark."},
            {"role": "user", "content": "[[scenario:bench]] Say something short, please."},
        ],
    })
}

fn elapsed_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1_000.0
}

/// One call to its body's end: the wall time in ms.
async fn whole(client: &reqwest::Client, url: &str, token: &str, stream: bool) -> Result<f64> {
    let started = Instant::now();
    let mut response = client
        .post(url)
        .bearer_auth(token)
        .json(&body(stream))
        .send()
        .await?;
    if response.status() != 200 {
        bail!("status {}", response.status());
    }
    while response.chunk().await?.is_some() {}
    Ok(elapsed_ms(started))
}

/// One streamed call: the times to its first body chunk and to its end, in ms.
async fn first_byte(client: &reqwest::Client, url: &str, token: &str) -> Result<(f64, f64)> {
    let started = Instant::now();
    let mut response = client
        .post(url)
        .bearer_auth(token)
        .json(&body(true))
        .send()
        .await?;
    if response.status() != 200 {
        bail!("status {}", response.status());
    }
    response.chunk().await?.context("an empty stream")?;
    let ttfb = elapsed_ms(started);
    while response.chunk().await?.is_some() {}
    Ok((ttfb, elapsed_ms(started)))
}

async fn burst(client: &reqwest::Client, url: &str, token: &str) -> Result<Burst> {
    let started = Instant::now();
    let calls: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
            tokio::spawn(async move {
                whole(&client, &url, &token, true).await?;
                Ok::<f64, anyhow::Error>(elapsed_ms(started))
            })
        })
        .collect();
    let mut done = Vec::new();
    let mut errors = 0;
    for call in calls {
        match call.await {
            Ok(Ok(at)) => done.push(at),
            Ok(Err(_)) | Err(_) => errors += 1,
        }
    }
    let total_ms = elapsed_ms(started);
    Ok(Burst {
        errors,
        total_ms,
        latency: Pct::of(&done)?,
    })
}

async fn measure() -> Result<Results> {
    let scenario = Scenario::new(
        "bench",
        vec![Step::text("A short answer for the benchmark.")],
    )
    .with_usage(UsageSpec {
        input_tokens: Some(120),
        output_tokens: Some(12),
        ..UsageSpec::default()
    });
    let mock = MockModel::start(MockConfig::with_scenarios(vec![scenario])).await?;
    // Caps far above what the benchmark spends: every call is checked and charged, none refused.
    let cap = Limit {
        tokens: Some(u64::MAX / 2),
        micros: Some(u64::MAX / 2),
    };
    let config = GatewayConfig {
        budget: Budget {
            run: cap,
            task: cap,
            day: cap,
            month: cap,
            ..Budget::default()
        },
        ..GatewayConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (gateway, mut calls) = Gateway::start_with(
        listener,
        Upstream {
            kind: UpstreamKind::Mock,
            base_url: mock.base_url(),
            api_key: Some(KEY.into()),
        },
        config,
    )
    .await?;
    // The daemon drains the metered calls; so does the benchmark, off the measured path.
    let drained = tokio::spawn(async move {
        let mut count = 0usize;
        while calls.recv().await.is_some() {
            count += 1;
        }
        count
    });
    let access = gateway.grant("BENCH-1#1", "bench", Some("gpt-5".into()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENT * 2)
        .build()?;
    let direct_url = format!("{}/chat/completions", mock.openai_base_url());
    let proxied_url = format!("{}/chat/completions", access.openai_base_url);
    let token = access.token.clone();

    for _ in 0..WARMUP {
        whole(&client, &direct_url, "bench", false).await?;
        whole(&client, &proxied_url, &token, false).await?;
    }
    let (mut direct, mut proxied) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        direct.push(whole(&client, &direct_url, "bench", false).await?);
        proxied.push(whole(&client, &proxied_url, &token, false).await?);
    }
    let (mut ttfb_direct, mut ttfb_proxied) = (Vec::new(), Vec::new());
    let (mut end_direct, mut end_proxied) = (Vec::new(), Vec::new());
    for _ in 0..STREAMS {
        let (first, end) = first_byte(&client, &direct_url, "bench").await?;
        ttfb_direct.push(first);
        end_direct.push(end);
        let (first, end) = first_byte(&client, &proxied_url, &token).await?;
        ttfb_proxied.push(first);
        end_proxied.push(end);
    }
    let burst_direct = burst(&client, &direct_url, "bench").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let burst_proxied = burst(&client, &proxied_url, &token).await?;

    // Pooled keep-alive connections would hold the servers' graceful shutdowns open.
    drop(client);
    gateway.shutdown().await;
    let metered = drained.await.unwrap_or(0);
    let expected = WARMUP + CALLS + STREAMS + CONCURRENT - burst_proxied.errors;
    if metered < expected {
        bail!("the gateway reported {metered} calls, expected at least {expected}");
    }
    mock.shutdown().await?;
    Ok(Results {
        direct: Pct::of(&direct)?,
        proxied: Pct::of(&proxied)?,
        ttfb_direct: Pct::of(&ttfb_direct)?,
        ttfb_proxied: Pct::of(&ttfb_proxied)?,
        end_direct: Pct::of(&end_direct)?,
        end_proxied: Pct::of(&end_proxied)?,
        burst: burst_proxied,
        burst_direct,
    })
}
