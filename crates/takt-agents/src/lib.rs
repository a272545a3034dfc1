//! Agent backends behind one interface: the command backend (codex, claude and builtin follow).
