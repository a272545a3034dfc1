//! `/metrics` in Prometheus text format, computed from the fixture's state.

use reqwest::StatusCode;

use super::Server;

/// The value of the sample `series` (name with labels, as written).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .unwrap_or_else(|e| panic!("{series}: {e}"))
}

#[tokio::test]
async fn metrics_expose_every_series_from_the_state() {
    let server = Server::start().await;
    let response = server.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.text().await.expect("text");
    for (state, count) in [
        ("queued", 1.0),
        ("running", 1.0),
        ("blocked", 1.0),
        ("retry_wait", 1.0),
        ("awaiting_review", 1.0),
        ("done", 1.0),
        ("verifying", 0.0),
        ("cancelled", 0.0),
    ] {
        assert_eq!(
            sample(&text, &format!("takt_tasks{{state=\"{state}\"}}")),
            count
        );
    }
    assert_eq!(sample(&text, "takt_queue_depth"), 2.0);
    assert_eq!(sample(&text, "takt_agents_running"), 2.0);
    assert_eq!(sample(&text, "takt_agents_max"), 2.0);
    assert_eq!(sample(&text, "takt_runs_started_total"), 5.0);
    assert_eq!(sample(&text, "takt_runs_finished_total"), 3.0);
    assert_eq!(
        sample(&text, "takt_run_outcomes_total{outcome=\"succeeded\"}"),
        2.0
    );
    assert_eq!(
        sample(&text, "takt_run_outcomes_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(sample(&text, "takt_tokens_total{kind=\"input\"}"), 1000.0);
    assert_eq!(sample(&text, "takt_tokens_total{kind=\"output\"}"), 200.0);
    assert_eq!(sample(&text, "takt_model_calls_total"), 1.0);
    assert_eq!(sample(&text, "takt_spend_micros_total"), 1500.0);
    assert_eq!(
        sample(&text, "takt_verifications_total{outcome=\"other\"}"),
        2.0
    );
    assert_eq!(
        sample(&text, "takt_verifications_total{outcome=\"failed\"}"),
        0.0
    );
    assert_eq!(
        sample(&text, "takt_tasks_by_verify_outcome{outcome=\"passed\"}"),
        2.0
    );
    assert_eq!(sample(&text, "takt_verified_tasks"), 2.0);
    assert_eq!(sample(&text, "takt_first_round_pass_ratio"), 1.0);
    assert_eq!(sample(&text, "takt_merged_ratio"), 1.0);
    assert!(text.contains("# TYPE takt_runs_started_total counter\n"));
    assert!(text.contains("# TYPE takt_tasks gauge\n"));
}

#[tokio::test]
async fn the_merged_ratio_counts_runs_of_ended_tasks() {
    let server = Server::start().await;
    // TAKT-5 never ran: cancelling it adds no run. TAKT-3 (one failed run) ends cancelled.
    let cancelled = server.post("/api/v1/tasks/TAKT-3/cancel", None).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let text = server.get("/metrics").await.text().await.expect("text");
    assert_eq!(
        sample(&text, "takt_ended_task_runs{state=\"cancelled\"}"),
        1.0
    );
    assert_eq!(sample(&text, "takt_merged_ratio"), 0.5);
}

#[tokio::test]
async fn usage_by_model_latency_cycle_time_and_interventions_are_exposed() {
    let server = Server::start().await;
    let text = server.get("/metrics").await.text().await.expect("text");
    // The fixture's one metered call: gpt-test, 1000 in / 200 out, 1500 micro-dollars, 30 ms.
    assert_eq!(
        sample(
            &text,
            "takt_model_tokens_total{model=\"gpt-test\",kind=\"input\"}"
        ),
        1000.0
    );
    assert_eq!(
        sample(&text, "takt_model_cost_micros_total{model=\"gpt-test\"}"),
        1500.0
    );
    assert_eq!(
        sample(
            &text,
            "takt_model_calls_by_model_total{model=\"gpt-test\",result=\"answered\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "takt_gateway_latency_seconds_bucket{le=\"0.1\"}"),
        1.0
    );
    assert_eq!(sample(&text, "takt_gateway_latency_seconds_sum"), 0.03);
    assert_eq!(sample(&text, "takt_gateway_latency_seconds_count"), 1.0);
    assert!(text.contains("# TYPE takt_gateway_latency_seconds histogram\n"));
    // TAKT-6 merged within a minute of being queued.
    assert_eq!(
        sample(&text, "takt_cycle_time_seconds_bucket{le=\"60\"}"),
        1.0
    );
    assert_eq!(
        sample(&text, "takt_cycle_time_seconds_bucket{le=\"+Inf\"}"),
        1.0
    );
    // One approval so far: no gap yet.
    assert_eq!(sample(&text, "takt_interventions_total"), 1.0);
    assert_eq!(sample(&text, "takt_intervention_gap_seconds_count"), 0.0);
    assert_eq!(sample(&text, "takt_sandbox_violations_total"), 0.0);
    assert_eq!(sample(&text, "takt_judge_veto_ratio"), 0.0);

    server.daemon.feed(takt_core::Event::AgentActivity {
        run_id: "TAKT-1#1".into(),
        event: takt_protocol::AgentEvent::SandboxViolation {
            kind: "network".into(),
            detail: "connect to 10.0.0.1:443 refused".into(),
        },
    });
    let cancelled = server.post("/api/v1/tasks/TAKT-5/cancel", None).await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let text = server.get("/metrics").await.text().await.expect("text");
    assert_eq!(sample(&text, "takt_sandbox_violations_total"), 1.0);
    assert_eq!(sample(&text, "takt_interventions_total"), 2.0);
    assert_eq!(sample(&text, "takt_intervention_gap_seconds_count"), 1.0);
}
