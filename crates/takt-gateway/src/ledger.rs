//! The spend ledger: tokens and micro-dollars per run, per task, per UTC day and per UTC month,
//! updated from every metered call and checked before every forward.
//!
//! The gateway's ledger starts empty, but a task's earlier attempts and today's spend are in the
//! daemon's journal, so the daemon seeds them ([`crate::Gateway::seed_task_spend`],
//! [`crate::Gateway::seed_period_spend`]). Seeding keeps the larger of the seeded and the live
//! figure, field by field: the live figure already includes every call the journal can know of,
//! and a seed that lags behind the calls in the channel must not erase them.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use takt_core::budget::{Spend, Spent};

type Month = (i32, u32);

fn month_of(day: NaiveDate) -> Month {
    (day.year(), day.month())
}

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Live runs only: opened at grant, dropped at revoke.
    runs: HashMap<String, Spend>,
    tasks: HashMap<String, Spend>,
    days: BTreeMap<NaiveDate, Spend>,
    months: BTreeMap<Month, Spend>,
}

impl Ledger {
    pub(crate) fn open_run(&mut self, run_id: &str) {
        self.runs.entry(run_id.to_owned()).or_default();
    }

    pub(crate) fn close_run(&mut self, run_id: &str) {
        self.runs.remove(run_id);
    }

    pub(crate) fn seed_task(&mut self, task_id: &str, spend: Spend) {
        let entry = self.tasks.entry(task_id.to_owned()).or_default();
        *entry = entry.max(spend);
    }

    pub(crate) fn seed_period(&mut self, day: NaiveDate, day_spend: Spend, month_spend: Spend) {
        let entry = self.days.entry(day).or_default();
        *entry = entry.max(day_spend);
        let entry = self.months.entry(month_of(day)).or_default();
        *entry = entry.max(month_spend);
    }

    /// What applies to the next call of `run_id` (or of a new run, with `None`) of `task_id`.
    pub(crate) fn spent(&self, run_id: Option<&str>, task_id: &str, now: DateTime<Utc>) -> Spent {
        let today = now.date_naive();
        let get = |spend: Option<&Spend>| spend.copied().unwrap_or_default();
        Spent {
            run: get(run_id.and_then(|run| self.runs.get(run))),
            task: get(self.tasks.get(task_id)),
            day: get(self.days.get(&today)),
            month: get(self.months.get(&month_of(today))),
        }
    }

    /// The day's and the month's totals at `now`.
    pub(crate) fn period(&self, now: DateTime<Utc>) -> (Spend, Spend) {
        let today = now.date_naive();
        (
            self.days.get(&today).copied().unwrap_or_default(),
            self.months
                .get(&month_of(today))
                .copied()
                .unwrap_or_default(),
        )
    }

    /// Adds a finished call; returns the spend before and after it, for the budget check. A
    /// call that ends after its run was revoked still counts for its task, day and month.
    pub(crate) fn record(
        &mut self,
        run_id: &str,
        task_id: &str,
        now: DateTime<Utc>,
        spend: Spend,
    ) -> (Spent, Spent) {
        let before = self.spent(Some(run_id), task_id, now);
        let today = now.date_naive();
        if let Some(run) = self.runs.get_mut(run_id) {
            *run = run.plus(spend);
        }
        let task = self.tasks.entry(task_id.to_owned()).or_default();
        *task = task.plus(spend);
        let day = self.days.entry(today).or_default();
        *day = day.plus(spend);
        let month = self.months.entry(month_of(today)).or_default();
        *month = month.plus(spend);
        // Past periods can never be charged again; keep yesterday for calls straddling midnight.
        if let Some(yesterday) = today.pred_opt() {
            self.days.retain(|day, _| *day >= yesterday);
        }
        let (year, month) = month_of(today);
        let last_month = if month == 1 {
            (year - 1, 12)
        } else {
            (year, month - 1)
        };
        self.months.retain(|month, _| *month >= last_month);
        (before, self.spent(Some(run_id), task_id, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_call_counts_toward_its_run_task_day_and_month() {
        let mut ledger = Ledger::default();
        ledger.open_run("r1");
        let now = at("2026-11-22T23:59:00Z");
        let (before, after) = ledger.record("r1", "t", now, Spend::new(10, 100));
        assert_eq!(before, Spent::default());
        assert_eq!(after, Spent::default().plus(Spend::new(10, 100)));
        // A second run of the same task starts at zero but shares the task's total.
        ledger.open_run("r2");
        let spent = ledger.spent(Some("r2"), "t", now);
        assert_eq!(spent.run, Spend::ZERO);
        assert_eq!(spent.task, Spend::new(10, 100));
    }

    #[test]
    fn midnight_starts_a_new_day_and_the_first_starts_a_new_month() {
        let mut ledger = Ledger::default();
        ledger.open_run("r");
        ledger.record("r", "t", at("2026-11-30T23:59:59Z"), Spend::new(5, 5));
        let next = ledger.spent(Some("r"), "t", at("2026-12-01T00:00:00Z"));
        assert_eq!((next.day, next.month), (Spend::ZERO, Spend::ZERO));
        assert_eq!(next.task, Spend::new(5, 5));
        let same_month = ledger.spent(Some("r"), "t", at("2026-11-30T00:00:00Z"));
        assert_eq!(same_month.month, Spend::new(5, 5));
    }

    #[test]
    fn seeding_keeps_the_larger_figure_and_revoked_runs_still_count_for_the_task() {
        let mut ledger = Ledger::default();
        let now = at("2026-11-22T12:00:00Z");
        ledger.seed_task("t", Spend::new(100, 1_000));
        ledger.seed_period(
            now.date_naive(),
            Spend::new(500, 5_000),
            Spend::new(900, 9_000),
        );
        ledger.open_run("r");
        ledger.record("r", "t", now, Spend::new(1, 1));
        // A stale seed (the journal has not seen the last call yet) does not erase it.
        ledger.seed_task("t", Spend::new(100, 1_000));
        let spent = ledger.spent(Some("r"), "t", now);
        assert_eq!(spent.task, Spend::new(101, 1_001));
        assert_eq!(spent.day, Spend::new(501, 5_001));
        assert_eq!(spent.month, Spend::new(901, 9_001));
        assert_eq!(
            ledger.period(now),
            (Spend::new(501, 5_001), Spend::new(901, 9_001))
        );
        ledger.close_run("r");
        ledger.record("r", "t", now, Spend::new(1, 1));
        assert_eq!(ledger.spent(Some("r"), "t", now).run, Spend::ZERO);
        assert_eq!(ledger.spent(None, "t", now).task, Spend::new(102, 1_002));
    }
}
