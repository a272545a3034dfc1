//! The one integration test binary of takt-trackers: adapters against fake provider servers.

mod suite;
