//! takt-server's integration tests: one binary, the real server on 127.0.0.1 in front of an
//! in-memory daemon whose state comes from real core events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
