//! The binder: gives every field its data source and compiles `@http` into [`Binding`]s.
//!
//! Checks what directive values refer to: the backend exists, template expressions name real
//! arguments, parent fields and allowlisted headers, batch keys are fields of the right types, and
//! `many` agrees with the field's list type. Root fields must be bound.

use std::sync::Arc;

use indexmap::IndexMap;

use super::binding::{BackendId, BackendPlan, BatchRule, BatchStyle, Binding, BindingId, BodyTemplate};
use super::build::{FieldSite, FieldSites};
use super::directives::{self, BatchArgs, FieldDirectives, HttpArgs, Site};
use super::template::{Expr, Template};
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

pub(super) struct Binder<'a> {
    ctx: BindContext<'a>,
    bindings: Vec<Binding>,
    used_resolvers: Vec<String>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

impl<'a> Binder<'a> {
    pub fn new(ctx: BindContext<'a>) -> Self {
        Self {
            ctx,
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
                if let Some((path, pos)) = &dirs.from {
                    match JsonPath::parse(path) {
                        Ok(p) => field.source = FieldSource::Parent(p),
                        Err(e) => diags.error(Some(fs.site.loc(*pos)), e.to_string()),
                    }
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
                diags.error(Some(site.loc(*pos)), format!("in body: {e}"));
                None
            }
        });
        let select = match &http.select {
            Some((s, pos)) => JsonPath::parse(s).unwrap_or_else(|e| {
                diags.error(Some(site.loc(*pos)), e.to_string());
                JsonPath::default()
            }),
            None => JsonPath::default(),
        };
        let batch = http
            .batch
            .as_ref()
            .and_then(|b| self.batch_rule(types, tname, field, b, site, is_root, diags));

        let mut binding = Binding {
            id: BindingId(self.bindings.len()),
            backend: backend.unwrap_or(BackendId(0)),
            method: method.clone().unwrap_or(http::Method::GET),
            path: path.unwrap_or_else(|| Template::literal("/")),
            query,
            headers,
            body,
            select,
            batch,
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
        let idempotent = matches!(binding.method, http::Method::GET | http::Method::HEAD);
        let backend_default = backend.is_some_and(|b| self.ctx.backends[b.0].singleflight);
        binding.singleflight = http.singleflight.unwrap_or(backend_default && idempotent);
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
        let item_fields = match types.get(item_type) {
            Some(TypeDef::Object(o)) => &o.fields,
            _ => {
                diags.error_with_hint(
                    Some(loc),
                    format!("batched field `{owner}` returns `{item_type}`, which is not an object type"),
                    "batching matches returned objects to their parents by a key field",
                );
                return None;
            }
        };
        let item_key = key_path(types, item_fields, key, item_type, "key", &loc, diags);
        let parent_fields = match types.get(tname) {
            Some(TypeDef::Object(o)) => &o.fields,
            _ => return None,
        };
        let parent_key = key_path(types, parent_fields, &from, tname, "from", &loc, diags);
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
        for e in exprs {
            match e {
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
                    if batched {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("batched field `{owner}` cannot use parent.{pfield} in its templates"),
                            "one request serves many parents; their keys go in `batch.from`",
                        );
                        continue;
                    }
                    let parent_fields = match types.get(tname) {
                        Some(TypeDef::Object(o)) => &o.fields,
                        _ => continue,
                    };
                    if let Some(p) = key_path(types, parent_fields, pfield, tname, "parent", &loc, diags) {
                        *path = p;
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
            }
        }
    }
}

fn parse_template(
    text: &str,
    pos: async_graphql_parser::Pos,
    site: &Site,
    diags: &mut Diagnostics,
) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => Some(t),
        Err(e) => {
            diags.error(Some(site.loc(pos)), format!("in template {text:?}: {e}"));
            None
        }
    }
}

/// The backend JSON path of a scalar field used as a key (batch key, batch from, parent ref).
fn key_path(
    types: &IndexMap<String, TypeDef>,
    fields: &IndexMap<String, FieldDef>,
    name: &str,
    type_name: &str,
    role: &str,
    loc: &Location,
    diags: &mut Diagnostics,
) -> Option<JsonPath> {
    let Some(f) = fields.get(name) else {
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        let hint = match suggest(name, names.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => available(&format!("fields of {type_name}"), &names),
        };
        let what = match role {
            "key" => format!("batch key `{name}` is not a field of the returned type `{type_name}`"),
            "from" => format!("batch from `{name}` is not a field of the parent type `{type_name}`"),
            _ => format!("parent.{name}: `{type_name}` has no field `{name}`"),
        };
        diags.error_with_hint(Some(loc.clone()), what, hint);
        return None;
    };
    let leaf = types.get(named_type(&f.ty)).is_some_and(TypeDef::is_leaf);
    if !leaf || is_list(&f.ty) {
        diags.error_with_hint(
            Some(loc.clone()),
            format!(
                "`{type_name}.{name}` (type {}) cannot be used as a key: it is not a single scalar",
                f.ty
            ),
            "keys are scalar fields such as id: ID!",
        );
        return None;
    }
    match &f.source {
        FieldSource::Parent(p) => Some(p.clone()),
        _ => {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("`{type_name}.{name}` is itself bound to a call, so it cannot be used as a key"),
                "use a field read from the backend's JSON",
            );
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
