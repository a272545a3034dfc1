#!/bin/sh
# takt demo codemod: a deterministic "agent" for the command backend.
# It reads the rendered prompt on stdin and acts on a marker in it.
set -eu
prompt=$(cat)
case "$prompt" in
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
*)
    echo "no codemod marker in the prompt; nothing to do" >&2
    exit 2
    ;;
esac
