//! The federation directives taken out of the SDL before the plan reads it: each one recorded as a
//! [`Mark`] on its [`Target`], `@http`/`@cache` on object types kept as pending entity resolvers,
//! `@link` read for the names the directives were imported as, and the federation spec's own
//! definitions (`scalar _FieldSet`, `directive @key ...`) dropped. What is left is plain Mosaic SDL.

use std::collections::HashMap;

use async_graphql_parser::types::{ConstDirective, TypeKind, TypeSystemDefinition};
use async_graphql_parser::{Pos, Positioned};

use super::{Mark, Target};
use crate::config::{ConfigSource, Diagnostics, Location};
use crate::plan::directives::federation::{self as fed, FedDirective, FEDERATION_DIRECTIVES};
use crate::plan::directives::{CacheArgs, HttpArgs, Site};

/// `@http` on an entity type, as written.
pub(in crate::plan) struct PendingResolver {
    pub type_name: String,
    pub http: HttpArgs,
    pub for_key: Option<(String, Pos)>,
    pub cache: Option<CacheArgs>,
    pub site: Site,
}

/// The SDL without federation directives, and what they said.
pub(in crate::plan) struct Extracted {
    /// The config with the directives removed (`None`: there were none).
    pub stripped: Option<ConfigSource>,
    pub marks: HashMap<Target, Vec<Mark>>,
    pub resolvers: Vec<PendingResolver>,
    /// Where each type's `@key` was written.
    pub key_sites: HashMap<String, Location>,
}

/// Types and directives the federation spec defines; a subgraph SDL may declare them.
const SPEC_TYPES: &[&str] = &[
    "_Any",
    "_Entity",
    "_Service",
    "_FieldSet",
    "FieldSet",
    "link__Import",
    "link__Purpose",
    "federation__FieldSet",
    "federation__Policy",
    "federation__Scope",
];

/// The local name → spec name of each federation directive, from `@link` (renames with `as`, and
/// `federation__key` style names for what was not imported).
fn names(src: &ConfigSource, diags: &mut Diagnostics) -> HashMap<String, &'static str> {
    let mut map: HashMap<String, &'static str> = HashMap::new();
    for n in FEDERATION_DIRECTIVES {
        map.insert((*n).to_string(), n);
        map.insert(format!("federation__{n}"), n);
    }
    for file in &src.sdl {
        let site = Site {
            file: file.file.name.clone(),
        };
        for def in &file.document.definitions {
            let TypeSystemDefinition::Schema(s) = def else { continue };
            for d in &s.node.directives {
                if d.node.name.node != "link" {
                    continue;
                }
                let (u, imports) = fed::link(d, &site, diags);
                if !u.contains("specs.apollo.dev/federation/") {
                    continue;
                }
                if !u.contains("/federation/v2.") {
                    diags.error_with_hint(
                        Some(site.loc(d.pos)),
                        format!("Mosaic serves Federation v2 subgraphs; @link names {u:?}"),
                        "link https://specs.apollo.dev/federation/v2.5 (any v2.x)",
                    );
                }
                for (spec, local) in imports {
                    match FEDERATION_DIRECTIVES.iter().find(|n| **n == spec) {
                        Some(n) => {
                            if spec != local {
                                map.remove(&spec);
                            }
                            map.insert(local, n);
                        }
                        None => diags.error_with_hint(
                            Some(site.loc(d.pos)),
                            format!("@{spec} is not a federation directive Mosaic supports"),
                            format!("supported: @{}", FEDERATION_DIRECTIVES.join(", @")),
                        ),
                    }
                }
            }
        }
    }
    map
}

struct Extractor<'n> {
    names: &'n HashMap<String, &'static str>,
    enabled: bool,
    out: Extracted,
    changed: bool,
}

impl Extractor<'_> {
    /// Removes the federation directives of `dirs`, recording them on `target`.
    fn take(
        &mut self,
        dirs: &mut Vec<Positioned<ConstDirective>>,
        target: Target,
        site: &Site,
        diags: &mut Diagnostics,
    ) {
        let mut kept = Vec::with_capacity(dirs.len());
        for d in dirs.drain(..) {
            let name = d.node.name.node.as_str();
            let Some(spec) = self.names.get(name).copied() else {
                kept.push(d);
                continue;
            };
            self.changed = true;
            if !self.enabled {
                diags.error_with_hint(
                    Some(site.loc(d.pos)),
                    format!("@{name} is an Apollo Federation directive, and federation is off"),
                    "set `[federation] enabled = true` in mosaic.toml to serve this schema as a subgraph (docs/federation.md)",
                );
                continue;
            }
            if let Some(mark) = fed::federation_directive(spec, &d, site, diags) {
                if let (FedDirective::Key { .. }, Target::Type(t)) = (&mark, &target) {
                    self.out.key_sites.entry(t.clone()).or_insert_with(|| site.loc(d.pos));
                }
                self.out.marks.entry(target.clone()).or_default().push(mark);
            }
        }
        *dirs = kept;
    }

    /// `@http` and `@cache` on an object type: its entity resolvers.
    fn take_resolvers(
        &mut self,
        type_name: &str,
        dirs: &mut Vec<Positioned<ConstDirective>>,
        site: &Site,
        diags: &mut Diagnostics,
    ) {
        if !dirs.iter().any(|d| d.node.name.node == "http") {
            return;
        }
        self.changed = true;
        let cache = dirs
            .iter()
            .find(|d| d.node.name.node == "cache")
            .and_then(|d| fed::entity_cache(d, site, diags));
        let mut kept = Vec::with_capacity(dirs.len());
        for d in dirs.drain(..) {
            match d.node.name.node.as_str() {
                "http" if self.enabled => {
                    let (http, for_key) = fed::entity_http(&d, site, diags);
                    self.out.resolvers.push(PendingResolver {
                        type_name: type_name.to_string(),
                        http,
                        for_key,
                        cache: cache.clone(),
                        site: site.clone(),
                    });
                }
                "http" => diags.error_with_hint(
                    Some(site.loc(d.pos)),
                    format!("@http on type `{type_name}`: only entity types of a federated subgraph take @http"),
                    "put @http on a field; or set `[federation] enabled = true` and give the type a @key (docs/federation.md)",
                ),
                "cache" => {}
                _ => kept.push(d),
            }
        }
        *dirs = kept;
    }
}

