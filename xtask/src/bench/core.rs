//! `bench core`: the orchestrator core's CPU per event and memory per task with 1,000 runs live
//! at once.
//!
//! A fake shell drives `takt_core::handle` the way the daemon does (decide, journal the durable
//! records, execute the commands, feed their results back), against a fake tracker of 1,000
//! issues and `max_concurrent_agents: 1000`:
//!
//! 1. burst: the first poll finds 1,000 new issues; all are queued and dispatched, and each run
//!    reports the launch sequence (phases, `run_launched`, session and turn start);
//! 2. steady: 40 rounds in which every live run reports one agent event (output line, token
//!    usage, message, tool call, file change, turn boundary), with a tick every 100 events and a
//!    wake-up poll every 2,000 (each poll reconciles the 1,000 held tasks and fetches the 1,000
//!    candidates); the scheduled 30 s polls come from the ticks;
//! 3. finish: every run ends (9 in 10 with a commit, 1 in 10 failed), the failed ones retry
//!    after their backoff and finish;
//! 4. review: every change is approved and merged.
//!
//! Each `handle` call is timed with the thread's CPU clock, so waiting for a CPU on a busy
//! machine is not counted. The shell's journal encoding (`serde_json` payload, `Record::kind`,
//! sealing the hash chain) is timed separately, and the durable records are written to a real
//! takt-store SQLite journal, untimed, to report its size. Memory is measured in a fresh child process (`VmRSS` before and after building the
//! state), so nothing the benchmark itself allocated before is reused and hidden.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use takt_core::journal::seal;
use takt_core::{
    Command, Event, MergeResult, OperatorCommand, Policy, RunExit, State, handle, next_deadline,
};
use takt_protocol::{
    AgentEvent, GENESIS_HASH, Issue, Millis, OutputStream, RunOutcome, RunPhase, TaskState,
    TokenUsage,
};
use takt_store::{NewEntry, Store};

use super::{Machine, Rng, Section, status_kib, table};

/// The hidden xtask command the memory probe runs as.
pub const MEMORY_PROBE: &str = "__bench-core-memory";

const TASKS: usize = 1_000;
const TASKS_TEXT: &str = "1,000";
const WAKE_TEXT: &str = "2,000";
const ROUNDS: usize = 40;
/// Simulated time between two events.
const EVENT_MS: Millis = 5;
const TICK_EVERY: usize = 100;
const WAKE_EVERY: usize = 2_000;
const FLUSH_AT: usize = 5_000;
const FAIL_ONE_IN: u64 = 10;
const START_MS: Millis = 1_780_000_000_000;

const BURST: &str = "candidates_fetched: 1,000 new issues (queue + dispatch all)";
const CANDIDATES: &str = "candidates_fetched: 1,000 issues, all held (steady poll)";
const CANDIDATES_FEW: &str = "candidates_fetched: < 500 issues";
const REFRESH_ALL: &str = "issues_refreshed: 1,000 held tasks (poll reconciliation)";
const REFRESH_FEW: &str = "issues_refreshed: < 500 tasks (due retries)";
const DEADLINE: &str = "next_deadline() (daemon loop, after every event)";

fn label(event: &Event) -> &'static str {
    match event {
        Event::Tick => "tick (1,000 live runs)",
        Event::PollRequested => "poll_requested (wake-up)",
        Event::CandidatesFetched { issues } if issues.len() >= TASKS / 2 => CANDIDATES,
        Event::CandidatesFetched { .. } => CANDIDATES_FEW,
        Event::IssuesRefreshed { requested, .. } if requested.len() >= TASKS / 2 => REFRESH_ALL,
        Event::IssuesRefreshed { .. } => REFRESH_FEW,
        Event::RunLaunched { .. } => "run_launched",
        Event::RunPhaseChanged { .. } => "run_phase_changed",
        Event::AgentActivity { event, .. } => match event {
            AgentEvent::TokenUsage { .. } => "agent: token_usage",
            AgentEvent::Message { .. } => "agent: message",
            AgentEvent::ToolCall { .. } => "agent: tool_call",
            AgentEvent::FileChange { .. } => "agent: file_change",
            AgentEvent::Output { .. } => "agent: output line (not journaled)",
            AgentEvent::SessionStarted { .. } => "agent: session_started",
            AgentEvent::TurnStarted { .. } | AgentEvent::TurnCompleted { .. } => {
                "agent: turn_started / turn_completed"
            }
            _ => "agent: other",
        },
        Event::RunExited(exit) => match exit.outcome {
            RunOutcome::Succeeded => "run_exited: succeeded (→ review)",
            RunOutcome::Failed => "run_exited: failed (→ retry)",
            _ => "run_exited: other",
        },
        Event::MergeFinished { .. } => "merge_finished (merged)",
        Event::Operator(OperatorCommand::Approve { .. }) => "operator: approve (→ merge)",
        // Kinds this scenario does not produce.
        _ => "other",
    }
}

