//! `takt`: the composition root. Parses the command line, wires adapters, runs the command.
//! The only crate that prints, reads the process environment freely, or uses `anyhow`.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod api;
mod args;
mod backends;
mod clock;
mod commands;
mod daemon;
mod engine;
mod exit;
mod host_tools;
mod models;
mod project;
mod publish;
mod sandbox;
mod verification;
mod warm_view;
mod worker;
mod writeback;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // The sandbox helper stages re-execute this binary; they must run before anything else
    // (the supervisor may unshare its mount namespace, which needs a single thread).
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = takt_sandbox::helper_main(&raw) {
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // Claude Code starts takt's host-tools MCP server (inside the sandbox) the same way.
    if raw
        .get(1)
        .is_some_and(|arg| arg == takt_agents::mcp::MCP_ARG)
    {
        return std::process::ExitCode::from(u8::try_from(takt_agents::mcp::main()).unwrap_or(1));
    }
    let cli = args::Cli::parse();
    init_tracing(matches!(
        cli.command,
        args::Commands::Run(_) | args::Commands::MockModel(_)
    ));
    // One TLS provider for the whole process (ring); libraries configure theirs explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return exit::Code::Failure.into();
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code.into(),
        Err(error) => {
            let code = exit::classify(&error);
            eprintln!("error: {error:#}");
            code.into()
        }
    }
}

/// Logs go to stderr (stdout is for data). `RUST_LOG` filters; `TAKT_LOG_FORMAT=json` gives
/// one JSON object per line for log shippers.
fn init_tracing(daemon: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if daemon { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var("TAKT_LOG_FORMAT").is_ok_and(|format| format == "json") {
        builder.json().init();
    } else {
        builder.compact().init();
    }
}
