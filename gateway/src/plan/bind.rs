//! The binder: gives every field its data source and compiles `@http` into [`Binding`]s.
//!
//! Checks what directive values refer to: the backend exists, template expressions name real
//! arguments, parent fields and allowlisted headers, batch keys are fields of the right types, and
//! `many` agrees with the field's list type. Root fields must be bound.

use std::sync::Arc;

use indexmap::IndexMap;

use super::binding::{
    BackendId, BackendPlan, BatchRule, BatchStyle, Binding, BindingId, BodyTemplate, ErrorRule, FanoutRule,
};
use super::build::{FieldSite, FieldSites};
use super::directives::{self, BatchArgs, FanoutArgs, FieldDirectives, FromArgs, HttpArgs, Site};
use super::json_path::Segment;
use super::mapping::{Mapping, Shape};
use super::template::{Conversion, Expr, Template};
use super::{is_list, named_type, FieldDef, FieldSource, JsonPath, TypeDef};
use crate::config::diagnostic::{available, suggest};
use crate::config::{Diagnostics, Location};

/// What the binder checks bindings against.
pub(super) struct BindContext<'a> {
    pub backends: &'a [BackendPlan],
    /// Cache policy of GET fields without `@cache`; `None` when caching is off.
    pub default_cache: Option<super::resilience::CachePolicy>,
    pub request_headers: Vec<String>,
    pub root_types: Vec<String>,
    pub subscription_type: Option<String>,
    pub resolvers: &'a [&'a str],
    /// `[auth]` verifies tokens: templates may read claims.
    pub auth_configured: bool,
}

/// `(type, field)` of the fields bound to a call, a stream or a resolver.
type Bound = std::collections::HashSet<(String, String)>;

pub(super) struct Binder<'a> {
    ctx: BindContext<'a>,
    bound: Bound,
    bindings: Vec<Binding>,
    used_resolvers: Vec<String>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

impl<'a> Binder<'a> {
    pub fn new(ctx: BindContext<'a>) -> Self {
        Self {
            ctx,
            bound: Bound::new(),
            bindings: Vec::new(),
            used_resolvers: Vec::new(),
        }
    }

    pub fn finish(self) -> (Vec<Binding>, Vec<String>) {
        (self.bindings, self.used_resolvers)
    }

