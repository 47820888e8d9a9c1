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

mod args;
pub mod federation;
mod http;

use crate::config::diagnostic::{available, suggest};
use crate::config::{Diagnostics, Location};
use args::Args;
use http::http_args;

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
