//! takt's `review` section: verification rounds, the judge and the blind reviewers. Unknown keys
//! are errors.

use std::collections::BTreeMap;

use super::to_u32;
use crate::config::{OnBlock, ReviewConfig, ReviewerConfig};
use crate::error::Position;
use crate::raw::Value;
use crate::reader::{Report, Section};
use crate::schema::{ON_BLOCK, REVIEWER};
use crate::suggest::did_you_mean;

/// The mandate of the built-in `qa` reviewer.
pub const QA_MANDATE: &str = "You are the QA reviewer. Check that the change does what the task \
asks, completely, and nothing it does not ask. Check that new or changed behaviour is covered by \
tests that would fail without the change, including edge cases: empty, boundary and invalid \
inputs, error paths, and concurrency where it applies. Look for regressions: existing behaviour \
that changed, callers the change did not update, tests weakened or removed. Block only for a \
concrete problem you can point to in the diff, naming the file and line.";

/// The mandate of the built-in `security` reviewer.
pub const SECURITY_MANDATE: &str = "You are the security reviewer. Look for injection (SQL, shell, \
template, header or path values built from untrusted input); missing or weakened authentication \
and authorization checks; secrets or credentials in code, configuration or logs; unsafe \
deserialization of untrusted data; path traversal and file paths taken from input without \
checks; new network access, listeners or outbound calls; and supply-chain risk: new or changed \
dependencies, install scripts, unpinned versions, unusual registries. Block only for a concrete \
problem you can point to in the diff, naming the file and line.";

/// Reviewers that need no mandate, with the mandate they get.
pub const BUILTIN_REVIEWERS: &[(&str, &str)] =
    &[("qa", QA_MANDATE), ("security", SECURITY_MANDATE)];

/// The judge's verdicts carry `by: "judge"`, so no reviewer may take that name.
const JUDGE: &str = "judge";

const MAX_ROUNDS: i128 = 10;

/// `model_name` is the validated `model.name`, the default of `review.model`.
pub(super) fn review(
    section: &Section<'_>,
    report: &mut Report<'_>,
    model_name: Option<&str>,
) -> ReviewConfig {
    let defaults = ReviewConfig::default();
    let max_rounds = report
        .integer(
            section,
            "max_rounds",
            1..=MAX_ROUNDS,
            "an integer from 1 to 10",
            "write a number such as `max_rounds: 2`: failing rounds before the last send the task \
             back with the evidence, the last failing round fails the task",
        )
        .map_or(defaults.max_rounds, to_u32);
    let judge = report.boolean(section, "judge", defaults.judge);
    let reviewers = reviewers(section, report);
    let model = report
        .non_blank(section, "model", "gpt-5.5")
        .map(|model| model.trim().to_owned())
        .or_else(|| model_name.map(str::to_owned));
    let on_block = match report.choice(section, "on_block", ON_BLOCK).as_deref() {
        Some("human") => OnBlock::Human,
        _ => OnBlock::SendBack,
    };
    section.check_unknown(report);
    ReviewConfig {
        max_rounds,
        judge,
        reviewers,
        model,
        on_block,
    }
}

fn builtin_mandate(name: &str) -> Option<&'static str> {
    BUILTIN_REVIEWERS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, mandate)| *mandate)
}

fn builtin_names() -> Vec<&'static str> {
    BUILTIN_REVIEWERS.iter().map(|(name, _)| *name).collect()
}

