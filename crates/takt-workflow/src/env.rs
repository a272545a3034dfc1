//! The process environment behind a trait, `$VAR` references and local-path resolution.
//!
//! [`ProcessEnv`] is the only place this crate reads environment variables; everything else goes
//! through [`Env`], so tests use a [`MapEnv`].

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// What configuration resolution needs from the environment.
pub trait Env {
    /// The value of an environment variable; `None` when unset (or not valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
    /// The user's home directory, for `~` expansion.
    fn home(&self) -> Option<PathBuf>;
    /// The system temporary directory.
    fn temp_dir(&self) -> PathBuf;
}

impl<E: Env + ?Sized> Env for &E {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }
    fn home(&self) -> Option<PathBuf> {
        (**self).home()
    }
    fn temp_dir(&self) -> PathBuf {
        (**self).temp_dir()
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }
    fn home(&self) -> Option<PathBuf> {
        (**self).home()
    }
    fn temp_dir(&self) -> PathBuf {
        (**self).temp_dir()
    }
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn home(&self) -> Option<PathBuf> {
        std::env::var_os("HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .or_else(std::env::home_dir)
    }

    fn temp_dir(&self) -> PathBuf {
        std::env::temp_dir()
    }
}

/// A fixed environment for tests: a map of variables, an optional home and a temp directory.
#[derive(Debug, Clone)]
pub struct MapEnv {
    vars: BTreeMap<String, String>,
    home: Option<PathBuf>,
    temp_dir: PathBuf,
}

impl Default for MapEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl MapEnv {
    /// No variables, no home, `/tmp` as the temp directory.
    pub fn new() -> Self {
        Self {
            vars: BTreeMap::new(),
            home: None,
            temp_dir: PathBuf::from("/tmp"),
        }
    }

    pub fn with_var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    pub fn with_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    pub fn with_temp_dir(mut self, temp_dir: impl Into<PathBuf>) -> Self {
        self.temp_dir = temp_dir.into();
        self
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
    fn home(&self) -> Option<PathBuf> {
        self.home.clone()
    }
    fn temp_dir(&self) -> PathBuf {
        self.temp_dir.clone()
    }
}

/// The variable name when `value` is exactly a `$NAME` reference, `NAME` matching
/// `^[A-Za-z_][A-Za-z0-9_]*$`. `$HOME/x`, `${HOME}` and `a$B` are not references.
pub fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix('$')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// Resolves a secret setting the way Symphony's adapters do, for tracker adapters to use
/// on `tracker.provider` values:
///
/// - absent, or a `$VAR` reference to an unset variable: the adapter's canonical variable
///   (`fallback_var`, e.g. `LINEAR_API_KEY`);
/// - a `$VAR` reference to a set variable: its value;
/// - a literal: itself.
///
/// An empty result counts as missing (`None`).
pub fn resolve_secret(
    value: Option<&str>,
    fallback_var: Option<&str>,
    env: &dyn Env,
) -> Option<String> {
    let fallback = || fallback_var.and_then(|name| env.var(name));
    let resolved = match value {
        None => fallback(),
        Some(value) => match env_reference(value) {
            Some(name) => match env.var(name) {
                Some(set) => Some(set),
                None => fallback(),
            },
            None => Some(value.to_owned()),
        },
    };
    resolved.filter(|v| !v.is_empty())
}

/// How a local-path setting resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathResolution {
    /// An absolute, lexically normalized path.
    Path(PathBuf),
    /// The value is `$NAME` and the variable is unset or empty: use the default.
    UnsetVar(String),
    /// The value starts with `~` but there is no home directory.
    NoHome,
}

/// Resolves a local-path value: a whole-value `$NAME` is replaced by the
/// variable, then a leading `~` or `~/` is expanded to the home directory, then a relative path
/// is joined to `base` (the WORKFLOW.md directory) and the result is normalized.
pub(crate) fn resolve_local_path(raw: &str, base: &Path, env: &dyn Env) -> PathResolution {
    let value = match env_reference(raw) {
        Some(name) => match env.var(name) {
            Some(value) if !value.trim().is_empty() => value,
            _ => return PathResolution::UnsetVar(name.to_owned()),
        },
        None => raw.to_owned(),
    };
    let expanded = if value == "~" || value.starts_with("~/") {
        match env.home() {
            Some(home) => home.join(value.trim_start_matches('~').trim_start_matches('/')),
            None => return PathResolution::NoHome,
        }
    } else {
        PathBuf::from(value)
    };
    PathResolution::Path(normalize(&base.join(expanded)))
}

