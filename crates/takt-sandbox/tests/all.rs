//! takt-sandbox's integration tests: real bubblewrap, real Landlock, the real helper binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod suite;
