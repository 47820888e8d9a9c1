//! What the importer generates, as data: GraphQL types (objects, inputs, enums, unions), the
//! registry they share across documents, and how values are written in SDL (string literals,
//! defaults, `@from`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::names::{self, Scope};
use super::source::Target;

/// Output (object) types or input types: a schema can give one of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    Output,
    Input,
}

/// A GraphQL type without its outer `!`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Named(String),
    /// A list; `true` when its items are non-null.
    List(Box<Ty>, bool),
}

impl Ty {
    pub fn render(&self, non_null: bool) -> String {
        let inner = match self {
            Ty::Named(n) => n.clone(),
            Ty::List(item, item_non_null) => format!("[{}]", item.render(*item_non_null)),
        };
        if non_null {
            format!("{inner}!")
        } else {
            inner
        }
    }

    /// The named type at the bottom of the lists.
    pub fn named(&self) -> &str {
        match self {
            Ty::Named(n) => n,
            Ty::List(item, _) => item.named(),
        }
    }
}

/// What a schema became: its type, whether null is allowed, and a remark for the SDL.
#[derive(Clone, Debug)]
pub struct Shape {
    pub ty: Ty,
    pub nullable: bool,
    /// A `# ...` comment for the field: what was guessed or given up.
    pub note: Option<String>,
    /// For answers: the mapping that unwraps an envelope (`oneOf` of a list and a page).
    pub select: Option<String>,
}

impl Shape {
    pub(super) fn named(name: &str) -> Self {
        Shape {
            ty: Ty::Named(name.to_string()),
            nullable: false,
            note: None,
            select: None,
        }
    }
}

/// A field of a generated object type.
#[derive(Clone, Debug)]
pub struct ObjectField {
    pub name: String,
    /// The backend's key.
    pub wire: String,
    pub ty: String,
    pub description: Option<String>,
    /// The directive that binds it (`@from(...)` or, for relations, `@http(...)`).
    pub directive: Option<String>,
    pub note: Option<String>,
}

/// A field of a generated input type.
#[derive(Clone, Debug)]
pub struct InputField {
    pub name: String,
    pub ty: String,
    pub description: Option<String>,
    pub default: Option<String>,
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Def {
    Object(Vec<ObjectField>),
    Input(Vec<InputField>),
    Enum(Vec<String>),
    /// Members, the discriminating key, backend value → member.
    Union(Vec<String>, String, Vec<(String, String)>),
}

#[derive(Clone, Debug)]
pub struct TypeDef {
    pub name: String,
    pub description: Option<String>,
    pub def: Def,
    /// The backend whose document it came from (it is written in that backend's file).
    pub backend: String,
}

/// The custom scalars the importer may use, and what they are.
pub const SCALARS: &[(&str, &str)] = &[
    ("BigInt", "A 64-bit integer, as the backend's JSON number."),
    ("Date", "A date (`2024-05-01`), as the backend writes it."),
    ("DateTime", "A date and time (RFC 3339), as the backend writes it."),
    ("JSON", "Any JSON value, as the backend sends it."),
    ("UUID", "A UUID, as the backend writes it."),
];

/// The types of the whole generated schema (every document shares one namespace).
pub struct Registry {
    pub types: BTreeMap<String, TypeDef>,
    pub names: Scope,
    /// Named types generated per (document, target, mode): the name and whether it is nullable.
    pub(super) seen: HashMap<(usize, Target, Mode), (String, bool)>,
    pub(super) inline_enums: HashMap<(String, Vec<String>), String>,
    pub scalars: BTreeSet<&'static str>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut reserved: Vec<&str> = vec![
            "Query",
            "Mutation",
            "Subscription",
            "String",
            "Int",
            "Float",
            "Boolean",
            "ID",
        ];
        reserved.extend(SCALARS.iter().map(|(n, _)| *n));
        Registry {
            types: BTreeMap::new(),
            names: Scope::with(&reserved),
            seen: HashMap::new(),
            inline_enums: HashMap::new(),
            scalars: BTreeSet::new(),
        }
    }
}

impl Registry {
    pub fn is_enum(&self, name: &str) -> bool {
        matches!(self.types.get(name).map(|t| &t.def), Some(Def::Enum(_)))
    }

    pub fn object(&self, name: &str) -> Option<&Vec<ObjectField>> {
        match self.types.get(name).map(|t| &t.def) {
            Some(Def::Object(fields)) => Some(fields),
            _ => None,
        }
    }

    pub fn object_mut(&mut self, name: &str) -> Option<&mut Vec<ObjectField>> {
        match self.types.get_mut(name).map(|t| &mut t.def) {
            Some(Def::Object(fields)) => Some(fields),
            _ => None,
        }
    }
}

/// The first of `keys` of `v` that is a non-blank string, trimmed.
pub fn text_of(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter()
        .filter_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|d| !d.is_empty())
        .map(str::to_string)
}

/// `.key` or `.["odd key"]` in a mapping expression.
pub fn jq_key(key: &str) -> String {
    if names::legal(key) {
        key.to_string()
    } else {
        format!("[{}]", serde_json::to_string(key).unwrap_or_default())
    }
}

/// The `@from` reading backend key `wire`: a path when the key is one plain path step.
pub fn from_directive(wire: &str) -> String {
    if names::legal(wire) {
        format!("@from(path: {})", gql_string(wire))
    } else {
        format!("@from(expr: {})", gql_string(&format!(".{}", jq_key(wire))))
    }
}

/// A GraphQL string literal.
pub fn gql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value as a GraphQL literal (a default value); `enum_type`: strings are enum values.
pub fn literal(v: &Value, enum_type: bool) -> Option<String> {
    Some(match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if enum_type => names::enum_value(s)?.to_string(),
        Value::String(s) => gql_string(s),
        Value::Array(items) => {
            let items: Option<Vec<String>> = items.iter().map(|i| literal(i, enum_type)).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Object(map) => {
            let fields: Option<Vec<String>> = map
                .iter()
                .map(|(k, v)| names::legal(k).then(|| literal(v, false).map(|l| format!("{k}: {l}")))?)
                .collect();
            format!("{{{}}}", fields?.join(", "))
        }
    })
}
