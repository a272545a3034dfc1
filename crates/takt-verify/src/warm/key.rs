//! Which cache a verification may use: one per base commit and everything that shapes what the
//! gates build — their commands, environment, hidden files (by content), the tools' versions,
//! the OS and the sandbox. An edited gate or a new toolchain never starts from outputs it did
//! not make.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::spec::GateSpec;

/// The cache key (hex, 32 characters) of `base` with `gates`, each with the environment it
/// runs in, and the hidden files' digest.
pub(crate) fn cache_key(
    base: &str,
    gates: &[(&GateSpec, BTreeMap<String, String>)],
    hidden: &str,
) -> String {
    let mut identity = format!("takt-warm-cache-v1\0{base}\0{hidden}\0");
    for (gate, environment) in gates {
        identity.push_str(&format!(
            "gate\0{}\0{}\0{}\0{:?}\0{:?}\0{:?}\0",
            gate.name, gate.run, gate.timeout_ms, gate.env, gate.hidden_files, gate.junit
        ));
        for (name, value) in environment {
            identity.push_str(&format!("{name}={value}\0"));
        }
    }
    let digest = crate::evidence::sha256_hex(identity.as_bytes());
    digest[..32].to_owned()
}

/// sha256 over the relative paths and contents of every file under `dirs` (the hidden gates'
/// directories), in a stable order. Blocking: call it off the async threads.
pub(crate) fn hidden_digest(dirs: &[PathBuf]) -> std::io::Result<String> {
    let mut listing = String::new();
    for dir in dirs {
        listing.push_str(&format!("dir {}\0", dir.display()));
        let mut files = Vec::new();
        collect(dir, &mut files)?;
        files.sort();
        for file in files {
            let bytes = fs_err::read(&file)?;
            let relative = file.strip_prefix(dir).unwrap_or(&file);
            listing.push_str(&format!(
                "{}\0{}\0",
                relative.display(),
                crate::evidence::sha256_hex(&bytes)
            ));
        }
    }
    Ok(crate::evidence::sha256_hex(listing.as_bytes()))
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs_err::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(&entry.path(), files)?;
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn gate(run: &str) -> GateSpec {
        GateSpec {
            name: "test".into(),
            run: run.into(),
            timeout_ms: 1000,
            required: true,
            env: BTreeMap::new(),
            source: takt_protocol::GateSource::Configured,
            hidden_files: None,
            junit: Vec::new(),
            speed: crate::spec::Speed::Test,
        }
    }

    #[test]
    fn the_key_follows_the_base_the_gates_the_tools_and_the_hidden_files() {
        let test = gate("cargo test");
        let rustc = |version: &str| BTreeMap::from([("rustc".to_owned(), version.to_owned())]);
        let key = cache_key("b1", &[(&test, rustc("1.95"))], "h");
        assert_eq!(key.len(), 32);
        assert_eq!(key, cache_key("b1", &[(&test, rustc("1.95"))], "h"));
        assert_ne!(key, cache_key("b2", &[(&test, rustc("1.95"))], "h"));
        assert_ne!(key, cache_key("b1", &[(&test, rustc("1.96"))], "h"));
        assert_ne!(key, cache_key("b1", &[(&test, rustc("1.95"))], "other"));
        let edited = gate("cargo test --release");
        assert_ne!(key, cache_key("b1", &[(&edited, rustc("1.95"))], "h"));
    }

    #[test]
    fn hidden_files_count_by_content() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join("tests")).unwrap();
        fs_err::write(dir.path().join("tests/holdback.rs"), "one").unwrap();
        let dirs = [dir.path().to_path_buf()];
        let first = hidden_digest(&dirs).unwrap();
        assert_eq!(first, hidden_digest(&dirs).unwrap());
        fs_err::write(dir.path().join("tests/holdback.rs"), "two").unwrap();
        assert_ne!(first, hidden_digest(&dirs).unwrap());
    }
}
