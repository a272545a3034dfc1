//! The Codex backend: `codex app-server` over stdio JSON-RPC.
