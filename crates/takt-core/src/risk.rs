//! The risk policy: which verified changes merge on their own and which wait for people, and why.
//!
//! [`assess`] reads a [`VerificationReport`] and answers with a [`RiskAssessment`]: a tier, the
//! approvals it needs and every rule that fired, so the decision can be explained. It is pure: no
//! IO, no clock.
//!
//! # How the tier is decided
//!
//! 1. **Start.** If the change has at least one file and *every* changed path matches a
//!    `risk.auto_ship` glob, it starts at `auto_ship` (rule `path:auto_ship`). Otherwise it starts
//!    at `risk.default` (rule `default`).
//! 2. **Escalate.** Each rule below that fires asks for a tier; the assessment takes the highest
//!    of the start tier and every fired rule. Rules only raise the tier, never lower it.
//!
//! | rule | fires when | tier |
//! |---|---|---|
//! | `path:review` | a path matches a `risk.review` glob | review |
//! | `path:hard_stop` | a path matches a `risk.hard_stop` glob | hard_stop |
//! | `lockfile` | built-in: `Cargo.lock`, `package-lock.json`, `yarn.lock`, `pnpm-lock.yaml`, `poetry.lock`, `uv.lock`, `go.sum`, `Gemfile.lock`, `composer.lock` | review |
//! | `dependency_manifest` | built-in: `Cargo.toml`, `package.json`, `pyproject.toml`, `requirements*.txt`, `go.mod`, `pom.xml`, `build.gradle`, `build.gradle.kts`, `Gemfile` | review |
//! | `migration` | built-in: `**/migrations/**`, `**/migrate/**`, `*.sql` | review |
//! | `ci_infra` | built-in: `.github/**`, `.gitlab-ci.yml`, `.ci/**`, `.circleci/**`, `Jenkinsfile`, `Dockerfile*`, `docker-compose*.yml`, `docker-compose*.yaml`, `*.tf`, `k8s/**`, `helm/**`, `deploy/**` | review |
//! | `secret` | the diff has a line that looks like a credential | hard_stop |
//! | `size` | more than `risk.max_changed_lines` lines added plus removed | review |
//! | `tamper` | one entry per tamper flag (tests, gate or CI configuration weakened) | review |
//! | `reviewer_finding` | one entry per reviewer whose verdict has a finding of severity major or blocking | review |
//! | `judge_veto` | the judge vetoed, and the caller says the veto was overruled (the task came back with the same objection and now goes to a person) | review |
//! | `gate_red` | a required gate is not green: such a change normally never gets here, but if the workflow sends it to a person it must not ship alone | review |
//!
//! The built-in rules apply only with `risk.builtin_rules` (the default). Rules are listed in the
//! order of the table, after the start rule; a detail names at most five paths, then
//! "and N more".
//!
//! `auto_ship` needs no approval, `review` one, `hard_stop` `risk.hard_stop_approvals` from
//! distinct people.
//!
//! # How globs match
//!
//! Globs match the repository-relative path (`src/auth/login.rs`, no leading `/` or `./`):
//!
//! - `*` and `?` never cross a `/`: `src/*` matches `src/main.rs` but not `src/a/b.rs`;
//! - `**` crosses directories: `src/**` matches both;
//! - a pattern without any `/` (`*.md`, `Cargo.lock`) matches the file name at any depth, as if
//!   written `**/*.md`, because that is what a bare file name means in `.gitignore` too;
//! - `[abc]`, `{a,b}` work; matching is case-sensitive; a directory name alone (`src/auth`)
//!   matches only a file of that exact path, so write `src/auth/**`.
//!
//! A renamed file is checked under its old and its new path: moving a file out of a guarded
//! directory is a change to that directory, and a rename only auto-ships when both paths are
//! covered by `risk.auto_ship`.

use std::sync::LazyLock;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use takt_protocol::{
    ChangedFile, GateStatus, RiskAssessment, RiskRule, RiskTier, Severity, VerificationReport,
};

