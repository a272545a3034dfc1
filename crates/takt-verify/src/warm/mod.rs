//! Warm build caches for gates (`verify.warm_cache`).
//!
//! A cold gate run compiles everything; most changes touch one crate. takt keeps, per base
//! commit, the build outputs its gates produced on that base (Cargo's `target/`) and lets a
//! change's gates start from them:
//!
//! - **Made from the base commit only.** The cache is built by running the gates on a clean
//!   checkout of the base (those runs also serve as the base's baselines) and frozen. Nothing a
//!   change's gates write ever flows back: they see the cache through a kernel overlay whose
//!   upper layer is private to the verification and discarded with it.
//! - **Frozen.** The cache lives under a directory only root may enter, never bound into a
//!   sandbox, and is sealed (see [`seal`]): a cache that changed since it was frozen is
//!   discarded, never used.
//! - **Trusted by the build tool, not by takt.** Cargo still decides what is fresh. For its
//!   mtime checks to be right, every checkout appears at one fixed path (see [`place`]) and
//!   files the change did not touch get the base checkout's fixed old mtime (see [`mtime`]).
//! - **Optional.** Overlays and mount namespaces need root here. Without them gates run cold,
//!   and the evidence says why (a copy of the cache was measured, see docs/BENCHMARKS.md, but
//!   without a mount namespace the checkout cannot keep the fixed path it needs).
//!
//! Each gate run's `environment.build_cache` in the report says `warm: …` or `cold: …` and why.

mod build;
mod key;
mod mtime;
pub(crate) mod place;
mod seal;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{info, warn};

use crate::gates::Checkout;
use crate::runner::{Verifier, VerifyJob};
use crate::spec::GateSpec;
use store::{Caches, Lease, Opened};

/// The directory Cargo writes its outputs to, relative to the checkout: the one build cache
/// takt keeps (only when the checkout has a `Cargo.toml` at its root).
const CACHED_DIR: &str = "target";

/// A verifier's warm caches: where they live and whether this host can use them.
#[derive(Debug)]
pub(crate) struct Warm {
    /// `<verify>/warm`.
    root: PathBuf,
    caches: Arc<Caches>,
    /// Probed on first use: the tools for the fixed path, or why warm runs cannot work here.
    ready: tokio::sync::OnceCell<Result<place::Tools, String>>,
}

/// What a change's warm start is for: its base, the gates and hidden files the cache is keyed
/// by, and the disk all caches may take together.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub base: &'a str,
    pub gates: &'a [GateSpec],
    pub hidden: &'a [PathBuf],
    pub max_bytes: u64,
}

/// A change's checkout with the cache mounted on its `target/`: unmounted when dropped, and
/// only then is the cache released.
#[derive(Debug)]
pub(crate) struct Mounted {
    at: PathBuf,
    _lease: Lease,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        takt_workspace::unmount_overlay(&self.at);
    }
}

impl Warm {
    pub(crate) fn new(verify_root: &Path) -> Warm {
        let root = verify_root.join("warm");
        Warm {
            caches: Caches::at(&root.join("caches")),
            root,
            ready: tokio::sync::OnceCell::new(),
        }
    }

    /// The path every warm checkout appears at inside the gate sandbox.
    fn fixed_path(&self) -> PathBuf {
        self.root.join("checkout")
    }

    /// The placement tools, or why warm runs cannot work on this host (probed once).
    async fn ready(&self, checkouts: &Path) -> Result<place::Tools, String> {
        self.ready
            .get_or_init(|| async {
                let result = self.probe(checkouts).await;
                match &result {
                    Ok(_) => info!(dir = %self.root.display(), "warm build caches available"),
                    Err(reason) => warn!(%reason, "warm build caches unavailable; gates run cold"),
                }
                result
            })
            .await
            .clone()
    }

    async fn probe(&self, checkouts: &Path) -> Result<place::Tools, String> {
        self.caches.prepare().await?;
        let at = self.fixed_path();
        fs_err::tokio::create_dir_all(&at)
            .await
            .map_err(|e| format!("creating {}: {e}", at.display()))?;
        let scratch = self.root.clone();
        tokio::task::spawn_blocking(move || takt_workspace::overlays_work(&scratch))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|reason| format!("overlays cannot be mounted ({reason})"))?;
        let tools = place::Tools::find()?;
        place::probe(&tools, &self.root, &at).await?;
        sweep_stale_mounts(checkouts);
        Ok(tools)
    }
}

/// A frozen build cache lent to an agent's sandbox: kept (never pruned) while this lives.
#[derive(Debug)]
pub struct AgentBuildCache {
    /// The cache's outputs: the read-only lower layer of the overlay the agent sees.
    pub lower: PathBuf,
    /// Which cache: a new one needs new upper layers.
    pub key: String,
    /// The name of the directory it belongs at in the workspace (`target`).
    pub dir: &'static str,
    /// One line for the run's evidence: which cache.
    pub note: String,
    /// When it was frozen: no output in it is newer. A source changed before then looks
    /// older than the outputs built from the base's version of it.
    pub frozen_at: std::time::SystemTime,
    _lease: Lease,
}

