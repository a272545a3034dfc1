//! Building a warm cache: the gates run on a clean checkout of the base commit at the fixed
//! path, each run kept as the base's baseline, and the `target/` they leave frozen.

use std::path::{Path, PathBuf};

use tracing::info;

use super::store::Lease;
use super::{CACHED_DIR, key, mtime, place};
use crate::runner::Verifier;
use crate::spec::GateSpec;

impl Verifier {
    pub(super) async fn cache_key(
        &self,
        base: &str,
        gates: &[GateSpec],
        hidden: &[PathBuf],
    ) -> Result<String, String> {
        let mut described = Vec::new();
        for gate in gates {
            described.push((gate, self.environment(&gate.run).await));
        }
        let hidden = hidden.to_vec();
        let digest = tokio::task::spawn_blocking(move || key::hidden_digest(&hidden))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("reading the hidden gates' files: {error}"))?;
        Ok(key::cache_key(base, &described, &digest))
    }

    /// Runs every gate on a clean checkout of `base` at the fixed path, keeps each run as the
    /// base's baseline, and freezes the `target/` they left as the cache of `key`.
    pub(super) async fn build_cache(
        &self,
        base: &str,
        key: &str,
        gates: &[GateSpec],
        hidden: &[PathBuf],
        fixed: &place::Fixed,
        scratch: &Path,
    ) -> Result<Lease, String> {
        let dir = scratch.join("warm-base");
        let mut checkout = self
            .checkout(base, &dir, hidden)
            .await
            .map_err(|error| format!("checking out the base commit: {error}"))?;
        if fs_err::symlink_metadata(dir.join(CACHED_DIR)).is_ok() {
            return Err(format!("the base commit tracks `{CACHED_DIR}`"));
        }
        let normalized = dir.clone();
        tokio::task::spawn_blocking(move || mtime::normalize(&normalized, &[]))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("setting the base checkout's file times: {error}"))?;
        checkout.fixed = Some(fixed.clone());
        checkout.build_cache = "cold: building the warm cache on the base commit".to_owned();
        let started = std::time::Instant::now();
        for gate in gates {
            let run = self
                .run_once(gate, &checkout, scratch.join("warm-runs").join(&gate.name))
                .await
                .map_err(|error| format!("running {} on the base commit: {error}", gate.name))?;
            self.store_baseline(base, gate, &run).await;
        }
        let built = dir.join(CACHED_DIR);
        if !built.is_dir() {
            return Err(format!(
                "the gates left no {CACHED_DIR}/ on the base commit"
            ));
        }
        let lease = self.warm.caches.freeze(key, base, &built).await?;
        info!(
            cache = %key,
            base,
            seconds = started.elapsed().as_secs_f64(),
            "warm build cache frozen"
        );
        let caches = self.warm.caches.clone();
        tokio::task::spawn_blocking(move || caches.prune());
        Ok(lease)
    }
}