/// CPU time this thread has run, in ns (`CLOCK_THREAD_CPUTIME_ID`: unlike a wall clock, it
/// does not count the time the thread waits for a CPU on a busy machine).
fn thread_cpu_ns() -> Result<u64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .context("reading the thread's CPU clock")?;
    let ns = i128::from(now.tv_sec()) * 1_000_000_000 + i128::from(now.tv_nsec());
    Ok(u64::try_from(ns).unwrap_or(0))
}

/// The cost of one reading of the thread CPU clock (the median of many back-to-back pairs),
/// subtracted from every measured interval.
fn clock_overhead_ns() -> Result<u64> {
    let mut deltas = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let a = thread_cpu_ns()?;
        let b = thread_cpu_ns()?;
        deltas.push(b.saturating_sub(a));
    }
    deltas.sort_unstable();
    Ok(deltas[deltas.len() / 2])
}

/// (VmRSS, VmHWM) of this process in KiB.
fn rss_kib() -> Result<(u64, u64)> {
    let status = fs_err::read_to_string("/proc/self/status")?;
    Ok((
        status_kib(&status, "VmRSS").context("no VmRSS in /proc/self/status")?,
        status_kib(&status, "VmHWM").context("no VmHWM in /proc/self/status")?,
    ))
}

#[derive(Default)]
struct KindStats {
    handle_ns: Vec<u64>,
    encode_ns: u64,
    durable: u64,
}

/// The journal as the shell writes it: sealed in a hash chain, into takt-store's SQLite.
struct Journal {
    head_seq: u64,
    head_hash: String,
    buffer: Vec<NewEntry>,
    entries: u64,
    payload_bytes: u64,
    store: Store,
    rt: tokio::runtime::Runtime,
    flush_cpu_ns: u64,
    flush_wall: Duration,
}

impl Journal {
    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let cpu = thread_cpu_ns()?;
        let began = Instant::now();
        let entries = std::mem::take(&mut self.buffer);
        self.rt
            .block_on(self.store.append(entries))
            .context("appending to the benchmark journal")?;
        self.flush_wall += began.elapsed();
        self.flush_cpu_ns += thread_cpu_ns()?.saturating_sub(cpu);
        Ok(())
    }
}

struct Measure {
    kinds: BTreeMap<&'static str, KindStats>,
    journal: Journal,
}

/// A live agent as the fake shell knows it.
struct Live {
    turn: u32,
    tokens: u64,
}

struct World {
    state: State,
    policy: Policy,
    now: Millis,
    tracker: BTreeMap<String, Issue>,
    pending: VecDeque<Command>,
    live: BTreeMap<String, Live>,
    rng: Rng,
    burst: bool,
    events: u64,
    handle_ns: u64,
    /// Subtracted from every timed interval (see [`clock_overhead_ns`]).
    clock_ns: u64,
    measure: Option<Measure>,
}

fn policy() -> Policy {
    Policy {
        max_concurrent_agents: TASKS as u32,
        on_start_state: Some("In Progress".into()),
        on_done_state: Some("Done".into()),
        on_cancel_state: Some("Cancelled".into()),
        ..Policy::default()
    }
}

fn issues(rng: &mut Rng) -> BTreeMap<String, Issue> {
    (1..=TASKS)
        .map(|n| {
            let issue = Issue {
                id: format!("0190f3a2-7b1c-7d4e-9a6b-{n:012}"),
                identifier: format!("BENCH-{n}"),
                title: format!("Make the payment retry path idempotent, part {n}"),
                description: Some(format!(
                    "The retry worker can charge a card twice when the gateway times out after \
                     accepting the charge. Store an idempotency key with every attempt and check \
                     it before retrying. Add a regression test that simulates the timeout. \
                     Acceptance: no double charge in the test, existing tests pass. Ticket {n}."
                )),
                priority: Some(rng.below(5) as i64),
                state: "Todo".into(),
                branch_name: None,
                url: Some(format!("https://tracker.example/BENCH-{n}")),
                assignee_id: None,
                labels: vec!["backend".into(), "payments".into()],
                blocked_by: vec![],
                dispatchable: true,
                created_at: Some(format!(
                    "2026-11-{:02}T{:02}:{:02}:00Z",
                    1 + n % 28,
                    n % 24,
                    n % 60
                )),
                updated_at: None,
                native_ref: None,
            };
            (issue.id.clone(), issue)
        })
        .collect()
}

impl World {
    fn new(measure: Option<Measure>) -> World {
        let mut rng = Rng(0x00c0_ffee_1234_5678);
        let tracker = issues(&mut rng);
        World {
            state: State::default(),
            policy: policy(),
            now: START_MS,
            tracker,
            pending: VecDeque::new(),
            live: BTreeMap::new(),
            rng,
            burst: false,
            events: 0,
            handle_ns: 0,
            clock_ns: 0,
            measure,
        }
    }

