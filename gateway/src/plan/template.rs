//! Templates in bindings: `/customers/{{args.id}}`, `{{parent.customerId}}`, `{{headers.x-user}}`.
//!
//! Parsed once at plan time into literal and expression parts; at request time an expression is a
//! lookup in the arguments, the parent object or the allowlisted request headers. This module owns
//! the syntax and evaluation only; what a rendered value means in a URL or body is `backend`'s job.

use std::borrow::Cow;

use serde_json::Value;

use super::json_path::JsonPath;

/// A parsed template string.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Lit(String),
    Expr(Expr),
}

/// What `{{ ... }}` refers to.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `args.NAME(.FIELD)*`: a field argument, optionally a path into an input object.
    Arg { name: String, path: Vec<String> },
    /// `parent.FIELD`: a field of the parent object; `path` is where it lives in the backend JSON
    /// (filled in by the plan builder from the field's `@from`).
    Parent { field: String, path: JsonPath },
    /// `headers.NAME`: an allowlisted header of the client's request.
    Header(String),
    /// `claims.NAME(.FIELD)*`: a claim of the request's verified JWT (absent when anonymous).
    Claim(JsonPath),
    /// `key`: the key a fan-out call is made for.
    Key,
    /// `E | int` (or `float`, `bool`, `string`, `csv`): the value converted to that JSON type.
    Convert(Box<Expr>, Conversion),
}

/// A conversion of a template value to a JSON type (lists are converted item by item).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    Int,
    Float,
    Bool,
    String,
    /// A list as one string, its items' text joined by commas (`[1, "b"]` → `"1,b"`): the
    /// `style: form, explode: false` parameters of OpenAPI (`?ids=1,2`).
    Csv,
}

impl Conversion {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "int" => Self::Int,
            "float" => Self::Float,
            "bool" => Self::Bool,
            "string" => Self::String,
            "csv" => Self::Csv,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Float => "float",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Csv => "csv",
        }
    }

    /// `v` converted; `None` when it cannot be (`"abc" | int`).
    pub fn apply(self, v: &Value) -> Option<Value> {
        if self == Self::Csv {
            return csv(v);
        }
        match v {
            Value::Null => return Some(Value::Null),
            Value::Array(items) => {
                return items
                    .iter()
                    .map(|i| self.apply(i))
                    .collect::<Option<Vec<_>>>()
                    .map(Value::Array)
            }
            _ => {}
        }
        Some(match self {
            Self::String => match v {
                Value::String(_) => v.clone(),
                Value::Number(_) | Value::Bool(_) => Value::String(v.to_string()),
                _ => return None,
            },
            Self::Int => match v {
                Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
                Value::Number(n) => {
                    let f = n.as_f64()?;
                    (f.fract() == 0.0 && f.abs() < 9.0e15).then(|| Value::from(f as i64))?
                }
                Value::String(s) => Value::from(s.trim().parse::<i64>().ok()?),
                _ => return None,
            },
            Self::Float => match v {
                Value::Number(_) => v.clone(),
                Value::String(s) => {
                    serde_json::Number::from_f64(s.trim().parse::<f64>().ok().filter(|f| f.is_finite())?)
                        .map(Value::Number)?
                }
                _ => return None,
            },
            Self::Csv => return csv(v),
            Self::Bool => match v {
                Value::Bool(_) => v.clone(),
                Value::String(s) => match s.trim() {
                    "true" | "1" => Value::Bool(true),
                    "false" | "0" => Value::Bool(false),
                    _ => return None,
                },
                Value::Number(n) => match n.as_i64() {
                    Some(1) => Value::Bool(true),
                    Some(0) => Value::Bool(false),
                    _ => return None,
                },
                _ => return None,
            },
        })
    }
}

/// `v` as comma-separated text: a list's items (strings as they are, numbers and booleans as
/// JSON), or a single scalar; `null` stays `null`. Objects and nested lists cannot be.
fn csv(v: &Value) -> Option<Value> {
    fn text(v: &Value, out: &mut String) -> Option<()> {
        match v {
            Value::String(s) => out.push_str(s),
            Value::Number(_) | Value::Bool(_) => out.push_str(&v.to_string()),
            _ => return None,
        }
        Some(())
    }
    let mut out = String::new();
    match v {
        Value::Null => return Some(Value::Null),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                text(item, &mut out)?;
            }
        }
        _ => text(v, &mut out)?,
    }
    Some(Value::String(out))
}

/// A template value that cannot be converted to the type its template asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value of {expr} cannot be converted to {to}")]
pub struct ConversionError {
    pub expr: String,
    pub to: &'static str,
}

