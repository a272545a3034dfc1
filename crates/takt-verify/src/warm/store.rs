//! The frozen caches on disk, `<verify>/warm/caches/<key>/`: `target/` (the outputs, used only
//! as the read-only lower layer of overlays), `seal` (see [`super::seal`]), `base` (the commit,
//! for people), `bytes` (its disk usage) and `used` (its mtime orders caches by last use).
//!
//! Bounded: after a new cache is frozen, the most recently used are kept while they number at
//! most [`KEEP`] and fit in `verify.warm_cache_max_mb` together; the rest are removed, never
//! one in use. Removal renames into `.trash/` (instant) and deletes in the background:
//! deleting a `target/` on this kind of disk takes seconds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Caches kept: enough for a few bases in flight at once (tasks started before and after
/// `main` moved), few enough that a big workspace's `target/`s do not fill the disk.
pub(crate) const KEEP: usize = 4;

const TRASH: &str = ".trash";

/// The caches of one directory. One per directory per process (see [`Caches::at`]): a
/// reloaded daemon makes a new verifier while the old one's verifications still hold leases.
#[derive(Debug)]
pub(crate) struct Caches {
    dir: PathBuf,
    /// Leases per key: a cache with any is never removed.
    in_use: Mutex<BTreeMap<String, usize>>,
    /// One build per key at a time; the others wait for it and use it.
    building: tokio::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Keys whose build failed in this process, and why: not tried again until a restart, so
    /// a repository whose gates leave no `target/` does not pay a base build per change.
    failed: Mutex<BTreeMap<String, String>>,
}

/// What [`Caches::open`] found.
#[derive(Debug)]
pub(crate) enum Opened {
    Ready(Lease),
    Missing,
    /// Present but not as frozen (the reason): not to be used.
    Spoiled(String),
}

/// A cache in use: not removed until dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    caches: Arc<Caches>,
    key: String,
    /// The frozen `target/`.
    pub target: PathBuf,
}

impl Lease {
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut in_use) = self.caches.in_use.lock()
            && let Some(count) = in_use.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                in_use.remove(&self.key);
            }
        }
    }
}

fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String + use<> {
    let what = format!("{action} {}", path.display());
    move |error| format!("{what}: {error}")
}

