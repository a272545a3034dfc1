//! Cron schedules as the core sees them: when each one is next due, and which occurrence a late
//! daemon owes. Pure: times come in as milliseconds, nothing reads a clock.
//!
//! A schedule fires at most once per check, for the latest occurrence that is due: a daemon that
//! was down through five occurrences creates one task on start, not five. A schedule seen for
//! the first time is armed from that moment; occurrences before it are not owed.

use std::str::FromStr;

use jiff::{Timestamp, Zoned};
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
    zone: jiff::tz::TimeZone,
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
        let zone = crate::zone::zone(&timezone).ok_or_else(|| ScheduleError::Zone {
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
        let start = self.local(after)?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|at| at.timestamp().as_millisecond())
    }

    /// The next occurrence to show at `now`: after `now`, and never one it already fired for
    /// (a clock that stepped back).
    pub fn next_due(&self, seen: Option<&crate::ScheduleState>, now: Millis) -> Option<Millis> {
        self.next_after(seen.map_or(now, |s| s.owed_after().max(now)))
    }

    /// The latest occurrence in `(after, now]`: what a check at `now` owes when the schedule
    /// last fired (or was armed) at `after`.
    pub fn due(&self, after: Millis, now: Millis) -> Option<Millis> {
        let end = self.local(now)?;
        let latest = self
            .cron
            .find_previous_occurrence(&end, true)
            .ok()?
            .timestamp()
            .as_millisecond();
        (latest > after).then_some(latest)
    }

    /// `at` on the schedule's wall clock; `None` past the years a calendar names (±9999).
    fn local(&self, at: Millis) -> Option<Zoned> {
        let instant = Timestamp::from_millisecond(at).ok()?;
        Some(instant.to_zoned(self.zone.clone()))
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

    fn daily(cron: &str, timezone: &str) -> Schedule {
        Schedule::new("daily", cron, timezone, weekly().template)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// 2023-03-25T12:00:00Z, the day before Berlin's clocks jump from 02:00 CET to 03:00 CEST.
    const BEFORE_SPRING: Millis = 1_679_745_600_000;
    /// 2023-03-26T01:00:00Z: 03:00 CEST, the first wall time after the gap.
    const AFTER_GAP: Millis = 1_679_792_400_000;
    /// 2023-10-28T12:00:00Z, the day before Berlin's clocks fall back from 03:00 CEST to 02:00 CET.
    const BEFORE_FALL: Millis = 1_698_494_400_000;
    /// 2023-10-29T00:30:00Z: the first 02:30 of the night (CEST); the second is an hour later.
    const FIRST_0230: Millis = 1_698_539_400_000;
    const SECOND_0230: Millis = FIRST_0230 + 3_600_000;
    const DAY: Millis = 86_400_000;

    #[test]
    fn a_time_the_clocks_skip_fires_when_the_gap_ends() {
        let schedule = daily("30 2 * * *", "Europe/Berlin");
        assert_eq!(schedule.next_after(BEFORE_SPRING), Some(AFTER_GAP));
        // 2023-03-27 02:30 CEST is 00:30Z, a day less the hour the night lost.
        assert_eq!(
            schedule.next_after(AFTER_GAP),
            Some(AFTER_GAP + DAY - 1_800_000)
        );
        assert_eq!(schedule.due(BEFORE_SPRING, AFTER_GAP - 1), None);
        assert_eq!(schedule.due(BEFORE_SPRING, AFTER_GAP), Some(AFTER_GAP));
    }

    #[test]
    fn a_time_the_clocks_repeat_fires_once_at_its_first_instant() {
        let schedule = daily("30 2 * * *", "Europe/Berlin");
        assert_eq!(schedule.next_after(BEFORE_FALL), Some(FIRST_0230));
        // 2023-10-30 02:30 CET is 01:30Z, a day and the night's extra hour later.
        assert_eq!(schedule.next_after(FIRST_0230), Some(SECOND_0230 + DAY));
        assert_eq!(
            schedule.next_after(SECOND_0230 - 1),
            Some(SECOND_0230 + DAY)
        );
        assert_eq!(schedule.due(BEFORE_FALL, SECOND_0230), Some(FIRST_0230));
        assert_eq!(schedule.due(FIRST_0230, SECOND_0230), None);
    }

    #[test]
    fn an_hourly_schedule_fires_on_both_passes_of_a_repeated_hour() {
        let schedule = daily("0 * * * *", "Europe/Berlin");
        // 02:00 CEST, 02:00 CET, 03:00 CET: three instants an hour apart.
        let first_0200 = FIRST_0230 - 1_800_000;
        assert_eq!(schedule.next_after(first_0200 - 1), Some(first_0200));
        assert_eq!(
            schedule.next_after(first_0200),
            Some(first_0200 + 3_600_000)
        );
        assert_eq!(
            schedule.next_after(first_0200 + 3_600_000),
            Some(first_0200 + 7_200_000)
        );
    }

    #[test]
    fn a_zone_half_an_hour_off_the_hour_keeps_its_offset() {
        // 2023-11-14T00:00:00Z; 09:00 in Kolkata (UTC+05:30) is 03:30Z.
        let midnight: Millis = 1_699_920_000_000;
        let schedule = daily("0 9 * * *", "Asia/Kolkata");
        assert_eq!(schedule.next_after(midnight), Some(midnight + 12_600_000));
        assert_eq!(
            schedule.due(midnight, midnight + 12_600_000),
            Some(midnight + 12_600_000)
        );
        // Kathmandu is UTC+05:45, so :15 past its hour is :30 past the hour in UTC.
        let quarter = daily("15 * * * *", "Asia/Kathmandu");
        assert_eq!(quarter.next_after(midnight), Some(midnight + 1_800_000));
    }

    #[test]
    fn zone_names_are_the_tz_databases_spelled_exactly() {
        let template = weekly().template;
        let accepts = |zone: &str| Schedule::new("x", "@daily", zone, template.clone()).is_ok();
        for zone in [
            "UTC",
            "Europe/Berlin",
            "America/New_York",
            "Asia/Kolkata",
            "US/Eastern",
            "Etc/GMT+5",
            "Europe/Kiev",
        ] {
            assert!(accepts(zone), "{zone}");
        }
        for zone in [
            "Mars/Olympus",
            "",
            " UTC",
            "utc",
            "europe/berlin",
            "Etc/Unknown",
            "+01:00",
        ] {
            assert!(!accepts(zone), "{zone:?}");
        }
    }
}