/// The risk settings as written in WORKFLOW.md's `risk` section: plain data that
/// [`RiskPolicy::new`] compiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskSettings {
    /// A change whose every path matches one of these starts at `auto_ship`.
    pub auto_ship: Vec<String>,
    /// A path matching one of these raises the change to at least `review`.
    pub review: Vec<String>,
    /// A path matching one of these raises the change to `hard_stop`.
    pub hard_stop: Vec<String>,
    /// Distinct approvals a `hard_stop` change needs.
    pub hard_stop_approvals: u32,
    /// More lines than this (added plus removed) raises the change to `review`.
    pub max_changed_lines: u64,
    /// Apply the built-in lockfile, manifest, migration and CI/infra rules.
    pub builtin_rules: bool,
    /// The start tier of a change `auto_ship` does not cover.
    pub default_tier: RiskTier,
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self {
            auto_ship: Vec::new(),
            review: Vec::new(),
            hard_stop: Vec::new(),
            hard_stop_approvals: 2,
            max_changed_lines: 1000,
            builtin_rules: true,
            default_tier: RiskTier::Review,
        }
    }
}

/// A glob of the risk settings that does not compile. The workflow validates globs the same
/// way, so this means the settings did not come from a validated workflow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`risk.{list}` glob {glob:?} does not compile: {reason}")]
pub struct RiskPolicyError {
    /// `auto_ship`, `review` or `hard_stop` (`builtin` for the built-in rules).
    pub list: &'static str,
    pub glob: String,
    pub reason: String,
}

/// [`RiskSettings`] with their globs compiled once. The settings are read-only after
/// construction so the compiled globs can never disagree with them; equality compares the
/// settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskPolicy {
    settings: RiskSettings,
    auto_ship: PathGlobs,
    review: PathGlobs,
    hard_stop: PathGlobs,
}

impl Default for RiskPolicy {
    /// Default tier `review`, two approvals for `hard_stop`, 1000 lines, built-in rules on, no
    /// globs.
    fn default() -> Self {
        Self {
            settings: RiskSettings::default(),
            auto_ship: PathGlobs::empty(),
            review: PathGlobs::empty(),
            hard_stop: PathGlobs::empty(),
        }
    }
}

impl RiskPolicy {
    /// Compiles the settings' globs.
    pub fn new(settings: RiskSettings) -> Result<Self, RiskPolicyError> {
        let auto_ship = PathGlobs::compile("auto_ship", &settings.auto_ship)?;
        let review = PathGlobs::compile("review", &settings.review)?;
        let hard_stop = PathGlobs::compile("hard_stop", &settings.hard_stop)?;
        Ok(Self {
            settings,
            auto_ship,
            review,
            hard_stop,
        })
    }

    pub fn settings(&self) -> &RiskSettings {
        &self.settings
    }

    /// Approvals a change of `tier` needs before it merges.
    pub fn approvals_for(&self, tier: RiskTier) -> u32 {
        match tier {
            RiskTier::AutoShip => 0,
            RiskTier::Review => 1,
            RiskTier::HardStop => self.settings.hard_stop_approvals,
        }
    }
}

