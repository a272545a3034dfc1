//! `takt init`: a commented WORKFLOW.md and `.takt/` in `.gitignore`.

use super::output::outln;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::args::InitArgs;
use crate::exit::Code;

const TEMPLATE: &str = include_str!("../templates/WORKFLOW.md");

pub fn run(workflow: Option<&Path>, args: &InitArgs) -> Result<Code> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let path: PathBuf = workflow.map_or_else(|| cwd.join("WORKFLOW.md"), Path::to_path_buf);
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or(cwd, Path::to_path_buf);
    let inside = std::process::Command::new("git")
        .args(["-C", &dir.to_string_lossy(), "rev-parse", "--show-toplevel"])
        .output()
        .context("running git (is it installed?)")?;
    if !inside.status.success() {
        bail!(
            "{} is not inside a git repository: takt works on git repositories (run `git init` \
             and commit something first)",
            dir.display()
        );
    }
    if path.exists() && !args.force {
        bail!(
            "{} already exists; use `takt init --force` to overwrite it",
            path.display()
        );
    }
    let text = if args.backend == "codex" {
        TEMPLATE.replace(
            "backend: command            # command now; codex, claude and builtin as they land",
            "backend: codex",
        )
    } else {
        TEMPLATE.to_owned()
    };
    fs_err::write(&path, text)?;
    let ignore = dir.join(".gitignore");
    let existing = fs_err::read_to_string(&ignore).unwrap_or_default();
    if !existing
        .lines()
        .any(|line| matches!(line.trim(), ".takt" | ".takt/" | "/.takt" | "/.takt/"))
    {
        let mut updated = existing;
        if !updated.is_empty() && !updated.ends_with('\n') {
            updated.push('\n');
        }
        updated.push_str("# takt's state: journal, workspaces, mirror\n.takt/\n");
        fs_err::write(&ignore, updated)?;
    }
    outln!("Wrote {}", path.display());
    outln!(
        "Next: edit `command.run`, add a task with `takt task add --title \"...\"`, then `takt run`."
    );
    Ok(Code::Success)
}
