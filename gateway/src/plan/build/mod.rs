//! Config → Plan: collects the SDL's types ([`types`]), checks them against each other
//! ([`checks`]) and the backends ([`backends`]), compiles every field's data source (the binder,
//! with the fields' [`sites`]) and checks the other sections ([`settings`]). All problems are
//! accumulated, none is fatal alone.

mod backends;
mod checks;
mod settings;
pub(super) mod sites;
mod types;

use async_graphql_parser::types::TypeSystemDefinition;
use indexmap::IndexMap;

use super::bind::{BindContext, Binder};
use super::directives::{self, Site};
use super::{Plan, ScalarType, TypeDef};
use crate::config::{ConfigSource, Diagnostics, Location};
use backends::*;
use checks::*;
use settings::*;
use sites::*;
use types::*;

/// The schema definition's root types: query, mutation, and subscription with its place.
type Roots = (Option<String>, Option<String>, Option<(String, Location)>);

/// Every type definition and extension of the SDL files, and the schema definition's roots.
fn collect_definitions<'a>(
    src: &'a ConfigSource,
    diags: &mut Diagnostics,
) -> (IndexMap<String, RawType<'a>>, Vec<RawType<'a>>, Roots) {
    let mut defs: IndexMap<String, RawType<'_>> = IndexMap::new();
    let mut extensions: Vec<RawType<'_>> = Vec::new();
    let mut roots: Roots = (None, None, None);
    for file in &src.sdl {
        let site = Site {
            file: file.file.name.clone(),
        };
        for def in &file.document.definitions {
            match def {
                TypeSystemDefinition::Type(t) => {
                    let raw = RawType {
                        def: &t.node,
                        pos: t.pos,
                        site: site.clone(),
                    };
                    let name = t.node.name.node.to_string();
                    if t.node.extend {
                        extensions.push(raw);
                    } else if BUILTIN_SCALARS.iter().any(|(n, _)| *n == name) {
                        diags.error(
                            Some(site.loc(t.pos)),
                            format!("`{name}` is a built-in scalar and cannot be redefined"),
                        );
                    } else if let Some(prev) = defs.get(&name) {
                        diags.error_with_hint(
                            Some(site.loc(t.pos)),
                            format!("type `{name}` is defined twice"),
                            format!(
                                "the first definition is at {}; use `extend type {name}` to add fields",
                                prev.site.loc(prev.pos)
                            ),
                        );
                    } else {
                        defs.insert(name, raw);
                    }
                }
                TypeSystemDefinition::Schema(s) => {
                    roots.0 = s.node.query.as_ref().map(|n| n.node.to_string());
                    roots.1 = s.node.mutation.as_ref().map(|n| n.node.to_string());
                    roots.2 = s
                        .node
                        .subscription
                        .as_ref()
                        .map(|n| (n.node.to_string(), site.loc(n.pos)));
                }
                TypeSystemDefinition::Directive(d) => {
                    let name = d.node.name.node.as_str();
                    let ours = directives::FIELD_DIRECTIVES.contains(&name)
                        || directives::ABSTRACT_TYPE_DIRECTIVES.contains(&name);
                    if !ours {
                        diags.error_with_hint(
                            Some(site.loc(d.pos)),
                            format!("custom directive @{name} is not supported"),
                            "Mosaic reads only its own directives; remove this definition",
                        );
                    }
                }
            }
        }
    }
    (defs, extensions, roots)
}

