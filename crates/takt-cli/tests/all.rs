//! End-to-end tests of the `takt` binary: real processes, real git repositories, real SQLite.
//! One test binary (faster to link); the tests live in `suite/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
