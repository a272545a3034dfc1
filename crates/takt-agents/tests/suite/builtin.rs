//! Tests of the builtin backend.
