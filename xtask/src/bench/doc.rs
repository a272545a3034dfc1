//! Rewrites the generated parts of `docs/BENCHMARKS.md`: the machine of the last run and the
//! section of each benchmark that ran. Everything outside the markers is left as it is; a
//! missing file or a missing marker pair is created from the skeleton below.

use std::path::Path;

use anyhow::{Context, Result};

use super::{Machine, Section, table};

const SKELETON: &str = "\
# Benchmarks

takt shows its speed and memory targets here, with scenario benchmarks, never with timed
assertions in tests (DESIGN §7). CI does not run them: they are run by hand and their output is
committed. Every number below was measured by the command that wrote it.

## How to reproduce

```sh
cargo build --release -p takt-cli                  # the dispatch benchmark drives target/release/takt
cargo run --release -p xtask -- bench              # all three scenarios (dispatch, workspace, core)
cargo run --release -p xtask -- bench dispatch     # or just one: dispatch | workspace | core
cargo run --release -p xtask -- bench core --no-write   # print only, leave this file alone
```

A run rewrites the machine table and the sections of the benchmarks it ran; the other sections
keep their last results, each with its own date and commit. The scenarios live in
`xtask/src/bench/`. They clean up their temporary directories and the daemon they start; `bench
all` takes two to three minutes on the machine below when it is quiet. The workspace benchmark
works under `/dev/shm` (set `TAKT_BENCH_DIR` to measure elsewhere, e.g. on ext4).

The machine is a shared 2-vCPU VM: other work (builds, tests) often runs at the same time, and
timings then move by a factor of two or more. Each section records the load average at its
start; compare medians, and rerun before drawing conclusions from a small difference.

## Machine of the last run

<!-- bench:machine:begin -->
<!-- bench:machine:end -->

## 1. Dispatch latency

<!-- bench:dispatch:begin -->
Not measured yet.
<!-- bench:dispatch:end -->

## 2. Workspace provisioning

<!-- bench:workspace:begin -->
Not measured yet.
<!-- bench:workspace:end -->

## 3. Core overhead at 1,000 concurrent runs

<!-- bench:core:begin -->
Not measured yet.
<!-- bench:core:end -->
";

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- bench:{name}:begin -->"),
        format!("<!-- bench:{name}:end -->"),
    )
}

/// Replaces the text between `name`'s markers, appending a new section when they are missing.
fn replace(doc: &mut String, name: &str, body: &str) {
    let (begin, end) = markers(name);
    let found = doc.find(&begin).and_then(|start| {
        let inner = start + begin.len();
        doc[inner..]
            .find(&end)
            .map(|offset| (inner, inner + offset))
    });
    let body = format!("\n{}\n", body.trim());
    match found {
        Some((inner, stop)) => doc.replace_range(inner..stop, &body),
        None => {
            if !doc.ends_with('\n') {
                doc.push('\n');
            }
            doc.push_str(&format!("\n## {name}\n\n{begin}{body}{end}\n"));
        }
    }
}

fn machine_table(machine: &Machine) -> String {
    let rows = vec![
        vec!["date".into(), machine.date.clone()],
        vec!["commit".into(), machine.commit.clone()],
        vec![
            "CPU".into(),
            format!("{} × {}", machine.cpus, machine.cpu_model),
        ],
        vec!["memory".into(), format!("{:.1} GiB", machine.mem_gib)],
        vec!["kernel".into(), format!("Linux {}", machine.kernel)],
        vec!["git".into(), machine.git.clone()],
        vec![
            "load average at start (1/5/15 min)".into(),
            machine.load.clone(),
        ],
    ];
    table(&["", ""], &rows)
}

pub fn update(path: &Path, machine: &Machine, sections: &[Section]) -> Result<()> {
    let mut doc = match fs_err::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => text,
        _ => SKELETON.to_owned(),
    };
    replace(&mut doc, "machine", &machine_table(machine));
    for section in sections {
        replace(&mut doc, section.name, &section.markdown);
    }
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(path, doc).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_between_markers_and_keeps_the_rest() {
        let mut doc = SKELETON.to_owned();
        replace(&mut doc, "core", "new core text");
        assert!(doc.contains("<!-- bench:core:begin -->\nnew core text\n<!-- bench:core:end -->"));
        assert!(doc.contains("## 2. Workspace provisioning"));
        replace(&mut doc, "core", "again");
        assert!(!doc.contains("new core text"));
        assert_eq!(doc.matches("<!-- bench:core:begin -->").count(), 1);
    }

    #[test]
    fn appends_a_missing_section() {
        let mut doc = "# Benchmarks\n".to_owned();
        replace(&mut doc, "dispatch", "text");
        assert!(
            doc.ends_with("<!-- bench:dispatch:begin -->\ntext\n<!-- bench:dispatch:end -->\n")
        );
    }
}
