//! The Claude Code backend: `claude -p` with stream-json in and out.
