//! Mapping expressions: how a backend's JSON becomes the values of the public schema.
//!
//! A mapping is either a **path** (`data.items`, `owner.customer_id`, `items.0`, `.`) or an
//! **expression** in a subset of jq's language (`.first + " " + .last`, `[.tags[].name]`,
//! `.stock // 0`, `.props | to_entries | map({name: .key, value})`). Paths are walked by
//! borrowing, as before; expressions are parsed once at plan time into a tree the evaluator
//! walks over the answer, borrowing what it only reads. `mosaic check` infers each expression's
//! output [`Shape`] and compares it with the GraphQL type it must produce.
//!
//! Written here rather than taken from `jaq` (jq in Rust, evaluated for this): a plan is shared
//! by every request and thread, so its compiled expressions must be `Send + Sync` and evaluate
//! over the `serde_json::Value` answers the executors already hold — jaq works on its own value
//! type, which would mean converting every answer each time it is read; and `mosaic check` needs
//! the syntax tree to tell a field's type from its expression, with the column of a mistake. The
//! syntax and meaning are jq's, for the functions listed in docs/mapping.md.

mod ast;
mod builtins;
mod check;
mod eval;
mod functions;
mod literals;
mod parse;
mod scan;
mod shape;
mod values;

use std::borrow::Cow;

use serde_json::Value;

pub use check::fits;
pub use eval::EvalError;
pub use shape::Shape;

use super::json_path::JsonPath;

/// A mistake in a mapping's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct MappingError {
    pub message: String,
    /// 1-based, in characters.
    pub column: usize,
}

/// A compiled mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    text: Box<str>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Path(JsonPath),
    Expr(ast::Expr),
}

/// Characters that never occur in a plain path.
const EXPRESSION_CHARS: &[char] = &[
    '|', '[', ']', '{', '}', '(', ')', '$', '"', ',', ':', '?', '+', '*', '/', '<', '>', '=', '!', '#', '\\',
];

impl Mapping {
    /// A path or an expression: text starting with `.` (other than `.` alone, the value itself)
    /// or using any expression syntax is an expression; `a.b.0` is a path.
    pub fn parse(text: &str) -> Result<Self, MappingError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(MappingError {
                message: "the path is empty; write `.` for the value itself".into(),
                column: 1,
            });
        }
        let plain = trimmed == "."
            || (!trimmed.starts_with('.')
                && !trimmed.contains(char::is_whitespace)
                && !trimmed.contains(EXPRESSION_CHARS)
                && !trimmed.starts_with('-'));
        if plain {
            let path = JsonPath::parse(trimmed).map_err(|e| MappingError {
                message: e.reason.to_string(),
                column: 1,
            })?;
            return Ok(Self {
                text: trimmed.into(),
                kind: Kind::Path(path),
            });
        }
        Self::expression(trimmed)
    }

    /// An expression (jq syntax: keys start with a dot).
    pub fn expression(text: &str) -> Result<Self, MappingError> {
        let expr = parse::parse(text)?;
        let kind = match expr.as_path() {
            Some(segments) => Kind::Path(JsonPath::from_segments(segments)),
            None => Kind::Expr(expr),
        };
        Ok(Self {
            text: text.trim().into(),
            kind,
        })
    }

    /// A mapping that is a plain path.
    pub fn from_path(path: JsonPath) -> Self {
        Self {
            text: path.to_string().into(),
            kind: Kind::Path(path),
        }
    }

    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The path, when the mapping is one (read by borrowing, without the evaluator).
    pub fn as_path(&self) -> Option<&JsonPath> {
        match &self.kind {
            Kind::Path(p) => Some(p),
            Kind::Expr(_) => None,
        }
    }

    /// Whether the mapping reads `$name`.
    pub fn uses_var(&self, name: &str) -> bool {
        match &self.kind {
            Kind::Path(_) => false,
            Kind::Expr(e) => e.uses_var(name),
        }
    }

    /// The mapping's value for `input`: a path's value (`None` when absent), or an expression's
    /// output — none is `None`, several are a list. `args` is `$args`.
    pub fn eval<'a>(&self, input: &'a Value, args: Option<&'a Value>) -> Result<Option<Cow<'a, Value>>, EvalError> {
        match &self.kind {
            Kind::Path(p) => Ok(p.get(input).map(Cow::Borrowed)),
            Kind::Expr(e) => {
                let scope = args.map(|a| eval::Scope {
                    name: "args",
                    value: Cow::Borrowed(a),
                    parent: None,
                });
                let mut ev = eval::Evaluator::new(scope.as_ref());
                let mut out = ev.run(e, &Cow::Borrowed(input))?;
                Ok(match out.len() {
                    0 => None,
                    1 => out.pop(),
                    _ => Some(Cow::Owned(Value::Array(out.into_iter().map(Cow::into_owned).collect()))),
                })
            }
        }
    }

    /// The shape of the output for an input of shape `input`.
    pub fn shape(&self, input: &Shape) -> Shape {
        match &self.kind {
            Kind::Path(p) if p.is_root() => input.clone(),
            Kind::Path(_) => Shape::Any,
            Kind::Expr(e) => {
                let mut many = false;
                let s = shape::infer(e, input, &mut many);
                if many {
                    Shape::Array(Box::new(s))
                } else {
                    s
                }
            }
        }
    }
}

impl PartialEq for Mapping {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Function names, for hints.
pub fn function_names() -> Vec<&'static str> {
    builtins::names()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_paths_stay_paths_and_the_rest_are_expressions() {
        for p in ["data.items", "items.0", ".", "customer_id", "a-b.c"] {
            assert!(Mapping::parse(p).expect(p).as_path().is_some(), "{p}");
        }
        // jq's own spelling of a path is a path too.
        assert!(Mapping::parse(".data.items[0]").expect("jq path").as_path().is_some());
        for e in [".a + .b", "[.items[].id]", ".x // 0", "{a: .b}", "\"\\(.a)\""] {
            assert!(Mapping::parse(e).expect(e).as_path().is_none(), "{e}");
        }
        assert!(Mapping::parse("").is_err());
        assert!(Mapping::parse("   ").is_err());
        assert!(Mapping::parse("a..b").is_err());
    }

    #[test]
    fn outputs_none_one_or_many() {
        let doc = json!({"items": [{"id": 1}, {"id": 2}], "one": {"id": 3}});
        let m = |t: &str| Mapping::parse(t).expect(t);
        assert_eq!(
            m(".items[].id").eval(&doc, None).expect("ok").as_deref(),
            Some(&json!([1, 2]))
        );
        assert_eq!(m(".one.id").eval(&doc, None).expect("ok").as_deref(), Some(&json!(3)));
        assert_eq!(m("missing.id").eval(&doc, None).expect("ok"), None);
        assert_eq!(m(".items[] | select(.id > 5)").eval(&doc, None).expect("ok"), None);
        let args = json!({"n": 2});
        assert_eq!(
            m(".items[] | select(.id == $args.n) | .id")
                .eval(&doc, Some(&args))
                .expect("ok")
                .as_deref(),
            Some(&json!(2))
        );
    }
}
