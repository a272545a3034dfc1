//! Quota windows: a 429 with a reset time pauses every run sharing the key and resumes them
//! when the window opens; without one, a bounded backoff, then the 429 passes through.

use std::time::{Duration, Instant};

use takt_gateway::{GatewayConfig, QuotaNotice, QuotaPolicy};
use takt_mock_model::{ErrorStep, Scenario, Step};

use super::{call, config, fixed_usage, gateway, gateway_with, mock, mock_upstream, next};

#[tokio::test]
async fn a_429_with_retry_after_pauses_and_resumes_three_runs_sharing_the_key() {
    let mock = mock(vec![
        Scenario::new(
            "limited-once",
            vec![
                Step::Error(ErrorStep {
                    status: 429,
                    message: Some("rate limited".into()),
                    retry_after_secs: Some(1),
                    times: Some(1),
                }),
                Step::text("after the window"),
            ],
        )
        .with_usage(fixed_usage()),
    ])
    .await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let mut notices = gw.quota_notices();
    assert_eq!(*notices.borrow_and_update(), QuotaNotice::Resumed);
    let runs: Vec<_> = ["A", "B", "C"]
        .iter()
        .map(|task| gw.grant(&format!("{task}#1"), task, None))
        .collect();
    let started = Instant::now();
    let first = {
        let access = runs[0].clone();
        tokio::spawn(async move { call(&access, "limited-once", "gpt-5").await })
    };
    tokio::time::timeout(Duration::from_secs(5), notices.changed())
        .await
        .expect("a pause is announced")
        .expect("gateway alive");
    let paused = notices.borrow_and_update().clone();
    let QuotaNotice::Paused { until, status } = paused else {
        panic!("expected a pause, got {paused:?}");
    };
    assert_eq!(status, 429);
    assert_eq!(gw.paused_until(), Some(until));
    // Two more runs sharing the key ask while the credential is paused: they are held.
    let others: Vec<_> = runs[1..]
        .iter()
        .cloned()
        .map(|access| tokio::spawn(async move { call(&access, "limited-once", "gpt-5").await }))
        .collect();
    let mut results = vec![first.await.expect("first")];
    for other in others {
        results.push(other.await.expect("other"));
    }
    for (status, body) in &results {
        assert_eq!(*status, 200, "{body}");
        assert!(body.contains("after the window"));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the window was waited for"
    );
    let reported = [
        next(&mut calls).await,
        next(&mut calls).await,
        next(&mut calls).await,
    ];
    assert!(
        reported
            .iter()
            .all(|call| call.status == 200 && call.refused.is_none())
    );
    let first_run = reported
        .iter()
        .find(|call| call.grant.as_ref().is_some_and(|g| g.task_id == "A"))
        .expect("run A reported");
    assert_eq!(first_run.attempts, 2, "the refused request was sent again");
    assert!(first_run.quota_wait_ms >= 500);
    for held in reported
        .iter()
        .filter(|call| call.grant.as_ref().is_some_and(|g| g.task_id != "A"))
    {
        assert_eq!(held.attempts, 1, "held, not refused and retried");
        assert!(held.quota_wait_ms > 0);
    }
    // The provider saw one 429 and, only after the window, the three requests.
    let seen = mock.requests();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].status, 429);
    assert!(
        seen[1..]
            .iter()
            .all(|r| r.status == 200 && r.ts_ms >= seen[0].ts_ms + 900)
    );
    // The resumption is announced.
    if *notices.borrow() != QuotaNotice::Resumed {
        tokio::time::timeout(Duration::from_secs(5), notices.changed())
            .await
            .expect("resumed")
            .expect("gateway alive");
    }
    assert_eq!(*notices.borrow(), QuotaNotice::Resumed);
    assert_eq!(gw.paused_until(), None);
}

#[tokio::test]
async fn a_429_without_reset_time_backs_off_within_the_bound_then_passes_through() {
    let mock = mock(vec![Scenario::new(
        "limited",
        vec![Step::error(429, "slow down")],
    )])
    .await;
    let (gw, mut calls) = gateway_with(
        mock_upstream(&mock),
        GatewayConfig {
            quota: QuotaPolicy {
                max_wait: Duration::from_millis(1_200),
                backoff_base: Duration::from_millis(200),
                backoff_max: Duration::from_millis(400),
            },
            ..config()
        },
    )
    .await;
    let access = gw.grant("R#1", "t", None);
    let started = Instant::now();
    let (status, body) = call(&access, "limited", "gpt-5").await;
    let took = started.elapsed();
    assert_eq!(status, 429);
    assert!(
        body.contains("slow down"),
        "the provider's error reaches the agent"
    );
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let reported = next(&mut calls).await;
    assert_eq!(reported.status, 429);
    // 0, 0.2, 0.6, 1.0 s: the next pause would pass the 1.2 s bound.
    assert!(
        (3..=5).contains(&reported.attempts),
        "{}",
        reported.attempts
    );
    assert_eq!(mock.requests().len() as u32, reported.attempts);
}
