//! Reading Mosaic's directives (`@http`, `@from`, `@resolver`, `@discriminator`) out of SDL.
//!
//! Turns directive arguments into typed values, reporting unknown directives, unknown or missing
//! arguments and wrong argument types with their file:line:col. It does not check what the values
//! refer to (backends, arguments, fields): the builder does that with the whole schema in view.

use std::sync::Arc;

use async_graphql_parser::types::ConstDirective;
use async_graphql_parser::{Pos, Positioned};
use async_graphql_value::ConstValue;
use serde_json::Value;

use super::binding::BatchStyle;
use crate::config::diagnostic::{available, suggest};
use crate::config::{Diagnostics, Location};

/// The directives Mosaic understands, by where they may appear.
pub const FIELD_DIRECTIVES: &[&str] = &[
    "http",
    "stream",
    "from",
    "resolver",
    "fallback",
    "cache",
    "invalidates",
    "auth",
];
pub const ABSTRACT_TYPE_DIRECTIVES: &[&str] = &["discriminator"];

/// Where a diagnostic about a directive points.
#[derive(Clone)]
pub struct Site {
    pub file: Arc<str>,
}

impl Site {
    pub fn loc(&self, pos: Pos) -> Location {
        Location::new(&self.file, pos.line, pos.column)
    }
}

/// `@http(...)` as written.
#[derive(Debug, Clone)]
pub struct HttpArgs {
    pub pos: Pos,
    pub backend: Option<(String, Pos)>,
    /// `endpoint:` a group of `[backends.NAME.endpoints]` with resilience of its own.
    pub endpoint: Option<(String, Pos)>,
    pub method: (String, Pos),
    pub path: Option<(String, Pos)>,
    pub query: Vec<(String, String, Pos)>,
    pub headers: Vec<(String, String, Pos)>,
    pub body: Option<(Value, Pos)>,
    pub select: Option<(String, Pos)>,
    /// `value:` what each parent gets, from its item(s) (batch, fan-out) or from the answer.
    pub value: Option<(String, Pos)>,
    pub batch: Option<BatchArgs>,
    pub fanout: Option<FanoutArgs>,
    /// `errors: [{status:, message:, code:}]`: 4xx answers the client may see.
    pub errors: Vec<ErrorRuleArgs>,
    pub singleflight: Option<bool>,
    pub retry: Option<bool>,
    pub timeout: Option<(String, Pos)>,
}

/// `batch: {...}` of `@http`.
#[derive(Debug, Clone)]
pub struct BatchArgs {
    pub pos: Pos,
    pub key: Option<String>,
    pub from: Option<String>,
    pub param: Option<String>,
    pub style: BatchStyle,
    pub max_size: usize,
    pub many: Option<bool>,
}

/// `fanout: {from:, concurrency:}` of `@http`: one call per distinct key over the level.
#[derive(Debug, Clone)]
pub struct FanoutArgs {
    pub pos: Pos,
    pub from: Option<String>,
    pub concurrency: usize,
}

/// One entry of `errors:` of `@http`.
#[derive(Debug, Clone)]
pub struct ErrorRuleArgs {
    pub pos: Pos,
    /// The statuses it applies to; empty: every 4xx other than 404.
    pub statuses: Vec<u16>,
    pub message: Option<String>,
    pub code: Option<String>,
}

/// `@from(path:)` or `@from(expr:)`.
#[derive(Debug, Clone)]
pub struct FromArgs {
    pub text: String,
    pub pos: Pos,
    /// Written as `expr:`.
    pub expr: bool,
}

/// The Mosaic directives found on one field definition.
#[derive(Debug, Default)]
pub struct FieldDirectives {
    pub http: Option<HttpArgs>,
    /// `@stream(...)`: the same arguments as `@http`, for a Server-Sent Events endpoint.
    pub stream: Option<HttpArgs>,
    pub from: Option<FromArgs>,
    pub resolver: Option<(String, Pos)>,
    /// `@fallback(value:)`: the value served when the field's call fails.
    pub fallback: Option<(Value, Pos)>,
    pub cache: Option<CacheArgs>,
    /// `@invalidates`: (backend, path template) pairs whose cached GET answers a successful call
    /// makes stale.
    pub invalidates: Vec<(String, String, Pos)>,
    /// `@auth(scopes: [...])`.
    pub auth: Option<super::AuthRule>,
}

