//! The raw, located YAML tree: the low half of the two-phase configuration.
//!
//! The front matter is deserialized (serde-saphyr, with budgets against alias bombs and deep
//! nesting) into a tree of [`Node`]s that keeps every key's and value's file position. Nothing
//! here knows the schema; `validate` turns this tree into the typed [`crate::Workflow`], which is
//! the only thing the runtime sees. A generic tree is used instead of derived structs because
//! derived structs cannot both collect unknown keys (needed for R-006 warnings and takt's errors)
//! and keep positions (`#[serde(flatten)]` drops spans), and because the validator's own type
//! errors can name the key path.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

use crate::error::Position;

/// A YAML value with its file position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Value,
    pub pos: Position,
}

/// A mapping key: always a string (scalar keys are stringified) with its file position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub name: String,
    pub pos: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// "the string \"x\"", "the number 1.5", "a list", ... for error messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => format!("the boolean `{b}`"),
            Value::Int(i) => format!("the integer {i}"),
            Value::UInt(u) => format!("the integer {u}"),
            Value::Float(f) => format!("the number {f}"),
            Value::Str(s) => format!("the string {s:?}"),
            Value::Seq(_) => "a list".to_owned(),
            Value::Map(_) => "a mapping".to_owned(),
        }
    }

    /// "a list", "a string", ... (for the front matter's top-level type).
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value as JSON, kept verbatim (used for pass-through settings such as
    /// `tracker.provider`). Non-finite floats become `null`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A YAML syntax or budget error, positioned in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YamlError {
    pub position: Option<Position>,
    pub message: String,
}

/// Budgets for a configuration file: generous for any real WORKFLOW.md, small enough that an
/// alias bomb or a pathological nesting fails in milliseconds.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 200_000,
            max_aliases: 2_000,
            max_anchors: 2_000,
            max_depth: 64,
            max_documents: 1,
            max_nodes: 50_000,
            max_total_scalar_bytes: 8 * 1024 * 1024,
            max_merge_keys: 1_000,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 8 * 1024 * 1024,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 32,
        },
        // YAML 1.2 core booleans only: `yes`, `no`, `on`, `off`, `y`, `n` stay strings.
        strict_booleans: true,
        with_snippet: false,
    }
}

/// Parses the front matter text. `first_line` is the file line the YAML starts on, so every
/// position in the tree and in errors is a file position.
pub(crate) fn parse_yaml(yaml: &str, first_line: u32) -> Result<Node, YamlError> {
    let offset = first_line.saturating_sub(1);
    let shift = |line: u64, column: u64| {
        let line = u32::try_from(line)
            .unwrap_or(u32::MAX)
            .saturating_add(offset);
        Position::new(line, u32::try_from(column).unwrap_or(u32::MAX))
    };
    let spanned: Spanned<RawValue> =
        serde_saphyr::from_str_with_options(yaml, options()).map_err(|err| {
            let position = err
                .location()
                .filter(|loc| loc.line() > 0)
                .map(|loc| shift(loc.line(), loc.column()));
            let message = serde_saphyr::DefaultMessageFormatter
                .format_message(err.without_snippet())
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>();
            YamlError {
                position,
                message: message.trim().to_owned(),
            }
        })?;
    convert(spanned, &shift)
}

fn convert(
    spanned: Spanned<RawValue>,
    shift: &dyn Fn(u64, u64) -> Position,
) -> Result<Node, YamlError> {
    let pos = shift(spanned.referenced.line(), spanned.referenced.column());
    let value = match spanned.value {
        RawValue::Null => Value::Null,
        RawValue::Bool(b) => Value::Bool(b),
        RawValue::Int(i) => Value::Int(i),
        RawValue::UInt(u) => Value::UInt(u),
        RawValue::Float(f) => Value::Float(f),
        RawValue::Str(s) => Value::Str(s),
        RawValue::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|item| convert(item, shift))
                .collect::<Result<_, _>>()?,
        ),
        RawValue::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(key, value)| Ok((convert_key(key, shift)?, convert(value, shift)?)))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(Node { value, pos })
}

