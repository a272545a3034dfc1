//! Verification: the daemon, never the agent, decides whether a change is done.
//!
//! A change's commit is checked out clean (never the agent's workspace), its gates — configured,
//! detected from the repository, and hidden holdback gates — run in a fresh sandbox; failures are
//! compared with a cached baseline of the base commit and re-run to catch flaky tests; the diff is
//! read for tampering with the checks and for credentials; then the judge and the blind
//! reviewers, each seeing only the task, the diff and the raw gate evidence, give verdicts. With
//! `verify.warm_cache`, gates start from a frozen build cache of the base commit (`warm`). The
//! result is a [`takt_protocol::VerificationReport`]; the core turns it into a risk tier and a
//! decision. An in-toto-style attestation of the outcome is written as a git note.

pub mod attest;
pub mod detect;
pub mod diff;
pub mod error;
pub mod evidence;
pub mod exec;
pub mod feedback;
mod gates;
mod inside;
pub mod judge;
pub mod llm;
pub mod parse;
pub mod review;
pub mod reviewers;
pub mod runner;
pub mod secrets;
pub mod spec;
pub mod tamper;
mod warm;

pub use error::VerifyError;
pub use evidence::{EvidenceStore, MemoryEvidence};
pub use runner::{Verifier, VerifyJob, VerifySettings, speed_of};
pub use spec::{GateSpec, Speed};
pub use warm::AgentBuildCache;