/// Why a template could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{{{` in template")]
    Unclosed,
    #[error("empty `{{{{}}}}` in template")]
    Empty,
    #[error("unknown template root `{0}`: use args.NAME, parent.FIELD, headers.NAME or claims.NAME")]
    UnknownRoot(String),
    #[error("`{0}` needs a name after the dot, e.g. {0}.id")]
    MissingName(String),
    #[error("unknown conversion `{0}`: use int, float, bool or string")]
    UnknownConversion(String),
}

impl Template {
    /// The template with each expression shown by name (`/accounts/{args.id}`): what a trace or a
    /// log names as the endpoint, whatever the values.
    pub fn pattern(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(e) => {
                    out.push('{');
                    out.push_str(&e.base().describe());
                    out.push('}');
                }
            }
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Lit(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or(TemplateError::Unclosed)?;
            parts.push(Part::Expr(parse_expr(after[..end].trim())?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_string()));
        }
        Ok(Self { parts })
    }

    /// A template with no expressions.
    pub fn literal(text: &str) -> Self {
        Self {
            parts: vec![Part::Lit(text.to_string())],
        }
    }

    /// The single expression when the whole template is one `{{ ... }}` (keeps the value's type).
    pub fn as_single_expr(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }

    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.parts.iter().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Lit(_) => None,
        })
    }

    pub fn exprs_mut(&mut self) -> impl Iterator<Item = &mut Expr> {
        self.parts.iter_mut().filter_map(|p| match p {
            Part::Expr(e) => Some(e),
            Part::Lit(_) => None,
        })
    }

    pub fn uses_parent(&self) -> bool {
        self.exprs().any(|e| matches!(e.base(), Expr::Parent { .. }))
    }

    /// Whether the template reads `{{key}}`.
    pub fn uses_key(&self) -> bool {
        self.exprs().any(|e| matches!(e.base(), Expr::Key))
    }
}

fn parse_expr(text: &str) -> Result<Expr, TemplateError> {
    if text.is_empty() {
        return Err(TemplateError::Empty);
    }
    // `E | conversion`
    if let Some((inner, conversion)) = text.rsplit_once('|') {
        let name = conversion.trim();
        let c = Conversion::parse(name).ok_or_else(|| TemplateError::UnknownConversion(name.to_string()))?;
        return Ok(Expr::Convert(Box::new(parse_expr(inner.trim())?), c));
    }
    if text == "key" {
        return Ok(Expr::Key);
    }
    let mut it = text.split('.');
    let root = it.next().unwrap_or_default();
    let rest: Vec<String> = it.map(str::to_string).collect();
    let first = rest
        .first()
        .filter(|s| !s.is_empty())
        .cloned()
        .ok_or_else(|| TemplateError::MissingName(root.to_string()));
    match root {
        "args" => Ok(Expr::Arg {
            name: first?,
            path: rest[1..].to_vec(),
        }),
        "parent" => {
            first?;
            let field = rest.join(".");
            // Resolved by the binder: a public field reads where its @from says.
            let path = JsonPath::parse(&field).map_err(|_| TemplateError::MissingName("parent".into()))?;
            Ok(Expr::Parent { field, path })
        }
        "headers" => Ok(Expr::Header(first?.to_ascii_lowercase())),
        "claims" => {
            first?;
            JsonPath::parse(&rest.join("."))
                .map(Expr::Claim)
                .map_err(|_| TemplateError::MissingName("claims".into()))
        }
        other => Err(TemplateError::UnknownRoot(other.to_string())),
    }
}

/// What expressions are evaluated against.
pub struct RenderContext<'a> {
    /// The field's coerced arguments (an object), defaults applied.
    pub args: &'a serde_json::Map<String, Value>,
    /// The parent object's backend JSON, if the field has one.
    pub parent: Option<&'a Value>,
    /// The client request's headers (only allowlisted names can be referenced).
    pub headers: &'a http::HeaderMap,
    /// The verified JWT's claims, if the request carried one.
    pub claims: Option<&'a Value>,
    /// The key of a fan-out call.
    pub key: Option<&'a Value>,
}

impl Expr {
    /// The expression under any conversion.
    pub fn base(&self) -> &Expr {
        match self {
            Expr::Convert(inner, _) => inner.base(),
            other => other,
        }
    }

    pub fn base_mut(&mut self) -> &mut Expr {
        match self {
            Expr::Convert(inner, _) => inner.base_mut(),
            other => other,
        }
    }

    /// `args.id`, `parent.publisher_ref`, `key | int`...
    pub fn describe(&self) -> String {
        match self {
            Expr::Arg { name, path } => {
                let mut s = format!("args.{name}");
                for p in path {
                    s.push('.');
                    s.push_str(p);
                }
                s
            }
            Expr::Parent { field, .. } => format!("parent.{field}"),
            Expr::Header(h) => format!("headers.{h}"),
            Expr::Claim(p) => format!("claims.{p}"),
            Expr::Key => "key".to_string(),
            Expr::Convert(inner, c) => format!("{} | {}", inner.describe(), c.name()),
        }
    }