    pub fn bind_all(&mut self, types: &mut IndexMap<String, TypeDef>, sites: &FieldSites<'_>, diags: &mut Diagnostics) {
        // Pass 1: read directives; `@from` paths first, since templates and batch keys refer to them.
        let mut pending: Vec<(String, String, FieldDirectives, Site, Location)> = Vec::new();
        let type_names: Vec<String> = types.keys().cloned().collect();
        for tname in &type_names {
            let is_interface = matches!(types.get(tname), Some(TypeDef::Interface(_)));
            let Some(fields) = object_fields_mut(types, tname) else {
                continue;
            };
            for (fname, field) in fields.iter_mut() {
                let Some(fs) = sites.get(&(tname.clone(), fname.clone())) else {
                    continue;
                };
                let loc = fs.site.loc(fs.pos);
                let dirs = directives::field_directives(&fs.def.directives, &fs.site, diags);
                if is_interface {
                    if dirs.http.is_some() || dirs.resolver.is_some() {
                        diags.error_with_hint(
                            Some(loc),
                            format!("interface field `{tname}.{fname}` cannot be bound"),
                            "put @http on the fields of the object types that implement the interface",
                        );
                    }
                    continue;
                }
                let count = usize::from(dirs.http.is_some())
                    + usize::from(dirs.from.is_some())
                    + usize::from(dirs.resolver.is_some());
                if count > 1 {
                    diags.error_with_hint(
                        Some(loc.clone()),
                        format!("field `{tname}.{fname}` has more than one of @http, @from and @resolver"),
                        "a field's value comes from one place: a backend call, a path in the parent, or a resolver",
                    );
                }
                if let Some(from) = &dirs.from {
                    match from_source(from) {
                        Ok(source) => field.source = source,
                        Err((message, hint)) => diags.error_with_hint(Some(fs.site.loc(from.pos)), message, hint),
                    }
                }
                if dirs.http.is_some() || dirs.stream.is_some() || dirs.resolver.is_some() {
                    self.bound.insert((tname.clone(), fname.clone()));
                }
                pending.push((tname.clone(), fname.clone(), dirs, fs.site.clone(), loc));
            }
        }
        // Pass 2: bindings and resolvers.
        for (tname, fname, dirs, site, loc) in pending {
            let is_root = self.ctx.root_types.contains(&tname);
            let is_subscription = self.ctx.subscription_type.as_deref() == Some(tname.as_str());
            if let (Some(s), false) = (&dirs.stream, is_subscription) {
                diags.error_with_hint(
                    Some(site.loc(s.pos)),
                    format!("@stream on `{tname}.{fname}`: only Subscription fields stream"),
                    "use @http for queries and mutations",
                );
                continue;
            }
            let source = if is_subscription {
                match &dirs.stream {
                    Some(stream) => {
                        let field = &types[&tname];
                        let Some(fdef) = object_field(field, &fname) else {
                            continue;
                        };
                        if stream.method.0 != "GET" || stream.batch.is_some() {
                            diags.error(Some(site.loc(stream.pos)), "@stream is a GET without batch");
                        }
                        self.bind_http(types, &tname, fdef, stream, &dirs, &site, is_root, diags)
                            .map(FieldSource::Stream)
                    }
                    None => {
                        diags.error_with_hint(
                            Some(loc),
                            format!("subscription field `{tname}.{fname}` has no @stream"),
                            "bind it to a backend's Server-Sent Events endpoint: @stream(backend: \"...\", path: \"/...\")",
                        );
                        None
                    }
                }
            } else if let Some(http) = &dirs.http {
                let field = &types[&tname];
                let Some(fdef) = object_field(field, &fname) else {
                    continue;
                };
                self.bind_http(types, &tname, fdef, http, &dirs, &site, is_root, diags)
                    .map(FieldSource::Call)
            } else if let Some((name, pos)) = &dirs.resolver {
                if self.ctx.resolvers.contains(&name.as_str()) {
                    if !self.used_resolvers.contains(name) {
                        self.used_resolvers.push(name.clone());
                    }
                    Some(FieldSource::Resolver(Arc::from(name.as_str())))
                } else {
                    let hint = match suggest(name, self.ctx.resolvers.iter().copied()) {
                        Some(s) => format!("did you mean {s:?}?"),
                        None => available("resolvers", self.ctx.resolvers),
                    };
                    diags.error_with_hint(
                        Some(site.loc(*pos)),
                        format!("no Rust resolver is registered as {name:?}"),
                        hint,
                    );
                    None
                }
            } else {
                if is_root && dirs.from.is_none() {
                    diags.error_with_hint(
                        Some(loc),
                        format!("root field `{tname}.{fname}` is not bound to anything"),
                        "add @http(backend: \"...\", path: \"/...\") so the gateway knows where its data comes from",
                    );
                }
                None
            };
            if dirs.cache.is_some() && dirs.http.is_none() {
                if let Some(c) = &dirs.cache {
                    diags.error_with_hint(
                        Some(site.loc(c.pos)),
                        format!("@cache on `{tname}.{fname}`, which makes no backend call"),
                        "put @cache on a field bound with @http",
                    );
                }
            }
            if let Some((value, pos)) = &dirs.fallback {
                self.check_fallback(types, &tname, &fname, value, &site, *pos, dirs.http.is_some(), diags);
            }
            let type_auth = match types.get(&tname) {
                Some(TypeDef::Object(o)) => o.auth.clone(),
                _ => None,
            };
            if let Some(fields) = object_fields_mut(types, &tname) {
                if let Some(f) = fields.get_mut(&fname) {
                    if let Some(source) = source {
                        f.source = source;
                    }
                    f.fallback = dirs.fallback.as_ref().map(|(v, _)| v.clone());
                    // The field's rule and its type's rule both apply.
                    f.auth = match (type_auth, dirs.auth.clone()) {
                        (None, None) => None,
                        (a, b) => {
                            let mut scopes: Vec<String> = a.into_iter().chain(b).flat_map(|r| r.scopes).collect();
                            scopes.sort();
                            scopes.dedup();
                            Some(super::AuthRule { scopes })
                        }
                    };
                }
            }
        }
        check_computed_fields(types, sites, diags);
    }