impl Caches {
    /// The caches under `dir` (`<verify>/warm/caches`), shared by every verifier of this
    /// process.
    pub(crate) fn at(dir: &Path) -> Arc<Caches> {
        static ALL: Mutex<Vec<Arc<Caches>>> = Mutex::new(Vec::new());
        let mut all = match ALL.lock() {
            Ok(all) => all,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(caches) = all.iter().find(|caches| caches.dir == dir) {
            return caches.clone();
        }
        let caches = Arc::new(Caches {
            dir: dir.to_path_buf(),
            in_use: Mutex::new(BTreeMap::new()),
            building: tokio::sync::Mutex::new(BTreeMap::new()),
            failed: Mutex::new(BTreeMap::new()),
        });
        all.push(caches.clone());
        caches
    }

    /// Creates the directory (only root may enter it: gates reach a cache through an overlay
    /// only) and removes what a previous process left: trash, unfinished builds.
    pub(crate) async fn prepare(&self) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        fs_err::tokio::create_dir_all(&self.dir)
            .await
            .map_err(io("creating", &self.dir))?;
        fs_err::tokio::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .await
            .map_err(io("restricting", &self.dir))?;
        let mut leftovers = Vec::new();
        if let Ok(entries) = fs_err::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // `.build-<key>-<pid>-…`: this process's own may be a build in progress (a
                // reloaded daemon's previous verifier).
                let pid = name
                    .strip_prefix(".build-")
                    .and_then(|rest| rest.split('-').nth(1))
                    .and_then(|pid| pid.parse::<u32>().ok());
                if pid.is_some_and(|pid| pid != std::process::id()) {
                    leftovers.push(entry.path());
                }
            }
        }
        for path in leftovers {
            self.trash(&path);
        }
        self.empty_trash();
        Ok(())
    }

    /// One build of `key` at a time: hold the guard while looking for and building it.
    pub(crate) async fn build_lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .building
            .lock()
            .await
            .entry(key.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Why building `key` failed before in this process, if it did.
    pub(crate) fn failed(&self, key: &str) -> Option<String> {
        self.failed.lock().ok()?.get(key).cloned()
    }

    pub(crate) fn remember_failure(&self, key: &str, reason: &str) {
        if let Ok(mut failed) = self.failed.lock() {
            failed.insert(key.to_owned(), reason.to_owned());
        }
    }

    /// The frozen cache of `key`, leased, if it is there and still sealed as frozen.
    pub(crate) async fn open(self: &Arc<Self>, key: &str) -> Opened {
        let dir = self.dir.join(key);
        // Leased before it is checked, so pruning cannot remove it in between.
        let lease = {
            let Ok(mut in_use) = self.in_use.lock() else {
                return Opened::Missing;
            };
            if fs_err::metadata(dir.join("seal")).is_err() {
                return Opened::Missing;
            }
            *in_use.entry(key.to_owned()).or_default() += 1;
            Lease {
                caches: self.clone(),
                key: key.to_owned(),
                target: dir.join("target"),
            }
        };
        let target = lease.target.clone();
        let expected = fs_err::tokio::read_to_string(dir.join("seal")).await;
        let actual = tokio::task::spawn_blocking(move || super::seal::seal(&target)).await;
        match (expected, actual) {
            (Ok(expected), Ok(Ok(actual))) if expected.trim() == actual => {
                let _ = fs_err::tokio::write(dir.join("used"), now_text()).await;
                Opened::Ready(lease)
            }
            (Ok(_), Ok(Ok(_))) => {
                Opened::Spoiled("its files changed after it was frozen".to_owned())
            }
            (Err(error), _) | (_, Ok(Err(error))) => {
                Opened::Spoiled(format!("it could not be read: {error}"))
            }
            (_, Err(error)) => Opened::Spoiled(format!("it could not be checked: {error}")),
        }
    }

    /// The most recently used frozen cache built from `base`, whatever gates built it, leased;
    /// [`Opened::Missing`] when there is none.
    pub(crate) async fn open_for_base(self: &Arc<Self>, base: &str) -> Opened {
        let mut found: Option<(std::time::SystemTime, String)> = None;
        if let Ok(entries) = fs_err::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.')
                    || fs_err::read_to_string(entry.path().join("base"))
                        .map_or(true, |text| text.trim() != base)
                {
                    continue;
                }
                let used = fs_err::metadata(entry.path().join("used"))
                    .and_then(|meta| meta.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                if found.as_ref().is_none_or(|(newest, _)| used > *newest) {
                    found = Some((used, name));
                }
            }
        }
        match found {
            Some((_, key)) => self.open(&key).await,
            None => Opened::Missing,
        }
    }

    /// Moves `built` (a `target/` the gates just made on the base commit) in as the frozen
    /// cache of `key`, seals it, and leases it.
    pub(crate) async fn freeze(
        self: &Arc<Self>,
        key: &str,
        base: &str,
        built: &Path,
        bytes: u64,
    ) -> Result<Lease, String> {
        let staging = self
            .dir
            .join(format!(".build-{key}-{}-{}", std::process::id(), unique()));
        fs_err::tokio::create_dir_all(&staging)
            .await
            .map_err(io("creating", &staging))?;
        let target = staging.join("target");
        fs_err::tokio::rename(built, &target)
            .await
            .map_err(io("moving the built outputs to", &target))?;
        let sealed = {
            let walked = target.clone();
            tokio::task::spawn_blocking(move || super::seal::seal(&walked))
                .await
                .map_err(|error| error.to_string())?
                .map_err(io("sealing", &target))?
        };
        for (name, text) in [
            ("seal", sealed),
            ("base", base.to_owned()),
            ("bytes", bytes.to_string()),
            ("used", now_text()),
        ] {
            let path = staging.join(name);
            fs_err::tokio::write(&path, text)
                .await
                .map_err(io("writing", &path))?;
        }
        let dir = self.dir.join(key);
        // Leased before it appears, so no prune can take it.
        let lease = {
            let mut in_use = self
                .in_use
                .lock()
                .map_err(|_| "the cache registry is poisoned".to_owned())?;
            if let Err(error) = fs_err::rename(&staging, &dir) {
                drop(in_use);
                self.trash(&staging);
                return Err(format!("storing the cache at {}: {error}", dir.display()));
            }
            *in_use.entry(key.to_owned()).or_default() += 1;
            Lease {
                caches: self.clone(),
                key: key.to_owned(),
                target: dir.join("target"),
            }
        };
        Ok(lease)
    }

    /// Removes the cache of `key` unless it is in use; `false` when it is.
    pub(crate) fn discard(&self, key: &str) -> bool {
        let Ok(in_use) = self.in_use.lock() else {
            return false;
        };
        if in_use.contains_key(key) {
            return false;
        }
        self.trash(&self.dir.join(key));
        drop(in_use);
        self.empty_trash();
        true
    }

    /// Keeps the most recently used caches while they number at most [`KEEP`] and take at
    /// most `max_bytes` together, and every cache in use; the rest go.
    pub(crate) fn prune(&self, max_bytes: u64) {
        let Ok(in_use) = self.in_use.lock() else {
            return;
        };
        let mut caches: Vec<(std::time::SystemTime, String, u64)> = fs_err::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|entry| {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        if name.starts_with('.') {
                            return None;
                        }
                        let used = fs_err::metadata(entry.path().join("used"))
                            .and_then(|meta| meta.modified())
                            .unwrap_or(std::time::UNIX_EPOCH);
                        // Caches frozen before sizes were recorded count by number only.
                        let bytes = fs_err::read_to_string(entry.path().join("bytes"))
                            .ok()
                            .and_then(|text| text.trim().parse().ok())
                            .unwrap_or(0);
                        Some((used, name, bytes))
                    })
                    .collect()
            })
            .unwrap_or_default();
        caches.sort_by(|a, b| b.cmp(a));
        let (mut kept, mut kept_bytes, mut removed) = (0usize, 0u64, false);
        for (_, key, bytes) in caches {
            let fits = kept < KEEP && kept_bytes.saturating_add(bytes) <= max_bytes;
            if fits || in_use.contains_key(&key) {
                kept += 1;
                kept_bytes = kept_bytes.saturating_add(bytes);
            } else {
                tracing::info!(cache = %key, bytes, "removing a warm build cache (least recently used)");
                self.trash(&self.dir.join(&key));
                removed = true;
            }
        }
        drop(in_use);
        if removed {
            self.empty_trash();
        }
    }

    /// Renames `path` into the trash (same filesystem: instant).
    fn trash(&self, path: &Path) {
        let trash = self.dir.join(TRASH);
        let _ = fs_err::create_dir_all(&trash);
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = fs_err::rename(path, trash.join(format!("{name}-{}", unique())));
    }

    /// Deletes the trash's contents on a blocking thread, off every caller's path.
    fn empty_trash(&self) {
        let trash = self.dir.join(TRASH);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn_blocking(move || {
            if let Ok(entries) = fs_err::read_dir(&trash) {
                for entry in entries.flatten() {
                    let _ = fs_err::remove_dir_all(entry.path());
                }
            }
        });
    }
}

