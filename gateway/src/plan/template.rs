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
}

impl Template {
    /// The template with each expression shown by name (`/accounts/{args.id}`): what a trace or a
    /// log names as the endpoint, whatever the values.
    pub fn pattern(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Expr(Expr::Arg { name, path }) => {
                    out.push_str("{args.");
                    out.push_str(name);
                    for p in path {
                        out.push('.');
                        out.push_str(p);
                    }
                    out.push('}');
                }
                Part::Expr(Expr::Parent { field, .. }) => {
                    out.push_str("{parent.");
                    out.push_str(field);
                    out.push('}');
                }
                Part::Expr(Expr::Header(h)) => {
                    out.push_str("{headers.");
                    out.push_str(h);
                    out.push('}');
                }
                Part::Expr(Expr::Claim(path)) => {
                    out.push_str("{claims.");
                    out.push_str(&path.to_string());
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
        self.exprs().any(|e| matches!(e, Expr::Parent { .. }))
    }
}

fn parse_expr(text: &str) -> Result<Expr, TemplateError> {
    if text.is_empty() {
        return Err(TemplateError::Empty);
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
            let field = first?;
            let path = JsonPath::key(&field);
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
}

impl Expr {
    /// The value of the expression; `None` when absent (a missing argument, parent key or header).
    pub fn eval<'a>(&self, ctx: &RenderContext<'a>) -> Option<Cow<'a, Value>> {
        match self {
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