/// `@cache(ttl:, staleWhileRevalidate:, staleIfError:, scope:)` as written.
#[derive(Debug, Clone)]
pub struct CacheArgs {
    pub pos: Pos,
    pub ttl: Option<(String, Pos)>,
    pub stale_while_revalidate: Option<(String, Pos)>,
    pub stale_if_error: Option<(String, Pos)>,
    pub private: bool,
}

/// `@discriminator(field:, map:)` on an interface or union.
#[derive(Debug, Clone)]
pub struct DiscriminatorArgs {
    pub pos: Pos,
    pub field: String,
    pub map: Vec<(String, String)>,
}

/// Reads the directives on a field definition.
pub fn field_directives(dirs: &[Positioned<ConstDirective>], site: &Site, diags: &mut Diagnostics) -> FieldDirectives {
    let mut out = FieldDirectives::default();
    for d in dirs {
        let name = d.node.name.node.as_str();
        let mut args = Args::new(&d.node, d.pos, site);
        match name {
            "http" => {
                if out.http.is_some() {
                    diags.error(Some(site.loc(d.pos)), "a field may carry only one @http");
                }
                out.http = Some(http_args(&mut args, d.pos, diags));
            }
            "stream" => out.stream = Some(http_args(&mut args, d.pos, diags)),
            "from" => {
                let path = args.string("path", false, diags);
                let expr = args.string("expr", false, diags);
                out.from = match (path, expr) {
                    (Some((text, pos)), None) => Some(FromArgs { text, pos, expr: false }),
                    (None, Some((text, pos))) => Some(FromArgs { text, pos, expr: true }),
                    (Some(_), Some(_)) => {
                        diags.error_with_hint(
                            Some(site.loc(d.pos)),
                            "@from takes `path` or `expr`, not both",
                            "path: \"owner.customer_id\" reads a value; expr: \".first + \\\" \\\" + .last\" computes one",
                        );
                        None
                    }
                    (None, None) => {
                        diags.error_with_hint(
                            Some(site.loc(d.pos)),
                            "@from needs `path` or `expr`",
                            "e.g. @from(path: \"customer_id\") or @from(expr: \"[.tags[].name]\")",
                        );
                        None
                    }
                };
            }
            "resolver" => out.resolver = args.string("name", true, diags),
            "cache" => {
                let ttl = args.string("ttl", false, diags);
                let stale_while_revalidate = args.string("staleWhileRevalidate", false, diags);
                let stale_if_error = args.string("staleIfError", false, diags);
                let private = match args.take("scope") {
                    None => false,
                    Some((ConstValue::Enum(e), _)) if e.as_str() == "PRIVATE" => true,
                    Some((ConstValue::Enum(e), _)) if e.as_str() == "PUBLIC" => false,
                    Some((_, p)) => {
                        args.wrong_type("scope", p, "PUBLIC or PRIVATE", diags);
                        false
                    }
                };
                out.cache = Some(CacheArgs {
                    pos: d.pos,
                    ttl,
                    stale_while_revalidate,
                    stale_if_error,
                    private,
                });
            }
            "auth" => out.auth = Some(auth_rule(&mut args, diags)),
            "invalidates" => {
                let single = (args.string("backend", false, diags), args.string("path", false, diags));
                if let (Some((b, pos)), Some((p, _))) = single {
                    out.invalidates.push((b, p, pos));
                }
                if let Some((v, pos)) = args.take("targets") {
                    let items = match v {
                        ConstValue::List(items) => items,
                        other => vec![other],
                    };
                    for item in items {
                        match item {
                            ConstValue::Object(m) => match (m.get("backend"), m.get("path")) {
                                (Some(ConstValue::String(b)), Some(ConstValue::String(p))) => {
                                    out.invalidates.push((b.clone(), p.clone(), pos))
                                }
                                _ => diags.error(
                                    Some(site.loc(pos)),
                                    "each @invalidates target needs `backend` and `path` strings",
                                ),
                            },
                            _ => diags.error(
                                Some(site.loc(pos)),
                                "@invalidates targets are objects {backend: \"...\", path: \"/...\"}",
                            ),
                        }
                    }
                }
            }
            "fallback" => match args.take("value") {
                Some((v, p)) => out.fallback = Some((v.into_json().unwrap_or(Value::Null), p)),
                None => diags.error_with_hint(
                    Some(site.loc(d.pos)),
                    "@fallback needs the argument `value`",
                    "write @fallback(value: ...) with a value of the field's type, e.g. @fallback(value: [])",
                ),
            },
            "deprecated" => continue,
            other => {
                unknown_directive(other, d.pos, FIELD_DIRECTIVES, site, diags);
                continue;
            }
        }
        args.finish(diags);
    }
    out
}

