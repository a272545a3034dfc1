//! takt-mock-model's integration tests: one binary, real loopback sockets, a tiny hand-written
//! HTTP/1.1 client (no TLS stack needed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