    /// One event through the core, as the daemon's `Engine::step` does it.
    fn feed(&mut self, event: Event) -> Result<()> {
        let kind = match event {
            Event::CandidatesFetched { .. } if self.burst => {
                self.burst = false;
                BURST
            }
            _ => label(&event),
        };
        let now = self.now;
        let timed = self.measure.is_some();
        let began = if timed { thread_cpu_ns()? } else { 0 };
        let step = handle(&mut self.state, &self.policy, event, now);
        let handle_ns = if timed {
            thread_cpu_ns()?
                .saturating_sub(began)
                .saturating_sub(self.clock_ns)
        } else {
            0
        };
        self.events += 1;
        self.handle_ns += handle_ns;
        if let Some(measure) = self.measure.as_mut() {
            let began = thread_cpu_ns()?;
            let mut durable = 0;
            let journal = &mut measure.journal;
            for record in step.records.iter().filter(|record| record.is_durable()) {
                let payload = serde_json::to_value(record)?;
                let entry = seal(
                    journal.head_seq,
                    &journal.head_hash,
                    now,
                    record.kind(),
                    record.task_id().map(String::from),
                    payload,
                );
                journal.payload_bytes += serde_json::to_string(&entry.payload)?.len() as u64;
                journal.head_seq = entry.seq;
                journal.head_hash = entry.hash;
                journal.buffer.push(NewEntry {
                    at_ms: entry.at_ms,
                    kind: entry.kind,
                    task_id: entry.task_id,
                    payload: entry.payload,
                });
                durable += 1;
            }
            journal.entries += durable;
            let encode_ns = thread_cpu_ns()?
                .saturating_sub(began)
                .saturating_sub(self.clock_ns);
            let stats = measure.kinds.entry(kind).or_default();
            stats.handle_ns.push(handle_ns);
            stats.encode_ns += encode_ns;
            stats.durable += durable;

            let began = thread_cpu_ns()?;
            std::hint::black_box(next_deadline(&self.state, &self.policy));
            let deadline_ns = thread_cpu_ns()?
                .saturating_sub(began)
                .saturating_sub(self.clock_ns);
            measure
                .kinds
                .entry(DEADLINE)
                .or_default()
                .handle_ns
                .push(deadline_ns);
            if journal.buffer.len() >= FLUSH_AT {
                journal.flush()?;
            }
        }
        self.pending.extend(step.commands);
        self.now += EVENT_MS;
        Ok(())
    }

    /// Executes queued commands the way the daemon does, feeding back their results.
    fn drain(&mut self) -> Result<()> {
        while let Some(command) = self.pending.pop_front() {
            match command {
                Command::FetchCandidates => {
                    let issues = self
                        .tracker
                        .values()
                        .filter(|issue| self.policy.is_active(&issue.state))
                        .cloned()
                        .collect();
                    self.feed(Event::CandidatesFetched { issues })?;
                }
                Command::RefreshIssues { ids } => {
                    let issues = ids
                        .iter()
                        .filter_map(|id| self.tracker.get(id).cloned())
                        .collect();
                    self.feed(Event::IssuesRefreshed {
                        requested: ids,
                        issues,
                    })?;
                }
                Command::StartRun(spec) => self.launch(&spec.run_id, &spec.issue.identifier)?,
                Command::StopRun { run_id, .. } => {
                    self.live.remove(&run_id);
                    self.feed(Event::RunExited(RunExit {
                        run_id,
                        outcome: RunOutcome::Cancelled,
                        commit: None,
                        error: Some("stopped".into()),
                        turns: 1,
                        question: None,
                    }))?;
                }
                Command::Merge { task_id, .. } => {
                    let sha = format!("{:016x}{:016x}{:08x}", self.rng.next(), self.rng.next(), 7);
                    self.feed(Event::MergeFinished {
                        task_id,
                        result: MergeResult::Merged { sha },
                    })?;
                }
                Command::TransitionIssue { issue_id, state } => {
                    if let Some(issue) = self.tracker.get_mut(&issue_id) {
                        issue.state = state;
                    }
                }
                // Workspace cleanup needs no answer; the rest never happens in this scenario
                // (the final check that every task is done catches one that should have).
                _ => {}
            }
        }
        Ok(())
    }

