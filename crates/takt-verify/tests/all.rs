//! takt-verify's integration tests: one binary, against a real takt-mock-model server on
//! loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