    /// The value, converted as the template says; an error when it cannot be.
    pub fn eval_checked<'a>(&self, ctx: &RenderContext<'a>) -> Result<Option<Cow<'a, Value>>, ConversionError> {
        match self {
            Expr::Convert(inner, c) => match inner.eval_checked(ctx)? {
                None => Ok(None),
                Some(v) => match c.apply(&v) {
                    Some(out) => Ok(Some(Cow::Owned(out))),
                    None => Err(ConversionError {
                        expr: inner.describe(),
                        to: c.name(),
                    }),
                },
            },
            other => Ok(other.eval(ctx)),
        }
    }

    /// The value of the expression; `None` when absent (a missing argument, parent key or header)
    /// or not convertible.
    pub fn eval<'a>(&self, ctx: &RenderContext<'a>) -> Option<Cow<'a, Value>> {
        match self {
            Expr::Key => ctx.key.map(Cow::Borrowed),
            Expr::Convert(..) => self.eval_checked(ctx).ok().flatten(),
            Expr::Arg { name, path } => {
                let mut v = ctx.args.get(name)?;
                for p in path {
                    v = v.get(p)?;
                }
                Some(Cow::Borrowed(v))
            }
            Expr::Parent { path, .. } => path.get(ctx.parent?).map(Cow::Borrowed),
            Expr::Header(name) => {
                let v = ctx.headers.get(name.as_str())?.to_str().ok()?;
                Some(Cow::Owned(Value::String(v.to_string())))
            }
            Expr::Claim(path) => path.get(ctx.claims?).map(Cow::Borrowed),
        }
    }
}

/// Appends a scalar's text form (`"a"` → `a`, `1` → `1`); `null` appends nothing; lists and
/// objects append their JSON.
pub fn push_scalar_text(out: &mut String, value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_joins_a_list_and_keeps_a_scalar() {
        let c = Conversion::parse("csv").expect("known");
        assert_eq!(c.apply(&json!(["A1", 2, true])), Some(json!("A1,2,true")));
        assert_eq!(c.apply(&json!(7)), Some(json!("7")));
        assert_eq!(c.apply(&json!([])), Some(json!("")));
        assert_eq!(c.apply(&Value::Null), Some(Value::Null));
        assert_eq!(c.apply(&json!([{"a": 1}])), None);
    }

    #[test]
    fn a_pattern_names_the_expressions_not_their_values() {
        let t = Template::parse("/customers/{{args.id}}/accounts/{{ args.filter.kind }}").expect("valid");
        assert_eq!(t.pattern(), "/customers/{args.id}/accounts/{args.filter.kind}");
    }

    #[test]
    fn parses_literals_and_expressions() {
        let t = Template::parse("/customers/{{ args.id }}/x").expect("valid");
        assert_eq!(t.parts.len(), 3);
        assert!(matches!(&t.parts[1], Part::Expr(Expr::Arg { name, .. }) if name == "id"));
    }

    #[test]
    fn single_expression_is_recognised() {
        let t = Template::parse("{{args.input}}").expect("valid");
        assert!(t.as_single_expr().is_some());
        assert!(Template::parse("x{{args.input}}")
            .expect("valid")
            .as_single_expr()
            .is_none());
    }

    #[test]
    fn rejects_bad_templates() {
        assert_eq!(Template::parse("{{args.id"), Err(TemplateError::Unclosed));
        assert_eq!(Template::parse("{{}}"), Err(TemplateError::Empty));
        assert!(matches!(
            Template::parse("{{foo.x}}"),
            Err(TemplateError::UnknownRoot(_))
        ));
        assert!(matches!(
            Template::parse("{{args}}"),
            Err(TemplateError::MissingName(_))
        ));
    }

    #[test]
    fn evaluates_against_args_parent_and_headers() {
        let args = json!({"input": {"amount": 5}});
        let parent = json!({"customer_id": "C1"});
        let mut headers = http::HeaderMap::new();
        headers.insert("x-user", http::HeaderValue::from_static("u1"));
        let ctx = RenderContext {
            args: args.as_object().expect("object"),
            parent: Some(&parent),
            headers: &headers,
            claims: None,
            key: None,
        };
        let amount = Expr::Arg {
            name: "input".into(),
            path: vec!["amount".into()],
        };
        assert_eq!(amount.eval(&ctx).as_deref(), Some(&json!(5)));
        let p = Expr::Parent {
            field: "customerId".into(),
            path: JsonPath::key("customer_id"),
        };
        assert_eq!(p.eval(&ctx).as_deref(), Some(&json!("C1")));
        assert_eq!(Expr::Header("x-user".into()).eval(&ctx).as_deref(), Some(&json!("u1")));
    }
}