    /// What a worker reports while it starts an agent.
    fn launch(&mut self, run_id: &str, identifier: &str) -> Result<()> {
        let phase = |phase| Event::RunPhaseChanged {
            run_id: run_id.to_owned(),
            phase,
        };
        let agent = |event| Event::AgentActivity {
            run_id: run_id.to_owned(),
            event,
        };
        self.feed(phase(RunPhase::PreparingWorkspace))?;
        let pid = 10_000 + self.rng.below(50_000) as u32;
        self.feed(Event::RunLaunched {
            run_id: run_id.to_owned(),
            pid: Some(pid),
            workspace_path: format!("/srv/takt/workspaces/{identifier}"),
            branch: format!("takt/{identifier}"),
        })?;
        self.feed(phase(RunPhase::BuildingPrompt))?;
        self.feed(phase(RunPhase::LaunchingAgent))?;
        self.feed(phase(RunPhase::InitializingSession))?;
        let session_id = format!("sess_{:016x}", self.rng.next());
        self.feed(agent(AgentEvent::SessionStarted { session_id }))?;
        self.feed(phase(RunPhase::StreamingTurn))?;
        self.feed(agent(AgentEvent::TurnStarted { turn: 1 }))?;
        self.live
            .insert(run_id.to_owned(), Live { turn: 1, tokens: 0 });
        Ok(())
    }

    /// One agent report of a realistic mix.
    fn agent_event(&mut self, run_id: &str) -> Result<()> {
        let roll = self.rng.below(100);
        let n = self.rng.below(10_000);
        let Some(live) = self.live.get_mut(run_id) else {
            return Ok(());
        };
        let event = match roll {
            0..35 => AgentEvent::Output {
                stream: OutputStream::Stdout,
                line: format!(
                    "   Compiling payments-core v0.{n}.0 (/srv/takt/workspaces/x/crates/core)"
                ),
            },
            35..55 => {
                live.tokens += 1_500 + n;
                AgentEvent::TokenUsage {
                    usage: TokenUsage {
                        input_tokens: live.tokens * 9 / 10,
                        output_tokens: live.tokens / 10,
                        total_tokens: live.tokens,
                    },
                }
            }
            55..70 => AgentEvent::Message {
                text: format!(
                    "I found the retry loop in src/retry.rs; it calls charge() again without \
                     checking whether the first attempt was accepted. I'll add an idempotency key \
                     ({n}) and a test that simulates the gateway timeout."
                ),
            },
            70..85 => AgentEvent::ToolCall {
                name: "shell".into(),
                summary: format!("cargo test -p payments-core retry::tests::timeout_{n}"),
                ok: !n.is_multiple_of(7),
            },
            85..95 => AgentEvent::FileChange {
                path: format!("crates/payments-core/src/retry_{n}.rs"),
            },
            _ => {
                let turn = live.turn;
                live.turn += 1;
                self.feed(Event::AgentActivity {
                    run_id: run_id.to_owned(),
                    event: AgentEvent::TurnCompleted { turn },
                })?;
                AgentEvent::TurnStarted { turn: turn + 1 }
            }
        };
        self.feed(Event::AgentActivity {
            run_id: run_id.to_owned(),
            event,
        })
    }

    /// Phase 1: the first poll finds every issue; all are dispatched and launched.
    fn burst(&mut self) -> Result<()> {
        // The first tick polls; the answer to its FetchCandidates is the burst.
        self.burst = true;
        self.feed(Event::Tick)?;
        self.drain()?;
        if self.live.len() != TASKS {
            bail!(
                "the burst launched {} runs instead of {TASKS}",
                self.live.len()
            );
        }
        Ok(())
    }

    /// Phase 2: every live run reports, `rounds` times, with ticks and wake-up polls between.
    fn steady(&mut self, rounds: usize) -> Result<()> {
        let mut order: Vec<String> = self.live.keys().cloned().collect();
        let mut count = 0usize;
        for _ in 0..rounds {
            self.rng.shuffle(&mut order);
            for run_id in &order {
                self.agent_event(run_id)?;
                count += 1;
                if count.is_multiple_of(TICK_EVERY) {
                    self.feed(Event::Tick)?;
                    self.drain()?;
                }
                if count.is_multiple_of(WAKE_EVERY) {
                    self.feed(Event::PollRequested)?;
                    self.drain()?;
                }
            }
        }
        Ok(())
    }

    /// Ends every live run; one in `fail_one_in` fails (0: none).
    fn finish_runs(&mut self, fail_one_in: u64) -> Result<()> {
        let mut order: Vec<String> = self.live.keys().cloned().collect();
        self.rng.shuffle(&mut order);
        for run_id in order {
            let Some(live) = self.live.remove(&run_id) else {
                continue;
            };
            self.feed(Event::AgentActivity {
                run_id: run_id.clone(),
                event: AgentEvent::TurnCompleted { turn: live.turn },
            })?;
            self.feed(Event::RunPhaseChanged {
                run_id: run_id.clone(),
                phase: RunPhase::Finishing,
            })?;
            let failed = fail_one_in > 0 && self.rng.below(fail_one_in) == 0;
            let exit = if failed {
                RunExit {
                    run_id,
                    outcome: RunOutcome::Failed,
                    commit: None,
                    error: Some("`cargo test` failed: 2 tests failed in retry::tests".into()),
                    turns: live.turn,
                    question: None,
                }
            } else {
                RunExit {
                    run_id,
                    outcome: RunOutcome::Succeeded,
                    commit: Some(format!(
                        "{:016x}{:016x}{:08x}",
                        self.rng.next(),
                        self.rng.next(),
                        1
                    )),
                    error: None,
                    turns: live.turn,
                    question: None,
                }
            };
            self.feed(Event::RunExited(exit))?;
            self.drain()?;
        }
        Ok(())
    }

