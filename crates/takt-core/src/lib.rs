//! The orchestrator's brain: a pure, deterministic state machine and the port traits adapters
//! implement.
//!
//! `handle(state, policy, event, now) -> Step` decides; it does no IO and reads no clock. A
//! [`Step`] holds the records to journal (facts that change state, applied with [`apply`]) and
//! the commands for the shell to execute. Restart = fold [`apply`] over the journal.

pub mod journal;
pub mod ports;
