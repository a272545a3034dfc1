//! takt's `risk` section: which changes merge alone and which wait for people. Unknown keys are
//! errors.

use globset::GlobBuilder;
use takt_protocol::RiskTier;

use super::{U64_MAX, to_u32, to_u64};
use crate::config::RiskConfig;
use crate::reader::{Report, Section};
use crate::schema::RISK_TIERS;

const MAX_APPROVALS: i128 = 10;

/// `auto_merge` is the validated `publish.auto_merge`: before `risk` existed it meant "merge
/// without a person when allowed", so it still makes `auto_ship` the default tier.
pub(super) fn risk(section: &Section<'_>, report: &mut Report<'_>, auto_merge: bool) -> RiskConfig {
    let defaults = RiskConfig::default();
    let auto_ship = globs(section, report, "auto_ship");
    let review = globs(section, report, "review");
    let hard_stop = globs(section, report, "hard_stop");
    let hard_stop_approvals = report
        .integer(
            section,
            "hard_stop_approvals",
            1..=MAX_APPROVALS,
            "an integer from 1 to 10",
            "write a number such as `hard_stop_approvals: 2` (distinct people who must approve)",
        )
        .map_or(defaults.hard_stop_approvals, to_u32);
    let max_changed_lines = to_u64(report.positive(
        section,
        "max_changed_lines",
        U64_MAX,
        i128::from(defaults.max_changed_lines),
    ));
    let builtin_rules = report.boolean(section, "builtin_rules", defaults.builtin_rules);
    let implied_default = if auto_merge {
        RiskTier::AutoShip
    } else {
        RiskTier::Review
    };
    let default_tier = match report.choice(section, "default", RISK_TIERS).as_deref() {
        Some("auto_ship") => RiskTier::AutoShip,
        Some("review") => RiskTier::Review,
        Some("hard_stop") => RiskTier::HardStop,
        _ => implied_default,
    };
    section.check_unknown(report);
    RiskConfig {
        auto_ship,
        review,
        hard_stop,
        hard_stop_approvals,
        max_changed_lines,
        builtin_rules,
        default_tier,
    }
}

/// A list of path globs, each compiled the way `takt_core::risk` compiles it so that a glob
/// accepted here cannot fail there.
fn globs(section: &Section<'_>, report: &mut Report<'_>, key: &str) -> Vec<String> {
    let Some(items) = report.string_items(section, key) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, (glob, position)) in items.into_iter().enumerate() {
        let item_key = format!("{}[{index}]", section.path(key));
        let glob = glob.trim().to_owned();
        if glob.is_empty() {
            report.problem(
                item_key,
                Some(position),
                format!("item {index} of `{}` is blank", section.path(key)),
                "remove the blank entry",
            );
            continue;
        }
        // Changed paths are repository-relative (`src/main.rs`), so an anchored glob would
        // never match: for `hard_stop` that would silently let a change through.
        if glob.starts_with('/') || glob.starts_with("./") {
            report.problem(
                item_key,
                Some(position),
                format!(
                    "`{}` glob {glob:?} starts with `/` or `./`, but globs match \
                     repository-relative paths such as `src/main.rs`",
                    section.path(key)
                ),
                format!(
                    "write it without the prefix: `{}`",
                    glob.trim_start_matches("./").trim_start_matches('/')
                ),
            );
            continue;
        }
        if let Err(err) = GlobBuilder::new(&glob).literal_separator(true).build() {
            report.problem(
                item_key,
                Some(position),
                format!(
                    "`{}` glob {glob:?} is not a valid glob: {}",
                    section.path(key),
                    err.kind()
                ),
                "use `*` within one directory, `**` across directories, `?`, `[abc]` and \
                 `{a,b}`, for example `src/auth/**` or `*.sql`",
            );
            continue;
        }
        out.push(glob);
    }
    out
}