    /// Phase 3: runs end; the failed ones wait out their backoff, run again and succeed.
    fn finish(&mut self) -> Result<()> {
        self.finish_runs(FAIL_ONE_IN)?;
        self.now += self.policy.failure_backoff_ms(1) as Millis + 1_000;
        self.feed(Event::Tick)?;
        self.drain()?;
        self.steady(3)?;
        self.finish_runs(0)
    }

    /// Phase 4: a person approves every change; each is merged.
    fn review(&mut self) -> Result<()> {
        let waiting: Vec<String> = self
            .state
            .tasks
            .values()
            .filter(|task| task.state == TaskState::AwaitingReview)
            .map(|task| task.issue.identifier.clone())
            .collect();
        for identifier in waiting {
            self.feed(Event::Operator(OperatorCommand::Approve {
                task: identifier,
                by: "bench".into(),
                comment: None,
            }))?;
            self.drain()?;
        }
        self.now += self.policy.poll_interval_ms as Millis;
        self.feed(Event::Tick)?;
        self.drain()
    }
}

/// The child process: memory of the state alone, in a fresh heap.
pub fn memory_probe() -> Result<()> {
    let mut world = World::new(None);
    let (baseline, _) = rss_kib()?;
    world.burst()?;
    let (live, live_hwm) = rss_kib()?;
    world.steady(10)?;
    let (steady, steady_hwm) = rss_kib()?;
    let tasks = world.state.tasks.len();
    let running = world.state.running_count();
    println!(
        "{}",
        serde_json::json!({
            "baseline_kib": baseline,
            "live_kib": live,
            "live_hwm_kib": live_hwm,
            "steady_kib": steady,
            "steady_hwm_kib": steady_hwm,
            "tasks": tasks,
            "running": running,
        })
    );
    Ok(())
}

struct Phase {
    name: &'static str,
    events: u64,
    handle_ns: u64,
    cpu_ns: u64,
    wall: Duration,
}

fn phase(
    world: &mut World,
    name: &'static str,
    body: impl FnOnce(&mut World) -> Result<()>,
) -> Result<Phase> {
    let events = world.events;
    let handled = world.handle_ns;
    let flush_cpu = world.measure.as_ref().map_or(0, |m| m.journal.flush_cpu_ns);
    let cpu = thread_cpu_ns()?;
    let began = Instant::now();
    body(world)?;
    let wall = began.elapsed();
    let flushed = world.measure.as_ref().map_or(0, |m| m.journal.flush_cpu_ns) - flush_cpu;
    Ok(Phase {
        name,
        events: world.events - events,
        handle_ns: world.handle_ns - handled,
        cpu_ns: thread_cpu_ns()?.saturating_sub(cpu).saturating_sub(flushed),
        wall,
    })
}

fn us(ns: f64) -> String {
    let us = ns / 1e3;
    if us >= 100.0 {
        format!("{us:.0}")
    } else if us >= 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.2}")
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[index.clamp(1, sorted.len()) - 1] as f64
}

