//! Building a warm cache: the gates run on a clean checkout of the base commit at the fixed
//! path, each run kept as the base's baseline, and the `target/` they leave frozen.

use std::path::Path;

use tracing::info;

use super::store::Lease;
use super::{CACHED_DIR, Scope, key, mtime, place};
use crate::runner::Verifier;

impl Verifier {
    pub(super) async fn cache_key(&self, scope: &Scope<'_>) -> Result<String, String> {
        let mut described = Vec::new();
        for gate in scope.gates {
            described.push((gate, self.environment(&gate.run).await));
        }
        let hidden = scope.hidden.to_vec();
        let digest = tokio::task::spawn_blocking(move || key::hidden_digest(&hidden))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("reading the hidden gates' files: {error}"))?;
        Ok(key::cache_key(scope.base, &described, &digest))
    }

    /// Runs every gate on a clean checkout of `base` at the fixed path, keeps each run as the
    /// base's baseline, and freezes the `target/` they left as the cache of `key`.
    pub(super) async fn build_cache(
        &self,
        scope: &Scope<'_>,
        key: &str,
        fixed: &place::Fixed,
        scratch: &Path,
    ) -> Result<Lease, String> {
        let (base, hidden) = (scope.base, scope.hidden);
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
        for gate in scope.gates {
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
        let measured = built.clone();
        let bytes = tokio::task::spawn_blocking(move || super::seal::disk_usage(&measured))
            .await
            .map_err(|error| error.to_string())?
            .map_err(|error| format!("measuring {}: {error}", built.display()))?;
        if bytes > scope.max_bytes {
            return Err(format!(
                "the base's {CACHED_DIR}/ takes {}, more than verify.warm_cache_max_mb \
                 allows ({}), so it is not kept; raise the limit to cache it",
                size(bytes),
                size(scope.max_bytes)
            ));
        }
        let lease = self.warm.caches.freeze(key, base, &built, bytes).await?;
        info!(
            cache = %key,
            base,
            seconds = started.elapsed().as_secs_f64(),
            "warm build cache frozen"
        );
        let caches = self.warm.caches.clone();
        let max_bytes = scope.max_bytes;
        tokio::task::spawn_blocking(move || caches.prune(max_bytes));
        Ok(lease)
    }
}

/// `bytes` for people: MiB, or KiB below one MiB.
fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}
