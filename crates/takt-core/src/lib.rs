//! The orchestrator's brain: a pure, deterministic state machine and the port traits adapters
//! implement.
//!
//! [`handle`]`(state, policy, event, now) -> Step` decides; it does no IO and reads no clock.
//! A [`Step`] holds the records to journal (facts that change state, already applied with
//! [`apply`]) and the commands for the shell to execute. Restart = fold [`apply`] over the
//! journal ([`replay`]), then [`Event::Restarted`].
//!
//! Layout: [`policy`] (Symphony's scheduling rules), [`messages`] (events, records, commands),
//! [`state`] (the state and `apply`), [`machine`] (`handle`), [`journal`] (the hash chain),
//! [`ports`] (traits adapters implement).

pub mod budget;
pub mod journal;
pub mod machine;
pub mod messages;
pub mod policy;
pub mod ports;
pub mod risk;
pub mod schedule;
pub mod state;
pub mod stats;
pub mod zone;

pub use machine::{approvals_satisfied, handle, next_deadline};
pub use messages::{
    CancelReason, Command, Event, FailedCheck, ForgeReview, ForgeReviewNote, ForgeVerdict,
    MergeResult, OperatorCommand, Record, RunExit, RunSpec, Step, StopReason, VerifyOutcome,
};
pub use policy::{OnBlock, Policy, PublishPolicy, VerifyPolicy};
pub use state::{LiveRun, Retry, ScheduleState, State, Task, Totals, apply, delivery_key, replay};
