//! Budgets enforced at the gateway: per run, per task across runs, per day with a clock that
//! crosses midnight; only calls in flight overshoot, and the overshoot is reported.

use takt_core::budget::{Budget, Cap, Limit, Scope, Spend, Unit};
use takt_gateway::{GatewayConfig, ModelCall};
use takt_mock_model::{Scenario, Step};

use super::{
    CALL_TOKENS, FakeClock, call, config, fixed_usage, gateway_with, mock, mock_upstream, next,
    post, responses_body,
};

fn metered() -> Scenario {
    Scenario::new("metered", vec![Step::text("hello")]).with_usage(fixed_usage())
}

fn tokens(scope: Scope) -> Cap {
    Cap {
        scope,
        unit: Unit::Tokens,
    }
}

fn assert_refused_for(call: &ModelCall, cap: Cap) {
    assert_eq!(call.status, 402);
    assert_eq!(
        call.attempts, 0,
        "a refused call never reaches the provider"
    );
    assert!(
        call.refused
            .as_deref()
            .is_some_and(|why| why.contains("exhausted"))
    );
    assert_eq!(call.exhausted.map(|hit| hit.cap), Some(cap));
}

#[tokio::test]
async fn a_run_stops_within_the_requests_in_flight_when_its_cap_is_reached() {
    let mock = mock(vec![metered()]).await;
    let budget = Budget {
        run: Limit {
            tokens: Some(2_000),
            micros: None,
        },
        ..Budget::default()
    };
    let (gw, mut calls) =
        gateway_with(mock_upstream(&mock), GatewayConfig { budget, ..config() }).await;
    let access = gw.grant("R#1", "t", None);
    let url = format!("{}/responses", access.openai_base_url);
    let body = responses_body("metered", "gpt-5");
    // Two calls in flight at once: both were admitted (headers received) before either ended.
    let (first, second) = tokio::join!(
        post(&url, &access.token, &body),
        post(&url, &access.token, &body)
    );
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let (a, b) = tokio::join!(first.text(), second.text());
    assert!(a.expect("body").contains("hello") && b.expect("body").contains("hello"));
    let ended = [next(&mut calls).await, next(&mut calls).await];
    // The first to end stayed under the cap; the second crossed it and says by how much.
    let crossed: Vec<_> = ended.iter().filter_map(|call| call.exhausted).collect();
    assert_eq!(crossed.len(), 1, "{ended:?}");
    assert_eq!(crossed[0].cap, tokens(Scope::Run));
    assert_eq!(crossed[0].overshoot, 2 * CALL_TOKENS - 2_000);

    // Every later call of the run is refused before it reaches the provider.
    let before = mock.requests().len();
    let refused = post(&url, &access.token, &body).await;
    assert_eq!(refused.status(), 402);
    let error: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "budget_exhausted");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("per-run tokens cap"), "{message}");
    assert_refused_for(&next(&mut calls).await, tokens(Scope::Run));
    assert_eq!(mock.requests().len(), before);

    // Another run of the same task starts afresh under a run-only budget.
    let other = gw.grant("R#2", "t", None);
    assert_eq!(call(&other, "metered", "gpt-5").await.0, 200);
    assert!(gw.admits_new_run("t", Spend::ZERO));
}