/// The tier of one verified change and every rule that decided it; see the module
/// documentation. `judge_overruled` says that the judge's veto stands although the change goes
/// on (to a person), so the veto must count against shipping alone.
pub fn assess(
    policy: &RiskPolicy,
    report: &VerificationReport,
    judge_overruled: bool,
) -> RiskAssessment {
    let settings = &policy.settings;
    let paths = changed_paths(&report.changed_files);
    let mut rules = vec![start_rule(policy, &paths)];

    let mut by_paths = |rule: &str, tier: RiskTier, matches: &dyn Fn(&str) -> bool| {
        let hits: Vec<&str> = paths.iter().copied().filter(|path| matches(path)).collect();
        if !hits.is_empty() {
            rules.push(RiskRule {
                rule: rule.to_owned(),
                tier,
                detail: listed(hits),
            });
        }
    };
    by_paths("path:review", RiskTier::Review, &|path| {
        policy.review.is_match(path)
    });
    by_paths("path:hard_stop", RiskTier::HardStop, &|path| {
        policy.hard_stop.is_match(path)
    });
    if settings.builtin_rules {
        for builtin in BUILTIN_RULES.iter() {
            by_paths(builtin.rule, RiskTier::Review, &|path| {
                builtin.globs.is_match(path)
            });
        }
    }

    if !report.secrets.is_empty() {
        rules.push(RiskRule {
            rule: "secret".to_owned(),
            tier: RiskTier::HardStop,
            detail: listed(
                report
                    .secrets
                    .iter()
                    .map(|hit| format!("{}:{} ({})", hit.path, hit.line, hit.kind)),
            ),
        });
    }
    let changed_lines = report.changed_lines();
    if changed_lines > settings.max_changed_lines {
        rules.push(RiskRule {
            rule: "size".to_owned(),
            tier: RiskTier::Review,
            detail: format!(
                "{changed_lines} changed lines, more than risk.max_changed_lines ({})",
                settings.max_changed_lines
            ),
        });
    }
    for flag in &report.tamper {
        let detail = if flag.detail.is_empty() {
            format!("{} {}", flag.rule, flag.path)
        } else {
            format!("{} {}: {}", flag.rule, flag.path, flag.detail)
        };
        rules.push(RiskRule {
            rule: "tamper".to_owned(),
            tier: RiskTier::Review,
            detail,
        });
    }
    // A passing judge with serious findings (or one that could not answer) gets a person too;
    // a vetoing judge is handled by the veto rules.
    let passing_judge = report.judge.iter().filter(|judge| judge.pass);
    for verdict in report.reviewers.iter().chain(passing_judge) {
        let serious: Vec<String> = verdict
            .findings
            .iter()
            .filter(|finding| finding.severity >= Severity::Major)
            .map(|finding| {
                let place = match (&finding.file, finding.line) {
                    (Some(file), Some(line)) => format!(" {file}:{line}"),
                    (Some(file), None) => format!(" {file}"),
                    _ => String::new(),
                };
                format!(
                    "[{}]{place} {}",
                    severity_name(finding.severity),
                    finding.text
                )
            })
            .collect();
        if !serious.is_empty() {
            rules.push(RiskRule {
                rule: "reviewer_finding".to_owned(),
                tier: RiskTier::Review,
                detail: format!("{}: {}", verdict.by, listed(serious)),
            });
        }
    }
    if judge_overruled && let Some(judge) = report.judge.as_ref().filter(|judge| !judge.pass) {
        rules.push(RiskRule {
            rule: "judge_veto".to_owned(),
            tier: RiskTier::Review,
            detail: format!("the judge vetoed: {}", judge.summary),
        });
    }
    if !report.gates_green() {
        rules.push(RiskRule {
            rule: "gate_red".to_owned(),
            tier: RiskTier::Review,
            detail: format!(
                "required gates not green: {}",
                listed(
                    report
                        .gates
                        .iter()
                        .filter(|gate| gate.required && !gate.status.is_green())
                        .map(|gate| format!("{} ({})", gate.gate, status_name(gate.status)))
                )
            ),
        });
    }

    let tier = rules
        .iter()
        .map(|rule| rule.tier)
        .max()
        .unwrap_or(settings.default_tier);
    RiskAssessment {
        tier,
        rules,
        approvals_required: policy.approvals_for(tier),
    }
}

/// Adds `rule` to an assessment, raising its tier (and the approvals it needs) when the rule
/// asks for more: for what the core learns beyond the report (a verdict that does not match
/// its commitment, a reviewer block that reaches a person).
pub fn escalate(assessment: &mut RiskAssessment, policy: &RiskPolicy, rule: RiskRule) {
    if rule.tier > assessment.tier {
        assessment.tier = rule.tier;
        assessment.approvals_required = policy.approvals_for(rule.tier);
    }
    assessment.rules.push(rule);
}

/// `path:auto_ship` when the change has files and `auto_ship` covers every one, else `default`.
fn start_rule(policy: &RiskPolicy, paths: &[&str]) -> RiskRule {
    let uncovered: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|path| !policy.auto_ship.is_match(path))
        .collect();
    if !paths.is_empty() && uncovered.is_empty() {
        return RiskRule {
            rule: "path:auto_ship".to_owned(),
            tier: RiskTier::AutoShip,
            detail: format!(
                "every changed path matches risk.auto_ship: {}",
                listed(paths)
            ),
        };
    }
    let default_tier = policy.settings.default_tier;
    let why = if paths.is_empty() {
        "the change has no files".to_owned()
    } else if policy.auto_ship.is_empty() {
        "no risk.auto_ship globs".to_owned()
    } else {
        format!("not covered by risk.auto_ship: {}", listed(uncovered))
    };
    RiskRule {
        rule: "default".to_owned(),
        tier: default_tier,
        detail: format!("{why}; risk.default is {default_tier}"),
    }
}