    #[allow(clippy::too_many_arguments)]
    fn bind_http(
        &mut self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        field: &FieldDef,
        http: &HttpArgs,
        dirs: &FieldDirectives,
        site: &Site,
        is_root: bool,
        diags: &mut Diagnostics,
    ) -> Option<BindingId> {
        let owner = format!("{tname}.{}", field.name);
        let before = diags.len();
        let backend = self.backend(http, site, diags);
        let method = if METHODS.contains(&http.method.0.as_str()) {
            http::Method::from_bytes(http.method.0.as_bytes()).ok()
        } else {
            None
        };
        if method.is_none() {
            diags.error_with_hint(
                Some(site.loc(http.method.1)),
                format!("unknown HTTP method `{}`", http.method.0),
                available("methods", METHODS),
            );
        }
        let path = http.path.as_ref().and_then(|(p, pos)| {
            if !p.starts_with('/') {
                diags.error_with_hint(
                    Some(site.loc(*pos)),
                    format!("path {p:?} must start with `/`"),
                    "the path is appended to the backend's url, e.g. \"/customers/{{args.id}}\"",
                );
            }
            parse_template(p, *pos, site, diags)
        });
        let query: Vec<(String, Template)> = http
            .query
            .iter()
            .filter_map(|(k, v, pos)| Some((k.clone(), parse_template(v, *pos, site, diags)?)))
            .collect();
        let mut headers = Vec::new();
        for (k, v, pos) in &http.headers {
            match http::HeaderName::from_bytes(k.as_bytes()) {
                Ok(name) => {
                    if let Some(t) = parse_template(v, *pos, site, diags) {
                        headers.push((name, t));
                    }
                }
                Err(_) => diags.error(Some(site.loc(*pos)), format!("{k:?} is not a valid header name")),
            }
        }
        let body = http.body.as_ref().and_then(|(v, pos)| match BodyTemplate::compile(v) {
            Ok(b) => Some(b),
            Err(e) => {
                diags.error_with_hint(Some(site.loc(*pos)), format!("in body: {e}"), TEMPLATE_HINT);
                None
            }
        });
        let mapping = |m: &Option<(String, async_graphql_parser::Pos)>, what: &str, diags: &mut Diagnostics| {
            m.as_ref().and_then(|(text, pos)| match Mapping::parse(text) {
                Ok(m) => Some(m),
                Err(e) => {
                    diags.error_with_hint(
                        Some(site.loc(*pos)),
                        format!("in {what} {text:?}: {e}"),
                        "a path (\"data.items\") or an expression (docs/mapping.md)",
                    );
                    None
                }
            })
        };
        let select = mapping(&http.select, "select", diags).unwrap_or_else(|| Mapping::from_path(JsonPath::default()));
        let value = mapping(&http.value, "value", diags);
        let batch = http
            .batch
            .as_ref()
            .and_then(|b| self.batch_rule(types, tname, field, b, site, is_root, diags));
        let fanout = http.fanout.as_ref().and_then(|f| {
            fanout_rule(
                types,
                &self.bound,
                tname,
                field,
                f,
                http.batch.is_some(),
                site,
                is_root,
                diags,
            )
        });
        let errors = http
            .errors
            .iter()
            .filter_map(|r| {
                let message = match &r.message {
                    Some(text) => match Mapping::parse(text) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            diags.error_with_hint(
                                Some(site.loc(r.pos)),
                                format!("in errors message {text:?}: {e}"),
                                "a path of the error body (\"error.reason\") or an expression (docs/mapping.md)",
                            );
                            return None;
                        }
                    },
                    None => None,
                };
                if r.statuses.iter().any(|s| !(400..500).contains(s)) {
                    diags.error_with_hint(
                        Some(site.loc(r.pos)),
                        "`errors` applies to 4xx statuses only",
                        "5xx answers are the backend's failures: they stay masked (BACKEND_UNAVAILABLE)",
                    );
                    return None;
                }
                Some(ErrorRule {
                    statuses: r.statuses.clone(),
                    message,
                    code: std::sync::Arc::from(r.code.as_deref().unwrap_or("BAD_USER_INPUT")),
                })
            })
            .collect();

        let mut binding = Binding {
            id: BindingId(self.bindings.len()),
            backend: backend.unwrap_or(BackendId(0)),
            method: method.clone().unwrap_or(http::Method::GET),
            path: path.unwrap_or_else(|| Template::literal("/")),
            query,
            headers,
            body,
            select,
            value,
            batch,
            fanout,
            errors,
            singleflight: false,
            retryable: http.retry.unwrap_or(false),
            timeout: http
                .timeout
                .as_ref()
                .and_then(|(t, pos)| match humantime::parse_duration(t) {
                    Ok(d) => Some(d),
                    Err(e) => {
                        diags.error_with_hint(
                            Some(site.loc(*pos)),
                            format!("invalid timeout {t:?}: {e}"),
                            "write a duration such as \"500ms\" or \"2s\"",
                        );
                        None
                    }
                }),
            cache: None,
            invalidates: Vec::new(),
            owner,
        };
        binding.cache = self
            .cache_policy(&binding.method, dirs.cache.as_ref(), site, diags)
            .map(std::sync::Arc::new);
        for (backend_name, path, pos) in &dirs.invalidates {
            let Some(b) = self.ctx.backends.iter().find(|b| &b.name == backend_name) else {
                let names: Vec<&str> = self.ctx.backends.iter().map(|b| b.name.as_str()).collect();
                diags.error_with_hint(
                    Some(site.loc(*pos)),
                    format!("@invalidates names unknown backend {backend_name:?}"),
                    available("backends", &names),
                );
                continue;
            };
            if let Some(mut t) = parse_template(path, *pos, site, diags) {
                for e in t.exprs_mut() {
                    if let Expr::Arg { name, .. } = e {
                        if !field.args.contains_key(name.as_str()) {
                            diags.error(
                                Some(site.loc(*pos)),
                                format!(
                                    "@invalidates path refers to args.{name}, which `{tname}.{}` does not have",
                                    field.name
                                ),
                            );
                        }
                    } else {
                        diags.error_with_hint(
                            Some(site.loc(*pos)),
                            "@invalidates paths may only use {{args...}}",
                            "name the path prefix the mutation makes stale, e.g. \"/accounts/{{args.input.fromAccount}}\"",
                        );
                    }
                }
                binding.invalidates.push((b.id, t));
            }
        }
        self.check_exprs(types, tname, field, &mut binding, http, site, is_root, diags);
        check_shapes(types, tname, field, &binding, http, site, diags);
        let idempotent = matches!(binding.method, http::Method::GET | http::Method::HEAD);
        let backend_default = backend.is_some_and(|b| self.ctx.backends[b.0].singleflight);
        // A batch lookup is a read even when its keys go in a POST body.
        let read = idempotent || binding.batch.is_some();
        binding.singleflight = http.singleflight.unwrap_or(backend_default && read);
        if diags.len() > before || backend.is_none() || method.is_none() {
            return None;
        }
        self.bindings.push(binding);
        Some(BindingId(self.bindings.len() - 1))
    }

    /// The field's cache policy: its `@cache`, or the default for GET calls.
    fn cache_policy(
        &self,
        method: &http::Method,
        args: Option<&directives::CacheArgs>,
        site: &Site,
        diags: &mut Diagnostics,
    ) -> Option<super::resilience::CachePolicy> {
        let cacheable = matches!(*method, http::Method::GET | http::Method::HEAD);
        let Some(args) = args else {
            return if cacheable {
                self.ctx.default_cache.clone()
            } else {
                None
            };
        };
        if !cacheable {
            diags.error_with_hint(
                Some(site.loc(args.pos)),
                format!("@cache on a {method} call: only GET answers are cached"),
                "remove @cache, or bind the field with method GET",
            );
            return None;
        }
        let default = self.ctx.default_cache.clone()?;
        let mut duration = |v: &Option<(String, async_graphql_parser::Pos)>| {
            v.as_ref().and_then(|(t, pos)| match humantime::parse_duration(t) {
                Ok(d) => Some(d),
                Err(e) => {
                    diags.error_with_hint(
                        Some(site.loc(*pos)),
                        format!("invalid duration {t:?} in @cache: {e}"),
                        "write a duration such as \"30s\" or \"5m\"",
                    );
                    None
                }
            })
        };
        Some(super::resilience::CachePolicy {
            ttl: duration(&args.ttl).or(default.ttl),
            stale_while_revalidate: duration(&args.stale_while_revalidate).unwrap_or(default.stale_while_revalidate),
            stale_if_error: duration(&args.stale_if_error).unwrap_or(default.stale_if_error),
            private: args.private,
        })
    }

    /// A fallback must sit on a bound field and fit the field's type.
    #[allow(clippy::too_many_arguments)]
    fn check_fallback(
        &self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        fname: &str,
        value: &serde_json::Value,
        site: &Site,
        pos: async_graphql_parser::Pos,
        bound: bool,
        diags: &mut Diagnostics,
    ) {
        if !bound {
            diags.error_with_hint(
                Some(site.loc(pos)),
                format!("@fallback on `{tname}.{fname}`, which makes no backend call"),
                "put @fallback on a field bound with @http",
            );
            return;
        }
        let Some(ty) = object_field(&types[tname], fname).map(|f| f.ty.clone()) else {
            return;
        };
        if let Err(e) = super::coerce::check_output(types, &ty, value) {
            diags.error_with_hint(
                Some(site.loc(pos)),
                format!("@fallback value of `{tname}.{fname}` does not fit its type {ty}: {e}"),
                "give a value of the field's type (objects as {key: value}, lists as [...])",
            );
        }
    }

    fn backend(&self, http: &HttpArgs, site: &Site, diags: &mut Diagnostics) -> Option<BackendId> {
        let (name, pos) = http.backend.as_ref()?;
        if let Some(b) = self.ctx.backends.iter().find(|b| &b.name == name) {
            return Some(b.id);
        }
        let names: Vec<&str> = self.ctx.backends.iter().map(|b| b.name.as_str()).collect();
        let hint = match suggest(name, names.iter().copied()) {
            Some(s) => format!("did you mean {s:?}?"),
            None if names.is_empty() => format!("declare it in mosaic.toml: [backends.{name}] url = \"http://...\""),
            None => format!(
                "{}; or declare [backends.{name}] in mosaic.toml",
                available("backends", &names)
            ),
        };
        diags.error_with_hint(Some(site.loc(*pos)), format!("unknown backend {name:?}"), hint);
        None
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_rule(
        &self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        field: &FieldDef,
        b: &BatchArgs,
        site: &Site,
        is_root: bool,
        diags: &mut Diagnostics,
    ) -> Option<BatchRule> {
        let loc = site.loc(b.pos);
        let owner = format!("{tname}.{}", field.name);
        if is_root {
            diags.error_with_hint(
                Some(loc),
                format!("root field `{owner}` cannot be batched"),
                "batching gathers calls for many parent objects; root fields have no parent",
            );
            return None;
        }
        let Some(key) = &b.key else {
            diags.error_with_hint(
                Some(loc),
                format!("batch of `{owner}` needs `key`"),
                "key is the field of each returned item that matches it to its parent, e.g. key: \"customerId\"",
            );
            return None;
        };
        let from = b.from.clone().unwrap_or_else(|| key.clone());
        let item_type = named_type(&field.ty);
        let item_key = backend_mapping(types, &self.bound, Some(item_type), key)
            .map_err(|(m, h)| diags.error_with_hint(Some(loc.clone()), format!("batch key: {m}"), h))
            .ok();
        let parent_key = backend_mapping(types, &self.bound, Some(tname), &from)
            .map_err(|(m, h)| diags.error_with_hint(Some(loc.clone()), format!("batch from: {m}"), h))
            .ok();
        let many = b.many.unwrap_or_else(|| is_list(&field.ty));
        if many != is_list(&field.ty) {
            let (what, fix) = if many {
                (
                    "many: true gives each parent a list of items",
                    "make the field a list, e.g. [Item!]!, or set many: false",
                )
            } else {
                (
                    "many: false gives each parent one item",
                    "make the field a single object, or set many: true",
                )
            };
            diags.error_with_hint(
                Some(loc.clone()),
                format!("batch of `{owner}`: {what} but the field's type is {}", field.ty),
                fix,
            );
        }
        let param = match (&b.param, b.style) {
            (Some(p), _) => p.clone(),
            (None, BatchStyle::JsonBody) => String::new(),
            (None, _) => {
                diags.error_with_hint(
                    Some(loc.clone()),
                    format!("batch of `{owner}` needs `param`"),
                    "param is the query parameter carrying the keys, e.g. param: \"id\" for ?id=1&id=2",
                );
                return None;
            }
        };
        Some(BatchRule {
            parent_key: parent_key?,
            from_field: from,
            item_key: item_key?,
            key_field: key.clone(),
            param,
            style: b.style,
            max_size: b.max_size,
            many,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn check_exprs(
        &self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        field: &FieldDef,
        binding: &mut Binding,
        http: &HttpArgs,
        site: &Site,
        is_root: bool,
        diags: &mut Diagnostics,
    ) {
        let loc = site.loc(http.pos);
        let owner = format!("{tname}.{}", field.name);
        let batched = binding.batch.is_some();
        let mut exprs: Vec<&mut Expr> = binding.path.exprs_mut().collect();
        for (_, t) in binding.query.iter_mut() {
            exprs.extend(t.exprs_mut());
        }
        for (_, t) in binding.headers.iter_mut() {
            exprs.extend(t.exprs_mut());
        }
        if let Some(b) = binding.body.as_mut() {
            exprs.extend(b.exprs_mut());
        }
        let fanout = binding.fanout.is_some();
        for e in exprs {
            let conversion = match e {
                Expr::Convert(_, c) => Some(*c),
                _ => None,
            };
            match e.base_mut() {
                Expr::Arg { name, path } => {
                    let Some(arg) = field.args.get(name.as_str()) else {
                        let names: Vec<&str> = field.args.keys().map(String::as_str).collect();
                        let hint = match suggest(name, names.iter().copied()) {
                            Some(s) => format!("did you mean args.{s}?"),
                            None => available("arguments", &names),
                        };
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("template refers to args.{name}, but `{owner}` has no argument `{name}`"),
                            hint,
                        );
                        continue;
                    };
                    check_input_path(types, &arg.ty, name, path, &owner, &loc, diags);
                    if let (Some(c), true) = (conversion, path.is_empty()) {
                        check_conversion(types, &arg.ty, c, &format!("args.{name}"), &loc, diags);
                    }
                }
                Expr::Parent { field: pfield, path } => {
                    if is_root {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("root field `{owner}` has no parent, so parent.{pfield} means nothing"),
                            "use args.NAME in root fields",
                        );
                        continue;
                    }
                    if batched || fanout {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!(
                                "{} field `{owner}` cannot use parent.{pfield} in its templates",
                                if batched { "batched" } else { "fan-out" }
                            ),
                            if batched {
                                "one request serves many parents; their keys go in `batch.from`"
                            } else {
                                "one call serves every parent with the same key: use {{key}}, from `fanout.from`"
                            },
                        );
                        continue;
                    }
                    match backend_mapping(types, &self.bound, Some(tname), pfield) {
                        Ok(m) => match m.as_path() {
                            Some(p) => *path = p.clone(),
                            None => diags.error_with_hint(
                                Some(loc.clone()),
                                format!("parent.{pfield} is computed by an expression; templates read paths"),
                                "read the backend keys the expression reads, e.g. {{parent.first_name}}",
                            ),
                        },
                        Err((m, h)) => diags.error_with_hint(Some(loc.clone()), format!("parent.{pfield}: {m}"), h),
                    }
                }
                Expr::Key => {
                    if !fanout {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("`{owner}` uses {{{{key}}}}, which only a fan-out has"),
                            "add fanout: {from: \"<backend key of the parent>\"} to the @http",
                        );
                    }
                }
                Expr::Header(h) => {
                    if !self.ctx.request_headers.iter().any(|x| x == h) {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("template reads header `{h}`, which is not allowlisted"),
                            format!("add it to mosaic.toml: [request] headers = [\"{h}\"]"),
                        );
                    }
                }
                Expr::Claim(_) => {
                    if !self.ctx.auth_configured {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            "template reads a JWT claim, but [auth] is not configured",
                            "configure token verification in mosaic.toml: [auth] hs256_secret, jwks_file or jwks_url",
                        );
                    }
                }
                Expr::Convert(..) => {}
            }
        }
        if fanout && !binding.path.uses_key() && !binding.query.iter().any(|(_, t)| t.uses_key()) {
            diags.error_with_hint(
                Some(loc),
                format!("fan-out `{owner}` never uses {{{{key}}}}"),
                "put the key in the path (\"/genres/{{key}}\") or the query, so each call asks for its key",
            );
        }
    }
}

