//! One sandbox for every agent process.
//!
//! The daemon never sets up confinement in its own address space: it re-executes its own
//! binary ([`helper_main`], the codex-rs arg0 pattern) once as a *fork server*, which forks a
//! *supervisor* for each launch with a spec file written by [`Sandbox::spawn`] (or the daemon
//! execs the supervisor itself, [`Sandbox::command`]). The supervisor, outside the sandbox,
//! prepares what needs privileges (cgroups, dropping root to the agent user, laying out the
//! sandbox's file tree), relays the model endpoint and the egress proxy over unix sockets,
//! starts bubblewrap, enforces the wall clock, and writes a [`ContainmentReport`]. Inside, an
//! *inner* stage applies rlimits, Landlock and a seccomp filter, starts the loopback relays,
//! and runs the agent.
//!
//! Layout: [`policy`] (what the workflow asks for), [`probe`] (what this host can do),
//! [`launch`] (the daemon side), `launcher` and `server` (the fork server's two ends), `child`
//! (the daemon's handle on a confined process), [`spec`] (the files between the stages),
//! [`bwrap`] (argv), `supervisor` and `inner` (the two helper stages), `cgroup`, `rules`
//! (Landlock and seccomp), `relay` and `egress` (networking), [`report`].

pub mod bwrap;
mod cgroup;
mod child;
mod egress;
mod error;
mod inner;
pub mod launch;
mod launcher;
pub mod policy;
pub mod probe;
mod relay;
pub mod report;
mod rules;
mod server;
pub mod shared;
pub mod spec;
mod stage;
mod supervisor;
pub mod user;

pub use cgroup::sweep_stale as cgroup_sweep;
pub use child::{Confined, Output};
pub use error::SandboxError;
pub use launch::{Launch, RunScope, Sandbox, inner_stage_beside};
pub use policy::{Limits, Mechanism, Mode, Network, Policy};
pub use probe::{HostReport, probe};
pub use report::{ContainmentReport, Violation, ViolationKind};
pub use takt_core::ports::{CacheOverlay, WorkspaceView};

/// The hidden subcommand that runs the supervisor stage.
pub const SUPERVISE_ARG: &str = "__sandbox-supervise";
/// The hidden subcommand that runs the inner stage (inside bubblewrap, or directly under
/// Landlock).
pub const INNER_ARG: &str = "__sandbox-inner";
/// The hidden subcommand that runs the fork server (its control socket is stdin).
pub const SERVE_ARG: &str = "__sandbox-serve";
/// The hidden subcommand that prints which specs a helper binary reads
/// ([`inner_stage_beside`]).
pub const SPEC_VERSION_ARG: &str = "__sandbox-spec-version";
/// The small binary installed beside `takt` that runs the inner stage (see
/// [`inner_stage_beside`]).
pub const INNER_BINARY: &str = "takt-sandbox-inner";
/// The hidden subcommand that probes a mechanism in a child process (`takt doctor`).
pub const PROBE_ARG: &str = "__sandbox-probe";

/// Runs a helper stage when the process was started as one (`argv[1]` is
/// [`SUPERVISE_ARG`] or [`INNER_ARG`]) and returns its exit code; `None` for a normal start.
/// The binary calls this first thing in `main`, before any runtime or thread exists, because
/// the supervisor may need to `unshare` its mount namespace.
pub fn helper_main(args: &[std::ffi::OsString]) -> Option<i32> {
    let stage = args.get(1)?.to_str()?;
    let spec = args.get(2).map(std::path::PathBuf::from);
    match (stage, spec) {
        (SUPERVISE_ARG, Some(spec)) => Some(supervisor::run(&spec)),
        (INNER_ARG, Some(spec)) => Some(inner::run(&spec)),
        (SERVE_ARG, _) => Some(server::run()),
        (SPEC_VERSION_ARG, _) => {
            println!("{}", spec_fingerprint());
            Some(0)
        }
        (PROBE_ARG, _) => Some(rules::probe_landlock()),
        (SUPERVISE_ARG | INNER_ARG, None) => {
            eprintln!("takt sandbox helper: missing the spec file argument");
            Some(125)
        }
        _ => None,
    }
}

/// What a helper binary must print for [`SPEC_VERSION_ARG`] to be trusted with this build's
/// specs.
pub(crate) fn spec_fingerprint() -> String {
    format!(
        "takt-sandbox {} spec {}",
        env!("CARGO_PKG_VERSION"),
        spec::SPEC_VERSION
    )
}