/// Reads `@discriminator` on an interface or union; reports any other directive.
pub fn abstract_type_directives(
    dirs: &[Positioned<ConstDirective>],
    site: &Site,
    diags: &mut Diagnostics,
) -> Option<DiscriminatorArgs> {
    let mut out = None;
    for d in dirs {
        let name = d.node.name.node.as_str();
        if name != "discriminator" {
            unknown_directive(name, d.pos, ABSTRACT_TYPE_DIRECTIVES, site, diags);
            continue;
        }
        let mut args = Args::new(&d.node, d.pos, site);
        let field = args.string("field", true, diags);
        let map = match args.take("map") {
            Some((ConstValue::Object(map), _)) => map
                .iter()
                .filter_map(|(k, v)| match v {
                    ConstValue::String(s) => Some((k.to_string(), s.clone())),
                    _ => None,
                })
                .collect(),
            Some((_, pos)) => {
                diags.error_with_hint(
                    Some(site.loc(pos)),
                    "`map` of @discriminator must be an object",
                    "write map: {backendValue: \"TypeName\"}",
                );
                Vec::new()
            }
            None => Vec::new(),
        };
        args.finish(diags);
        if let Some((field, _)) = field {
            out = Some(DiscriminatorArgs { pos: d.pos, field, map });
        }
    }
    out
}

/// `@auth(scopes: ["a", "b"])` or `@auth` (authentication only; `requires: AUTHENTICATED` allowed).
fn auth_rule(args: &mut Args<'_>, diags: &mut Diagnostics) -> super::AuthRule {
    let _ = args.take("requires");
    let scopes = match args.take("scopes") {
        None => Vec::new(),
        Some((ConstValue::List(items), pos)) => items
            .iter()
            .filter_map(|i| match i {
                ConstValue::String(s) => Some(s.clone()),
                _ => {
                    args.wrong_type("scopes", pos, "a list of strings", diags);
                    None
                }
            })
            .collect(),
        Some((ConstValue::String(s), _)) => vec![s],
        Some((_, pos)) => {
            args.wrong_type("scopes", pos, "a list of strings", diags);
            Vec::new()
        }
    };
    super::AuthRule { scopes }
}

/// Reads `@auth` on an object type; reports any other directive.
pub fn object_type_directives(
    dirs: &[Positioned<ConstDirective>],
    site: &Site,
    diags: &mut Diagnostics,
) -> Option<super::AuthRule> {
    let mut out = None;
    for d in dirs {
        if d.node.name.node.as_str() == "auth" {
            let mut args = Args::new(&d.node, d.pos, site);
            out = Some(auth_rule(&mut args, diags));
            args.finish(diags);
        } else {
            no_directives_expected(std::slice::from_ref(d), "an object type", site, diags);
        }
    }
    out
}

/// Reports directives on places where Mosaic reads none (types, arguments, enum values...).
pub fn no_directives_expected(dirs: &[Positioned<ConstDirective>], what: &str, site: &Site, diags: &mut Diagnostics) {
    for d in dirs {
        let name = d.node.name.node.as_str();
        if name == "deprecated" || name == "specifiedBy" {
            continue;
        }
        diags.error_with_hint(
            Some(site.loc(d.pos)),
            format!("unknown directive @{name} on {what}"),
            "Mosaic's directives are @http, @stream, @from, @resolver, @fallback, @cache, @invalidates and @auth on fields, @auth on object types, @discriminator on interfaces and unions",
        );
    }
}

