mod builtin;
mod claude;
mod codex;
mod command;

/// These suites test the backends' protocols; confinement itself is tested by takt-sandbox's
/// escape suite and, with every backend, by the takt binary's end-to-end suite.
pub fn unconfined() -> std::sync::Arc<takt_sandbox::Sandbox> {
    std::sync::Arc::new(takt_sandbox::Sandbox::unconfined(
        takt_sandbox::Policy::default(),
    ))
}