/// Lexical normalization: drops `.` and resolves `..` against the preceding component without
/// touching the filesystem. `..` at the root stays at the root.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let popped =
                    matches!(out.components().next_back(), Some(Component::Normal(_))) && out.pop();
                if !popped && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` made absolute against the process working directory (without touching the
/// filesystem), then normalized. Falls back to the path as given if the working directory is
/// unknown.
pub(crate) fn absolute(path: &Path) -> PathBuf {
    normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_whole_values_only() {
        assert_eq!(env_reference("$HOME"), Some("HOME"));
        assert_eq!(env_reference("$_x9"), Some("_x9"));
        assert_eq!(env_reference("$9x"), None);
        assert_eq!(env_reference("$"), None);
        assert_eq!(env_reference("${HOME}"), None);
        assert_eq!(env_reference("$HOME/x"), None);
        assert_eq!(env_reference("x$HOME"), None);
        assert_eq!(env_reference(" $HOME"), None);
    }

    #[test]
    fn normalizes_lexically() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
    }

    #[test]
    fn resolves_paths() {
        let env = MapEnv::new()
            .with_home("/home/u")
            .with_var("ROOT", "/srv/ws")
            .with_var("EMPTY", "");
        let base = Path::new("/repo");
        let path = |raw| resolve_local_path(raw, base, &env);
        assert_eq!(path("ws"), PathResolution::Path("/repo/ws".into()));
        assert_eq!(path("../ws"), PathResolution::Path("/ws".into()));
        assert_eq!(path("~"), PathResolution::Path("/home/u".into()));
        assert_eq!(path("~/ws"), PathResolution::Path("/home/u/ws".into()));
        assert_eq!(
            path("~other/ws"),
            PathResolution::Path("/repo/~other/ws".into())
        );
        assert_eq!(path("$ROOT"), PathResolution::Path("/srv/ws".into()));
        assert_eq!(path("$UNSET"), PathResolution::UnsetVar("UNSET".into()));
        assert_eq!(path("$EMPTY"), PathResolution::UnsetVar("EMPTY".into()));
        assert_eq!(
            path("$ROOT/x"),
            PathResolution::Path("/repo/$ROOT/x".into())
        );
        let homeless = MapEnv::new();
        assert_eq!(
            resolve_local_path("~/x", base, &homeless),
            PathResolution::NoHome
        );
    }

    #[test]
    fn a_var_may_hold_a_tilde_path() {
        let env = MapEnv::new().with_home("/home/u").with_var("ROOT", "~/ws");
        assert_eq!(
            resolve_local_path("$ROOT", Path::new("/repo"), &env),
            PathResolution::Path("/home/u/ws".into())
        );
    }

    #[test]
    fn secrets_follow_symphony() {
        let env = MapEnv::new()
            .with_var("LINEAR_API_KEY", "canonical")
            .with_var("MY_KEY", "mine")
            .with_var("BLANK", "");
        let fallback = Some("LINEAR_API_KEY");
        assert_eq!(
            resolve_secret(None, fallback, &env).as_deref(),
            Some("canonical")
        );
        assert_eq!(
            resolve_secret(Some("$MY_KEY"), fallback, &env).as_deref(),
            Some("mine")
        );
        assert_eq!(
            resolve_secret(Some("$UNSET"), fallback, &env).as_deref(),
            Some("canonical")
        );
        assert_eq!(resolve_secret(Some("$BLANK"), fallback, &env), None);
        assert_eq!(
            resolve_secret(Some("literal"), fallback, &env).as_deref(),
            Some("literal")
        );
        assert_eq!(resolve_secret(Some(""), fallback, &env), None);
        assert_eq!(resolve_secret(None, None, &env), None);
    }
}
