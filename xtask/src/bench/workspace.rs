//! `bench workspace`: what a task's workspace costs on a 30,000-file repository.
//!
//! A source repository of 30,000 files in nested directories (one commit, packed) is generated
//! in a temporary directory. takt's `WorkspaceManager` mirrors it once (`sync_mirror`), then each
//! repetition provisions a new workspace four ways, in rotating order:
//!
//! - takt: `WorkspaceManager::ensure` for a new identifier (the path every task takes);
//! - `git worktree add -b` of a new branch from the same bare mirror (the floor takt builds on);
//! - `git clone` of the source path (git hardlinks the objects of a local clone);
//! - `git clone --no-local` (objects copied through the pack protocol).
//!
//! Everything lives under `/dev/shm` (tmpfs) when it exists, `TAKT_BENCH_DIR` overrides that:
//! each checkout is deleted right after it was timed, and deleting 40 checkouts of 20,000 files
//! on this VM's ext4 (mounted with `discard`) takes minutes and disturbs whatever runs beside it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use takt_workspace::{Hooks, RepoSource, WorkspaceManager, WorkspaceSettings};

use super::{Dist, Machine, Rng, Section, git, ms, table, verdict};

const FILES: usize = 30_000;
const FILES_TEXT: &str = "30,000";
/// 20 top-level directories × 20 subdirectories × 75 files.
const TOP: usize = 20;
const SUB: usize = 20;
const PER_DIR: usize = FILES / (TOP * SUB);
const REPETITIONS: usize = 10;
const RATIO_WORKTREE_TARGET: f64 = 1.5;
const RATIO_CLONE_TARGET: f64 = 10.0;
/// Issue 4's target for an overlay workspace (p50, ms).
const OVERLAY_TARGET_MS: f64 = 20.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Takt,
    Worktree,
    Clone,
    CloneNoLocal,
}

const METHODS: [Method; 4] = [
    Method::Takt,
    Method::Worktree,
    Method::Clone,
    Method::CloneNoLocal,
];

impl Method {
    fn label(self) -> &'static str {
        match self {
            Method::Takt => "takt `WorkspaceManager::ensure` (new identifier)",
            Method::Worktree => "`git worktree add -b <branch> <dir> <sha>` from the mirror",
            Method::Clone => "`git clone <source> <dir>` (local: objects hardlinked)",
            Method::CloneNoLocal => "`git clone --no-local <source> <dir>`",
        }
    }
}

struct Bench {
    root: PathBuf,
    source: PathBuf,
    mirror: PathBuf,
    deleted: Duration,
    manager: WorkspaceManager,
    rt: tokio::runtime::Runtime,
}

impl Bench {
    /// Deletes a timed checkout (untimed for the comparison, summed for the record).
    fn discard(&mut self, path: &Path) -> Result<()> {
        let began = Instant::now();
        fs_err::remove_dir_all(path)?;
        self.deleted += began.elapsed();
        Ok(())
    }

    /// Provisions one checkout with `method`; returns the time it took.
    fn provision(&mut self, method: Method, n: usize, base_sha: &str) -> Result<Duration> {
        let other = self.root.join("other").join(format!("{method:?}-{n}"));
        let started = Instant::now();
        let path = match method {
            Method::Takt => {
                let base = takt_workspace::BaseRef {
                    branch: "main".into(),
                    sha: base_sha.to_owned(),
                };
                let identifier = format!("BENCH-{n}");
                let workspace = self
                    .rt
                    .block_on(self.manager.ensure(&identifier, &base))
                    .with_context(|| format!("takt ensure {identifier}"))?;
                if !workspace.created_now {
                    bail!("takt reused a workspace for {identifier}; expected a new one");
                }
                workspace.path
            }
            Method::Worktree => {
                let branch = format!("bench/wt-{n}");
                let dir = other.to_string_lossy().into_owned();
                git(
                    &self.mirror,
                    &["worktree", "add", "--quiet", "-b", &branch, &dir, base_sha],
                )?;
                other
            }
            Method::Clone | Method::CloneNoLocal => {
                let source = self.source.to_string_lossy().into_owned();
                let dir = other.to_string_lossy().into_owned();
                let mut args = vec!["clone", "--quiet"];
                if method == Method::CloneNoLocal {
                    args.push("--no-local");
                }
                args.extend(["--", &source, &dir]);
                git(&self.root, &args)?;
                other
            }
        };
        let took = started.elapsed();
        let probe = path.join(last_file());
        if !probe.is_file() {
            bail!(
                "{} did not check out {} (missing {})",
                method.label(),
                path.display(),
                probe.display()
            );
        }
        self.discard(&path)?;
        Ok(took)
    }
}

