//! WORKFLOW.md: discovery, front matter, defaults, validation and strict Liquid rendering.
