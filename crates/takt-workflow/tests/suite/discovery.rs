//! which file is used, and what happens when it is not there.

use std::path::Path;

use takt_workflow::{ProcessEnv, discover, load};

use super::{assert_error, env};

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    dir
}

#[test]
fn r001_explicit_path_wins_over_cwd_workflow_md() {
    let dir = dir_with(&[("WORKFLOW.md", "default"), ("other/flow.md", "explicit")]);
    let found = discover(Some(Path::new("other/flow.md")), dir.path()).unwrap();
    assert_eq!(found, dir.path().join("other/flow.md"));
}

#[test]
fn r001_default_is_workflow_md_in_cwd() {
    let dir = dir_with(&[("WORKFLOW.md", "prompt")]);
    assert_eq!(
        discover(None, dir.path()).unwrap(),
        dir.path().join("WORKFLOW.md")
    );
}

#[test]
fn r001_explicit_absolute_path_ignores_cwd() {
    let dir = dir_with(&[("a/WORKFLOW.md", "prompt")]);
    let absolute = dir.path().join("a/WORKFLOW.md");
    assert_eq!(
        discover(Some(&absolute), Path::new("/nonexistent")).unwrap(),
        absolute
    );
}

#[test]
fn r001_explicit_directory_means_its_workflow_md() {
    let dir = dir_with(&[("proj/WORKFLOW.md", "prompt")]);
    let found = discover(Some(Path::new("proj")), dir.path()).unwrap();
    assert_eq!(found, dir.path().join("proj/WORKFLOW.md"));
}

#[test]
fn r001_result_is_normalized() {
    let dir = dir_with(&[("a/WORKFLOW.md", "prompt")]);
    let found = discover(Some(Path::new("./b/../a/WORKFLOW.md")), dir.path()).unwrap();
    assert_eq!(found, dir.path().join("a/WORKFLOW.md"));
}

#[test]
fn r002_missing_default_file_is_missing_workflow_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = discover(None, dir.path()).unwrap_err();
    let expected = dir.path().join("WORKFLOW.md");
    assert_error(
        &err,
        "missing_workflow_file",
        &[
            &expected.display().to_string(),
            "does not exist",
            "takt init",
        ],
    );
    assert_eq!(err.path(), expected);
}

#[test]
fn r002_missing_explicit_file_is_missing_workflow_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = discover(Some(Path::new("nope.md")), dir.path()).unwrap_err();
    assert_error(
        &err,
        "missing_workflow_file",
        &["nope.md", "does not exist", "check the path"],
    );
}

#[test]
fn r002_load_of_a_missing_file_is_missing_workflow_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("WORKFLOW.md"), &env()).unwrap_err();
    assert_error(
        &err,
        "missing_workflow_file",
        &["WORKFLOW.md", "does not exist"],
    );
    assert_eq!(err.position(), None);
}

#[test]
fn r002_load_of_a_directory_is_missing_workflow_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), &env()).unwrap_err();
    assert_error(&err, "missing_workflow_file", &["is a directory"]);
}

#[test]
fn load_reads_the_file_and_resolves_against_its_directory() {
    let dir = dir_with(&[(
        "sub/WORKFLOW.md",
        "---\nworkspace:\n  root: ws\n---\nDo {{ issue.identifier }}\n",
    )]);
    let path = dir.path().join("sub/WORKFLOW.md");
    let workflow = load(&path, &ProcessEnv).unwrap();
    assert_eq!(workflow.path, path);
    assert_eq!(workflow.dir, dir.path().join("sub"));
    assert_eq!(workflow.workspace.root, dir.path().join("sub/ws"));
    assert_eq!(workflow.prompt.source(), "Do {{ issue.identifier }}");
}

#[test]
fn fingerprint_is_the_sha256_of_the_file_bytes() {
    let dir = dir_with(&[("WORKFLOW.md", "hello")]);
    let workflow = load(&dir.path().join("WORKFLOW.md"), &env()).unwrap();
    assert_eq!(
        workflow.fingerprint,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}