/// `reviewers`: each item a built-in name or `{name, mandate}`; names unique.
fn reviewers(section: &Section<'_>, report: &mut Report<'_>) -> Vec<ReviewerConfig> {
    let mut out = Vec::new();
    let Some(node) = section.get("reviewers") else {
        return out;
    };
    let Value::Seq(items) = &node.value else {
        report.problem(
            section.path("reviewers"),
            Some(node.pos),
            format!(
                "`review.reviewers` must be a list, but it is {}",
                node.describe()
            ),
            "write `reviewers: [qa, security]`, or list `{name, mandate}` mappings",
        );
        return out;
    };
    // Name -> (index, position) of the reviewer that used it first.
    let mut first_use: BTreeMap<String, (usize, Position)> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("review.reviewers[{index}]");
        let reviewer = match &item.value {
            Value::Str(name) => named_builtin(report, &prefix, name, item.pos),
            Value::Map(entries) => {
                let item_section = Section::item(&REVIEWER, prefix.clone(), entries, item.pos);
                custom(&item_section, report)
            }
            _ => {
                report.problem(
                    prefix.clone(),
                    Some(item.pos),
                    format!(
                        "item {index} of `review.reviewers` must be a reviewer name or a \
                         `{{name, mandate}}` mapping, but it is {}",
                        item.describe()
                    ),
                    "write `qa`, `security`, or `{name: perf, mandate: \"...\"}`",
                );
                None
            }
        };
        let Some(reviewer) = reviewer else {
            continue;
        };
        if let Some((first_index, first_position)) = first_use.get(&reviewer.name) {
            report.problem(
                prefix,
                Some(item.pos),
                format!(
                    "reviewer name `{}` is used twice: by `review.reviewers[{first_index}]` (line \
                     {}, column {}) and by `review.reviewers[{index}]` (line {}, column {})",
                    reviewer.name,
                    first_position.line,
                    first_position.column,
                    item.pos.line,
                    item.pos.column
                ),
                "give every reviewer its own name; verdicts are told apart by it",
            );
            continue;
        }
        first_use.insert(reviewer.name.clone(), (index, item.pos));
        out.push(reviewer);
    }
    out
}

/// A bare name: only the built-in reviewers have a mandate without one being written.
fn named_builtin(
    report: &mut Report<'_>,
    key: &str,
    raw: &str,
    position: Position,
) -> Option<ReviewerConfig> {
    let name = checked_name(report, key, raw, position)?;
    if let Some(mandate) = builtin_mandate(&name) {
        return Some(ReviewerConfig {
            name,
            mandate: mandate.to_owned(),
        });
    }
    let builtins = builtin_names();
    let fix = match did_you_mean(&name, &builtins) {
        Some(close) => format!("did you mean `{close}`?"),
        None => format!(
            "write `{{name: {name}, mandate: \"what this reviewer checks\"}}`, or use a built-in \
             reviewer: {}",
            builtins.join(", ")
        ),
    };
    report.problem(
        key,
        Some(position),
        format!("reviewer `{name}` is not built in, so it needs a `mandate`"),
        fix,
    );
    None
}

/// A `{name, mandate}` mapping; the mandate may be left out for a built-in name.
fn custom(section: &Section<'_>, report: &mut Report<'_>) -> Option<ReviewerConfig> {
    let name = match section.get("name") {
        None => {
            report.problem(
                section.path("name"),
                section.position,
                format!("`{}` is required", section.path("name")),
                "add `name: perf` to the reviewer",
            );
            None
        }
        Some(node) => report
            .string(section, "name")
            .and_then(|raw| checked_name(report, &section.path("name"), &raw, node.pos)),
    };
    let mandate = report
        .non_blank(
            section,
            "mandate",
            "\"Check that hot paths do not allocate.\"",
        )
        .map(|mandate| mandate.trim().to_owned());
    let explicit_mandate = section.get("mandate").is_some();
    section.check_unknown(report);
    let name = name?;
    let mandate = match mandate {
        Some(mandate) => mandate,
        // A blank or non-string mandate was already reported.
        None if explicit_mandate => return None,
        None => match builtin_mandate(&name) {
            Some(builtin) => builtin.to_owned(),
            None => {
                report.problem(
                    section.path("mandate"),
                    section.position,
                    format!(
                        "reviewer `{name}` (`{}`) is not built in, so it needs a `mandate`",
                        section.prefix()
                    ),
                    format!(
                        "add `mandate: \"...\"` saying what the reviewer checks, or use a built-in \
                         reviewer: {}",
                        builtin_names().join(", ")
                    ),
                );
                return None;
            }
        },
    };
    Some(ReviewerConfig { name, mandate })
}

/// A trimmed, non-blank name other than `judge`.
fn checked_name(
    report: &mut Report<'_>,
    key: &str,
    raw: &str,
    position: Position,
) -> Option<String> {
    let name = raw.trim();
    if name.is_empty() {
        report.problem(
            key,
            Some(position),
            "a reviewer name in `review.reviewers` is blank",
            "name the reviewer, for example `qa`",
        );
        return None;
    }
    if name == JUDGE {
        report.problem(
            key,
            Some(position),
            "`judge` cannot be a reviewer name: the judge's verdicts are already called that",
            "set `review.judge: true` to ask the judge, or give the reviewer another name",
        );
        return None;
    }
    Some(name.to_owned())
}