fn last_file() -> PathBuf {
    PathBuf::from(format!("mod{:02}", TOP - 1))
        .join(format!("sub{:02}", SUB - 1))
        .join(format!("file{:02}.rs", PER_DIR - 1))
}

const WORDS: [&str; 16] = [
    "state", "task", "run", "issue", "branch", "commit", "journal", "event", "worker", "policy",
    "retry", "budget", "review", "merge", "mirror", "hook",
];

/// Writes one commit of the 20,000 files (200 B – 8 KB of code-like text each) straight into a
/// pack with `git fast-import`, as a real repository's objects would be packed. The source's
/// own working tree is not checked out: no measured operation reads it.
fn generate(source: &Path) -> Result<(u64, String)> {
    fs_err::create_dir_all(source)?;
    git(source, &["init", "--quiet", "--initial-branch=main"])?;
    let mut child = Command::new("git")
        .current_dir(source)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting git fast-import")?;
    let mut stdin = child.stdin.take().context("no stdin for git fast-import")?;
    let message = "20,000 generated files\n";
    let mut head = format!(
        "commit refs/heads/main\ncommitter takt bench <bench@takt.invalid> 1780000000 +0000\ndata {}\n{message}",
        message.len()
    );
    let gitignore = ".takt/\n";
    head.push_str(&format!(
        "M 100644 inline .gitignore\ndata {}\n{gitignore}\n",
        gitignore.len()
    ));
    stdin.write_all(head.as_bytes())?;
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut bytes = 0u64;
    let mut n = 0usize;
    for top in 0..TOP {
        for sub in 0..SUB {
            for file in 0..PER_DIR {
                let size = 200 + rng.below(7_800) as usize;
                let mut text = format!("// file {n} of the generated benchmark repository\n");
                while text.len() < size {
                    let a = WORDS[rng.below(16) as usize];
                    let b = WORDS[rng.below(16) as usize];
                    let c = WORDS[rng.below(16) as usize];
                    text.push_str(&format!(
                        "    let {a}_{} = {b}_{}({c}, {});\n",
                        rng.below(1000),
                        rng.below(1000),
                        rng.below(100_000)
                    ));
                }
                bytes += text.len() as u64;
                let path = format!("mod{top:02}/sub{sub:02}/file{file:02}.rs");
                stdin.write_all(
                    format!("M 100644 inline {path}\ndata {}\n{text}\n", text.len()).as_bytes(),
                )?;
                n += 1;
            }
        }
    }
    drop(stdin);
    let status = child.wait()?;
    if !status.success() {
        bail!("git fast-import failed with {status}");
    }
    let mut pack_bytes = 0u64;
    for entry in fs_err::read_dir(source.join(".git").join("objects").join("pack"))? {
        pack_bytes += entry?.metadata()?.len();
    }
    let pack = format!("{:.0} MB", pack_bytes as f64 / 1e6);
    Ok((bytes, pack))
}

/// Where the benchmark's files go: `TAKT_BENCH_DIR`, else tmpfs, else the temp directory.
fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TAKT_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

/// The filesystem type of `dir` from `/proc/mounts` (the longest matching mount point).
fn filesystem(dir: &Path) -> String {
    let mounts = fs_err::read_to_string("/proc/mounts").unwrap_or_default();
    let dir = fs_err::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let point = fields.next()?;
            let kind = fields.next()?;
            dir.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, kind)| kind)
}

