//! Cron schedules as the core sees them: when each one is next due, and which occurrence a late
//! daemon owes. Pure: times come in as milliseconds, nothing reads a clock.
//!
//! A schedule fires at most once per check, for the latest occurrence that is due: a daemon that
//! was down through five occurrences creates one task on start, not five. A schedule seen for
//! the first time is armed from that moment; occurrences before it are not owed.

use std::str::FromStr;

use chrono::TimeZone;
use takt_protocol::Millis;

/// What a schedule creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTemplate {
    pub title: String,
    pub body: Option<String>,
    pub labels: Vec<String>,
    pub priority: Option<i64>,
}

/// One compiled schedule. Compared by its source text.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub cron_text: String,
    pub timezone: String,
    pub template: TaskTemplate,
    cron: croner::Cron,
    zone: chrono_tz::Tz,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.cron_text == other.cron_text
            && self.timezone == other.timezone
            && self.template == other.template
    }
}

/// A schedule that cannot be compiled (the workflow validates both, so this means a caller
/// skipped validation). Not retryable: the text must change.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule {name}: {cron:?} is not a cron expression: {reason}")]
    Cron {
        name: String,
        cron: String,
        reason: String,
    },
    #[error("schedule {name}: {zone:?} is not a time zone")]
    Zone { name: String, zone: String },
}

impl Schedule {
    pub fn new(
        name: impl Into<String>,
        cron_text: impl Into<String>,
        timezone: impl Into<String>,
        template: TaskTemplate,
    ) -> Result<Schedule, ScheduleError> {
        let (name, cron_text, timezone) = (name.into(), cron_text.into(), timezone.into());
        let cron = croner::Cron::from_str(&cron_text).map_err(|error| ScheduleError::Cron {
            name: name.clone(),
            cron: cron_text.clone(),
            reason: error.to_string(),
        })?;
        let zone = timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| ScheduleError::Zone {
                name: name.clone(),
                zone: timezone.clone(),
            })?;
        Ok(Schedule {
            name,
            cron_text,
            timezone,
            template,
            cron,
            zone,
        })
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let start = self.zone.timestamp_millis_opt(after).single()?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|at| at.timestamp_millis())
    }

    /// The next occurrence to show at `now`: after `now`, and never one it already fired for
    /// (a clock that stepped back).
    pub fn next_due(&self, seen: Option<&crate::ScheduleState>, now: Millis) -> Option<Millis> {
        self.next_after(seen.map_or(now, |s| s.owed_after().max(now)))
    }

    /// The latest occurrence in `(after, now]`: what a check at `now` owes when the schedule
    /// last fired (or was armed) at `after`.
    pub fn due(&self, after: Millis, now: Millis) -> Option<Millis> {
        let end = self.zone.timestamp_millis_opt(now).single()?;
        let latest = self
            .cron
            .find_previous_occurrence(&end, true)
            .ok()?
            .timestamp_millis();
        (latest > after).then_some(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly() -> Schedule {
        Schedule::new(
            "deps",
            "0 3 * * 1",
            "Europe/Berlin",
            TaskTemplate {
                title: "Update dependencies".into(),
                body: None,
                labels: Vec::new(),
                priority: None,
            },
        )
        .unwrap_or_else(|error| panic!("{error}"))
    }

    /// 2023-11-14T22:13:20Z, a Tuesday.
    const TUESDAY: Millis = 1_700_000_000_000;
    /// Monday 2023-11-20 03:00 in Berlin (CET, UTC+1).
    const MONDAY_3AM: Millis = 1_700_445_600_000;

    #[test]
    fn the_next_occurrence_is_in_the_schedules_time_zone() {
        assert_eq!(weekly().next_after(TUESDAY), Some(MONDAY_3AM));
        assert_eq!(
            weekly().next_after(MONDAY_3AM),
            Some(MONDAY_3AM + 7 * 86_400_000)
        );
    }

    #[test]
    fn a_late_check_owes_only_the_latest_occurrence() {
        let schedule = weekly();
        assert_eq!(schedule.due(TUESDAY, MONDAY_3AM - 1), None);
        assert_eq!(schedule.due(TUESDAY, MONDAY_3AM), Some(MONDAY_3AM));
        // Three weeks late: one occurrence, the last.
        let three_weeks = MONDAY_3AM + 21 * 86_400_000 + 3_600_000;
        assert_eq!(
            schedule.due(TUESDAY, three_weeks),
            Some(MONDAY_3AM + 21 * 86_400_000)
        );
        assert_eq!(schedule.due(MONDAY_3AM, MONDAY_3AM + 60_000), None);
    }

    #[test]
    fn bad_text_is_an_error_naming_the_schedule() {
        let template = weekly().template;
        let error = Schedule::new("x", "61 * * * *", "UTC", template.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("schedule x"), "{error}");
        assert!(Schedule::new("x", "@daily", "Mars/Olympus", template).is_err());
    }
}
