//! takt-agents' integration tests: one binary, one module per backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
