//! takt-forge's integration tests: one binary, against the fake forges and real git.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