fn unknown_directive(name: &str, pos: Pos, known: &[&str], site: &Site, diags: &mut Diagnostics) {
    let hint = match suggest(name, known.iter().copied()) {
        Some(s) => format!("did you mean @{s}?"),
        None => available("directives here", known),
    };
    diags.error_with_hint(Some(site.loc(pos)), format!("unknown directive @{name}"), hint);
}

fn http_args(args: &mut Args<'_>, pos: Pos, diags: &mut Diagnostics) -> HttpArgs {
    let backend = args.string("backend", true, diags);
    let endpoint = args.string("endpoint", false, diags);
    let method = match args.take("method") {
        None => ("GET".to_string(), pos),
        Some((ConstValue::Enum(n), p)) => (n.to_string(), p),
        Some((ConstValue::String(s), p)) => (s.to_ascii_uppercase(), p),
        Some((_, p)) => {
            args.wrong_type("method", p, "an HTTP method such as GET or POST", diags);
            ("GET".to_string(), p)
        }
    };
    let path = args.string("path", true, diags);
    let query = args.pairs("query", diags);
    let headers = args.pairs("headers", diags);
    let body = args.take("body").map(|(v, p)| match v {
        // A string body is a JSON document written as a string.
        ConstValue::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v) => (v, p),
            Err(_) => (Value::String(s), p),
        },
        other => (other.into_json().unwrap_or(Value::Null), p),
    });
    let select = args.string("select", false, diags);
    let value = args.string("value", false, diags);
    let batch = args.take("batch").and_then(|(v, p)| batch_args(v, p, args.site, diags));
    let fanout = args
        .take("fanout")
        .and_then(|(v, p)| fanout_args(v, p, args.site, diags));
    let errors = args
        .take("errors")
        .map(|(v, p)| error_rules(v, p, args.site, diags))
        .unwrap_or_default();
    let singleflight = args.bool("singleflight", diags);
    let retry = args.bool("retry", diags);
    let timeout = args.string("timeout", false, diags);
    HttpArgs {
        pos,
        backend,
        endpoint,
        method,
        path,
        query,
        headers,
        body,
        select,
        value,
        batch,
        fanout,
        errors,
        singleflight,
        retry,
        timeout,
    }
}

const FANOUT_FIELDS: &[&str] = &["from", "concurrency"];

fn fanout_args(value: ConstValue, pos: Pos, site: &Site, diags: &mut Diagnostics) -> Option<FanoutArgs> {
    let ConstValue::Object(map) = value else {
        diags.error_with_hint(
            Some(site.loc(pos)),
            "`fanout` of @http must be an object",
            "write fanout: {from: \"genre_ids\"} and use {{key}} in the path",
        );
        return None;
    };
    let mut out = FanoutArgs {
        pos,
        from: None,
        concurrency: 16,
    };
    for (k, v) in map {
        match (k.as_str(), &v) {
            ("from", ConstValue::String(s)) => out.from = Some(s.clone()),
            ("concurrency", ConstValue::Number(n)) => match n.as_u64() {
                Some(n) if (1..=1024).contains(&n) => out.concurrency = n as usize,
                _ => diags.error(
                    Some(site.loc(pos)),
                    "fanout concurrency must be an integer from 1 to 1024",
                ),
            },
            (name, _) if FANOUT_FIELDS.contains(&name) => {
                diags.error(Some(site.loc(pos)), format!("fanout field `{name}` has the wrong type"))
            }
            (name, _) => diags.error_with_hint(
                Some(site.loc(pos)),
                format!("unknown fanout field `{name}`"),
                available("fanout fields", FANOUT_FIELDS),
            ),
        }
    }
    Some(out)
}

const ERROR_RULE_FIELDS: &[&str] = &["status", "message", "code"];

