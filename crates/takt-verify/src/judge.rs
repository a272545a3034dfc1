//! (helper: judge-reviewers)
