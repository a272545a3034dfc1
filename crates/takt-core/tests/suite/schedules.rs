//! Cron schedules through the state machine with a fake clock: armed on first sight, fired
//! once per occurrence, once (not N times) after a long downtime, never lost to a crash
//! between deciding and creating the task.

use takt_core::schedule::{Schedule, TaskTemplate};
use takt_core::{Command, Event, Policy, Record, State, handle, next_deadline, replay};
use takt_protocol::Millis;

const HOUR: Millis = 3_600_000;
const DAY: Millis = 24 * HOUR;
/// 2023-11-14T22:13:20Z.
const START: Millis = 1_700_000_000_000;
/// 2023-11-15T03:00:00Z: the first daily 03:00 UTC after START.
const FIRST: Millis = 1_700_017_200_000;

fn policy() -> Policy {
    let nightly = Schedule::new(
        "nightly",
        "0 3 * * *",
        "UTC",
        TaskTemplate {
            title: "Nightly dependency check".into(),
            body: Some("Update what is outdated.".into()),
            labels: vec!["deps".into()],
            priority: Some(3),
        },
    )
    .unwrap_or_else(|error| panic!("{error}"));
    Policy {
        schedules: vec![nightly],
        // Polls far apart, so the schedule is what the next deadline is about.
        poll_interval_ms: 30 * 24 * 3_600_000,
        ..Policy::default()
    }
}

/// The journal of a world: every durable record with its time.
struct World {
    state: State,
    policy: Policy,
    journal: Vec<(Record, Millis)>,
}

impl World {
    fn new() -> World {
        World {
            state: State::default(),
            policy: policy(),
            journal: Vec::new(),
        }
    }

    fn feed(&mut self, event: Event, now: Millis) -> Vec<Command> {
        let step = handle(&mut self.state, &self.policy, event, now);
        for record in step.records {
            if record.is_durable() {
                self.journal.push((record, now));
            }
        }
        step.commands
    }

    /// The daemon dies and starts again: state only from the journal (each record through its
    /// JSON, as the store keeps it).
    fn restart(&mut self, now: Millis) -> Vec<Command> {
        let decoded: Vec<(Record, Millis)> = self
            .journal
            .iter()
            .map(|(record, at)| {
                let json = serde_json::to_value(record).unwrap_or_default();
                let back: Record =
                    serde_json::from_value(json).unwrap_or_else(|error| panic!("{error}"));
                (back, *at)
            })
            .collect();
        self.state = replay(decoded.iter().map(|(record, at)| (record, *at)));
        self.feed(Event::Restarted, now)
    }
}

fn created(commands: &[Command]) -> Vec<Millis> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::CreateScheduledTask { occurrence_ms, .. } => Some(*occurrence_ms),
            _ => None,
        })
        .collect()
}

fn confirm(world: &mut World, occurrence_ms: Millis, now: Millis) {
    world.feed(
        Event::ScheduledTaskCreated {
            schedule: "nightly".into(),
            occurrence_ms,
            issue_id: format!("issue-{occurrence_ms}"),
        },
        now,
    );
}

#[test]
fn a_schedule_is_armed_then_fires_once_per_occurrence() {
    let mut world = World::new();
    // First sight: armed, nothing owed from before.
    assert!(created(&world.feed(Event::Tick, START)).is_empty());
    assert_eq!(next_deadline(&world.state, &world.policy), FIRST);
    assert!(created(&world.feed(Event::Tick, FIRST - 1)).is_empty());
    let commands = world.feed(Event::Tick, FIRST);
    assert_eq!(created(&commands), [FIRST]);
    let Some(Command::CreateScheduledTask { template, .. }) = commands
        .iter()
        .find(|c| matches!(c, Command::CreateScheduledTask { .. }))
    else {
        panic!("no task");
    };
    assert_eq!(template.title, "Nightly dependency check");
    confirm(&mut world, FIRST, FIRST);
    // The same occurrence never fires twice, the next one does.
    assert!(created(&world.feed(Event::Tick, FIRST + HOUR)).is_empty());
    assert_eq!(next_deadline(&world.state, &world.policy), FIRST + DAY);
    assert_eq!(
        created(&world.feed(Event::Tick, FIRST + DAY)),
        [FIRST + DAY]
    );
}

#[test]
fn a_schedule_missed_while_the_daemon_was_down_fires_once_on_start() {
    let mut world = World::new();
    world.feed(Event::Tick, START);
    world.feed(Event::Tick, FIRST);
    confirm(&mut world, FIRST, FIRST);
    // Down for four days: four occurrences missed, one owed.
    let back = FIRST + 4 * DAY + 5 * HOUR;
    let commands = world.restart(back);
    assert_eq!(created(&commands), [FIRST + 4 * DAY]);
    confirm(&mut world, FIRST + 4 * DAY, back);
    assert!(created(&world.feed(Event::Tick, back + HOUR)).is_empty());
    // And across another restart nothing fires again.
    assert!(created(&world.restart(back + 2 * HOUR)).is_empty());
}

#[test]
fn a_crash_between_firing_and_creating_the_task_creates_it_on_start() {
    let mut world = World::new();
    world.feed(Event::Tick, START);
    assert_eq!(created(&world.feed(Event::Tick, FIRST)), [FIRST]);
    // The daemon died before the task was confirmed: the restart asks for it again (the shell
    // finds it if it had been created), and does not fire the occurrence a second time.
    let commands = world.restart(FIRST + HOUR);
    assert_eq!(created(&commands), [FIRST]);
    confirm(&mut world, FIRST, FIRST + HOUR);
    assert!(created(&world.restart(FIRST + 2 * HOUR)).is_empty());
}
