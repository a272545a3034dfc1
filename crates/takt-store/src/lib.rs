//! takt's durable state on one machine: the hash-chained journal, the local tracker, the
//! operator inbox, content-addressed artifacts and the state lock.
//!
//! Everything lives in a state directory (mode 0700):
//!
//! ```text
//! <state_dir>/takt.db            SQLite, WAL, synchronous=FULL: journal, inbox, meta, issues
//! <state_dir>/artifacts/aa/...   content-addressed blobs named by sha256
//! <state_dir>/daemon.lock        the OS lock held by the one daemon (and its pid)
//! ```
//!
//! - [`Store`]: open the database ([`Store::open`]); append to and verify the journal; put and
//!   get artifacts; the inbox of operator commands; small metadata.
//! - [`StateLock`]: one daemon per state directory, the only journal writer (DESIGN §8).
//! - [`LocalTracker`]: `tracker.kind: local`, issues as rows in the same database, implementing
//!   [`takt_core::ports::Tracker`].
//!
//! SQL is written for SQLite with runtime queries (no sqlx macros); rows are mapped by hand.

mod artifacts;
mod db;
mod error;
mod inbox;
mod journal;
mod local_tracker;
mod lock;
mod meta;
mod migrate;

pub use db::{BUSY_TIMEOUT, DB_FILE, Store};
pub use error::{LockError, StoreError};
pub use inbox::InboxItem;
pub use journal::{ChainReport, NewEntry};
pub use local_tracker::{DEFAULT_STATE, IDENTIFIER_PREFIX, LocalTracker, NewIssue};
pub use lock::{LOCK_FILE, StateLock};
pub use migrate::latest_version as latest_schema_version;
pub use takt_core::journal::BrokenLink;