pub fn run(machine: &Machine) -> Result<Section> {
    let base = base_dir();
    let fs = filesystem(&base);
    let temp = tempfile::Builder::new()
        .prefix("takt-bench-workspace-")
        .tempdir_in(&base)
        .with_context(|| format!("creating a temporary directory in {}", base.display()))?;
    let root = temp.path().to_path_buf();
    let source = root.join("source");

    println!(
        "generating a {FILES}-file repository in {} ({fs})",
        source.display()
    );
    let began = Instant::now();
    let (bytes, pack) = generate(&source)?;
    let generated_in = began.elapsed();
    println!(
        "  {FILES} files, {:.1} MB of text, pack {pack}, generated in {:.1} s",
        bytes as f64 / 1e6,
        generated_in.as_secs_f64()
    );
    for dir in ["ws", "other", "state"] {
        fs_err::create_dir_all(root.join(dir))?;
    }
    let mirror = root.join("state").join("mirror.git");
    let settings = WorkspaceSettings {
        root: root.join("ws"),
        mirror_dir: mirror.clone(),
        source: RepoSource::Path(source.clone()),
        base_branch: None,
        branch_prefix: "takt/".into(),
        hooks: Hooks::default(),
        hook_timeout: Duration::from_secs(60),
        overlay: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let manager = WorkspaceManager::new(settings)?;
    let began = Instant::now();
    rt.block_on(manager.sync_mirror())?;
    let first_sync = began.elapsed();
    println!(
        "  first sync_mirror (bare clone of the source) {:.0} ms",
        first_sync.as_secs_f64() * 1e3
    );
    let mut bench = Bench {
        root,
        source,
        mirror,
        deleted: Duration::ZERO,
        manager,
        rt,
    };

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); METHODS.len()];
    let mut syncs = Vec::new();
    let mut no_checkout = Vec::new();
    // Repetition 0 warms the page cache and is not counted.
    for rep in 0..=REPETITIONS {
        // What every task pays before ensure: a sync of the mirror with nothing new to fetch.
        let began = Instant::now();
        let synced = bench.rt.block_on(bench.manager.sync_mirror())?;
        if rep > 0 {
            syncs.push(began.elapsed().as_secs_f64() * 1e3);
        }
        let mut line = format!(
            "  rep {rep:>2}{}:",
            if rep == 0 { " (warm-up)" } else { "" }
        );
        for offset in 0..METHODS.len() {
            let index = (rep + offset) % METHODS.len();
            let method = METHODS[index];
            let took = bench.provision(method, rep, &synced.sha)?;
            let took_ms = took.as_secs_f64() * 1e3;
            line.push_str(&format!(" {method:?} {took_ms:.0} ms;"));
            if rep > 0 {
                samples[index].push(took_ms);
            }
        }
        // The checkout-free part of a worktree, for the breakdown.
        let dir = bench.root.join("other").join(format!("nocheckout-{rep}"));
        let branch = format!("bench/nc-{rep}");
        let began = Instant::now();
        git(
            &bench.mirror,
            &[
                "worktree",
                "add",
                "--quiet",
                "--no-checkout",
                "-b",
                &branch,
                &dir.to_string_lossy(),
                &synced.sha,
            ],
        )?;
        if rep > 0 {
            no_checkout.push(began.elapsed().as_secs_f64() * 1e3);
        }
        bench.discard(&dir)?;
        // Forget the deleted worktrees, so every repetition starts from the same mirror.
        git(&bench.mirror, &["worktree", "prune"])?;
        println!("{line}");
    }

    let overlay = overlay_samples(&bench.root, &bench.source, &bench.rt)?;
    let deleted = 5 * (REPETITIONS + 1);
    let deleted_in = bench.deleted;
    println!(
        "  deleting the {deleted} checkouts took {:.1} s in all",
        deleted_in.as_secs_f64()
    );
    drop(bench);
    drop(temp);

    let dists: Vec<Dist> = samples
        .iter()
        .map(|s| Dist::of(s).context("no samples"))
        .collect::<Result<_>>()?;
    let sync = Dist::of(&syncs).context("no sync samples")?;
    let nocheckout = Dist::of(&no_checkout).context("no samples")?;
    let takt = dists[0].p50;
    let worktree = dists[1].p50;
    let clone = dists[2].p50;
    let clone_no_local = dists[3].p50;
    let takt_vs_worktree = takt / worktree;
    let clone_vs_takt = clone / takt;
    let no_local_vs_takt = clone_no_local / takt;

    for (method, dist) in METHODS.iter().zip(&dists) {
        println!(
            "  {:<13} p50 {:>7.1} ms  (min {:.1}, p90 {:.1}, max {:.1})",
            format!("{method:?}"),
            dist.p50,
            dist.min,
            dist.p90,
            dist.max
        );
    }
    println!(
        "  sync_mirror (warm) p50 {:.1} ms; worktree add --no-checkout p50 {:.1} ms",
        sync.p50, nocheckout.p50
    );
    println!(
        "  takt/worktree {takt_vs_worktree:.2} (target <= {RATIO_WORKTREE_TARGET}), clone/takt {clone_vs_takt:.2} (target >= {RATIO_CLONE_TARGET}), clone --no-local/takt {no_local_vs_takt:.2}"
    );

    let mut rows: Vec<Vec<String>> = METHODS
        .iter()
        .zip(&dists)
        .map(|(method, dist)| {
            vec![
                method.label().to_owned(),
                ms(dist.p50),
                ms(dist.min),
                ms(dist.p90),
                ms(dist.max),
            ]
        })
        .collect();
    rows.push(vec![
        "for the breakdown: `git worktree add --no-checkout` (no files written)".into(),
        ms(nocheckout.p50),
        ms(nocheckout.min),
        ms(nocheckout.p90),
        ms(nocheckout.max),
    ]);
    rows.push(vec![
        "for the per-task path: takt `sync_mirror` with nothing to fetch".into(),
        ms(sync.p50),
        ms(sync.min),
        ms(sync.p90),
        ms(sync.max),
    ]);
    let results = table(&["method", "p50 ms", "min", "p90", "max"], &rows);

    let worktree_met = takt_vs_worktree <= RATIO_WORKTREE_TARGET;
    let clone_met = clone_vs_takt >= RATIO_CLONE_TARGET;
    let overhead = takt - worktree;
    let checkout_share = (worktree - nocheckout.p50) / worktree * 100.0;
    let markdown = format!(
        "{measured}

**What.** The cost of giving a task its own checkout of a large repository: takt's
provisioning path (`WorkspaceManager::ensure` for a new identifier, after the mirror exists)
against the git operations it could have used instead.

**How.** A repository of {FILES_TEXT} files in {dirs} nested directories ({mb:.0} MB of text, one
commit, written straight into a {pack} pack by `git fast-import`) is generated in {gen:.1} s in a
temporary directory on **{fs}** ({base}; `TAKT_BENCH_DIR` picks another place). takt's mirror is
created once by `sync_mirror` (a bare clone, {first:.0} ms). Then {REPETITIONS} repetitions (after
one warm-up) each provision a new checkout with every method, the order rotating between
repetitions; each checkout is deleted right after it was timed ({deleted_count} deletions took
{deleted:.1} s in all). Times are wall-clock around the call or the git process, so takt's own git
processes and its async process handling are included. The numbers are taken on tmpfs because
this VM's ext4 is mounted with `discard`: deleting the checkouts there took 500 s under load in a
trial run on 2026-11-22, and a running deletion slows every other disk operation several times
(`../shared/reference/platform.md` §2.1). tmpfs makes writing files cheaper, so on ext4 every
method costs more, the checkout-bound ones most.

**Targets.** takt / worktree ≤ {RATIO_WORKTREE_TARGET} (takt adds little to the git floor) and
clone / takt ≥ {RATIO_CLONE_TARGET} (a task workspace is an order of magnitude cheaper than a clone).

{results}
| ratio (of p50s) | value | target | |
|---|---:|---:|---|
| takt / worktree | {takt_vs_worktree:.2} | ≤ {RATIO_WORKTREE_TARGET} | {worktree_verdict} |
| clone / takt | {clone_vs_takt:.2} | ≥ {RATIO_CLONE_TARGET} | {clone_verdict} |
| clone --no-local / takt | {no_local_vs_takt:.2} | (context) | |

**Reading.** {overhead_reading} The worktree itself is almost
all checkout: without writing files it takes {nocheck} ms, so writing the {FILES_TEXT} files is
{checkout_share:.1} % of it. {clone_reading} Besides `ensure`, every task also pays a
`sync_mirror` first ({sync} ms at p50 here, with nothing new in the source).
",
        measured = machine.measured_line(),
        dirs = TOP * SUB,
        mb = bytes as f64 / 1e6,
        gen = generated_in.as_secs_f64(),
        first = first_sync.as_secs_f64() * 1e3,
        deleted = deleted_in.as_secs_f64(),
        worktree_verdict = verdict(worktree_met),
        clone_verdict = verdict(clone_met),
        overhead_reading = if (takt_vs_worktree - 1.0).abs() < 0.05 {
            format!(
                "takt's `ensure` and a bare `git worktree add` are within 5 % of each other \
                 ({} vs {} ms): the git processes `ensure` adds around the add \
                 (`check-ref-format`, `worktree prune`, `rev-parse` of the branch, a few ms each) \
                 are lost in the checkout's variance.",
                ms(takt),
                ms(worktree)
            )
        } else {
            format!(
                "takt costs {} ms more than a bare `git worktree add` ({:+.0} %): the git \
                 processes `ensure` runs around the add (`check-ref-format`, `worktree prune`, \
                 `rev-parse` of the branch) and the inspection of the target path, plus the \
                 checkout's own variance.",
                ms(overhead),
                (takt_vs_worktree - 1.0) * 100.0
            )
        },
        fs = fs,
        base = base.display(),
        deleted_count = deleted,
        nocheck = ms(nocheckout.p50),
        sync = ms(sync.p50),
        clone_reading = if clone_met {
            format!(
                "A plain clone costs {clone_vs_takt:.1}× takt's provisioning, so the clone target is met."
            )
        } else {
            format!(
                "The clone target is **missed**: a plain local clone takes {clone} ms, \
                 {clone_vs_takt:.2}× takt{faster}, because it costs the same checkout of {FILES_TEXT} files and \
                 git hardlinks a local clone's objects instead of copying them, so the only work a \
                 worktree saves is small. Even `--no-local`, which copies every object through the \
                 pack protocol, is only {no_local_vs_takt:.1}× takt. A 10× advantage over a clone \
                 needs a workspace that does not write the files at all (an overlay of a prepared \
                 checkout, `../shared/reference/platform.md` §2.3: mounting takes milliseconds), or \
                 a much larger object store than this repository's {pack}.",
                clone = ms(clone),
                faster = if clone_vs_takt < 0.97 {
                    " (here the clone was even a little faster)"
                } else {
                    ""
                },
            )
        },
    );
    let markdown = match overlay {
        Some((ready, teardown, golden)) => {
            let ready = Dist::of(&ready).context("no overlay samples")?;
            let teardown = Dist::of(&teardown).context("no teardown samples")?;
            println!(
                "  overlay: ready p50 {:.1} ms (golden tree once: {:.0} ms), teardown p50 {:.1} ms",
                ready.p50, golden, teardown.p50
            );
            format!(
                "{markdown}
**Overlay workspaces** (`workspace.overlay`, the default for a root daemon). The golden tree of the base
commit is made once ({golden:.0} ms here: `read-tree` + `checkout-index` of the {FILES_TEXT}
files, and the index refreshed); each task then gets `git worktree add --no-checkout` plus a
kernel overlay mount and a copy of the golden index. {REPETITIONS} new workspaces after a
warm-up; teardown is `remove` (unmount, layers renamed into the trash, the reaper deletes
them in the background).

{table}
| ratio (of p50s) | value | target | |
|---|---:|---:|---|
| overlay ready | {ready_p50} ms | ≤ {OVERLAY_TARGET_MS} ms | {ready_verdict} |
| worktree / overlay | {vs_worktree:.1} | (context) | |
| clone / overlay | {vs_clone:.1} | (context) | |
",
                table = table(
                    &["overlay workspace", "p50 ms", "min", "p90", "max"],
                    &[
                        vec![
                            "ready (`ensure`, new identifier)".into(),
                            ms(ready.p50),
                            ms(ready.min),
                            ms(ready.p90),
                            ms(ready.max),
                        ],
                        vec![
                            "teardown on the critical path (`remove`)".into(),
                            ms(teardown.p50),
                            ms(teardown.min),
                            ms(teardown.p90),
                            ms(teardown.max),
                        ],
                    ],
                ),
                ready_p50 = ms(ready.p50),
                ready_verdict = verdict(ready.p50 <= OVERLAY_TARGET_MS),
                vs_worktree = worktree / ready.p50,
                vs_clone = clone / ready.p50,
            )
        }
        None => format!(
            "{markdown}\n**Overlay workspaces** were not measured: overlays cannot be mounted by \
             this process (they need root).\n"
        ),
    };
    Ok(Section {
        name: "workspace",
        markdown,
    })
}