/// Takes the federation directives out of `src`'s SDL. With federation off, each one is an error
/// saying how to turn it on.
pub(in crate::plan) fn extract(src: &ConfigSource, diags: &mut Diagnostics) -> Extracted {
    let enabled = src.settings.federation.enabled;
    let names = names(src, diags);
    let mut x = Extractor {
        names: &names,
        enabled,
        out: Extracted {
            stripped: None,
            marks: HashMap::new(),
            resolvers: Vec::new(),
            key_sites: HashMap::new(),
        },
        changed: false,
    };
    let mut copy = src.clone();
    for file in &mut copy.sdl {
        let site = Site {
            file: file.file.name.clone(),
        };
        let defs = std::mem::take(&mut file.document.definitions);
        for mut def in defs {
            match &mut def {
                TypeSystemDefinition::Schema(s) => {
                    for d in s.node.directives.iter().filter(|d| d.node.name.node == "link") {
                        x.changed = true;
                        if !enabled {
                            diags.error_with_hint(
                                Some(site.loc(d.pos)),
                                "@link imports a spec, and federation is off",
                                "set `[federation] enabled = true` in mosaic.toml to serve this schema as a subgraph (docs/federation.md)",
                            );
                        }
                    }
                    s.node.directives.retain(|d| d.node.name.node != "link");
                    x.take(&mut s.node.directives, Target::Schema, &site, diags);
                    let s = &s.node;
                    // `extend schema @link(...)` names no root: nothing is left of it.
                    if s.extend && s.query.is_none() && s.mutation.is_none() && s.subscription.is_none() {
                        continue;
                    }
                }
                TypeSystemDefinition::Directive(d) => {
                    let name = d.node.name.node.as_str();
                    if enabled && (names.contains_key(name) || name == "link") {
                        x.changed = true;
                        continue;
                    }
                }
                TypeSystemDefinition::Type(t) => {
                    let tname = t.node.name.node.to_string();
                    if enabled && SPEC_TYPES.contains(&tname.as_str()) {
                        x.changed = true;
                        continue;
                    }
                    x.take(&mut t.node.directives, Target::Type(tname.clone()), &site, diags);
                    if matches!(t.node.kind, TypeKind::Object(_)) {
                        x.take_resolvers(&tname, &mut t.node.directives, &site, diags);
                    }
                    match &mut t.node.kind {
                        TypeKind::Object(o) => take_fields(&mut x, &tname, &mut o.fields, &site, diags),
                        TypeKind::Interface(i) => take_fields(&mut x, &tname, &mut i.fields, &site, diags),
                        TypeKind::Enum(e) => {
                            for v in &mut e.values {
                                let target = Target::Member(tname.clone(), v.node.value.node.to_string());
                                x.take(&mut v.node.directives, target, &site, diags);
                            }
                        }
                        TypeKind::InputObject(io) => {
                            for f in &mut io.fields {
                                let target = Target::Member(tname.clone(), f.node.name.node.to_string());
                                x.take(&mut f.node.directives, target, &site, diags);
                            }
                        }
                        TypeKind::Scalar | TypeKind::Union(_) => {}
                    }
                }
            }
            file.document.definitions.push(def);
        }
    }
    if x.changed {
        x.out.stripped = Some(copy);
    }
    x.out
}

fn take_fields(
    x: &mut Extractor<'_>,
    tname: &str,
    fields: &mut [Positioned<async_graphql_parser::types::FieldDefinition>],
    site: &Site,
    diags: &mut Diagnostics,
) {
    for f in fields {
        let fname = f.node.name.node.to_string();
        x.take(
            &mut f.node.directives,
            Target::Field(tname.to_string(), fname.clone()),
            site,
            diags,
        );
        for a in &mut f.node.arguments {
            let target = Target::Arg(tname.to_string(), fname.clone(), a.node.name.node.to_string());
            x.take(&mut a.node.directives, target, site, diags);
        }
    }
}
