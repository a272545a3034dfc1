//! Budget arithmetic: caps on model spend and what they allow, with no IO and no clock.
//!
//! Spend is enforced where no agent can route around it (the model gateway refuses the next call
//! once a cap is reached) and checked before dispatch (the scheduler does not start a run that
//! could not afford one turn). Both ask the same questions of the same numbers, so the answers
//! live here, pure, and are tested once:
//!
//! - [`headroom`]: how much is left under the tightest cap, in tokens and in money;
//! - [`admits`]: may the next call (or run) start;
//! - [`exhausted_by`]: which cap has been reached, and by how much it was overshot;
//! - [`crossed`]: which cap a call's spend took from open to reached.
//!
//! Money is integer micro-dollars (`1 USD = 1_000_000`), so sums in the journal stay exact. A cap
//! is reached when the spend is **at or past** it; the gateway checks before forwarding, so only
//! the calls already in flight when the cap is reached can overshoot it.

use serde::{Deserialize, Serialize};

/// Which spend a cap applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One run (one attempt of a task).
    Run,
    /// All attempts of one task.
    Task,
    /// Everything in one UTC day.
    Day,
    /// Everything in one UTC calendar month.
    Month,
}

impl Scope {
    /// Narrowest first: the order in which caps are checked and named.
    pub const ALL: [Scope; 4] = [Scope::Run, Scope::Task, Scope::Day, Scope::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Run => "run",
            Scope::Task => "task",
            Scope::Day => "day",
            Scope::Month => "month",
        }
    }
}

/// What a cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Input plus output tokens, as metered.
    Tokens,
    /// Cost in micro-dollars.
    Micros,
}

/// One cap: a scope and a unit, such as "per task, in money".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cap {
    pub scope: Scope,
    pub unit: Unit,
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.unit {
            Unit::Tokens => "tokens",
            Unit::Micros => "money",
        };
        write!(f, "per-{} {unit} cap", self.scope.as_str())
    }
}

/// The caps of one scope; `None` means no cap in that unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micros: Option<u64>,
}

impl Limit {
    fn get(&self, unit: Unit) -> Option<u64> {
        match unit {
            Unit::Tokens => self.tokens,
            Unit::Micros => self.micros,
        }
    }
}

/// What happens to a task whose run or task cap is exhausted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExhaust {
    /// The task fails, with its work so far committed and a spend report.
    #[default]
    Stop,
    /// The task is blocked until an operator raises the budget or unblocks it.
    Pause,
}

/// The `budget:` section of a workflow, in the units the arithmetic uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default)]
    pub run: Limit,
    #[serde(default)]
    pub task: Limit,
    #[serde(default)]
    pub day: Limit,
    #[serde(default)]
    pub month: Limit,
    #[serde(default)]
    pub on_exhaust: OnExhaust,
    /// A run that spends more tokens than this without changing its workspace or producing a new
    /// gate result is stopped as stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_without_progress: Option<u64>,
}

impl Budget {
    /// No caps at all (the default): everything is admitted.
    pub fn unlimited() -> Budget {
        Budget::default()
    }

    pub fn limit(&self, scope: Scope) -> &Limit {
        match scope {
            Scope::Run => &self.run,
            Scope::Task => &self.task,
            Scope::Day => &self.day,
            Scope::Month => &self.month,
        }
    }

    /// The value of one cap, if it is set.
    pub fn cap(&self, cap: Cap) -> Option<u64> {
        self.limit(cap.scope).get(cap.unit)
    }

    /// Whether `tokens` spent since the run's last progress exceed the no-progress guard.
    pub fn stalled(&self, tokens_since_progress: u64) -> bool {
        self.max_tokens_without_progress
            .is_some_and(|max| tokens_since_progress > max)
    }

    /// Every cap that is set, narrowest scope first, tokens before money.
    fn caps(&self) -> impl Iterator<Item = (Cap, u64)> + '_ {
        Scope::ALL.into_iter().flat_map(move |scope| {
            [Unit::Tokens, Unit::Micros]
                .into_iter()
                .filter_map(move |unit| {
                    let cap = Cap { scope, unit };
                    self.cap(cap).map(|value| (cap, value))
                })
        })
    }
}

/// An amount of model use: tokens and money.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Spend {
    pub tokens: u64,
    pub micros: u64,
}

