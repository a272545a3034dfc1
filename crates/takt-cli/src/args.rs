//! The command line (clap types only; behaviour lives in `commands/`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "takt",
    version,
    about = "A software factory: turns issues into verified changes.",
    long_about = "takt takes work from a tracker, gives each item an isolated git workspace, runs a \
                  coding agent there, and routes the result to review or merge with a \
                  tamper-evident journal of everything that happened."
)]
pub struct Cli {
    /// WORKFLOW.md to use (default: ./WORKFLOW.md). The state directory `.takt/` lives beside it.
    #[arg(
        long,
        short = 'w',
        global = true,
        env = "TAKT_WORKFLOW",
        value_name = "PATH"
    )]
    pub workflow: Option<PathBuf>,

    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Write a commented WORKFLOW.md and ignore `.takt/` in this git repository.
    Init(InitArgs),
    /// Run the factory daemon.
    Run(RunArgs),
    /// Add, list, show, cancel and retry tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Approve or reject a change awaiting review.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Answer a blocked task's question.
    Answer(AnswerArgs),
    /// Show what the factory is doing.
    Status(StatusArgs),
    /// Model spend from the journal: tokens and cost, by task, day or model.
    Cost(CostArgs),
    /// Check this machine and this workflow for problems.
    Doctor,
    /// What verification found about a task's change: gates with their runs and evidence
    /// hashes, tamper flags, judge and reviewer verdicts, the risk tier and why, approvals,
    /// and the attestation note.
    Evidence(EvidenceArgs),
    /// Verify the journal's hash chain and the stored artifacts.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run a self-contained tour of the factory in a temporary repository.
    Demo(DemoArgs),
    /// Serve the scripted model (OpenAI Responses, Chat Completions, Anthropic Messages) for
    /// tests and offline experiments.
    MockModel(MockModelArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Keep a live terminal dashboard open (q or Esc quits, r refreshes now).
    #[arg(long)]
    pub watch: bool,
    /// How often the dashboard re-reads the state, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..))]
    pub interval_ms: u64,
    /// Read a daemon's HTTP API instead of the local state directory (`http://host:port`;
    /// the token, when reads need one, comes from $TAKT_API_TOKEN). With --watch: the live
    /// dashboard; with --json: one dashboard snapshot.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    /// The task (identifier like TAKT-3, or id).
    pub id: String,
    /// Print the captured output (stdout, then stderr) of this gate's last run instead.
    #[arg(long, value_name = "GATE")]
    pub output: Option<String>,
}

#[derive(Debug, Args)]
pub struct MockModelArgs {
    /// A directory of scenario files (YAML or JSON); the built-in scenarios are served too.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// The port on 127.0.0.1 (0 picks a free one and logs it).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Append every request as a JSON line to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing WORKFLOW.md.
    #[arg(long)]
    pub force: bool,
    /// The agent backend to configure.
    #[arg(long, default_value = "command", value_parser = ["command", "codex"])]
    pub backend: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Exit once nothing is eligible or running (tasks waiting for review stay waiting).
    #[arg(long)]
    pub once: bool,
    /// Serve the HTTP API on this port (0 picks a free one); wins over `server.port`. The
    /// address it listens on is written to `.takt/api.addr`.
    #[arg(long)]
    pub port: Option<u16>,
    /// WORKFLOW.md to run (overrides --workflow).
    pub path: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Add a task to the local tracker.
    Add(TaskAddArgs),
    /// List tasks.
    List(TaskListArgs),
    /// Show one task: its state, attempts, and failure report.
    Show { id: String },
    /// The task's journal: every recorded event (dispatches, agent events such as
    /// `sandboxed` and `sandbox_violation`, outcomes), oldest first.
    Events { id: String },
    /// Cancel a task (stops its run if one is live).
    Cancel { id: String },
    /// Try a failed or cancelled task again from a fresh attempt count.
    Retry { id: String },
}

#[derive(Debug, Args)]
pub struct TaskAddArgs {
    #[arg(long)]
    pub title: String,
    /// The task description (the agent's instructions).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the description from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// 1 (urgent) .. 4 (low); 0 means none.
    #[arg(long, value_parser = clap::value_parser!(i64).range(0..=4))]
    pub priority: Option<i64>,
    /// A label (repeatable).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// A task this one waits for (repeatable; identifier like TAKT-3).
    #[arg(long = "blocked-by", value_name = "ID")]
    pub blocked_by: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// How to group the metered calls.
    #[arg(long, value_enum, default_value = "task")]
    pub by: CostGrouping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostGrouping {
    Task,
    Day,
    Model,
}

#[derive(Debug, Args)]
pub struct TaskListArgs {
    /// Only tasks in this state (repeatable), e.g. awaiting_review.
    #[arg(long = "state")]
    pub states: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Approve the change and merge it into the base branch.
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject the change; the comment goes to the agent's next attempt.
    Reject {
        id: String,
        #[arg(long)]
        comment: String,
    },
}

#[derive(Debug, Args)]
pub struct AnswerArgs {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the journal's hash chain and re-hash every artifact. With a task, also check that
    /// every piece of its evidence (gate output of every verification) is present and intact
    /// and that the attestation note on its commit says what the journal says.
    Verify {
        /// A task (identifier like TAKT-3, or id).
        id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo repository in this directory instead of a fresh temporary one.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
