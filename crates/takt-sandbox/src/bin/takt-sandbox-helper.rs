//! The sandbox helper stages as a stand-alone binary, for this crate's own tests (the `takt`
//! binary serves the same stages through `takt_sandbox::helper_main`).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = takt_sandbox::helper_main(&args).unwrap_or_else(|| {
        eprintln!(
            "usage: takt-sandbox-helper {} SPEC",
            takt_sandbox::SUPERVISE_ARG
        );
        2
    });
    std::process::exit(code);
}