pub fn run(_root: &Path, machine: &Machine) -> Result<Section> {
    // Memory first, in a fresh process.
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let out = Process::new(&exe)
        .arg(MEMORY_PROBE)
        .output()
        .context("running the memory probe")?;
    if !out.status.success() {
        bail!(
            "the memory probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let memory: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading the memory probe's output")?;
    let kib = |key: &str| {
        memory
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let (baseline, live, live_hwm, steady, steady_hwm) = (
        kib("baseline_kib"),
        kib("live_kib"),
        kib("live_hwm_kib"),
        kib("steady_kib"),
        kib("steady_hwm_kib"),
    );
    let per_task_live = (live.saturating_sub(baseline)) as f64 / TASKS as f64;
    let per_task_steady = (steady.saturating_sub(baseline)) as f64 / TASKS as f64;
    println!(
        "  memory: VmRSS {baseline} KiB before, {live} KiB with {TASKS} live runs ({per_task_live:.2} KiB/task), {steady} KiB after 10 rounds of agent events ({per_task_steady:.2} KiB/task); peak {steady_hwm} KiB"
    );

    // CPU, with the journal.
    let temp = tempfile::Builder::new()
        .prefix("takt-bench-core-")
        .tempdir()
        .context("creating a temporary directory")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(Store::open(&temp.path().join("state")))?;
    let journal = Journal {
        head_seq: 0,
        head_hash: GENESIS_HASH.to_owned(),
        buffer: Vec::with_capacity(FLUSH_AT),
        entries: 0,
        payload_bytes: 0,
        store,
        rt,
        flush_cpu_ns: 0,
        flush_wall: Duration::ZERO,
    };
    let mut world = World::new(Some(Measure {
        kinds: BTreeMap::new(),
        journal,
    }));
    world.clock_ns = clock_overhead_ns()?;
    println!(
        "  thread CPU clock: {} ns per reading, subtracted from every interval",
        world.clock_ns
    );
    let began = Instant::now();
    let phases = [
        phase(
            &mut world,
            "1. burst: 1,000 issues queued, dispatched, launched",
            World::burst,
        )?,
        phase(
            &mut world,
            "2. steady: 40 rounds of agent events, ticks, polls",
            |w| w.steady(ROUNDS),
        )?,
        phase(
            &mut world,
            "3. finish: exits, retries of the failed",
            World::finish,
        )?,
        phase(
            &mut world,
            "4. review: approve and merge all",
            World::review,
        )?,
    ];
    let total_wall = began.elapsed();
    let Some(mut measure) = world.measure.take() else {
        bail!("the measurement went missing");
    };
    measure.journal.flush()?;
    let head = measure
        .journal
        .rt
        .block_on(measure.journal.store.journal_head())?;
    if head != (measure.journal.head_seq, measure.journal.head_hash.clone()) {
        bail!(
            "the store's journal head {head:?} differs from the bench's chain ({}, {}): the bench does not encode what the store writes",
            measure.journal.head_seq,
            measure.journal.head_hash
        );
    }
    measure.journal.rt.block_on(measure.journal.store.close());
    let db = temp.path().join("state").join(takt_store::DB_FILE);
    let mut db_bytes = fs_err::metadata(&db).map(|m| m.len()).unwrap_or(0);
    for suffix in ["-wal", "-shm"] {
        let mut side = db.clone().into_os_string();
        side.push(suffix);
        db_bytes += fs_err::metadata(side).map(|m| m.len()).unwrap_or(0);
    }
    let done = world
        .state
        .tasks
        .values()
        .filter(|task| task.state == TaskState::Done)
        .count();
    if done != TASKS {
        bail!("only {done} of {TASKS} tasks reached done; the scenario is wrong");
    }

    // Per kind.
    let total_handle: u64 = world.handle_ns;
    let mut rows = Vec::new();
    let mut slowest: Option<(&str, f64)> = None;
    let mut deadline_row = None;
    let mut kinds: Vec<(&&str, &mut KindStats)> = measure.kinds.iter_mut().collect();
    for (_, stats) in kinds.iter_mut() {
        stats.handle_ns.sort_unstable();
    }
    kinds.sort_by(|a, b| {
        percentile(&b.1.handle_ns, 50.0).total_cmp(&percentile(&a.1.handle_ns, 50.0))
    });
    for (kind, stats) in &kinds {
        let n = stats.handle_ns.len() as f64;
        let sum: u64 = stats.handle_ns.iter().sum();
        let mean = sum as f64 / n;
        let p50 = percentile(&stats.handle_ns, 50.0);
        let row = vec![
            (**kind).to_owned(),
            stats.handle_ns.len().to_string(),
            us(p50),
            us(percentile(&stats.handle_ns, 99.0)),
            us(stats.handle_ns.last().copied().unwrap_or(0) as f64),
            us(mean),
            if **kind == DEADLINE {
                "–".into()
            } else {
                format!("{:.1}", sum as f64 / total_handle as f64 * 100.0)
            },
            if **kind == DEADLINE {
                "–".into()
            } else {
                format!("{:.2}", stats.durable as f64 / n)
            },
            if **kind == DEADLINE {
                "–".into()
            } else {
                us(stats.encode_ns as f64 / n)
            },
        ];
        if **kind == DEADLINE {
            deadline_row = Some((p50, mean));
        } else if slowest.is_none_or(|(_, best)| p50 > best) {
            slowest = Some((kind, p50));
        }
        println!(
            "  {:<62} n {:>6}  p50 {:>9} µs  p99 {:>9} µs  max {:>9} µs",
            kind, row[1], row[2], row[3], row[4]
        );
        rows.push(row);
    }
    let find = |name: &str| {
        kinds
            .iter()
            .find(|(kind, _)| **kind == name)
            .map(|(_, s)| &**s)
    };
    let p50_of = |name: &str| find(name).map_or(0.0, |s| percentile(&s.handle_ns, 50.0));
    let share_of = |name: &str| {
        find(name).map_or(0.0, |s| {
            s.handle_ns.iter().sum::<u64>() as f64 / total_handle.max(1) as f64 * 100.0
        })
    };
    let agent_p50s: Vec<f64> = kinds
        .iter()
        .filter(|(kind, _)| kind.starts_with("agent:"))
        .map(|(_, s)| percentile(&s.handle_ns, 50.0))
        .collect();
    let agent_lo = agent_p50s.iter().copied().fold(f64::INFINITY, f64::min);
    let agent_hi = agent_p50s.iter().copied().fold(0.0, f64::max);
    // Durable agent reports: the shell's journal encoding against the decision.
    let (encode_sum, decide_sum) = kinds
        .iter()
        .filter(|(kind, s)| kind.starts_with("agent:") && s.durable > 0)
        .fold((0u64, 0u64), |(e, d), (_, s)| {
            (e + s.encode_ns, d + s.handle_ns.iter().sum::<u64>())
        });
    let encode_ratio = encode_sum as f64 / decide_sum.max(1) as f64;
    let kind_table = table(
        &[
            "event kind",
            "events",
            "p50 µs",
            "p99 µs",
            "max µs",
            "mean µs",
            "% of core CPU",
            "journal rows / event",
            "journal encode µs / event",
        ],
        &rows,
    );
    let events = world.events;
    let mean_handle = total_handle as f64 / events as f64;
    let phase_rows: Vec<Vec<String>> = phases
        .iter()
        .map(|p| {
            vec![
                p.name.to_owned(),
                p.events.to_string(),
                format!("{:.1}", p.handle_ns as f64 / 1e6),
                us(p.handle_ns as f64 / p.events.max(1) as f64),
                format!("{:.1}", p.cpu_ns as f64 / 1e6),
                us(p.cpu_ns as f64 / p.events.max(1) as f64),
                format!("{:.0}", p.wall.as_secs_f64() * 1e3),
            ]
        })
        .collect();
    let phase_table = table(
        &[
            "phase",
            "events",
            "`handle` CPU ms",
            "`handle` µs / event",
            "thread CPU ms (all bench work but SQLite)",
            "thread CPU µs / event",
            "wall ms",
        ],
        &phase_rows,
    );
    let thread_cpu: u64 = phases.iter().map(|p| p.cpu_ns).sum();
    let journal = &measure.journal;
    let (slow_kind, slow_p50) = slowest.unwrap_or(("none", 0.0));
    let (deadline_p50, deadline_mean) = deadline_row.unwrap_or((0.0, 0.0));
    println!(
        "  {events} events, core handle CPU {:.0} ms ({} µs/event); thread CPU {:.0} ms; slowest kind: {slow_kind} (p50 {} µs)",
        total_handle as f64 / 1e6,
        us(mean_handle),
        thread_cpu as f64 / 1e6,
        us(slow_p50)
    );
    println!(
        "  journal: {} entries ({:.1}/task), payload {:.1} KiB/task, takt.db {:.1} KiB/task",
        journal.entries,
        journal.entries as f64 / TASKS as f64,
        journal.payload_bytes as f64 / TASKS as f64 / 1024.0,
        db_bytes as f64 / TASKS as f64 / 1024.0
    );
    // What 1,000 agents reporting once a second would cost the daemon's core.
    let per_event_with_loop = mean_handle + deadline_mean;
    let load_1k = per_event_with_loop * 1_000.0 / 1e9 * 100.0;

    let memory_table = table(
        &["measurement", "value"],
        &[
            vec![
                "VmRSS before (tracker of 1,000 issues built)".into(),
                format!("{baseline} KiB"),
            ],
            vec![
                "VmRSS with 1,000 live runs (after the burst and launches)".into(),
                format!("{live} KiB (peak {live_hwm} KiB)"),
            ],
            vec![
                "**memory per task, live run**".into(),
                format!("**{per_task_live:.1} KiB**"),
            ],
            vec![
                "VmRSS after 10 rounds of agent events".into(),
                format!("{steady} KiB (peak {steady_hwm} KiB)"),
            ],
            vec![
                "memory per task after those rounds".into(),
                format!("{per_task_steady:.1} KiB"),
            ],
            vec![
                "journal entries (durable records) for the whole scenario".into(),
                format!(
                    "{} ({:.1} per task)",
                    journal.entries,
                    journal.entries as f64 / TASKS as f64
                ),
            ],
            vec![
                "**serialized journal per task** (JSON payloads)".into(),
                format!(
                    "**{:.1} KiB**",
                    journal.payload_bytes as f64 / TASKS as f64 / 1024.0
                ),
            ],
            vec![
                "takt.db per task (SQLite: payload, hashes, index)".into(),
                format!("{:.1} KiB", db_bytes as f64 / TASKS as f64 / 1024.0),
            ],
        ],
    );

    let markdown = format!(
        "{measured}

**What.** The cost of the pure core (`takt_core::handle`) when 1,000 runs are live at once:
CPU per event by kind, the slowest event, memory per task, and the journal each task leaves.

**How.** A fake shell drives `handle` as the daemon's engine does (decide, journal, execute the
commands, feed back their results) with `max_concurrent_agents: 1000` against a fake tracker of
{TASKS_TEXT} issues: (1) the first poll queues and dispatches all of them and every run reports its
launch (phases, `run_launched`, session and turn start); (2) {ROUNDS} rounds in which every live
run reports one agent event (35 % output lines, 20 % token usage, 15 % messages, 15 % tool calls,
10 % file changes, 5 % turn boundaries), with a tick every {TICK_EVERY} events and a wake-up poll
every {WAKE_TEXT} (each poll reconciles the {TASKS_TEXT} held tasks and fetches {TASKS_TEXT} candidates;
the ticks add the scheduled 30 s polls, simulated time advancing {EVENT_MS} ms per event); (3)
every run ends, 1 in {FAIL_ONE_IN} failing; the failed ones retry after their backoff (each
exit that frees a slot while a retry is due polls again); (4) every change is approved and
merged. Every `handle` call is timed with the thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`,
{clock} ns per reading, subtracted), so time spent waiting for a CPU on a busy machine is not
counted; cache contention from other work still is. After each event the bench also times
`next_deadline` (the daemon calls it once per loop iteration) and the shell's journal encoding
of the event's durable records (`serde_json` payload, `Record::kind`, sealing the hash chain);
the records are then written to a real takt-store SQLite journal, untimed, whose head is
checked against the bench's own chain. Memory is measured in a fresh child process: `VmRSS` from
`/proc/self/status` before and after building the state, divided by the tasks; this includes
allocator slack, such as the burst's transient 2,000 records and 1,000 run specs.

**Target.** None is set for the core yet; these numbers are the baseline to keep. For scale:
if each of 1,000 agents reported once a second, the core (`handle` plus the loop's
`next_deadline`) would use about {load_1k:.1} % of one CPU.

{events} events took {handle_ms:.0} ms of core CPU, {mean} µs per event on average; all the
bench's work except SQLite took {thread_ms:.0} ms of CPU and {wall:.1} s of wall time. **Slowest
kind: {slow_kind}**, {slow_p50} µs.

Per event kind, sorted by p50 (CPU µs of `handle`; the last two columns are the shell's journal
work for the same events):

{kind_table}
{phase_table}
{memory_table}
**Reading** (the code named is as of the measured commit). Agent reports cost {agent_lo}–{agent_hi}
µs each at p50. Each one first finds its
run's task with `State::task_of_run`, which walks every task comparing run ids, and
`next_deadline`, run once per daemon loop iteration, walks every task as well ({deadline_p50} µs
at p50, {deadline_vs_event}). The polls are the expensive events: reconciling the
{TASKS_TEXT} held tasks (`issues_refreshed`) takes {refresh:.1} ms at p50 and is {refresh_share:.0} % of
all core CPU in this scenario; `on_refreshed` keeps the refreshed issues that were requested with
`requested.contains(&issue.id)`, a linear search per issue, so {TASKS_TEXT} × {TASKS_TEXT} id
comparisons. Reading {TASKS_TEXT}
candidates takes {candidates:.1} ms. The slowest event is the first poll ({burst:.0} ms): for every
eligible issue, dispatch counts the running tasks (`running_count`) and scans them again for the
per-state limit, normalizing each state string, which is quadratic in the number of issues. For
durable agent reports the shell's journal encoding costs {encode_ratio:.1}× the decision:
`Record::kind` serializes the whole record to a JSON value a second time only to read its tag,
and sealing writes the canonical JSON again for the hash.
",
        measured = machine.measured_line(),
        clock = world.clock_ns,
        agent_lo = us(agent_lo),
        agent_hi = us(agent_hi),
        refresh = p50_of(REFRESH_ALL) / 1e6,
        refresh_share = share_of(REFRESH_ALL),
        candidates = p50_of(CANDIDATES) / 1e6,
        burst = p50_of(BURST) / 1e6,
        handle_ms = total_handle as f64 / 1e6,
        mean = us(mean_handle),
        thread_ms = thread_cpu as f64 / 1e6,
        wall = total_wall.as_secs_f64(),
        slow_p50 = us(slow_p50),
        deadline_p50 = us(deadline_p50),
        deadline_vs_event = {
            let mut sorted = agent_p50s;
            sorted.sort_by(f64::total_cmp);
            let typical = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
            let ratio = deadline_p50 / typical;
            if ratio > 1.2 {
                format!("{ratio:.1}× a typical agent event")
            } else if ratio >= 0.7 {
                "about as much as a typical agent event".to_owned()
            } else {
                format!("{:.0} % of a typical agent event", ratio * 100.0)
            }
        },
    );
    println!(
        "  journal flushes to SQLite took {:.1} s (not counted)",
        journal.flush_wall.as_secs_f64()
    );
    drop(measure);
    drop(temp);
    Ok(Section {
        name: "core",
        markdown,
    })
}
