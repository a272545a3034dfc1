mod builtin;
mod claude;
mod codex;
mod command;