fn error_rules(value: ConstValue, pos: Pos, site: &Site, diags: &mut Diagnostics) -> Vec<ErrorRuleArgs> {
    let items = match value {
        ConstValue::List(items) => items,
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let ConstValue::Object(map) = item else {
            diags.error_with_hint(
                Some(site.loc(pos)),
                "each entry of `errors` must be an object",
                "write errors: [{status: 422, message: \"error.reason\", code: \"BAD_USER_INPUT\"}]",
            );
            continue;
        };
        let mut rule = ErrorRuleArgs {
            pos,
            statuses: Vec::new(),
            message: None,
            code: None,
        };
        for (k, v) in map {
            let status = |v: &ConstValue| match v {
                ConstValue::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                _ => None,
            };
            match (k.as_str(), &v) {
                ("status", ConstValue::List(list)) => {
                    for s in list {
                        match status(s) {
                            Some(n) => rule.statuses.push(n),
                            None => diags.error(Some(site.loc(pos)), "`status` must be HTTP status numbers"),
                        }
                    }
                }
                ("status", ConstValue::String(s)) if s.eq_ignore_ascii_case("4xx") => {}
                ("status", other) => match status(other) {
                    Some(n) => rule.statuses.push(n),
                    None => diags.error(
                        Some(site.loc(pos)),
                        "`status` must be a status, a list of them, or \"4xx\"",
                    ),
                },
                ("message", ConstValue::String(s)) => rule.message = Some(s.clone()),
                ("code", ConstValue::String(s)) => rule.code = Some(s.clone()),
                (name, _) if ERROR_RULE_FIELDS.contains(&name) => {
                    diags.error(Some(site.loc(pos)), format!("errors field `{name}` has the wrong type"))
                }
                (name, _) => diags.error_with_hint(
                    Some(site.loc(pos)),
                    format!("unknown errors field `{name}`"),
                    available("fields of an errors entry", ERROR_RULE_FIELDS),
                ),
            }
        }
        out.push(rule);
    }
    out
}

const BATCH_FIELDS: &[&str] = &["key", "from", "param", "style", "maxSize", "many"];

fn batch_args(value: ConstValue, pos: Pos, site: &Site, diags: &mut Diagnostics) -> Option<BatchArgs> {
    let ConstValue::Object(map) = value else {
        diags.error_with_hint(
            Some(site.loc(pos)),
            "`batch` of @http must be an object",
            "write batch: {key: \"id\", param: \"id\", style: REPEAT}",
        );
        return None;
    };
    let mut out = BatchArgs {
        pos,
        key: None,
        from: None,
        param: None,
        style: BatchStyle::Repeat,
        max_size: 100,
        many: None,
    };
    for (k, v) in map {
        let text = match &v {
            ConstValue::String(s) => Some(s.clone()),
            ConstValue::Enum(e) => Some(e.to_string()),
            _ => None,
        };
        match (k.as_str(), text, &v) {
            ("key", Some(s), _) => out.key = Some(s),
            ("from", Some(s), _) => out.from = Some(s),
            ("param", Some(s), _) => out.param = Some(s),
            ("style", Some(s), _) => match s.to_ascii_uppercase().as_str() {
                "REPEAT" => out.style = BatchStyle::Repeat,
                "COMMA" => out.style = BatchStyle::Comma,
                "JSON" | "BODY" | "JSON_BODY" => out.style = BatchStyle::JsonBody,
                _ => diags.error_with_hint(
                    Some(site.loc(pos)),
                    format!("unknown batch style {s:?}"),
                    "style is REPEAT (?id=1&id=2), COMMA (?ids=1,2) or JSON (body {\"ids\":[1,2]})",
                ),
            },
            ("maxSize", _, ConstValue::Number(n)) => match n.as_u64() {
                Some(n) if n >= 1 => out.max_size = n as usize,
                _ => diags.error(Some(site.loc(pos)), "batch maxSize must be a positive integer"),
            },
            ("many", _, ConstValue::Boolean(b)) => out.many = Some(*b),
            (name, _, _) if BATCH_FIELDS.contains(&name) => {
                diags.error(Some(site.loc(pos)), format!("batch field `{name}` has the wrong type"))
            }
            (name, _, _) => diags.error_with_hint(
                Some(site.loc(pos)),
                format!("unknown batch field `{name}`"),
                available("batch fields", BATCH_FIELDS),
            ),
        }
    }
    Some(out)
}

/// The arguments of one directive, taken one by one; what is left over is reported as unknown.
struct Args<'a> {
    directive: &'a str,
    pos: Pos,
    site: &'a Site,
    items: Vec<(String, ConstValue, Pos)>,
    known: Vec<&'static str>,
}

