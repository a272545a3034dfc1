//! Reading typed values out of the raw tree, collecting every problem and warning on the way.

use std::ops::RangeInclusive;
use std::path::Path;

use crate::error::{ConfigProblem, ConfigWarning, Position};
use crate::raw::{Key, Node, Value};
use crate::schema::{Owner, SectionSpec, sections_defining};
use crate::suggest::did_you_mean;

/// Everything found wrong (problems) or suspicious (warnings) while validating.
pub(crate) struct Report<'p> {
    pub path: &'p Path,
    pub problems: Vec<ConfigProblem>,
    pub warnings: Vec<ConfigWarning>,
}

impl<'p> Report<'p> {
    pub fn new(path: &'p Path) -> Self {
        Self {
            path,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn problem(
        &mut self,
        key: impl Into<String>,
        position: Option<Position>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(ConfigProblem {
            key: key.into(),
            position,
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    pub fn warn(
        &mut self,
        key: impl Into<String>,
        position: Option<Position>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.warnings.push(ConfigWarning {
            path: self.path.to_path_buf(),
            key: key.into(),
            position,
            message: message.into(),
            fix: fix.into(),
        });
    }

    /// Reads a string; a non-string is a problem.
    pub fn string(&mut self, section: &Section<'_>, key: &str) -> Option<String> {
        let node = section.get(key)?;
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.problem(
                    section.path(key),
                    Some(node.pos),
                    format!(
                        "`{}` must be a string, but it is {}",
                        section.path(key),
                        node.describe()
                    ),
                    format!("quote the value, for example `{key}: \"...\"`"),
                );
                None
            }
        }
    }

    /// Reads a string that must not be blank.
    pub fn non_blank(&mut self, section: &Section<'_>, key: &str, example: &str) -> Option<String> {
        let value = self.string(section, key)?;
        if value.trim().is_empty() {
            self.problem(
                section.path(key),
                section.get(key).map(|n| n.pos),
                format!("`{}` must not be blank", section.path(key)),
                format!("set a value, for example `{key}: {example}`, or remove the key"),
            );
            return None;
        }
        Some(value)
    }

    /// Reads a string that must be present and not blank; `item` names what holds the key
    /// (`the gate`, `the schedule`) in the fix.
    pub fn required_text(
        &mut self,
        section: &Section<'_>,
        key: &str,
        example: &str,
        item: &str,
    ) -> Option<String> {
        if section.get(key).is_none() {
            self.problem(
                section.path(key),
                section.position,
                format!("`{}` is required", section.path(key)),
                format!("add `{key}: {example}` to {item}"),
            );
            return None;
        }
        self.non_blank(section, key, example)
    }

    /// Reads an integer in `range`; absent gives `None`. Integer-valued strings such as `"20"`
    /// are accepted, as Symphony's reference implementation does.
    pub fn integer(
        &mut self,
        section: &Section<'_>,
        key: &str,
        range: RangeInclusive<i128>,
        expected: &str,
        fix: &str,
    ) -> Option<i128> {
        let node = section.get(key)?;
        let value = match &node.value {
            Value::Int(i) => Some(i128::from(*i)),
            Value::UInt(u) => Some(i128::from(*u)),
            Value::Str(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        match value {
            Some(v) if range.contains(&v) => Some(v),
            _ => {
                self.problem(
                    section.path(key),
                    Some(node.pos),
                    format!(
                        "`{}` must be {expected}, but it is {}",
                        section.path(key),
                        node.describe()
                    ),
                    fix.to_owned(),
                );
                None
            }
        }
    }

    /// A positive integer (1..=max) with a default.
    pub fn positive(&mut self, section: &Section<'_>, key: &str, max: i128, default: i128) -> i128 {
        let fix = format!(
            "write a whole number of 1 or more, for example `{key}: {default}`, or remove the key \
             to use the default ({default})"
        );
        self.integer(section, key, 1..=max, "a positive integer", &fix)
            .unwrap_or(default)
    }

    pub fn boolean(&mut self, section: &Section<'_>, key: &str, default: bool) -> bool {
        let Some(node) = section.get(key) else {
            return default;
        };
        match node.value {
            Value::Bool(b) => b,
            _ => {
                self.problem(
                    section.path(key),
                    Some(node.pos),
                    format!(
                        "`{}` must be `true` or `false`, but it is {}",
                        section.path(key),
                        node.describe()
                    ),
                    format!(
                        "write `{key}: true` or `{key}: false` (YAML 1.2: `yes`/`no` are strings)"
                    ),
                );
                default
            }
        }
    }

    /// Reads a non-negative number (integer or decimal), e.g. an amount of US dollars.
    pub fn amount(&mut self, section: &Section<'_>, key: &str, example: &str) -> Option<f64> {
        let node = section.get(key)?;
        let value = match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::UInt(u) => Some(*u as f64),
            Value::Float(f) => Some(*f),
            Value::Str(s) => s.trim().trim_start_matches('$').parse::<f64>().ok(),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                self.problem(
                    section.path(key),
                    Some(node.pos),
                    format!(
                        "`{}` must be a non-negative number, but it is {}",
                        section.path(key),
                        node.describe()
                    ),
                    format!("write a number such as `{key}: {example}`"),
                );
                None
            }
        }
    }

    /// Reads a list of strings; each item is checked and reported on its own.
    pub fn string_list(&mut self, section: &Section<'_>, key: &str) -> Option<Vec<String>> {
        self.string_items(section, key)
            .map(|items| items.into_iter().map(|(item, _)| item).collect())
    }

    /// Reads a list of strings keeping each item's position, for checks that report one item.
    pub fn string_items(
        &mut self,
        section: &Section<'_>,
        key: &str,
    ) -> Option<Vec<(String, Position)>> {
        let node = section.get(key)?;
        let Value::Seq(items) = &node.value else {
            self.problem(
                section.path(key),
                Some(node.pos),
                format!(
                    "`{}` must be a list of strings, but it is {}",
                    section.path(key),
                    node.describe()
                ),
                format!("write a YAML list, for example `{key}: [\"Todo\", \"In Progress\"]`"),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match &item.value {
                Value::Str(s) => out.push((s.clone(), item.pos)),
                _ => self.problem(
                    format!("{}[{index}]", section.path(key)),
                    Some(item.pos),
                    format!(
                        "item {index} of `{}` must be a string, but it is {}",
                        section.path(key),
                        item.describe()
                    ),
                    "quote the item",
                ),
            }
        }
        Some(out)
    }

    /// Reads one of `known` (trimmed); any other value is a problem with a "did you mean".
    pub fn choice(&mut self, section: &Section<'_>, key: &str, known: &[&str]) -> Option<String> {
        let raw = self.string(section, key)?;
        let value = raw.trim();
        if known.contains(&value) {
            return Some(value.to_owned());
        }
        let fix = match did_you_mean(value, known) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("use one of: {}", known.join(", ")),
        };
        self.problem(
            section.path(key),
            section.get(key).map(|n| n.pos),
            format!(
                "`{}` {value:?} is not one of {}",
                section.path(key),
                known.join(", ")
            ),
            fix,
        );
        None
    }

    /// Reads a mapping kept as JSON.
    pub fn json_map(
        &mut self,
        section: &Section<'_>,
        key: &str,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let node = section.get(key)?;
        match node.to_json() {
            serde_json::Value::Object(map) => Some(map),
            _ => {
                self.problem(
                    section.path(key),
                    Some(node.pos),
                    format!(
                        "`{}` must be a mapping, but it is {}",
                        section.path(key),
                        node.describe()
                    ),
                    format!("write `{key}:` followed by indented `name: value` lines"),
                );
                None
            }
        }
    }
}

/// One top-level section of the front matter, or one mapping item of a list inside it (a gate,
/// a reviewer).
pub(crate) struct Section<'n> {
    pub spec: &'static SectionSpec,
    /// The key path of the mapping: `review` for a section, `gates[0]` for an item.
    prefix: String,
    entries: &'n [(Key, Node)],
    /// Where the section's key (or the item) is, if present.
    pub position: Option<Position>,
}

impl<'n> Section<'n> {
    /// Finds `spec`'s section among the top-level entries. Absent or null sections are empty;
    /// a section that is not a mapping is a problem (and read as empty).
    pub fn read(
        root: &'n [(Key, Node)],
        spec: &'static SectionSpec,
        report: &mut Report<'_>,
    ) -> Self {
        let mut section = Section {
            spec,
            prefix: spec.name.to_owned(),
            entries: &[],
            position: None,
        };
        if let Some((key, node)) = root.iter().find(|(k, _)| k.name == spec.name) {
            section.position = Some(key.pos);
            match &node.value {
                Value::Map(entries) => section.entries = entries,
                Value::Null => {}
                _ => report.problem(
                    spec.name,
                    Some(node.pos),
                    format!(
                        "`{}` must be a mapping, but it is {}",
                        spec.name,
                        node.describe()
                    ),
                    format!(
                        "write `{}:` followed by indented `key: value` lines",
                        spec.name
                    ),
                ),
            }
        }
        section
    }

    /// One mapping item of a list, validated against `spec` and named `prefix` (`gates[2]`).
    pub fn item(
        spec: &'static SectionSpec,
        prefix: String,
        entries: &'n [(Key, Node)],
        position: Position,
    ) -> Self {
        Section {
            spec,
            prefix,
            entries,
            position: Some(position),
        }
    }

    /// The key path of this mapping (`review`, `gates[0]`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The value of `key`; `None` when absent or null (null means "use the default", R-015).
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
            .filter(|v| v.value != Value::Null)
    }

    /// `section.key`.
    pub fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.prefix)
    }

    /// Reports keys the section does not define: a warning in Symphony's sections, a
    /// problem in takt's. Both suggest the closest known key.
    pub fn check_unknown(&self, report: &mut Report<'_>) {
        for (key, _) in self.entries {
            if self.spec.keys.contains(&key.name.as_str()) {
                continue;
            }
            let path = self.path(&key.name);
            // Pointing an item's stray key at a top-level section would mislead.
            let elsewhere = if self.prefix == self.spec.name {
                sections_defining(&key.name, self.spec.name)
            } else {
                Vec::new()
            };
            let hint = match did_you_mean(&key.name, self.spec.keys) {
                Some(known) => format!("did you mean `{known}`?"),
                None => match elsewhere.first() {
                    Some(other) => format!("did you mean `{other}.{}`?", key.name),
                    None => format!(
                        "the keys of `{}` are: {}",
                        self.prefix,
                        self.spec.keys.join(", ")
                    ),
                },
            };
            match self.spec.owner {
                Owner::Takt => report.problem(
                    path.clone(),
                    Some(key.pos),
                    format!("unknown key `{path}`"),
                    hint,
                ),
                Owner::Symphony => report.warn(
                    path.clone(),
                    Some(key.pos),
                    format!("unknown key `{path}` is ignored"),
                    hint,
                ),
            }
        }
    }
}
