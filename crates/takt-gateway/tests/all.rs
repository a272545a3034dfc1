//! takt-gateway's integration tests: one binary, the gateway in front of the real scripted
//! model server, both on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