/// A conversion the argument's type can never make (`Boolean | int`).
fn check_conversion(
    types: &IndexMap<String, TypeDef>,
    ty: &async_graphql_parser::types::Type,
    c: Conversion,
    what: &str,
    loc: &Location,
    diags: &mut Diagnostics,
) {
    let kind = match types.get(named_type(ty)) {
        Some(TypeDef::Scalar(s)) => Some(s.kind),
        Some(TypeDef::InputObject(_)) => {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("{what} is an input object; `| {}` converts scalars", c.name()),
                "convert one of its fields: {{args.input.count | int}}",
            );
            return;
        }
        _ => None,
    };
    use super::ScalarKind as K;
    let impossible = matches!(
        (kind, c),
        (Some(K::Boolean), Conversion::Int | Conversion::Float) | (Some(K::Float), Conversion::Bool)
    );
    if impossible {
        diags.error_with_hint(
            Some(loc.clone()),
            format!("{what} (type {ty}) can never be converted with `| {}`", c.name()),
            "send it as it is, or convert it with `| string`",
        );
    }
}

/// The shapes of `select` and `value` expressions against the field's type.
fn check_shapes(
    types: &IndexMap<String, TypeDef>,
    tname: &str,
    field: &FieldDef,
    binding: &Binding,
    http: &HttpArgs,
    site: &Site,
    diags: &mut Diagnostics,
) {
    let owner = format!("{tname}.{}", field.name);
    let per_item = binding.batch.is_some() || binding.fanout.is_some();
    // What one parent's value is built from: an item (batch, fan-out) or the answer.
    let item_ty = match (&field.ty.base, per_item) {
        (async_graphql_parser::types::BaseType::List(inner), true) => (**inner).clone(),
        _ => field.ty.clone(),
    };
    let selected = binding.select.shape(&Shape::Any);
    if binding.batch.is_some() && !matches!(selected, Shape::Any | Shape::Array(_)) {
        if let Some((_, pos)) = &http.select {
            diags.error_with_hint(
                Some(site.loc(*pos)),
                format!(
                    "select of batched `{owner}` gives {}; a batch answer's select must give the list of items",
                    selected.describe()
                ),
                "select the list, e.g. select: \"items\" or select: \".data | map(.record)\"",
            );
        }
    }
    let (shape, pos, what) = match (&binding.value, &http.value) {
        (Some(v), Some((_, pos))) => (v.shape(&Shape::Any), *pos, "value"),
        _ if !per_item => match &http.select {
            Some((_, pos)) => (selected, *pos, "select"),
            None => return,
        },
        _ => return,
    };
    if let Err(why) = super::mapping::fits(&shape, &item_ty, types) {
        diags.error_with_hint(
            Some(site.loc(pos)),
            format!("{what} of `{owner}` cannot be of type {item_ty}: {why}"),
            "change the expression or the field's type (docs/mapping.md)",
        );
    }
    let computed = binding.value.as_ref().is_some_and(|v| v.as_path().is_none());
    if computed && has_calls_below(types, named_type(&field.ty)) {
        diags.error_with_hint(
            Some(site.loc(pos)),
            format!("the value of `{owner}` is computed by an expression, and fields below it are bound with @http"),
            "compute it in `select` (kept with the answer) or read it with a path",
        );
    }
}

