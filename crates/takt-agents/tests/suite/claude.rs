//! Tests of the claude backend.
