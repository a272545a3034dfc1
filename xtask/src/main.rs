//! Project tooling. `cargo run --release -p xtask -- bench [dispatch|workspace|core|all]` runs
//! the benchmark scenarios, prints their results and rewrites their sections of
//! `docs/BENCHMARKS.md`. Benchmarks are run by hand and their output committed; CI never runs
//! them, and no test asserts on time.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo run --release -p xtask -- bench [dispatch|workspace|core|agents|sandbox|gateway|verify|gates|api|webhook|trackers|agent-warm|all]... [--no-write]

  dispatch    latency from `takt task add` to the command agent's start (needs target/release/takt:
              cargo build --release -p takt-cli)
  workspace   provisioning a 20,000-file repository: takt vs git worktree vs git clone
  core        CPU per event and memory per task of the core with 1,000 live runs
  agents      the built-in agent loop's overhead per turn
  sandbox     launch overhead of the agent sandbox (needs target/release/takt)
  gateway     latency the model gateway adds per call, streaming first byte, 200 concurrent streams
  verify      verification overhead over the gate commands on a sample Rust crate (needs
              target/release/takt)
  gates       a one-line change's gate (`cargo test`) warm, in place and cold (needs
              target/release/takt)
  api         the HTTP API: GET /api/v1/state over 1,000 tasks, SSE fan-out to 100 subscribers
  webhook     latency from a webhook delivery to the agent's start (needs target/release/takt)
  trackers    requests and time per poll of the linear/github/gitlab adapters, 10,000-issue fakes
  agent-warm  an agent's first `cargo build` after a one-line edit: warm (the base's frozen build
              cache over target/), cold, and in place (needs target/release/takt, root)
  all         every scenario (the default)

  --no-write  print the results without rewriting docs/BENCHMARKS.md";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => {
            let mut names = Vec::new();
            let mut write = true;
            for arg in &args[1..] {
                match arg.as_str() {
                    "--no-write" => write = false,
                    "-h" | "--help" => {
                        println!("{USAGE}");
                        return Ok(());
                    }
                    name => names.push(name.to_owned()),
                }
            }
            bench::run(&names, write)
        }
        // Internal: the core benchmark measures memory in a fresh process.
        Some(bench::core::MEMORY_PROBE) => bench::core::memory_probe(),
        Some("-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown xtask command `{other}`\n\n{USAGE}"),
    }
}