/// `fanout: {from:, concurrency:}`.
#[allow(clippy::too_many_arguments)]
fn fanout_rule(
    types: &IndexMap<String, TypeDef>,
    bound: &Bound,
    tname: &str,
    field: &FieldDef,
    f: &FanoutArgs,
    batched: bool,
    site: &Site,
    is_root: bool,
    diags: &mut Diagnostics,
) -> Option<FanoutRule> {
    let loc = site.loc(f.pos);
    let owner = format!("{tname}.{}", field.name);
    if is_root {
        diags.error_with_hint(
            Some(loc),
            format!("root field `{owner}` cannot fan out"),
            "a fan-out makes one call per key of the parents of a level; root fields have no parent",
        );
        return None;
    }
    if batched {
        diags.error_with_hint(
            Some(loc),
            format!("`{owner}` has both batch and fanout"),
            "batch sends every key in one request; fanout makes one call per key: pick one",
        );
        return None;
    }
    let Some(from) = &f.from else {
        diags.error_with_hint(
            Some(loc),
            format!("fanout of `{owner}` needs `from`"),
            "from is the parent's backend key (or list of keys), e.g. from: \"genre_ids\"",
        );
        return None;
    };
    match backend_mapping(types, bound, Some(tname), from) {
        Ok(m) => Some(FanoutRule {
            from: m,
            concurrency: f.concurrency,
            many: is_list(&field.ty),
        }),
        Err((m, h)) => {
            diags.error_with_hint(Some(loc), format!("fanout from: {m}"), h);
            None
        }
    }
}

