//! takt-core's integration tests: one binary (see rust-stack.md, "one integration-test binary
//! per crate").

mod suite;