/// Every path the change touches, in diff order without repeats: each file's path and, for a
/// rename, where it came from.
fn changed_paths(files: &[ChangedFile]) -> Vec<&str> {
    let mut paths: Vec<&str> = Vec::with_capacity(files.len());
    for file in files {
        for path in std::iter::once(file.path.as_str()).chain(file.old_path.as_deref()) {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// How many items a rule's detail names before it says "and N more".
const MAX_LISTED: usize = 5;

fn listed<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let items: Vec<S> = items.into_iter().collect();
    let shown: Vec<&str> = items.iter().take(MAX_LISTED).map(AsRef::as_ref).collect();
    let mut out = shown.join(", ");
    if items.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", items.len() - MAX_LISTED));
    }
    out
}

fn status_name(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Passed => "passed",
        GateStatus::PreExisting => "pre_existing",
        GateStatus::Flaky => "flaky",
        GateStatus::Failed => "failed",
        GateStatus::Skipped => "skipped",
    }
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Minor => "minor",
        Severity::Major => "major",
        Severity::Blocking => "blocking",
    }
}

/// One list of globs, compiled into a single set; equality compares the source patterns.
#[derive(Debug, Clone)]
struct PathGlobs {
    sources: Vec<String>,
    set: GlobSet,
}

impl PartialEq for PathGlobs {
    fn eq(&self, other: &Self) -> bool {
        self.sources == other.sources
    }
}

impl Eq for PathGlobs {}

impl PathGlobs {
    fn empty() -> Self {
        Self {
            sources: Vec::new(),
            set: GlobSet::empty(),
        }
    }

    fn compile(list: &'static str, patterns: &[String]) -> Result<Self, RiskPolicyError> {
        let error = |glob: &str, err: globset::Error| RiskPolicyError {
            list,
            glob: glob.to_owned(),
            reason: err.kind().to_string(),
        };
        let mut builder = GlobSetBuilder::new();
        for pattern in patterns {
            for variant in variants(pattern) {
                let glob = GlobBuilder::new(&variant)
                    .literal_separator(true)
                    .build()
                    .map_err(|err| error(pattern, err))?;
                builder.add(glob);
            }
        }
        let set = builder.build().map_err(|err| error("", err))?;
        Ok(Self {
            sources: patterns.to_vec(),
            set,
        })
    }

    fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }

    fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// The patterns one glob stands for: itself, and for a bare file-name pattern (no `/`) the same
/// name at any depth.
fn variants(pattern: &str) -> Vec<String> {
    if pattern.contains('/') {
        vec![pattern.to_owned()]
    } else {
        vec![pattern.to_owned(), format!("**/{pattern}")]
    }
}

/// A built-in path rule and its compiled globs.
struct BuiltinRule {
    rule: &'static str,
    globs: PathGlobs,
}

const LOCKFILES: &[&str] = &[
    "Cargo.lock",
    "package-lock.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "go.sum",
    "Gemfile.lock",
    "composer.lock",
];

const DEPENDENCY_MANIFESTS: &[&str] = &[
    "Cargo.toml",
    "package.json",
    "pyproject.toml",
    "requirements*.txt",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "Gemfile",
];

const MIGRATIONS: &[&str] = &["**/migrations/**", "**/migrate/**", "*.sql"];

const CI_INFRA: &[&str] = &[
    ".github/**",
    ".gitlab-ci.yml",
    ".ci/**",
    ".circleci/**",
    "Jenkinsfile",
    "Dockerfile*",
    "docker-compose*.yml",
    "docker-compose*.yaml",
    "*.tf",
    "k8s/**",
    "helm/**",
    "deploy/**",
];

/// The built-in rules, compiled once per process. Their patterns are constants covered by the
/// tests; were one ever not to compile, its rule would match nothing rather than stop takt.
static BUILTIN_RULES: LazyLock<Vec<BuiltinRule>> = LazyLock::new(|| {
    [
        ("lockfile", LOCKFILES),
        ("dependency_manifest", DEPENDENCY_MANIFESTS),
        ("migration", MIGRATIONS),
        ("ci_infra", CI_INFRA),
    ]
    .into_iter()
    .map(|(rule, patterns)| {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        BuiltinRule {
            rule,
            globs: PathGlobs::compile("builtin", &patterns).unwrap_or_else(|_| PathGlobs::empty()),
        }
    })
    .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        for patterns in [LOCKFILES, DEPENDENCY_MANIFESTS, MIGRATIONS, CI_INFRA] {
            let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
            assert!(PathGlobs::compile("builtin", &patterns).is_ok());
        }
        assert_eq!(BUILTIN_RULES.len(), 4);
        assert!(BUILTIN_RULES.iter().all(|rule| !rule.globs.is_empty()));
    }

    #[test]
    fn listed_names_five_then_counts() {
        assert_eq!(listed(["a", "b"]), "a, b");
        assert_eq!(
            listed(["a", "b", "c", "d", "e", "f", "g"]),
            "a, b, c, d, e and 2 more"
        );
    }
}