const TEMPLATE_HINT: &str =
    "templates read {{args.NAME}}, {{parent.KEY}}, {{key}}, {{headers.NAME}} or {{claims.NAME}}, optionally `| int`, `| float`, `| bool` or `| string`";

fn parse_template(
    text: &str,
    pos: async_graphql_parser::Pos,
    site: &Site,
    diags: &mut Diagnostics,
) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => Some(t),
        Err(e) => {
            diags.error_with_hint(Some(site.loc(pos)), format!("in template {text:?}: {e}"), TEMPLATE_HINT);
            None
        }
    }
}

fn check_input_path(
    types: &IndexMap<String, TypeDef>,
    ty: &async_graphql_parser::types::Type,
    arg: &str,
    path: &[String],
    owner: &str,
    loc: &Location,
    diags: &mut Diagnostics,
) {
    let mut cur = named_type(ty).to_string();
    for seg in path {
        match types.get(&cur) {
            Some(TypeDef::InputObject(io)) => match io.fields.get(seg) {
                Some(f) => cur = named_type(&f.ty).to_string(),
                None => {
                    let names: Vec<&str> = io.fields.keys().map(String::as_str).collect();
                    diags.error_with_hint(
                        Some(loc.clone()),
                        format!(
                            "args.{arg}.{}: input type `{cur}` has no field `{seg}` (in `{owner}`)",
                            path.join(".")
                        ),
                        available("fields", &names),
                    );
                    return;
                }
            },
            _ => {
                diags.error(
                    Some(loc.clone()),
                    format!(
                        "args.{arg}.{}: `{cur}` is not an input object (in `{owner}`)",
                        path.join(".")
                    ),
                );
                return;
            }
        }
    }
}

