//! Integration tests of takt-workspace against real git in temporary directories.
//!
//! The suite is `#[cfg(test)]` (always true here) so that clippy treats its helper functions
//! as test code.

#[cfg(test)]
mod suite;
