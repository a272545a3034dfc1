//! Render data that records lookups of missing names, so that strict rendering also covers
//! conditions (liquid-rust treats an unknown name in `{% if %}` as nil).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

use liquid::model::{ArrayView, DisplayCow, KString, KStringCow, State, Value as LValue};
use liquid::{ObjectView, ValueView};

/// Render data that records lookups of names that do not exist.
#[derive(Debug)]
pub(super) enum Tracked {
    Leaf(LValue),
    List(Vec<Tracked>),
    Object(TrackedObject),
}

pub(super) struct TrackedObject {
    /// Dotted path of this object (`issue`, `issue.blocked_by[]`); empty for the globals.
    pub path: String,
    pub fields: BTreeMap<KString, Tracked>,
    pub misses: Rc<RefCell<BTreeSet<String>>>,
}

impl fmt::Debug for TrackedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.fields.iter()).finish()
    }
}

impl Tracked {
    pub fn from_json(
        value: &serde_json::Value,
        path: &str,
        misses: &Rc<RefCell<BTreeSet<String>>>,
    ) -> Self {
        use serde_json::Value as J;
        match value {
            J::Null => Tracked::Leaf(LValue::Nil),
            J::Bool(b) => Tracked::Leaf(LValue::scalar(*b)),
            J::Number(n) => Tracked::Leaf(match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => LValue::scalar(i),
                (None, Some(f)) => LValue::scalar(f),
                (None, None) => LValue::scalar(n.to_string()),
            }),
            J::String(s) => Tracked::Leaf(LValue::scalar(s.clone())),
            J::Array(items) => {
                let item_path = format!("{path}[]");
                Tracked::List(
                    items
                        .iter()
                        .map(|v| Tracked::from_json(v, &item_path, misses))
                        .collect(),
                )
            }
            J::Object(map) => Tracked::Object(TrackedObject {
                path: path.to_owned(),
                fields: map
                    .iter()
                    .map(|(k, v)| {
                        (
                            KString::from_ref(k),
                            Tracked::from_json(v, &format!("{path}.{k}"), misses),
                        )
                    })
                    .collect(),
                misses: Rc::clone(misses),
            }),
        }
    }

    fn view(&self) -> &dyn ValueView {
        match self {
            Tracked::Leaf(v) => v,
            Tracked::List(items) => items,
            Tracked::Object(o) => o,
        }
    }
}

impl ValueView for Tracked {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        self.view().render()
    }
    fn source(&self) -> DisplayCow<'_> {
        self.view().source()
    }
    fn type_name(&self) -> &'static str {
        self.view().type_name()
    }
    fn query_state(&self, state: State) -> bool {
        self.view().query_state(state)
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        self.view().to_kstr()
    }
    fn to_value(&self) -> LValue {
        self.view().to_value()
    }
    fn as_scalar(&self) -> Option<liquid::model::ScalarCow<'_>> {
        self.view().as_scalar()
    }
    fn as_array(&self) -> Option<&dyn ArrayView> {
        match self {
            Tracked::List(items) => Some(items),
            _ => None,
        }
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        match self {
            Tracked::Object(o) => Some(o),
            _ => None,
        }
    }
    fn is_nil(&self) -> bool {
        self.view().is_nil()
    }
}

impl TrackedObject {
    fn missed(&self, index: &str) {
        // `size` is answered by liquid itself after a failed lookup.
        if index != "size" {
            let name = if self.path.is_empty() {
                index.to_owned()
            } else {
                format!("{}.{index}", self.path)
            };
            self.misses.borrow_mut().insert(name);
        }
    }

    fn to_object(&self) -> liquid::Object {
        self.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.to_value()))
            .collect()
    }
}

/// Displays an owned liquid value (objects render through a snapshot).
struct Owned(LValue);

impl fmt::Display for Owned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.render())
    }
}

struct OwnedSource(LValue);

impl fmt::Display for OwnedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.source())
    }
}

impl ValueView for TrackedObject {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }
    fn render(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(Owned(LValue::Object(self.to_object()))))
    }
    fn source(&self) -> DisplayCow<'_> {
        DisplayCow::Owned(Box::new(OwnedSource(LValue::Object(self.to_object()))))
    }
    fn type_name(&self) -> &'static str {
        "object"
    }
    fn query_state(&self, state: State) -> bool {
        match state {
            State::Truthy => true,
            State::DefaultValue | State::Empty | State::Blank => self.fields.is_empty(),
        }
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_string(Owned(LValue::Object(self.to_object())).to_string())
    }
    fn to_value(&self) -> LValue {
        LValue::Object(self.to_object())
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for TrackedObject {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        i64::try_from(self.fields.len()).unwrap_or(i64::MAX)
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.fields.keys().map(|k| KStringCow::from(k.as_str())))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.fields.values().map(|v| v as &dyn ValueView))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.fields
                .iter()
                .map(|(k, v)| (KStringCow::from(k.as_str()), v as &dyn ValueView)),
        )
    }
    fn contains_key(&self, index: &str) -> bool {
        let found = self.fields.contains_key(index);
        // The runtime asks the globals with `contains_key` before every variable lookup; nested
        // objects are asked only by the `contains` operator, where a miss is a plain `false`.
        // `for` probes `forloop` to find a parent loop.
        if !found && self.path.is_empty() && index != "forloop" {
            self.missed(index);
        }
        found
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        let found = self.fields.get(index).map(|v| v as &dyn ValueView);
        if found.is_none() {
            self.missed(index);
        }
        found
    }
}
