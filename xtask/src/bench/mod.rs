//! The benchmark scenario runner: each scenario measures, prints, and returns a Markdown section
//! that replaces its part of `docs/BENCHMARKS.md`.

mod agent_warm;
mod agents;
mod api;
pub mod core;
mod dispatch;
mod doc;
mod gates;
mod gateway;
mod sandbox;
mod trackers;
mod verify;
mod webhook;
mod workspace;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

pub const ALL: [&str; 12] = [
    "dispatch",
    "workspace",
    "core",
    "agents",
    "sandbox",
    "gateway",
    "verify",
    "gates",
    "api",
    "webhook",
    "trackers",
    "agent-warm",
];

/// What one scenario produced.
pub struct Section {
    pub name: &'static str,
    pub markdown: String,
}

pub fn run(names: &[String], write: bool) -> Result<()> {
    let mut wanted: Vec<&'static str> = Vec::new();
    if names.is_empty() {
        wanted.extend(ALL);
    }
    for name in names {
        match name.as_str() {
            "all" => wanted.extend(ALL),
            other => match ALL.iter().find(|known| **known == other) {
                Some(known) => wanted.push(known),
                None => bail!(
                    "unknown benchmark `{other}`; choose from {}, all",
                    ALL.join(", ")
                ),
            },
        }
    }
    let mut seen = Vec::new();
    wanted.retain(|name| {
        let first = !seen.contains(name);
        seen.push(*name);
        first
    });

    let root = repo_root()?;
    let machine = Machine::probe(&root);
    println!("{}", machine.one_line());
    let started = Instant::now();
    let mut sections = Vec::new();
    for name in wanted {
        println!("\n== bench {name} ==");
        let began = Instant::now();
        let section = match name {
            "dispatch" => dispatch::run(&root, &machine)?,
            "workspace" => workspace::run(&machine)?,
            "core" => core::run(&root, &machine)?,
            "agents" => agents::run(&machine)?,
            "sandbox" => sandbox::run(&root, &machine)?,
            "gateway" => gateway::run(&machine)?,
            "verify" => verify::run(&root, &machine)?,
            "gates" => gates::run(&root, &machine)?,
            "api" => api::run(&machine)?,
            "webhook" => webhook::run(&root, &machine)?,
            "trackers" => trackers::run(&machine)?,
            "agent-warm" => agent_warm::run(&root, &machine)?,
            _ => bail!("unknown benchmark `{name}`"),
        };
        println!("(bench {name} took {:.1} s)", began.elapsed().as_secs_f64());
        sections.push(section);
    }
    println!(
        "\nall requested benchmarks took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if write {
        let path = root.join("docs").join("BENCHMARKS.md");
        doc::update(&path, &machine, &sections)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The workspace root (the directory above `xtask/`).
pub fn repo_root() -> Result<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}

/// A release binary of this workspace: in `$CARGO_TARGET_DIR/release` when that is set (a
/// relative one from the workspace root, as cargo reads it), else `target/release`.
pub fn release_binary(root: &Path, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("release").join(name)
}

/// The machine and the moment a run happened on.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub git: String,
    pub date: String,
    pub commit: String,
    pub load: String,
}

impl Machine {
    fn probe(root: &Path) -> Machine {
        let cpus = std::thread::available_parallelism().map_or(0, usize::from);
        let cpuinfo = fs_err::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let mem_gib = meminfo_kib("MemTotal").map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
        let kernel = fs_err::read_to_string("/proc/sys/kernel/osrelease")
            .map(|text| text.trim().to_owned())
            .unwrap_or_default();
        let git = output_of(Command::new("git").arg("--version"))
            .map(|text| text.trim().trim_start_matches("git version ").to_owned())
            .unwrap_or_else(|_| "not found".into());
        let mut commit = output_of(Command::new("git").current_dir(root).args([
            "rev-parse",
            "--short=12",
            "HEAD",
        ]))
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
        let dirty = output_of(Command::new("git").current_dir(root).args([
            "status",
            "--porcelain",
            "--untracked-files=no",
        ]))
        .is_ok_and(|text| !text.trim().is_empty());
        if dirty {
            commit.push_str(" (with uncommitted changes)");
        }
        Machine {
            cpus,
            cpu_model,
            mem_gib,
            kernel,
            git,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit,
            load: load_average(),
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} on {} CPUs ({}), {:.1} GiB RAM, Linux {}, git {}, commit {}, load average {}",
            self.date,
            self.cpus,
            self.cpu_model,
            self.mem_gib,
            self.kernel,
            self.git,
            self.commit,
            self.load
        )
    }

    /// The line each section starts with, so sections from different runs stay traceable.
    pub fn measured_line(&self) -> String {
        format!(
            "_Measured {} at commit {} on {} CPUs / {:.0} GiB, git {}; load average at the start of \
             the run {}._",
            self.date, self.commit, self.cpus, self.mem_gib, self.git, self.load
        )
    }
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    fs_err::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// A field of `/proc/meminfo`, in KiB.
pub fn meminfo_kib(field: &str) -> Option<u64> {
    let text = fs_err::read_to_string("/proc/meminfo").ok()?;
    status_kib(&text, field)
}

/// `Name:   1234 kB` from a `/proc` status-style text.
pub fn status_kib(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// Runs a command to completion and returns its stdout; fails on a non-zero exit.
pub fn output_of(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .with_context(|| format!("running {shown}"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a git command in `dir` with a fixed identity; fails on a non-zero exit.
pub fn git(dir: &Path, args: &[&str]) -> Result<String> {
    output_of(
        Command::new("git")
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "takt bench")
            .env("GIT_AUTHOR_EMAIL", "bench@takt.invalid")
            .env("GIT_COMMITTER_NAME", "takt bench")
            .env("GIT_COMMITTER_EMAIL", "bench@takt.invalid")
            .args(args),
    )
}

/// Order statistics of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy)]
pub struct Dist {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Dist {
    pub fn of(samples: &[f64]) -> Option<Dist> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let n = sorted.len();
            let index = ((p / 100.0) * n as f64).ceil() as usize;
            sorted[index.clamp(1, n) - 1]
        };
        Some(Dist {
            min: sorted[0],
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: sorted[sorted.len() - 1],
        })
    }
}

/// A Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Milliseconds with a precision that suits their size.
pub fn ms(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

pub fn verdict(met: bool) -> &'static str {
    if met { "**met**" } else { "**missed**" }
}

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}
