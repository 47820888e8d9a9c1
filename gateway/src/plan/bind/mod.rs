//! The binder: gives every field its data source and compiles `@http` into [`Binding`]s — the
//! call itself in [`endpoint`], batch and fan-out keys in [`keys`], template expressions in
//! [`templates`], mapping expressions and computed fields in [`mappings`].
//!
//! Checks what directive values refer to: the backend exists, template expressions name real
//! arguments, parent fields and allowlisted headers, batch keys are fields of the right types, and
//! `many` agrees with the field's list type. Root fields must be bound.

use std::sync::Arc;

use indexmap::IndexMap;

use super::binding::{BackendPlan, Binding};
use super::build::sites::FieldSites;
use super::directives::{self, FieldDirectives, Site};
use super::{FieldDef, FieldSource, TypeDef};
use crate::config::diagnostic::{available, suggest};
use crate::config::{Diagnostics, Location};

mod endpoint;
mod keys;
mod mappings;
mod templates;

use keys::*;
use mappings::*;

/// What the binder checks bindings against.
pub(super) struct BindContext<'a> {
    pub backends: &'a [BackendPlan],
    /// Cache policy of GET fields without `@cache`; `None` when caching is off.
    pub default_cache: Option<crate::plan::resilience::CachePolicy>,
    pub request_headers: Vec<String>,
    pub root_types: Vec<String>,
    pub subscription_type: Option<String>,
    pub resolvers: &'a [&'a str],
    /// `[auth]` verifies tokens: templates may read claims.
    pub auth_configured: bool,
}

/// `(type, field)` of the fields bound to a call, a stream or a resolver.
pub(super) type Bound = std::collections::HashSet<(String, String)>;

pub(super) struct Binder<'a> {
    pub(super) ctx: BindContext<'a>,
    pub(super) bound: Bound,
    pub(super) bindings: Vec<Binding>,
    pub(super) used_resolvers: Vec<String>,
}

pub(super) const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

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
                            Some(crate::plan::AuthRule { scopes })
                        }
                    };
                }
            }
        }
        check_computed_fields(types, sites, diags);
    }
}

impl Binder<'_> {
    /// Compiles `@http` on entity type `tname` (federation): a binding whose parents are the
    /// representations and whose value is the entity's backend object.
    pub(in crate::plan) fn bind_entity(
        &mut self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        http: &directives::HttpArgs,
        cache: Option<directives::CacheArgs>,
        site: &Site,
        diags: &mut Diagnostics,
    ) -> Option<super::BindingId> {
        let field = FieldDef {
            name: "_entities".to_string(),
            description: None,
            deprecation: None,
            args: IndexMap::new(),
            ty: async_graphql_parser::types::Type {
                base: async_graphql_parser::types::BaseType::Named(async_graphql_value::Name::new(tname)),
                nullable: true,
            },
            source: FieldSource::Parent(super::JsonPath::default()),
            fallback: None,
            auth: None,
            location: Some(site.loc(http.pos)),
        };
        let dirs = FieldDirectives {
            cache,
            ..FieldDirectives::default()
        };
        self.bind_http(types, tname, &field, http, &dirs, site, false, diags)
    }
}

pub(super) fn object_fields_mut<'t>(
    types: &'t mut IndexMap<String, TypeDef>,
    name: &str,
) -> Option<&'t mut IndexMap<String, FieldDef>> {
    match types.get_mut(name)? {
        TypeDef::Object(o) => Some(&mut o.fields),
        TypeDef::Interface(i) => Some(&mut i.fields),
        _ => None,
    }
}

pub(super) fn object_field<'t>(def: &'t TypeDef, name: &str) -> Option<&'t FieldDef> {
    match def {
        TypeDef::Object(o) => o.fields.get(name),
        _ => None,
    }
}
