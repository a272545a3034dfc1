#!/bin/sh
# takt demo codemod: a deterministic "agent" for the command backend.
# It reads the rendered prompt on stdin and acts on a marker in it.
set -eu
prompt=$(cat)
case "$prompt" in
*"[[codemod:greet]]"*)
    cat >> src/lib.rs <<'RUST'

/// Greets someone by name.
pub fn greet(name: &str) -> String {
    format!("Hello, {name}!")
}

#[cfg(test)]
mod greet_tests {
    #[test]
    fn greets_by_name() {
        assert_eq!(super::greet("takt"), "Hello, takt!");
    }
}
RUST
    echo "added greet() with a test"
    ;;
*"[[codemod:rename]]"*)
    case "$prompt" in
    *"keep a deprecated alias"*)
        sed -i 's/pub fn add(/pub fn sum(/; s/add(2, 2)/sum(2, 2)/' src/lib.rs
        # The alias goes near the top so the change merges cleanly beside others.
        sed -i '1a\
\
/// Old name of [`sum`].\
#[deprecated(note = "use `sum`")]\
pub fn add(a: i64, b: i64) -> i64 {\
    sum(a, b)\
}' src/lib.rs
        echo "renamed add() to sum() and kept a deprecated alias"
        ;;
    *)
        echo "Should the old name \`add\` stay as a deprecated alias for callers outside this crate?" > "$TAKT_QUESTION_FILE"
        echo "asking before renaming a public function"
        ;;
    esac
    ;;
*"[[codemod:v2]]"*)
    echo "scanning for the v1 client..."
    echo "error: src/lib.rs has no v1 client to port; the task does not match this codebase" >&2
    exit 1
    ;;
*)
    echo "no codemod marker in the prompt; nothing to do" >&2
    exit 2
    ;;
esac
