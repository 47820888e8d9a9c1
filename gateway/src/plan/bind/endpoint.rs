//! `@http` (and `@stream`) compiled into a [`Binding`]: backend, method, templates, body,
//! `select`/`value`, `errors`, caching, invalidations, fallbacks.

use indexmap::IndexMap;

use super::super::binding::{BackendId, Binding, BindingId, BodyTemplate, ErrorRule};
use super::super::directives::{self, HttpArgs, Site};
use super::super::template::{Expr, Template};
use super::super::{FieldDef, JsonPath, TypeDef};
use super::*;
use crate::config::diagnostic::{available, suggest};
use crate::config::Diagnostics;
use crate::plan::mapping::Mapping;

impl Binder<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn bind_http(
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
    pub(super) fn cache_policy(
        &self,
        method: &http::Method,
        args: Option<&directives::CacheArgs>,
        site: &Site,
        diags: &mut Diagnostics,
    ) -> Option<crate::plan::resilience::CachePolicy> {
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
        Some(crate::plan::resilience::CachePolicy {
            ttl: duration(&args.ttl).or(default.ttl),
            stale_while_revalidate: duration(&args.stale_while_revalidate).unwrap_or(default.stale_while_revalidate),
            stale_if_error: duration(&args.stale_if_error).unwrap_or(default.stale_if_error),
            private: args.private,
        })
    }

    /// A fallback must sit on a bound field and fit the field's type.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_fallback(
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
        if let Err(e) = crate::plan::coerce::check_output(types, &ty, value) {
            diags.error_with_hint(
                Some(site.loc(pos)),
                format!("@fallback value of `{tname}.{fname}` does not fit its type {ty}: {e}"),
                "give a value of the field's type (objects as {key: value}, lists as [...])",
            );
        }
    }

    pub(super) fn backend(&self, http: &HttpArgs, site: &Site, diags: &mut Diagnostics) -> Option<BackendId> {
        let (name, pos) = http.backend.as_ref()?;
        if let Some((group, gpos)) = &http.endpoint {
            let full = format!("{name}.{group}");
            if let Some(b) = self.ctx.backends.iter().find(|b| b.name == full) {
                return Some(b.id);
            }
            let prefix = format!("{name}.");
            let groups: Vec<&str> = self
                .ctx
                .backends
                .iter()
                .filter_map(|b| b.name.strip_prefix(&prefix))
                .collect();
            let hint = match suggest(group, groups.iter().copied()) {
                Some(s) => format!("did you mean {s:?}?"),
                None => format!(
                    "declare it in mosaic.toml: [backends.{name}.endpoints.{group}] with the settings of its own"
                ),
            };
            diags.error_with_hint(
                Some(site.loc(*gpos)),
                format!("backend {name:?} has no endpoint group {group:?}"),
                hint,
            );
            return None;
        }
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
}

pub(super) const TEMPLATE_HINT: &str =
    "templates read {{args.NAME}}, {{parent.KEY}}, {{key}}, {{headers.NAME}} or {{claims.NAME}}, optionally `| int`, `| float`, `| bool` or `| string`";

pub(super) fn parse_template(
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
