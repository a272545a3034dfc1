//! Typed errors and warnings, named with Symphony's error categories.
//!
//! Every message names the file, the line and column where known, the key path, what is wrong
//! and how to fix it, so an operator can act on it without reading code.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in WORKFLOW.md: 1-based line and column, counted in the whole file (the opening
/// `---` line is line 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

impl Position {
    pub fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

/// Formats "`/path/WORKFLOW.md` line 3, column 5" (or just the path when the position is
/// unknown).
pub(crate) struct At<'a>(pub &'a Path, pub Option<Position>);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(pos) => write!(
                f,
                "{} line {}, column {}",
                self.0.display(),
                pos.line,
                pos.column
            ),
            None => write!(f, "{}", self.0.display()),
        }
    }
}

/// One thing wrong with a key of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path, e.g. `agent.max_turns`.
    pub key: String,
    /// Where the offending key or value is, when known.
    pub position: Option<Position>,
    /// What is wrong, e.g. "`agent.max_turns` must be a positive integer, but it is 0".
    pub problem: String,
    /// How to fix it, e.g. "did you mean `auto_merge`?".
    pub fix: String,
}

/// A configuration finding that does not stop the workflow from loading: an unknown key in one
/// of Symphony's sections (ignored for forward compatibility, R-006), a section takt does not
/// support yet, or a value that is probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub path: PathBuf,
    /// Dotted key path, e.g. `codex.modle`.
    pub key: String,
    pub position: Option<Position>,
    /// What was found, e.g. "unknown key `codex.modle` is ignored".
    pub message: String,
    /// What to do about it; may be empty.
    pub fix: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}", self.message, At(&self.path, self.position))?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

/// Why a WORKFLOW.md could not be used.
///
/// [`WorkflowError::category`] gives Symphony's category name. File and YAML errors block new
/// dispatch (the daemon keeps the last good workflow if it has one); template errors fail only the
/// attempt that rendered the prompt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The workflow file does not exist or cannot be read: no explicit path was given and
    /// the working directory has no `WORKFLOW.md`, the path is wrong, the file vanished, or it is
    /// not readable. Retrying helps only once the file is there and readable.
    #[error(
        "cannot read workflow file {}: {reason}; {fix}",
        path.display()
    )]
    MissingWorkflowFile {
        path: PathBuf,
        reason: String,
        fix: String,
    },

    /// The file is not valid UTF-8, the YAML front matter does not parse, or it exceeds the
    /// parser's budgets (for example an alias "billion laughs" bomb). Retrying the same
    /// bytes always fails; the file must be edited.
    #[error("{message} in {}; {fix}", At(path, *position))]
    WorkflowParse {
        path: PathBuf,
        position: Option<Position>,
        message: String,
        fix: String,
    },

    /// The front matter parsed, but it is a list or a scalar instead of a mapping of keys to
    /// values. Retrying never helps; the file must be edited.
    #[error(
        "the front matter in {} is {found}, not a mapping of keys to values; write `key: value` \
         lines between the `---` lines, for example `tracker:` followed by `  kind: local`",
        At(path, *position)
    )]
    FrontMatterNotAMap {
        path: PathBuf,
        position: Option<Position>,
        /// What was found instead: "a list", "a string", ...
        found: String,
    },

    /// The prompt body is not a valid Liquid template: a syntax error, an unknown tag or an
    /// unknown filter. Detected when the workflow loads, so the workflow never becomes
    /// current. Retrying never helps; the template must be fixed.
    #[error(
        "the prompt template in {} does not parse: {message}; fix the Liquid in the prompt body \
         (below the closing `---`)",
        At(path, *position)
    )]
    TemplateParse {
        path: PathBuf,
        position: Option<Position>,
        message: String,
    },

    /// Rendering the prompt for one issue failed, typically because the template uses a variable
    /// or field that does not exist (strict variables, R-037). It fails only that attempt; the
    /// normal retry policy applies, but the same template and issue fail the same way
    /// until the template is fixed.
    #[error(
        "the prompt template in {} failed to render{}: {message}; fix the template (the variables \
         are `issue`, `attempt`, `retry_kind`, `last_error` and `feedback`)",
        path.display(),
        issue.as_deref().map(|id| format!(" for issue {id}")).unwrap_or_default()
    )]
    TemplateRender {
        path: PathBuf,
        /// The identifier of the issue being rendered.
        issue: Option<String>,
        message: String,
    },

    /// `tracker.kind` names a tracker this build of takt does not support. Retrying never
    /// helps; change `tracker.kind`.
    #[error(
        "tracker kind `{kind}` (`tracker.kind`) in {} is not supported; use one of {}{}",
        At(path, *position),
        crate::schema::TRACKER_KINDS.join(", "),
        suggestion.as_deref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default()
    )]
    UnsupportedTrackerKind {
        path: PathBuf,
        position: Option<Position>,
        kind: String,
        suggestion: Option<String>,
    },

    /// One or more keys have a wrong type or value, a required key is missing, or a takt-owned
    /// section contains an unknown key. All problems found are listed. Retrying never helps; the
    /// file must be edited.
    #[error("{}", ProblemList { path, problems })]
    InvalidWorkflowConfig {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
}

