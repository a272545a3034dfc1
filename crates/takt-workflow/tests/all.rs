//! Integration tests for takt-workflow: conformance tests named by Symphony requirement id
//! (`rNNN_...`), realistic workflow files, bad input and hot reload.

// Test helpers outside `#[test]` functions fail the test by panicking, like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