impl Spend {
    pub const ZERO: Spend = Spend {
        tokens: 0,
        micros: 0,
    };

    pub fn new(tokens: u64, micros: u64) -> Spend {
        Spend { tokens, micros }
    }

    /// Saturating, so a corrupt or hostile figure cannot wrap a total back under its cap.
    #[must_use]
    pub fn plus(self, other: Spend) -> Spend {
        Spend {
            tokens: self.tokens.saturating_add(other.tokens),
            micros: self.micros.saturating_add(other.micros),
        }
    }

    /// Each field the larger of the two: merging a journal's total into a live one.
    #[must_use]
    pub fn max(self, other: Spend) -> Spend {
        Spend {
            tokens: self.tokens.max(other.tokens),
            micros: self.micros.max(other.micros),
        }
    }

    pub fn get(&self, unit: Unit) -> u64 {
        match unit {
            Unit::Tokens => self.tokens,
            Unit::Micros => self.micros,
        }
    }
}

/// What has been spent so far in each scope that applies to the next call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    pub run: Spend,
    pub task: Spend,
    pub day: Spend,
    pub month: Spend,
}

impl Spent {
    pub fn get(&self, scope: Scope) -> Spend {
        match scope {
            Scope::Run => self.run,
            Scope::Task => self.task,
            Scope::Day => self.day,
            Scope::Month => self.month,
        }
    }

    /// The same spend added to every scope (one call counts toward all of them).
    #[must_use]
    pub fn plus(self, spend: Spend) -> Spent {
        Spent {
            run: self.run.plus(spend),
            task: self.task.plus(spend),
            day: self.day.plus(spend),
            month: self.month.plus(spend),
        }
    }

    fn of(&self, cap: Cap) -> u64 {
        self.get(cap.scope).get(cap.unit)
    }
}

/// What is left under the tightest cap of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The scope whose cap leaves the least (the narrowest one on a tie).
    pub scope: Scope,
    /// Zero when that cap is reached or overshot.
    pub left: u64,
}

/// What is left before any cap is reached; `None` in a unit means no cap in that unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headroom {
    pub tokens: Option<Left>,
    pub micros: Option<Left>,
}

impl Headroom {
    pub fn get(&self, unit: Unit) -> Option<Left> {
        match unit {
            Unit::Tokens => self.tokens,
            Unit::Micros => self.micros,
        }
    }

    /// Whether no cap is reached and every tightest cap leaves at least `need`.
    pub fn covers(&self, need: Spend) -> bool {
        [Unit::Tokens, Unit::Micros].into_iter().all(|unit| {
            self.get(unit)
                .is_none_or(|left| left.left > 0 && left.left >= need.get(unit))
        })
    }
}

/// A cap that has been reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exhaustion {
    pub cap: Cap,
    /// The cap's value.
    pub limit: u64,
    /// The spend in the cap's scope and unit.
    pub spent: u64,
    /// `spent - limit`: zero when a call landed exactly on the cap.
    pub overshoot: u64,
}

impl std::fmt::Display for Exhaustion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (spent, limit, overshoot) = match self.cap.unit {
            Unit::Tokens => (
                format!("{} tokens", self.spent),
                format!("{} tokens", self.limit),
                format!("{} tokens", self.overshoot),
            ),
            Unit::Micros => (usd(self.spent), usd(self.limit), usd(self.overshoot)),
        };
        write!(
            f,
            "the {} is exhausted: spent {spent} of {limit} (over by {overshoot})",
            self.cap
        )
    }
}