/// Validates and compiles a config. `resolvers` are the names of the registered Rust resolvers.
pub fn build(src: &ConfigSource, resolvers: &[&str]) -> Result<Plan, Diagnostics> {
    let mut diags = Diagnostics::default();
    // 0. Federation directives out of the SDL (the rest reads plain Mosaic SDL).
    let mut federation = super::federation::extract(src, &mut diags);
    let stripped = federation.stripped.take();
    let src = stripped.as_ref().unwrap_or(src);
    let backends = build_backends(src, &mut diags);

    // 1. Collect definitions, extensions and the schema definition.
    let (defs, extensions, roots) = collect_definitions(src, &mut diags);

    let query_type = roots.0.unwrap_or_else(|| "Query".to_string());
    let mutation_type = roots
        .1
        .or_else(|| defs.contains_key("Mutation").then(|| "Mutation".to_string()));
    let subscription = roots.2.or_else(|| {
        defs.get("Subscription")
            .map(|r| ("Subscription".to_string(), r.site.loc(r.pos)))
    });
    let subscription_type = subscription.map(|(name, _)| name);
    if !defs.contains_key(&query_type) {
        diags.error_with_hint(
            None,
            format!("the schema has no `{query_type}` type"),
            "define `type Query { ... }` with at least one field bound by @http",
        );
    }

    // 2. Every named type, fields not yet bound.
    let mut types: IndexMap<String, TypeDef> = BUILTIN_SCALARS
        .iter()
        .map(|(n, k)| {
            (
                n.to_string(),
                TypeDef::Scalar(ScalarType {
                    name: n.to_string(),
                    description: None,
                    kind: *k,
                }),
            )
        })
        .collect();
    for (name, raw) in &defs {
        types.insert(name.clone(), shape_type(raw, &mut diags));
    }
    for ext in &extensions {
        apply_extension(&mut types, &defs, ext, &mut diags);
    }

    // 3. References, interfaces and unions.
    let field_sites = collect_field_sites(&defs, &extensions);
    check_references(&types, &field_sites, &mut diags);
    link_abstract_types(&mut types, &defs, &mut diags);

    // 4. Field sources: bindings, @from paths and resolvers.
    let cache = &src.settings.cache;
    let mut binder = Binder::new(BindContext {
        backends: &backends,
        default_cache: cache.enabled.then_some(crate::plan::resilience::CachePolicy {
            ttl: None,
            stale_while_revalidate: std::time::Duration::ZERO,
            stale_if_error: cache.stale_if_error.0,
            private: false,
        }),
        request_headers: src
            .settings
            .request
            .headers
            .iter()
            .map(|h| h.get_ref().to_ascii_lowercase())
            .collect(),
        root_types: [
            Some(query_type.clone()),
            mutation_type.clone(),
            subscription_type.clone(),
        ]
        .into_iter()
        .flatten()
        .collect(),
        subscription_type: subscription_type.clone(),
        auth_configured: {
            let a = &src.settings.auth;
            a.hs256_secret.is_some() || a.jwks_file.is_some() || a.jwks_url.is_some()
        },
        resolvers,
    });
    binder.bind_all(&mut types, &field_sites, &mut diags);
    check_abstract_outputs(&types, &field_sites, &mut diags);
    let federation = src
        .settings
        .federation
        .enabled
        .then(|| super::federation::finish(federation, &mut types, &mut binder, &mut diags));
    let (bindings, used_resolvers) = binder.finish();
    let config_dir = std::path::Path::new(&*src.settings_file.name)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    // 5. The other sections.
    let trusted_documents = trusted_documents(src, &config_dir, &mut diags);
    let auth = check_auth(src, &config_dir, &mut diags);
    check_cors(src, &mut diags);
    check_rate_limit_key(src, &mut diags);
    let rate_limit = check_rate_limit_redis(src, &mut diags);
    check_telemetry(src, &mut diags);
    check_log(src, &mut diags);

    diags.into_result(Plan {
        types,
        query_type,
        mutation_type,
        subscription_type,
        bindings,
        backends,
        server: src.settings.server.clone(),
        limits: src.settings.limits.clone(),
        cache: src.settings.cache.clone(),
        security: src.settings.security.clone(),
        auth,
        rate_limit,
        telemetry: src.settings.telemetry.clone(),
        log: src.settings.log.clone(),
        trusted_documents,
        config_dir,
        request_headers: src
            .settings
            .request
            .headers
            .iter()
            .map(|h| h.get_ref().to_ascii_lowercase())
            .collect(),
        resolvers: used_resolvers,
        federation,
    })
}
