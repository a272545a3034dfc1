//! (helper: config-risk)