impl Verifier {
    /// The newest frozen build cache of `base` (made by the first verification on that base,
    /// or ahead of it after a merge, see [`Verifier::prepare_build_cache`]), for an agent
    /// working on a tree of that commit at [`Verifier::warm_path`]; the error says why there
    /// is none, for the run's evidence.
    pub async fn build_cache_for_agent(&self, base: &str) -> Result<AgentBuildCache, String> {
        self.warm.ready(&self.root.join("checkouts")).await?;
        let short = &base[..base.len().min(12)];
        match self.warm.caches.open_for_base(base).await {
            Opened::Ready(lease) => {
                let key = lease.key().to_owned();
                let seal = lease.target.with_file_name("seal");
                let frozen_at = fs_err::metadata(&seal)
                    .and_then(|meta| meta.modified())
                    .map_err(|error| format!("reading when the cache was frozen: {error}"))?;
                Ok(AgentBuildCache {
                    frozen_at,
                    lower: lease.target.clone(),
                    note: format!(
                        "{CACHED_DIR}/ is an overlay of the build cache of base {short} (cache {})",
                        &key[..key.len().min(12)],
                    ),
                    key,
                    dir: CACHED_DIR,
                    _lease: lease,
                })
            }
            Opened::Missing => Err(format!(
                "no build cache of base {short} yet (the first verification on it makes one)"
            )),
            Opened::Spoiled(why) => Err(format!("the build cache of base {short} {why}")),
        }
    }

    /// Builds the frozen cache of the base commit `job.commit` ahead of any change to it
    /// (the base just moved there), so the next tasks' agents and gates start warm instead of
    /// the first verification on the base paying for it. `job` names the gates and settings
    /// the verifications on that base will use. Needs the base's golden tree (overlay
    /// workspaces), where the gates are detected. Takes a verification slot. Returns how the
    /// cache stands, or why there is none.
    pub async fn prepare_build_cache(&self, job: &VerifyJob) -> Result<String, String> {
        let base = job.commit.as_str();
        let golden = self.workspaces.golden_tree(base).ok_or_else(|| {
            "the base has no golden tree (workspace.overlay), where its gates are detected"
                .to_owned()
        })?;
        if !golden.join("Cargo.toml").is_file() {
            return Err(
                "no build cache is known for this repository (takt keeps Cargo's target/ for a \
                 Cargo.toml at the root)"
                    .to_owned(),
            );
        }
        let tools = self.warm.ready(&self.root.join("checkouts")).await?;
        let fixed = place::Fixed {
            at: self.warm.fixed_path(),
            tools,
        };
        let hidden: Vec<PathBuf> = job
            .gates
            .iter()
            .filter_map(|gate| gate.hidden_files.clone())
            .collect();
        let gates = self.gate_list(job, &golden);
        let scope = Scope {
            base,
            gates: &gates,
            hidden: &hidden,
            max_bytes: job.settings.warm_cache_max_bytes,
        };
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.slots.acquire().await.ok();
        let scratch = self.scratch_dir(&format!("prepare-{}", &base[..base.len().min(12)]));
        let result = self.cache_for(&scope, &fixed, &scratch).await;
        crate::runner::discard(scratch).await;
        let (_lease, key, how) = result?;
        Ok(format!(
            "cache {} of base {base}: {how}",
            &key[..key.len().min(12)]
        ))
    }

    /// Where agents' workspaces appear when they use a build cache, whether or not one exists
    /// yet: the one path every warm build runs at, made if missing and resolved as the kernel
    /// names it (gates start there through a bind, so that is the path their build tool
    /// recorded; an agent's sandbox holds the path literally).
    pub fn warm_path(&self) -> std::io::Result<PathBuf> {
        let at = self.warm.fixed_path();
        fs_err::create_dir_all(&at)?;
        fs_err::canonicalize(&at)
    }
}

/// Unmounts caches left mounted on checkouts by a takt process that died (its checkouts are
/// named `…-<pid>-<n>`). Mounts of live processes stay.
fn sweep_stale_mounts(checkouts: &Path) {
    let Ok(table) = fs_err::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for line in table.lines() {
        let Some(point) = line.split_whitespace().nth(4) else {
            continue;
        };
        let point = Path::new(point);
        let Ok(rest) = point.strip_prefix(checkouts) else {
            continue;
        };
        let pid = rest
            .components()
            .next()
            .and_then(|name| name.as_os_str().to_str())
            .and_then(|name| name.rsplit('-').nth(1))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && fs_err::metadata(format!("/proc/{pid}")).is_err()
        {
            warn!(mount = %point.display(), "unmounting a warm cache a dead takt left mounted");
            takt_workspace::unmount_overlay(point);
        }
    }
}

