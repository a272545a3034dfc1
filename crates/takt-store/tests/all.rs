//! The store's integration tests: real SQLite files in temp directories, several handles on one
//! file as if from several processes, raw SQL tampering, and a real second process for the lock.
//!
//! The modules are `#[cfg(test)]` (always true here) so that clippy treats their helper
//! functions as test code.

#[cfg(test)]
#[path = "all/support.rs"]
mod support;

#[cfg(test)]
#[path = "all/artifacts.rs"]
mod artifacts;
#[cfg(test)]
#[path = "all/inbox.rs"]
mod inbox;
#[cfg(test)]
#[path = "all/journal.rs"]
mod journal;
#[cfg(test)]
#[path = "all/local_tracker.rs"]
mod local_tracker;
#[cfg(test)]
#[path = "all/lock.rs"]
mod lock;