fn convert_key(
    key: Spanned<RawValue>,
    shift: &dyn Fn(u64, u64) -> Position,
) -> Result<Key, YamlError> {
    let pos = shift(key.referenced.line(), key.referenced.column());
    let name = match key.value {
        RawValue::Str(s) => s,
        RawValue::Null => "null".to_owned(),
        RawValue::Bool(b) => b.to_string(),
        RawValue::Int(i) => i.to_string(),
        RawValue::UInt(u) => u.to_string(),
        RawValue::Float(f) => f.to_string(),
        RawValue::Seq(_) | RawValue::Map(_) => {
            return Err(YamlError {
                position: Some(pos),
                message: "a list or mapping used as a mapping key is not supported".to_owned(),
            });
        }
    };
    Ok(Key { name, pos })
}

/// What serde-saphyr deserializes into: any YAML value, each child spanned.
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<RawValue, E> {
        Ok(i64::try_from(v).map_or(RawValue::Float(v as f64), RawValue::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        Ok(u64::try_from(v).map_or(RawValue::Float(v as f64), RawValue::UInt))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Node {
        match parse_yaml(yaml, 2) {
            Ok(node) => node,
            Err(err) => panic!("unexpected error {err:?}"),
        }
    }

    #[test]
    fn keeps_file_positions() {
        let node = parse("a: 1\nb:\n  c: x\n");
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.name, "a");
        assert_eq!(entries[0].0.pos, Position::new(2, 1));
        assert_eq!(entries[0].1.pos, Position::new(2, 4));
        let Value::Map(inner) = &entries[1].1.value else {
            panic!("not a map")
        };
        assert_eq!(inner[0].0.name, "c");
        assert_eq!(inner[0].0.pos, Position::new(4, 3));
        assert_eq!(inner[0].1.value, Value::Str("x".into()));
    }

    #[test]
    fn yaml_1_2_booleans_and_scalar_keys() {
        let node = parse("y: yes\nn: off\nt: true\n1: one\n");
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        let names: Vec<_> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["y", "n", "t", "1"]);
        assert_eq!(entries[0].1.value, Value::Str("yes".into()));
        assert_eq!(entries[1].1.value, Value::Str("off".into()));
        assert_eq!(entries[2].1.value, Value::Bool(true));
    }

    #[test]
    fn empty_and_blank_are_null() {
        assert_eq!(parse("").value, Value::Null);
        assert_eq!(parse("  \n\n").value, Value::Null);
        assert_eq!(parse("# only a comment\n").value, Value::Null);
    }

    #[test]
    fn syntax_errors_have_file_positions() {
        let err = match parse_yaml("a: 1\n  b: 2\n", 2) {
            Err(err) => err,
            Ok(node) => panic!("parsed {node:?}"),
        };
        assert_eq!(err.position, Some(Position::new(3, 4)));
        assert!(
            err.message.contains("mapping values are not allowed"),
            "{}",
            err.message
        );
        assert!(!err.message.contains('\n'));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let Err(err) = parse_yaml("a: 1\na: 2\n", 2) else {
            panic!("accepted")
        };
        assert_eq!(err.position, Some(Position::new(3, 1)));
        assert!(err.message.contains("duplicate"), "{}", err.message);
    }

    #[test]
    fn aliases_and_merges_resolve() {
        let node = parse("base: &b {k: 1}\nuse:\n  <<: *b\n  m: 2\n");
        let json = node.to_json();
        assert_eq!(json["use"]["k"], 1);
        assert_eq!(json["use"]["m"], 2);
    }

    #[test]
    fn complex_keys_are_rejected() {
        let Err(err) = parse_yaml("? [a, b]\n: c\n", 2) else {
            panic!("accepted")
        };
        assert!(err.message.contains("mapping key"), "{}", err.message);
    }
}
