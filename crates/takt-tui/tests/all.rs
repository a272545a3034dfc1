//! takt-tui's integration tests: one binary (see rust-stack.md, "one integration-test binary
//! per crate"). Frames are drawn to ratatui's `TestBackend` and compared with the insta
//! snapshots in `tests/snapshots/`.

mod suite;
