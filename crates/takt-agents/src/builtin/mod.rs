//! takt's built-in agent loop over Chat Completions and Anthropic Messages.
