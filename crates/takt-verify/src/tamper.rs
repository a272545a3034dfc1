//! (helper: gates-analysis)
