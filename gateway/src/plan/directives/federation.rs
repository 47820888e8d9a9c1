//! Apollo Federation v2 directives read out of SDL (`@key`, `@shareable`, `@external`, `@requires`,
//! `@provides`, `@inaccessible`, `@override`, `@tag`, `@interfaceObject`, `@extends`, `@link`),
//! and `@http` on an entity type (its entity resolver). Typed values only: what they refer to is
//! checked by `plan::federation`.

use async_graphql_parser::types::ConstDirective;
use async_graphql_parser::{Pos, Positioned};
use async_graphql_value::ConstValue;

use super::args::Args;
use super::http::http_args;
use super::{CacheArgs, HttpArgs, Site};
use crate::config::Diagnostics;

/// The federation directives Mosaic reads, by their names in the federation spec.
pub const FEDERATION_DIRECTIVES: &[&str] = &[
    "key",
    "shareable",
    "external",
    "requires",
    "provides",
    "inaccessible",
    "override",
    "tag",
    "interfaceObject",
    "extends",
    "composeDirective",
];

/// One federation directive as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FedDirective {
    Key { fields: String, resolvable: bool },
    Shareable,
    External,
    Requires(String),
    Provides(String),
    Inaccessible,
    Override(String),
    Tag(String),
    InterfaceObject,
    Extends,
    ComposeDirective,
}

/// `@link(url:, import:)`: the spec's URL and the imported names (`"@key"` or
/// `{name: "@key", as: "@primaryKey"}`) as (spec name, local name) without `@`.
pub fn link(d: &Positioned<ConstDirective>, site: &Site, diags: &mut Diagnostics) -> (String, Vec<(String, String)>) {
    let mut args = Args::new(&d.node, d.pos, site);
    let url = args.string("url", true, diags).map(|(u, _)| u).unwrap_or_default();
    let _ = args.take("as");
    let _ = args.take("for");
    let mut imports = Vec::new();
    if let Some((v, pos)) = args.take("import") {
        let items = match v {
            ConstValue::List(items) => items,
            other => vec![other],
        };
        for item in items {
            match item {
                ConstValue::String(s) => {
                    let n = s.trim_start_matches('@').to_string();
                    imports.push((n.clone(), n));
                }
                ConstValue::Object(m) => match (m.get("name"), m.get("as")) {
                    (Some(ConstValue::String(n)), Some(ConstValue::String(a))) => imports.push((
                        n.trim_start_matches('@').to_string(),
                        a.trim_start_matches('@').to_string(),
                    )),
                    (Some(ConstValue::String(n)), None) => {
                        let n = n.trim_start_matches('@').to_string();
                        imports.push((n.clone(), n));
                    }
                    _ => diags.error(
                        Some(site.loc(pos)),
                        "each @link import is \"@name\" or {name: \"@name\", as: \"@alias\"}",
                    ),
                },
                _ => diags.error(Some(site.loc(pos)), "@link's `import` is a list of names"),
            }
        }
    }
    args.finish(diags);
    (url, imports)
}

/// Reads federation directive `spec_name` (its name in the spec, whatever it was imported as).
pub fn federation_directive(
    spec_name: &str,
    d: &Positioned<ConstDirective>,
    site: &Site,
    diags: &mut Diagnostics,
) -> Option<FedDirective> {
    let mut args = Args::new(&d.node, d.pos, site);
    let out = match spec_name {
        "key" => {
            let fields = args.string("fields", true, diags).map(|(f, _)| f);
            let resolvable = args.bool("resolvable", diags).unwrap_or(true);
            fields.map(|fields| FedDirective::Key { fields, resolvable })
        }
        "shareable" => Some(FedDirective::Shareable),
        "external" => {
            let _ = args.take("reason");
            Some(FedDirective::External)
        }
        "requires" => args
            .string("fields", true, diags)
            .map(|(f, _)| FedDirective::Requires(f)),
        "provides" => args
            .string("fields", true, diags)
            .map(|(f, _)| FedDirective::Provides(f)),
        "inaccessible" => Some(FedDirective::Inaccessible),
        "override" => {
            let from = args.string("from", true, diags).map(|(f, _)| FedDirective::Override(f));
            if let Some((_, pos)) = args.take("label") {
                diags.error_with_hint(
                    Some(site.loc(pos)),
                    "progressive @override (`label`) is not supported",
                    "remove `label` to move the field at once",
                );
            }
            from
        }
        "tag" => args.string("name", true, diags).map(|(n, _)| FedDirective::Tag(n)),
        "interfaceObject" => Some(FedDirective::InterfaceObject),
        "extends" => Some(FedDirective::Extends),
        "composeDirective" => {
            let _ = args.take("name");
            Some(FedDirective::ComposeDirective)
        }
        _ => None,
    };
    args.finish(diags);
    out
}

/// `@http(..., forKey:)` on an entity type: how its entities are fetched for representations of
/// the key `forKey` (its `fields` text; unset: the type's first key).
pub fn entity_http(
    d: &Positioned<ConstDirective>,
    site: &Site,
    diags: &mut Diagnostics,
) -> (HttpArgs, Option<(String, Pos)>) {
    let mut args = Args::new(&d.node, d.pos, site);
    let for_key = args.string("forKey", false, diags);
    let http = http_args(&mut args, d.pos, diags);
    args.finish(diags);
    (http, for_key)
}

/// `@cache(...)` on an entity type: the cache policy of its entity resolvers.
pub fn entity_cache(d: &Positioned<ConstDirective>, site: &Site, diags: &mut Diagnostics) -> Option<CacheArgs> {
    super::field_directives(std::slice::from_ref(d), site, diags).cache
}