fn now_text() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs().to_string())
        .unwrap_or_default()
}

/// A name part no other call in this process (or a recent one) repeats.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{nanos}-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    async fn frozen(caches: &Arc<Caches>, root: &Path, key: &str) -> Lease {
        frozen_sized(caches, root, key, 1).await
    }

    async fn frozen_sized(caches: &Arc<Caches>, root: &Path, key: &str, bytes: u64) -> Lease {
        let built = root.join(format!("built-{key}"));
        fs_err::create_dir_all(built.join("debug")).unwrap();
        fs_err::write(built.join("debug/out"), key).unwrap();
        caches.freeze(key, "base", &built, bytes).await.unwrap()
    }

    fn left(caches: &Caches, keys: usize) -> Vec<String> {
        (0..keys)
            .map(|i| format!("k{i}"))
            .filter(|key| caches.dir.join(key).exists())
            .collect()
    }

    fn used_at(caches: &Caches, key: &str, secs: u64) {
        let file = std::fs::File::options()
            .write(true)
            .open(caches.dir.join(key).join("used"))
            .unwrap();
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[tokio::test]
    async fn pruning_keeps_the_most_recently_used_and_every_cache_in_use() {
        let root = tempfile::tempdir().unwrap();
        let caches = Caches::at(&root.path().join("caches"));
        caches.prepare().await.unwrap();
        let mut leases = Vec::new();
        for i in 0..KEEP + 2 {
            let key = format!("k{i}");
            leases.push(frozen(&caches, root.path(), &key).await);
            used_at(&caches, &key, 1_000 + i as u64);
        }
        // The least recently used one is still in use; the others are released.
        let oldest = leases.remove(0);
        drop(leases);
        caches.prune(u64::MAX);
        assert_eq!(left(&caches, KEEP + 2), ["k0", "k2", "k3", "k4", "k5"]);
        drop(oldest);
        caches.prune(u64::MAX);
        assert!(!caches.dir.join("k0").exists(), "released, it goes too");
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_caches_that_fit_the_byte_limit_together() {
        let root = tempfile::tempdir().unwrap();
        let caches = Caches::at(&root.path().join("caches"));
        caches.prepare().await.unwrap();
        for (i, mib) in [4u64, 3, 2, 2].into_iter().enumerate() {
            let key = format!("k{i}");
            drop(frozen_sized(&caches, root.path(), &key, mib << 20).await);
            used_at(&caches, &key, 1_000 + i as u64);
        }
        // Newest first: k3 (2 MiB) and k2 (2) fit in 5 MiB; k1 (3) would not, and k0 is older.
        caches.prune(5 << 20);
        assert_eq!(left(&caches, 4), ["k2", "k3"]);
        // A cache in use stays even past the limit, and counts against it.
        let held = match caches.open("k2").await {
            Opened::Ready(lease) => lease,
            other => panic!("{other:?}"),
        };
        used_at(&caches, "k2", 500);
        caches.prune(2 << 20);
        assert_eq!(left(&caches, 4), ["k2", "k3"]);
        caches.prune(1 << 20);
        assert_eq!(
            left(&caches, 4),
            ["k2"],
            "k3 no longer fits; k2, in use, stays"
        );
        drop(held);
    }

    #[tokio::test]
    async fn a_cache_changed_after_freezing_is_spoiled_and_can_be_discarded() {
        let root = tempfile::tempdir().unwrap();
        let caches = Caches::at(&root.path().join("caches"));
        caches.prepare().await.unwrap();
        drop(frozen(&caches, root.path(), "k").await);
        let lease = match caches.open("k").await {
            Opened::Ready(lease) => lease,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fs_err::read_to_string(lease.target.join("debug/out")).unwrap(),
            "k"
        );
        assert!(!caches.discard("k"), "in use");
        drop(lease);
        fs_err::write(root.path().join("caches/k/target/debug/planted"), "x").unwrap();
        match caches.open("k").await {
            Opened::Spoiled(why) => assert!(why.contains("changed"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(caches.discard("k"));
        assert!(matches!(caches.open("k").await, Opened::Missing));
    }
}