struct ProblemList<'a> {
    path: &'a Path,
    problems: &'a [ConfigProblem],
}

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems {
            [one] => write!(
                f,
                "{} in {}; {}",
                one.problem,
                At(self.path, one.position),
                one.fix
            ),
            many => {
                write!(
                    f,
                    "{} problems in workflow file {}:",
                    many.len(),
                    self.path.display()
                )?;
                for p in many {
                    write!(f, "\n  - ")?;
                    if let Some(pos) = p.position {
                        write!(f, "line {}, column {}: ", pos.line, pos.column)?;
                    }
                    write!(f, "{}; {}", p.problem, p.fix)?;
                }
                Ok(())
            }
        }
    }
}

impl WorkflowError {
    /// Symphony's error category, or takt's `invalid_workflow_config` /
    /// `unsupported_tracker_kind`.
    pub fn category(&self) -> &'static str {
        match self {
            WorkflowError::MissingWorkflowFile { .. } => "missing_workflow_file",
            WorkflowError::WorkflowParse { .. } => "workflow_parse_error",
            WorkflowError::FrontMatterNotAMap { .. } => "workflow_front_matter_not_a_map",
            WorkflowError::TemplateParse { .. } => "template_parse_error",
            WorkflowError::TemplateRender { .. } => "template_render_error",
            WorkflowError::UnsupportedTrackerKind { .. } => "unsupported_tracker_kind",
            WorkflowError::InvalidWorkflowConfig { .. } => "invalid_workflow_config",
        }
    }

    /// The workflow file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WorkflowError::MissingWorkflowFile { path, .. }
            | WorkflowError::WorkflowParse { path, .. }
            | WorkflowError::FrontMatterNotAMap { path, .. }
            | WorkflowError::TemplateParse { path, .. }
            | WorkflowError::TemplateRender { path, .. }
            | WorkflowError::UnsupportedTrackerKind { path, .. }
            | WorkflowError::InvalidWorkflowConfig { path, .. } => path,
        }
    }

    /// Where in the file the (first) problem is, when known.
    pub fn position(&self) -> Option<Position> {
        match self {
            WorkflowError::MissingWorkflowFile { .. } | WorkflowError::TemplateRender { .. } => {
                None
            }
            WorkflowError::WorkflowParse { position, .. }
            | WorkflowError::FrontMatterNotAMap { position, .. }
            | WorkflowError::TemplateParse { position, .. }
            | WorkflowError::UnsupportedTrackerKind { position, .. } => *position,
            WorkflowError::InvalidWorkflowConfig { problems, .. } => {
                problems.first().and_then(|p| p.position)
            }
        }
    }

    /// The configuration problems, for `invalid_workflow_config`; empty otherwise.
    pub fn problems(&self) -> &[ConfigProblem] {
        match self {
            WorkflowError::InvalidWorkflowConfig { problems, .. } => problems,
            _ => &[],
        }
    }

    /// True for template errors, which fail one attempt rather than block dispatch.
    pub fn is_template_error(&self) -> bool {
        matches!(
            self,
            WorkflowError::TemplateParse { .. } | WorkflowError::TemplateRender { .. }
        )
    }
}
