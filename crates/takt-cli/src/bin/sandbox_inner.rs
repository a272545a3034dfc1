//! The sandbox's inner stage as a small binary beside `takt`: it runs once per launch inside
//! the sandbox, and a 2 MB executable starts in about half the time of the whole of takt.
//! `takt` runs the same stage itself when this binary is missing or from another build.

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = takt_sandbox::helper_main(&args).unwrap_or_else(|| {
        eprintln!(
            "{} runs inside takt's sandbox and is started by takt; it takes no commands",
            takt_sandbox::INNER_BINARY
        );
        2
    });
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