/// `$1.234567`: micro-dollars as dollars, exactly.
pub fn usd(micros: u64) -> String {
    format!("${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// Dollars (as written in WORKFLOW.md) to micro-dollars, rounded to the nearest; negative,
/// NaN and infinite amounts give `None`.
pub fn micros_from_usd(usd: f64) -> Option<u64> {
    if !usd.is_finite() || usd < 0.0 {
        return None;
    }
    let micros = (usd * 1_000_000.0).round();
    // 2^64 is exactly representable; every integer-valued f64 below it fits in a u64.
    if micros >= 2f64.powi(64) {
        return None;
    }
    Some(micros as u64)
}

/// How much is left under the tightest cap of each unit.
pub fn headroom(budget: &Budget, spent: &Spent) -> Headroom {
    let mut room = Headroom::default();
    for (cap, limit) in budget.caps() {
        let left = limit.saturating_sub(spent.of(cap));
        let slot = match cap.unit {
            Unit::Tokens => &mut room.tokens,
            Unit::Micros => &mut room.micros,
        };
        // Strictly less: on a tie the narrower scope, seen first, is kept.
        if slot.is_none_or(|current| left < current.left) {
            *slot = Some(Left {
                scope: cap.scope,
                left,
            });
        }
    }
    room
}

/// May something that needs `need` start now? False when any cap is reached, or when a cap
/// leaves less than `need`. The gateway asks with `need = Spend::ZERO` (the next call's cost is
/// unknown until it ends); the scheduler asks with an estimate of one turn.
pub fn admits(budget: &Budget, spent: &Spent, need: Spend) -> bool {
    headroom(budget, spent).covers(need)
}

/// The first cap (narrowest scope first, tokens before money) that is reached, with the
/// overshoot.
pub fn exhausted_by(budget: &Budget, spent: &Spent) -> Option<Exhaustion> {
    budget.caps().find_map(|(cap, limit)| {
        let value = spent.of(cap);
        (value >= limit).then(|| Exhaustion {
            cap,
            limit,
            spent: value,
            overshoot: value - limit,
        })
    })
}

/// The first cap that was open at `before` and is reached at `after`: the cap the call that
/// moved the spend from one to the other crossed. `None` when it crossed none (including when
/// every cap it reached was already reached before it).
pub fn crossed(budget: &Budget, before: &Spent, after: &Spent) -> Option<Exhaustion> {
    budget.caps().find_map(|(cap, limit)| {
        let (was, now) = (before.of(cap), after.of(cap));
        (was < limit && now >= limit).then(|| Exhaustion {
            cap,
            limit,
            spent: now,
            overshoot: now - limit,
        })
    })
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn spent(run: u64, task: u64, day: u64, month: u64) -> Spent {
        Spent {
            run: Spend::new(run, run.saturating_mul(10)),
            task: Spend::new(task, task.saturating_mul(10)),
            day: Spend::new(day, day.saturating_mul(10)),
            month: Spend::new(month, month.saturating_mul(10)),
        }
    }

    fn budget() -> Budget {
        Budget {
            run: Limit {
                tokens: Some(100),
                micros: None,
            },
            task: Limit {
                tokens: Some(250),
                micros: Some(2_000),
            },
            day: Limit {
                tokens: None,
                micros: Some(5_000),
            },
            month: Limit::default(),
            ..Budget::default()
        }
    }

    #[test]
    fn an_unlimited_budget_admits_anything_and_has_no_headroom_figures() {
        let all = spent(u64::MAX, u64::MAX, u64::MAX, u64::MAX);
        let none = Budget::unlimited();
        assert_eq!(headroom(&none, &all), Headroom::default());
        assert!(admits(&none, &all, Spend::new(u64::MAX, u64::MAX)));
        assert_eq!(exhausted_by(&none, &all), None);
    }

    #[test]
    fn headroom_names_the_tightest_cap_per_unit() {
        // Run: 100 - 30 = 70 tokens; task: 250 - 200 = 50 tokens, 2000 - 2000 = 0 micros.
        let room = headroom(&budget(), &spent(30, 200, 200, 200));
        assert_eq!(
            room.tokens,
            Some(Left {
                scope: Scope::Task,
                left: 50
            })
        );
        assert_eq!(
            room.micros,
            Some(Left {
                scope: Scope::Task,
                left: 0
            })
        );
        let room = headroom(&budget(), &spent(95, 100, 450, 450));
        assert_eq!(
            room.tokens.map(|l| (l.scope, l.left)),
            Some((Scope::Run, 5))
        );
        assert_eq!(
            room.micros.map(|l| (l.scope, l.left)),
            Some((Scope::Day, 500))
        );
    }

    #[test]
    fn a_cap_is_reached_at_its_value_not_one_past_it() {
        let b = budget();
        assert!(admits(&b, &spent(99, 99, 99, 99), Spend::ZERO));
        assert!(!admits(&b, &spent(100, 100, 100, 100), Spend::ZERO));
        let hit = exhausted_by(&b, &spent(100, 100, 100, 100));
        assert_eq!(
            hit,
            Some(Exhaustion {
                cap: Cap {
                    scope: Scope::Run,
                    unit: Unit::Tokens
                },
                limit: 100,
                spent: 100,
                overshoot: 0
            })
        );
    }

    #[test]
    fn an_estimate_must_fit_under_every_cap() {
        let b = budget();
        // Task: 50 tokens and 500 micros left; day: 3000 micros left.
        let now = spent(10, 200, 200, 200);
        let now = Spent {
            task: Spend::new(200, 1_500),
            day: Spend::new(200, 2_000),
            ..now
        };
        assert!(admits(&b, &now, Spend::new(50, 500)));
        assert!(
            !admits(&b, &now, Spend::new(50, 501)),
            "the task cap leaves 500 micros"
        );
        assert!(
            !admits(&b, &now, Spend::new(51, 0)),
            "the task cap leaves 50"
        );
        assert!(admits(&b, &now, Spend::new(0, 0)));
    }

    #[test]
    fn exhaustion_names_the_narrowest_scope_and_the_overshoot() {
        let b = budget();
        // Task tokens (300 of 250) and day money (6000 of 5000) are both reached: task first.
        let hit = exhausted_by(&b, &spent(10, 300, 600, 600)).expect("exhausted");
        assert_eq!(hit.cap.scope, Scope::Task);
        assert_eq!(hit.cap.unit, Unit::Tokens);
        assert_eq!(hit.overshoot, 50);
        let text = hit.to_string();
        assert!(text.contains("per-task tokens cap"), "{text}");
        assert!(text.contains("over by 50 tokens"), "{text}");
    }

    #[test]
    fn crossed_reports_only_the_cap_a_call_took_from_open_to_reached() {
        let b = budget();
        let before = spent(90, 90, 90, 90);
        let after = before.plus(Spend::new(25, 250));
        let hit = crossed(&b, &before, &after).expect("crossed the run cap");
        assert_eq!(
            (hit.cap.scope, hit.spent, hit.overshoot),
            (Scope::Run, 115, 15)
        );
        // Already past the run cap: a further call crosses nothing new.
        assert_eq!(crossed(&b, &after, &after.plus(Spend::new(1, 0))), None);
        // Landing exactly on a cap crosses it with no overshoot.
        let exact = crossed(&b, &before, &before.plus(Spend::new(10, 0))).expect("exact");
        assert_eq!(exact.overshoot, 0);
    }

    #[test]
    fn money_formats_and_converts_exactly() {
        assert_eq!(usd(1_234_567), "$1.234567");
        assert_eq!(usd(5), "$0.000005");
        assert_eq!(micros_from_usd(5.0), Some(5_000_000));
        assert_eq!(micros_from_usd(0.1), Some(100_000));
        assert_eq!(micros_from_usd(-1.0), None);
        assert_eq!(micros_from_usd(f64::NAN), None);
        assert_eq!(micros_from_usd(1e30), None);
    }

    #[test]
    fn the_no_progress_guard_trips_only_past_its_value() {
        let b = Budget {
            max_tokens_without_progress: Some(1_000),
            ..Budget::default()
        };
        assert!(!b.stalled(1_000));
        assert!(b.stalled(1_001));
        assert!(!Budget::default().stalled(u64::MAX));
    }

    #[test]
    fn budgets_round_trip_through_json_with_defaults() {
        let b: Budget = serde_json::from_str(r#"{"task":{"micros":5000000},"on_exhaust":"pause"}"#)
            .expect("parse");
        assert_eq!(b.task.micros, Some(5_000_000));
        assert_eq!(b.on_exhaust, OnExhaust::Pause);
        assert_eq!(b.run, Limit::default());
        let back: Budget =
            serde_json::from_str(&serde_json::to_string(&b).expect("encode")).expect("decode");
        assert_eq!(back, b);
    }

    fn random_limit(rng: &mut StdRng) -> Limit {
        let mut cap = || rng.random_bool(0.5).then(|| rng.random_range(1..2_000));
        Limit {
            tokens: cap(),
            micros: cap(),
        }
    }

    fn random_budget(rng: &mut StdRng) -> Budget {
        Budget {
            run: random_limit(rng),
            task: random_limit(rng),
            day: random_limit(rng),
            month: random_limit(rng),
            ..Budget::default()
        }
    }

    fn random_spend(rng: &mut StdRng, max: u64) -> Spend {
        Spend::new(rng.random_range(0..=max), rng.random_range(0..=max))
    }

    /// Spend so far that is consistent: each wider scope holds at least what the narrower one
    /// does.
    fn random_spent(rng: &mut StdRng) -> Spent {
        let run = random_spend(rng, 2_500);
        let task = run.plus(random_spend(rng, 1_000));
        let day = task.plus(random_spend(rng, 1_000));
        let month = day.plus(random_spend(rng, 1_000));
        Spent {
            run,
            task,
            day,
            month,
        }
    }

    #[test]
    fn random_spends_keep_admits_headroom_and_exhaustion_consistent() {
        let mut rng = StdRng::seed_from_u64(0x7a17);
        for case in 0..20_000 {
            let b = random_budget(&mut rng);
            let s = random_spent(&mut rng);
            let room = headroom(&b, &s);
            let hit = exhausted_by(&b, &s);
            // Nothing needed: admitted exactly when no cap is reached.
            assert_eq!(admits(&b, &s, Spend::ZERO), hit.is_none(), "case {case}");
            if let Some(hit) = hit {
                assert!(hit.spent >= hit.limit, "case {case}");
                assert_eq!(hit.overshoot, hit.spent - hit.limit, "case {case}");
                assert_eq!(
                    room.get(hit.cap.unit).map(|l| l.left),
                    Some(0),
                    "case {case}"
                );
            }
            // The headroom of a unit is the minimum over its caps.
            for unit in [Unit::Tokens, Unit::Micros] {
                let min = Scope::ALL
                    .into_iter()
                    .filter_map(|scope| {
                        let cap = Cap { scope, unit };
                        b.cap(cap)
                            .map(|limit| limit.saturating_sub(s.get(scope).get(unit)))
                    })
                    .min();
                assert_eq!(room.get(unit).map(|l| l.left), min, "case {case}");
            }
            // Admission is monotone: if more spend is admitted, less is too.
            let more = s.plus(random_spend(&mut rng, 500));
            if admits(&b, &more, Spend::ZERO) {
                assert!(admits(&b, &s, Spend::ZERO), "case {case}");
            }
            // A need that is admitted leaves the spend under every cap once it is spent.
            let need = random_spend(&mut rng, 500);
            if admits(&b, &s, need) && need != Spend::ZERO {
                let after = s.plus(need);
                for (cap, limit) in b.caps() {
                    assert!(after.of(cap) <= limit, "case {case}: {cap}");
                }
            }
            // A call crosses a cap exactly when it takes the budget from open to exhausted,
            // unless another cap was already reached.
            let call = random_spend(&mut rng, 500);
            let after = s.plus(call);
            let crossing = crossed(&b, &s, &after);
            if hit.is_none() {
                assert_eq!(
                    crossing.is_some(),
                    exhausted_by(&b, &after).is_some(),
                    "case {case}"
                );
            }
            if let Some(crossing) = crossing {
                assert!(
                    crossing.overshoot < call.get(crossing.cap.unit).max(1),
                    "case {case}"
                );
            }
        }
    }

    /// The gateway's loop, simulated: each call is admitted against the spend of the calls that
    /// have finished, and `in_flight` calls run at a time. The total never passes a cap by more
    /// than what the calls in flight at the moment it was reached spent.
    #[test]
    fn only_calls_in_flight_can_overshoot_a_cap() {
        let mut rng = StdRng::seed_from_u64(42);
        for case in 0..2_000 {
            let b = random_budget(&mut rng);
            let in_flight = rng.random_range(1..=3usize);
            let max_call = rng.random_range(1..300u64);
            let mut done = Spent::default();
            let mut running: Vec<Spend> = Vec::new();
            for _ in 0..200 {
                if running.len() < in_flight && admits(&b, &done, Spend::ZERO) {
                    running.push(random_spend(&mut rng, max_call));
                    continue;
                }
                if running.is_empty() {
                    break;
                }
                let finished = running.remove(rng.random_range(0..running.len()));
                done = done.plus(finished);
            }
            for finished in running.drain(..) {
                done = done.plus(finished);
            }
            let bound = max_call.saturating_mul(in_flight as u64);
            for (cap, limit) in b.caps() {
                let value = done.of(cap);
                assert!(
                    value <= limit.saturating_add(bound),
                    "case {case}: {cap} at {value} with limit {limit}, {in_flight} in flight"
                );
            }
        }
    }
}