fn object_fields_mut<'t>(
    types: &'t mut IndexMap<String, TypeDef>,
    name: &str,
) -> Option<&'t mut IndexMap<String, FieldDef>> {
    match types.get_mut(name)? {
        TypeDef::Object(o) => Some(&mut o.fields),
        TypeDef::Interface(i) => Some(&mut i.fields),
        _ => None,
    }
}

fn object_field<'t>(def: &'t TypeDef, name: &str) -> Option<&'t FieldDef> {
    match def {
        TypeDef::Object(o) => o.fields.get(name),
        _ => None,
    }
}

#[allow(dead_code)]
fn _assert_site(_: &FieldSite<'_>) {}

/// The source `@from` gives a field: a path, or a computed expression.
fn from_source(from: &FromArgs) -> Result<FieldSource, (String, String)> {
    if from.text.trim().is_empty() {
        return Err((
            "@from(path: \"\") reads nothing".into(),
            "name the backend key (\"customer_id\", \"owner.name\"), or \".\" for the parent object itself".into(),
        ));
    }
    let parsed = if from.expr {
        Mapping::expression(&from.text)
    } else {
        Mapping::parse(&from.text)
    };
    let mapping = parsed.map_err(|e| {
        (
            format!("in @from {:?}: {e}", from.text),
            "see docs/mapping.md for paths and expressions".to_string(),
        )
    })?;
    match mapping.as_path() {
        Some(path) => Ok(FieldSource::Parent(path.clone())),
        None if from.expr => Ok(FieldSource::Computed(Arc::new(mapping))),
        None => Err((
            format!("@from(path: {:?}) is an expression, not a path", from.text),
            format!("write @from(expr: {:?}) to compute the value", from.text),
        )),
    }
}

/// Computed fields: their expression's shape must fit their type, and a computed object has no
/// bound fields below it (a computed value exists while the response is written, not while the
/// calls below it would be gathered).
fn check_computed_fields(types: &IndexMap<String, TypeDef>, sites: &FieldSites<'_>, diags: &mut Diagnostics) {
    for (tname, def) in types {
        let TypeDef::Object(o) = def else { continue };
        for (fname, f) in &o.fields {
            let FieldSource::Computed(m) = &f.source else { continue };
            let Some(fs) = sites.get(&(tname.clone(), fname.clone())) else {
                continue;
            };
            let loc = fs.site.loc(fs.pos);
            if let Err(why) = super::mapping::fits(&m.shape(&Shape::Any), &f.ty, types) {
                diags.error_with_hint(
                    Some(loc.clone()),
                    format!(
                        "@from(expr: {:?}) of `{tname}.{fname}` cannot be of type {}: {why}",
                        m.text(),
                        f.ty
                    ),
                    "change the expression or the field's type (docs/mapping.md)",
                );
            }
            if has_calls_below(types, named_type(&f.ty)) {
                diags.error_with_hint(
                    Some(loc),
                    format!("`{tname}.{fname}` is computed by @from(expr:), and fields below it are bound with @http"),
                    "compute the value in the parent call's `select` instead, or read it with @from(path:)",
                );
            }
        }
    }
}

/// Whether any field at or below `type_name` makes a backend call or runs a resolver.
pub(super) fn has_calls_below(types: &IndexMap<String, TypeDef>, type_name: &str) -> bool {
    fn walk<'t>(types: &'t IndexMap<String, TypeDef>, name: &'t str, seen: &mut Vec<&'t str>) -> bool {
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        let fields = match types.get(name) {
            Some(TypeDef::Object(o)) => &o.fields,
            Some(TypeDef::Interface(i)) => &i.fields,
            Some(TypeDef::Union(u)) => {
                return u.members.iter().any(|m| walk(types, m, seen));
            }
            _ => return false,
        };
        let possible: Vec<&'t str> = match types.get(name) {
            Some(TypeDef::Interface(i)) => i.possible_types.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        fields.values().any(|f| {
            matches!(
                f.source,
                FieldSource::Call(_) | FieldSource::Resolver(_) | FieldSource::Stream(_)
            ) || walk(types, named_type(&f.ty), seen)
        }) || possible.into_iter().any(|p| walk(types, p, seen))
    }
    walk(types, type_name, &mut Vec::new())
}

