//! takt's `budget` section: spend caps per run, task, day and month. Unknown keys are errors.

use super::U64_MAX;
use crate::config::{BudgetConfig, BudgetLimit, OnExhaust};
use crate::reader::{Report, Section};
use crate::suggest::did_you_mean;

pub(super) fn budget(section: &Section<'_>, report: &mut Report<'_>) -> BudgetConfig {
    let limit = |scope: &str, report: &mut Report<'_>| BudgetLimit {
        usd: report.amount(section, &format!("per_{scope}_usd"), "5"),
        tokens: report
            .integer(
                section,
                &format!("per_{scope}_tokens"),
                1..=U64_MAX,
                "a positive integer",
                &format!("write a number such as `per_{scope}_tokens: 2000000`"),
            )
            .and_then(|v| u64::try_from(v).ok()),
    };
    let per_run = limit("run", report);
    let per_task = limit("task", report);
    let per_day = limit("day", report);
    let per_month = limit("month", report);
    let on_exhaust = match report
        .string(section, "on_exhaust")
        .as_deref()
        .map(str::trim)
    {
        None | Some("stop") => OnExhaust::Stop,
        Some("pause") => OnExhaust::Pause,
        Some(other) => {
            let fix = match did_you_mean(other, &["stop", "pause"]) {
                Some(close) => format!("did you mean `{close}`?"),
                None => {
                    "use `stop` (the task fails with a report) or `pause` (it waits in blocked)"
                        .into()
                }
            };
            report.problem(
                "budget.on_exhaust",
                section.get("on_exhaust").map(|n| n.pos),
                format!("`budget.on_exhaust` {other:?} is not `stop` or `pause`"),
                fix,
            );
            OnExhaust::Stop
        }
    };
    let max_tokens_without_progress = report
        .integer(
            section,
            "max_tokens_without_progress",
            1..=U64_MAX,
            "a positive integer",
            "write a number such as `max_tokens_without_progress: 300000`",
        )
        .and_then(|v| u64::try_from(v).ok());
    section.check_unknown(report);
    BudgetConfig {
        per_run,
        per_task,
        per_day,
        per_month,
        on_exhaust,
        max_tokens_without_progress,
    }
}
