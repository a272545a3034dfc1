//! The hash-chained journal, the local tracker, the operator inbox, artifacts and the state lock (SQLite).
