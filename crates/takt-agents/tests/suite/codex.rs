//! Tests of the codex backend.