/// Ready and teardown times (ms) of overlay workspaces, and the one-time golden tree cost.
type OverlaySamples = (Vec<f64>, Vec<f64>, f64);

/// Overlay workspaces on the same source; `None` where overlays cannot be mounted.
fn overlay_samples(
    root: &Path,
    source: &Path,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<OverlaySamples>> {
    let dir = root.join("state-overlay").join("overlay");
    fs_err::create_dir_all(&dir)?;
    if let Err(error) = takt_workspace::overlays_work(&dir) {
        println!("  overlays unavailable here ({error})");
        return Ok(None);
    }
    let manager = WorkspaceManager::new(WorkspaceSettings {
        root: root.join("ws-overlay"),
        mirror_dir: root.join("state-overlay").join("mirror.git"),
        source: RepoSource::Path(source.to_path_buf()),
        base_branch: None,
        branch_prefix: "takt/".into(),
        hooks: Hooks::default(),
        hook_timeout: Duration::from_secs(60),
        overlay: Some(takt_workspace::OverlaySettings { dir, owner: None }),
    })?;
    let base = rt.block_on(manager.sync_mirror())?;
    let (mut ready, mut teardown) = (Vec::new(), Vec::new());
    let mut golden = 0.0;
    for rep in 0..=REPETITIONS {
        let identifier = format!("OVERLAY-{rep}");
        let began = Instant::now();
        let workspace = rt.block_on(manager.ensure(&identifier, &base))?;
        let took = began.elapsed().as_secs_f64() * 1e3;
        if !workspace.path.join(last_file()).is_file() {
            bail!(
                "the overlay workspace {} misses files",
                workspace.path.display()
            );
        }
        let began = Instant::now();
        rt.block_on(manager.remove(identifier.as_str()))?;
        let removed = began.elapsed().as_secs_f64() * 1e3;
        if rep == 0 {
            golden = took;
        } else {
            ready.push(took);
            teardown.push(removed);
        }
    }
    // Let the reaper finish before the temporary directory goes.
    let trash = root.join("ws-overlay").join(takt_workspace::TRASH_DIR);
    let deadline = Instant::now() + Duration::from_secs(120);
    while fs_err::read_dir(&trash).map(|d| d.count()).unwrap_or(0) > 0 && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Some((ready, teardown, golden)))
}