impl<'a> Args<'a> {
    fn new(d: &'a ConstDirective, pos: Pos, site: &'a Site) -> Self {
        Self {
            directive: d.name.node.as_str(),
            pos,
            site,
            items: d
                .arguments
                .iter()
                .map(|(n, v)| (n.node.to_string(), v.node.clone(), v.pos))
                .collect(),
            known: Vec::new(),
        }
    }

    fn take(&mut self, name: &'static str) -> Option<(ConstValue, Pos)> {
        self.known.push(name);
        let i = self.items.iter().position(|(n, _, _)| n == name)?;
        let (_, v, p) = self.items.remove(i);
        Some((v, p))
    }

    fn wrong_type(&self, name: &str, pos: Pos, expected: &str, diags: &mut Diagnostics) {
        diags.error(
            Some(self.site.loc(pos)),
            format!("argument `{name}` of @{} must be {expected}", self.directive),
        );
    }

    fn string(&mut self, name: &'static str, required: bool, diags: &mut Diagnostics) -> Option<(String, Pos)> {
        match self.take(name) {
            Some((ConstValue::String(s), p)) => Some((s, p)),
            Some((_, p)) => {
                self.wrong_type(name, p, "a string", diags);
                None
            }
            None if required => {
                diags.error_with_hint(
                    Some(self.site.loc(self.pos)),
                    format!("@{} needs the argument `{name}`", self.directive),
                    example_for(self.directive, name),
                );
                None
            }
            None => None,
        }
    }

    fn bool(&mut self, name: &'static str, diags: &mut Diagnostics) -> Option<bool> {
        match self.take(name) {
            Some((ConstValue::Boolean(b), _)) => Some(b),
            Some((_, p)) => {
                self.wrong_type(name, p, "true or false", diags);
                None
            }
            None => None,
        }
    }

    /// `{name: "value"}` or `[{name: "x-a", value: "..."}]`.
    fn pairs(&mut self, name: &'static str, diags: &mut Diagnostics) -> Vec<(String, String, Pos)> {
        let Some((value, pos)) = self.take(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match value {
            ConstValue::Object(map) => {
                for (k, v) in map {
                    match v {
                        ConstValue::String(s) => out.push((k.to_string(), s, pos)),
                        other => out.push((k.to_string(), scalar_text(&other), pos)),
                    }
                }
            }
            ConstValue::List(items) => {
                for item in items {
                    let pair = match &item {
                        ConstValue::Object(m) => match (m.get("name"), m.get("value")) {
                            (Some(ConstValue::String(n)), Some(v)) => Some((n.clone(), scalar_text(v))),
                            _ => None,
                        },
                        _ => None,
                    };
                    match pair {
                        Some((n, v)) => out.push((n, v, pos)),
                        None => self.wrong_type(
                            name,
                            pos,
                            "an object {key: \"value\"} or a list [{name: \"...\", value: \"...\"}]",
                            diags,
                        ),
                    }
                }
            }
            _ => self.wrong_type(
                name,
                pos,
                "an object {key: \"value\"} or a list [{name: \"...\", value: \"...\"}]",
                diags,
            ),
        }
        out
    }

    fn finish(self, diags: &mut Diagnostics) {
        for (name, _, pos) in &self.items {
            let hint = match suggest(name, self.known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => available("arguments", &self.known),
            };
            diags.error_with_hint(
                Some(self.site.loc(*pos)),
                format!("unknown argument `{name}` of @{}", self.directive),
                hint,
            );
        }
    }
}

fn scalar_text(v: &ConstValue) -> String {
    match v {
        ConstValue::String(s) => s.clone(),
        ConstValue::Enum(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// An example of a required argument, for the hint of its absence.
fn example_for(directive: &str, arg: &str) -> String {
    match (directive, arg) {
        ("http" | "stream", "backend") => "name a [backends.NAME] of mosaic.toml: backend: \"customers\"".into(),
        ("http" | "stream", "path") => {
            "give the path appended to the backend's url: path: \"/customers/{{args.id}}\"".into()
        }
        ("from", "path") => "give where the value is in the parent's JSON: @from(path: \"customer_id\")".into(),
        ("resolver", "name") => "name a registered Rust resolver: @resolver(name: \"myResolver\")".into(),
        ("discriminator", "field") => "name the JSON field holding the type: @discriminator(field: \"type\")".into(),
        _ => format!("add {arg}: ... to @{directive}"),
    }
}
