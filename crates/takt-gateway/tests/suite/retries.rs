//! Upstream retries: server errors and refused connections are retried with backoff before any
//! byte reaches the agent; 501 and client errors are not; the last failure passes through.

use takt_gateway::{Upstream, UpstreamKind};
use takt_mock_model::{ErrorStep, Scenario, Step};

use super::{KEY, call, fixed_usage, gateway, mock, mock_upstream, next};

fn failing(name: &str, status: u16, times: Option<u32>) -> Scenario {
    Scenario::new(
        name,
        vec![
            Step::Error(ErrorStep {
                status,
                message: Some(format!("injected {status}")),
                retry_after_secs: None,
                times,
            }),
            Step::text("recovered"),
        ],
    )
    .with_usage(fixed_usage())
}

#[tokio::test]
async fn server_errors_are_retried_until_one_succeeds() {
    let mock = mock(vec![failing("flaky", 500, Some(2))]).await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("R#1", "t", None);
    let (status, body) = call(&access, "flaky", "gpt-5").await;
    assert_eq!(status, 200);
    assert!(body.contains("recovered"));
    assert!(
        !body.contains("injected"),
        "the failures never reached the agent"
    );
    let reported = next(&mut calls).await;
    assert_eq!((reported.status, reported.attempts), (200, 3));
    assert_eq!(
        reported.usage.total(),
        1_280,
        "only the successful attempt is metered"
    );
    let statuses: Vec<u16> = mock.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);
}

#[tokio::test]
async fn the_last_failure_passes_through_when_retries_run_out() {
    let mock = mock(vec![
        failing("down", 503, None),
        failing("never", 501, None),
    ])
    .await;
    let (gw, mut calls) = gateway(mock_upstream(&mock)).await;
    let access = gw.grant("R#1", "t", None);
    let (status, body) = call(&access, "down", "gpt-5").await;
    assert_eq!(status, 503);
    assert!(body.contains("injected 503"));
    let reported = next(&mut calls).await;
    assert_eq!(
        (reported.status, reported.attempts),
        (503, 3),
        "one try and two retries"
    );
    assert_eq!(reported.usage.total(), 0);
    assert_eq!(mock.requests().len(), 3);

    // 501 says the server will never do it: not retried.
    let (status, _) = call(&access, "never", "gpt-5").await;
    assert_eq!(status, 501);
    assert_eq!(next(&mut calls).await.attempts, 1);
    assert_eq!(mock.requests().len(), 4);
}

#[tokio::test]
async fn an_unreachable_provider_is_retried_then_reported_as_502() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let (gw, mut calls) = gateway(Upstream {
        kind: UpstreamKind::OpenAi,
        base_url: format!("http://{addr}/v1"),
        api_key: Some(KEY.into()),
    })
    .await;
    let access = gw.grant("R#1", "t", None);
    let (status, body) = call(&access, "any", "gpt-5").await;
    assert_eq!(status, 502);
    assert!(body.contains("could not be reached"), "{body}");
    let reported = next(&mut calls).await;
    assert_eq!((reported.status, reported.attempts), (502, 3));
    assert!(reported.refused.is_some());
}