impl Verifier {
    /// Makes `change` warm when it can — its `target/` an overlay of the frozen cache of
    /// `base` (built now from the base commit when there is none), the checkout placed at the
    /// fixed path — and records in `change.build_cache` how its gates start and why. `None`
    /// when they run cold. `changed` lists every path the change touched (both sides of a
    /// rename).
    pub(crate) async fn warm_up(
        &self,
        scope: &Scope<'_>,
        change: &mut Checkout,
        changed: &[String],
        scratch: &Path,
    ) -> Option<Mounted> {
        match self.try_warm(scope, change, changed, scratch).await {
            Ok((mounted, fixed, note)) => {
                info!(commit = %change.commit, build_cache = %note, "gates run warm");
                change.fixed = Some(fixed);
                change.build_cache = format!("warm: {note}");
                Some(mounted)
            }
            Err(reason) => {
                info!(commit = %change.commit, %reason, "gates run cold");
                change.build_cache = format!("cold: {reason}");
                None
            }
        }
    }

    async fn try_warm(
        &self,
        scope: &Scope<'_>,
        change: &Checkout,
        changed: &[String],
        scratch: &Path,
    ) -> Result<(Mounted, place::Fixed, String), String> {
        let base = scope.base;
        let tools = self
            .warm
            .ready(&self.root.join("checkouts"))
            .await
            .map_err(|reason| {
                format!(
                    "{reason}; without an overlay and a private mount namespace the checkout \
                     cannot appear at the fixed path cached outputs need, so takt builds cold \
                     rather than copying the cache"
                )
            })?;
        if !change.dir.join("Cargo.toml").is_file() {
            return Err(
                "no build cache is known for this repository (takt keeps Cargo's target/ for a \
                 Cargo.toml at the root)"
                    .to_owned(),
            );
        }
        if fs_err::symlink_metadata(change.dir.join(CACHED_DIR)).is_ok() {
            return Err(format!(
                "the change's tree has its own `{CACHED_DIR}`, which the cache would hide"
            ));
        }
        let fixed = place::Fixed {
            at: self.warm.fixed_path(),
            tools,
        };
        let (lease, key, how) = self.cache_for(scope, &fixed, scratch).await?;
        let short = &base[..base.len().min(12)];
        let changed = changed.to_vec();
        let dir = change.dir.clone();
        tokio::task::spawn_blocking(move || mtime::normalize(&dir, &changed))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("setting the checkout's file times: {error}"))?;
        let mounted = mount(&lease, &change.dir, &scratch.join("warm-layers")).await?;
        let mounted = Mounted {
            at: mounted,
            _lease: lease,
        };
        let note = format!(
            "{CACHED_DIR}/ is an overlay of the build cache of base {short} (cache {}, {how}), \
             the checkout at {}",
            &key[..12],
            fixed.at.display()
        );
        Ok((mounted, fixed, note))
    }

    /// The frozen cache `scope` asks for, leased: opened, or built now from the base commit
    /// (in `scratch`) when there is none or it is spoiled. Also says which key and how.
    async fn cache_for(
        &self,
        scope: &Scope<'_>,
        fixed: &place::Fixed,
        scratch: &Path,
    ) -> Result<(Lease, String, String), String> {
        let base = scope.base;
        let key = self.cache_key(scope).await?;
        let short = &base[..base.len().min(12)];
        let (lease, how) = {
            let _building = self.warm.caches.build_lock(&key).await;
            match self.warm.caches.open(&key).await {
                Opened::Ready(lease) => (lease, "reused".to_owned()),
                Opened::Missing => {
                    if let Some(reason) = self.warm.caches.failed(&key) {
                        return Err(format!(
                            "building the cache of base {short} failed earlier: {reason}"
                        ));
                    }
                    let lease = self
                        .build_cache(scope, &key, fixed, scratch)
                        .await
                        .inspect_err(|reason| self.warm.caches.remember_failure(&key, reason))?;
                    (lease, "built now from the base commit".to_owned())
                }
                Opened::Spoiled(why) => {
                    warn!(cache = %key, base, %why, "a warm build cache is spoiled");
                    if !self.warm.caches.discard(&key) {
                        return Err(format!(
                            "the cache of base {short} is unusable ({why}) and still in use"
                        ));
                    }
                    let lease = self.build_cache(scope, &key, fixed, scratch).await?;
                    (
                        lease,
                        format!("rebuilt from the base commit: the old one {why}"),
                    )
                }
            }
        };
        Ok((lease, key, how))
    }
}

/// Mounts the leased cache on `checkout/target` with its upper layer in `layers`; returns the
/// mount point.
async fn mount(lease: &Lease, checkout: &Path, layers: &Path) -> Result<PathBuf, String> {
    let at = checkout.join(CACHED_DIR);
    let (upper, work) = (layers.join("upper"), layers.join("work"));
    for dir in [&at, &upper, &work] {
        fs_err::tokio::create_dir_all(dir)
            .await
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
    }
    takt_workspace::mount_throwaway_overlay(&lease.target, &upper, &work, &at)
        .map_err(|error| format!("mounting the cache on {}: {error}", at.display()))?;
    Ok(at)
}