#[tokio::test]
async fn a_tasks_total_across_runs_stops_at_its_money_cap() {
    let mock = mock(vec![metered()]).await;
    // gpt-5.5 costs 7500 micro-dollars per call here; the task may spend one cent.
    let budget = Budget {
        task: Limit {
            tokens: None,
            micros: Some(10_000),
        },
        ..Budget::default()
    };
    let (gw, mut calls) =
        gateway_with(mock_upstream(&mock), GatewayConfig { budget, ..config() }).await;
    let first = gw.grant("T-1#1", "T-1", None);
    assert_eq!(call(&first, "metered", "gpt-5.5").await.0, 200);
    assert_eq!(next(&mut calls).await.cost_micros, Some(7_500));
    let room = gw.headroom("T-1");
    assert_eq!(
        room.micros.map(|left| (left.scope, left.left)),
        Some((Scope::Task, 2_500))
    );
    assert!(gw.admits_new_run("T-1", Spend::new(0, 2_500)));
    assert!(!gw.admits_new_run("T-1", Spend::new(0, 2_501)));
    gw.revoke("T-1#1");

    // The second attempt inherits the task's spend; its first call crosses the cap.
    let second = gw.grant("T-1#2", "T-1", None);
    assert_eq!(call(&second, "metered", "gpt-5.5").await.0, 200);
    let crossed = next(&mut calls).await.exhausted.expect("crossed");
    assert_eq!(
        crossed.cap,
        Cap {
            scope: Scope::Task,
            unit: Unit::Micros
        }
    );
    assert_eq!(crossed.overshoot, 15_000 - 10_000);
    assert_eq!(call(&second, "metered", "gpt-5.5").await.0, 402);
    let refused = next(&mut calls).await;
    assert_eq!(
        refused.exhausted.map(|hit| hit.cap.scope),
        Some(Scope::Task)
    );
    assert!(!gw.admits_new_run("T-1", Spend::ZERO));
    // Other tasks are untouched.
    assert!(gw.admits_new_run("T-2", Spend::ZERO));

    // A restarted daemon seeds what the journal knows; the cap holds across the restart.
    let (restarted, mut calls) =
        gateway_with(mock_upstream(&mock), GatewayConfig { budget, ..config() }).await;
    restarted.seed_task_spend("T-1", Spend::new(2 * CALL_TOKENS, 15_000));
    assert!(!restarted.admits_new_run("T-1", Spend::ZERO));
    let third = restarted.grant("T-1#3", "T-1", None);
    assert_eq!(call(&third, "metered", "gpt-5.5").await.0, 402);
    assert_eq!(next(&mut calls).await.status, 402);
}

#[tokio::test]
async fn a_day_cap_refuses_until_the_clock_crosses_midnight_utc() {
    let mock = mock(vec![metered()]).await;
    let clock = FakeClock::at("2026-11-22T23:58:00Z");
    let budget = Budget {
        day: Limit {
            tokens: Some(CALL_TOKENS),
            micros: None,
        },
        ..Budget::default()
    };
    let (gw, mut calls) = gateway_with(
        mock_upstream(&mock),
        GatewayConfig {
            budget,
            clock: clock.clone(),
            ..config()
        },
    )
    .await;
    let access = gw.grant("D#1", "D", None);
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 200);
    let landed = next(&mut calls)
        .await
        .exhausted
        .expect("the day cap is reached exactly");
    assert_eq!((landed.cap, landed.overshoot), (tokens(Scope::Day), 0));
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 402);
    assert_refused_for(&next(&mut calls).await, tokens(Scope::Day));
    // The scheduler sees it too, for any task.
    assert!(!gw.admits_new_run("another-task", Spend::ZERO));
    assert_eq!(gw.period_spend().0, Spend::new(CALL_TOKENS, 2_075));

    clock.set("2026-11-22T23:59:59Z");
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 402);
    assert_eq!(next(&mut calls).await.status, 402);

    clock.set("2026-11-23T00:00:01Z");
    assert!(gw.admits_new_run("another-task", Spend::ZERO));
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 200);
    assert_eq!(next(&mut calls).await.status, 200);
    assert_eq!(gw.period_spend().0, Spend::new(CALL_TOKENS, 2_075));
    // The month still holds both days.
    assert_eq!(gw.period_spend().1, Spend::new(2 * CALL_TOKENS, 2 * 2_075));
}

#[tokio::test]
async fn budget_changes_apply_live_and_period_seeds_count() {
    let mock = mock(vec![metered()]).await;
    let clock = FakeClock::at("2026-11-22T12:00:00Z");
    let (gw, mut calls) = gateway_with(
        mock_upstream(&mock),
        GatewayConfig {
            clock: clock.clone(),
            ..config()
        },
    )
    .await;
    let access = gw.grant("L#1", "L", None);
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 200);
    assert_eq!(
        next(&mut calls).await.exhausted,
        None,
        "unlimited by default"
    );
    // The journal says the month had already spent $10 before this daemon started.
    gw.seed_period_spend(
        clock.now_date(),
        Spend::new(0, 0),
        Spend::new(1_000_000, 10_000_000),
    );
    gw.set_budget(Budget {
        month: Limit {
            tokens: None,
            micros: Some(10_000_000),
        },
        ..Budget::default()
    });
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 402);
    let refused = next(&mut calls).await;
    let hit = refused.exhausted.expect("month cap");
    assert_eq!(hit.cap.scope, Scope::Month);
    // Seeding keeps the larger figure: the journal's month already includes the first call.
    assert_eq!(hit.spent, 10_000_000);
    gw.set_budget(Budget::default());
    assert_eq!(call(&access, "metered", "gpt-5").await.0, 200);
}