/// A key or value read from the backend JSON of objects of `type_name`: a path whose first step
/// names a public field reads where that field reads (its `@from`); any other path or expression
/// reads the backend JSON as it is — public or not.
fn backend_mapping(
    types: &IndexMap<String, TypeDef>,
    bound: &Bound,
    type_name: Option<&str>,
    text: &str,
) -> Result<Mapping, (String, String)> {
    let m = Mapping::parse(text).map_err(|e| {
        (
            format!("{text:?}: {e}"),
            "a backend path (\"publisher_ref\", \"meta.isbn\") or an expression (docs/mapping.md)".to_string(),
        )
    })?;
    let Some(path) = m.as_path() else { return Ok(m) };
    let Some(fields) = type_name.and_then(|t| match types.get(t) {
        Some(TypeDef::Object(o)) => Some(&o.fields),
        _ => None,
    }) else {
        return Ok(m);
    };
    let Some((Segment::Key(first), rest)) = path.segments().split_first() else {
        return Ok(m);
    };
    let Some(f) = fields.get(&**first) else {
        return Ok(m);
    };
    let is_bound = type_name.is_some_and(|t| bound.contains(&(t.to_string(), first.to_string())));
    match &f.source {
        _ if is_bound => Err((
            format!(
                "`{}.{first}` is bound to a call, so {text:?} cannot be read from the backend's JSON",
                type_name.unwrap_or_default()
            ),
            "name the backend key the value is read from instead (any key of the JSON, public or not)".into(),
        )),
        FieldSource::Parent(p) => {
            let mut segments = p.segments().to_vec();
            segments.extend_from_slice(rest);
            Ok(Mapping::from_path(JsonPath::from_segments(segments)))
        }
        FieldSource::Computed(c) if rest.is_empty() => Ok((**c).clone()),
        _ => Err((
            format!(
                "`{}.{first}` is bound to a call, so {text:?} cannot be read from the backend's JSON",
                type_name.unwrap_or_default()
            ),
            "name the backend key the value is read from instead (any key of the JSON, public or not)".into(),
        )),
    }
}
