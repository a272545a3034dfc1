//! One fixed path for every warm checkout. Cargo's outputs remember absolute paths: a crate
//! built at one path and reused at another is taken as fresh, yet keeps the old path compiled
//! in (`env!("CARGO_MANIFEST_DIR")` in a test that reads its fixtures would read the base's
//! files). So the cache is built, and every change using it runs, at the same path.
//!
//! Verifications run concurrently, so that path cannot hold one checkout on the host. Each
//! gate command instead starts in a private mount namespace (`unshare --mount`) where its own
//! checkout is bound onto the fixed path, then the sandbox starts there as usual (bubblewrap
//! binds the path as it sees it). The namespace, and the bind with it, ends with the command.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Started by `unshare` in the new namespace: `$1` mount, `$2` checkout, `$3` fixed path,
/// then the command.
const SCRIPT: &str = r#"mount="$1" checkout="$2" at="$3"; shift 3
"$mount" --rbind "$checkout" "$at" || { echo "takt: cannot show the checkout at $at" >&2; exit 125; }
cd "$at" || exit 125
exec "$@""#;

/// The programs the placement needs, found once by absolute path (a gate's PATH is not
/// takt's to trust).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tools {
    unshare: PathBuf,
    mount: PathBuf,
    sh: PathBuf,
}

impl Tools {
    pub(crate) fn find() -> Result<Tools, String> {
        let find = |name: &str| {
            ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
                .iter()
                .map(|dir| Path::new(dir).join(name))
                .find(|path| path.is_file())
                .ok_or_else(|| format!("`{name}` (util-linux) is not installed"))
        };
        Ok(Tools {
            unshare: find("unshare")?,
            mount: find("mount")?,
            sh: find("sh")?,
        })
    }
}

/// Where a warm checkout's gates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fixed {
    /// The fixed path (an empty directory on the host).
    pub at: PathBuf,
    pub tools: Tools,
}

impl Fixed {
    /// `command` (as the sandbox built it for a workspace at [`Fixed::at`]) started so that
    /// `checkout` appears at [`Fixed::at`]. The sandbox's commands always start from a cleared
    /// environment, piped, in their own process group and killed when dropped; so does this.
    pub(crate) fn wrap(
        &self,
        command: &tokio::process::Command,
        checkout: &Path,
    ) -> tokio::process::Command {
        let inner = command.as_std();
        let mut wrapped = tokio::process::Command::new(&self.tools.unshare);
        wrapped
            .args(["--mount", "--propagation", "private", "--"])
            .arg(&self.tools.sh)
            .args(["-c", SCRIPT, "takt-gate"])
            .arg(&self.tools.mount)
            .arg(checkout)
            .arg(&self.at)
            .arg(inner.get_program())
            .args(inner.get_args())
            .env_clear()
            .envs(
                inner
                    .get_envs()
                    .filter_map(|(name, value)| Some((name, value?))),
            )
            .current_dir(checkout)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        wrapped
    }
}

/// Whether a checkout can be shown at `at` here: a real bind in a private namespace of a
/// directory made in `scratch`, checked from inside.
pub(crate) async fn probe(tools: &Tools, scratch: &Path, at: &Path) -> Result<(), String> {
    let checkout = scratch.join(".place-probe");
    let _ = fs_err::tokio::remove_dir_all(&checkout).await;
    fs_err::tokio::create_dir_all(&checkout)
        .await
        .map_err(|e| e.to_string())?;
    fs_err::tokio::write(checkout.join("marker"), b"")
        .await
        .map_err(|e| e.to_string())?;
    let fixed = Fixed {
        at: at.to_path_buf(),
        tools: tools.clone(),
    };
    let mut inner = tokio::process::Command::new(&tools.sh);
    inner.args(["-c", "test -e marker"]);
    let output = fixed
        .wrap(&inner, &checkout)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("starting {}: {e}", tools.unshare.display()));
    let _ = fs_err::tokio::remove_dir_all(&checkout).await;
    let output = output?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "a private mount namespace with a bind mount failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
