//! The SDL's type definitions shaped into [`TypeDef`]s: fields, arguments, defaults,
//! descriptions, deprecations, enum values, discriminators, and `extend type` applied.

use std::collections::HashSet;

use async_graphql_parser::types::{FieldDefinition, InputValueDefinition, TypeDefinition, TypeKind};
use async_graphql_parser::{Pos, Positioned};
use indexmap::IndexMap;

use super::super::directives::{self, Site};
use super::super::{
    Discriminator, EnumType, EnumValueDef, FieldDef, FieldSource, InputObjectType, InputValueDef, InterfaceType,
    JsonPath, ObjectType, ScalarKind, ScalarType, TypeDef, UnionType,
};
use crate::config::diagnostic::suggest;
use crate::config::Diagnostics;

pub(super) const BUILTIN_SCALARS: [(&str, ScalarKind); 5] = [
    ("Int", ScalarKind::Int),
    ("Float", ScalarKind::Float),
    ("String", ScalarKind::String),
    ("Boolean", ScalarKind::Boolean),
    ("ID", ScalarKind::Id),
];

/// One type definition (or extension) as written, with the file it came from.
pub(super) struct RawType<'a> {
    pub(super) def: &'a TypeDefinition,
    pub(super) pos: Pos,
    pub(super) site: Site,
}

pub(super) fn description(d: &Option<Positioned<String>>) -> Option<String> {
    d.as_ref().map(|d| d.node.clone())
}

pub(super) fn deprecation(dirs: &[Positioned<async_graphql_parser::types::ConstDirective>]) -> Option<String> {
    dirs.iter().find(|d| d.node.name.node == "deprecated").map(|d| {
        d.node
            .get_argument("reason")
            .and_then(|r| match &r.node {
                async_graphql_value::ConstValue::String(s) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_else(|| "No longer supported".to_string())
    })
}

pub(super) fn input_values(
    owner: &str,
    list: &[Positioned<InputValueDefinition>],
    site: &Site,
    diags: &mut Diagnostics,
) -> IndexMap<String, InputValueDef> {
    let mut out = IndexMap::new();
    for iv in list {
        let name = iv.node.name.node.to_string();
        directives::no_directives_expected(&iv.node.directives, "an input value", site, diags);
        if out.contains_key(&name) {
            diags.error(Some(site.loc(iv.pos)), format!("`{name}` is declared twice in {owner}"));
            continue;
        }
        out.insert(
            name.clone(),
            InputValueDef {
                name,
                description: description(&iv.node.description),
                ty: iv.node.ty.node.clone(),
                default: iv.node.default_value.as_ref().map(|d| d.node.clone()),
            },
        );
    }
    out
}

pub(super) fn field_defs(
    owner: &str,
    list: &[Positioned<FieldDefinition>],
    site: &Site,
    diags: &mut Diagnostics,
) -> IndexMap<String, FieldDef> {
    let mut out = IndexMap::new();
    for f in list {
        let name = f.node.name.node.to_string();
        if out.contains_key(&name) {
            diags.error_with_hint(
                Some(site.loc(f.pos)),
                format!("field `{owner}.{name}` is defined twice"),
                "remove one of the definitions (fields of `extend type` count too)",
            );
            continue;
        }
        if name.starts_with("__") {
            diags.error(
                Some(site.loc(f.pos)),
                format!("field `{owner}.{name}`: names starting with `__` are reserved"),
            );
        }
        out.insert(
            name.clone(),
            FieldDef {
                name: name.clone(),
                description: description(&f.node.description),
                deprecation: deprecation(&f.node.directives),
                args: input_values(&format!("{owner}.{name}"), &f.node.arguments, site, diags),
                ty: f.node.ty.node.clone(),
                // Placeholder until the binder decides.
                source: FieldSource::Parent(JsonPath::key(&name)),
                fallback: None,
                auth: None,
                location: Some(site.loc(f.pos)),
            },
        );
    }
    out
}

pub(super) fn shape_type(raw: &RawType<'_>, diags: &mut Diagnostics) -> TypeDef {
    let def = raw.def;
    let name = def.name.node.to_string();
    let desc = description(&def.description);
    let site = &raw.site;
    match &def.kind {
        TypeKind::Scalar => {
            directives::no_directives_expected(&def.directives, "a scalar", site, diags);
            TypeDef::Scalar(ScalarType {
                name,
                description: desc,
                kind: ScalarKind::Custom,
            })
        }
        TypeKind::Object(o) => {
            let auth = directives::object_type_directives(&def.directives, site, diags);
            TypeDef::Object(ObjectType {
                auth,
                fields: field_defs(&name, &o.fields, site, diags),
                implements: o.implements.iter().map(|i| i.node.to_string()).collect(),
                name,
                description: desc,
            })
        }
        TypeKind::Interface(i) => {
            let disc = directives::abstract_type_directives(&def.directives, site, diags);
            TypeDef::Interface(InterfaceType {
                fields: field_defs(&name, &i.fields, site, diags),
                possible_types: Vec::new(),
                discriminator: disc.and_then(|d| discriminator(d, site, diags)),
                name,
                description: desc,
            })
        }
        TypeKind::Union(u) => {
            let disc = directives::abstract_type_directives(&def.directives, site, diags);
            TypeDef::Union(UnionType {
                members: u.members.iter().map(|m| m.node.to_string()).collect(),
                discriminator: disc.and_then(|d| discriminator(d, site, diags)),
                name,
                description: desc,
            })
        }
        TypeKind::Enum(e) => {
            directives::no_directives_expected(&def.directives, "an enum", site, diags);
            let mut seen = HashSet::new();
            let mut values = Vec::new();
            for v in &e.values {
                let vname = v.node.value.node.to_string();
                if !seen.insert(vname.clone()) {
                    diags.error(
                        Some(site.loc(v.pos)),
                        format!("enum value `{name}.{vname}` is defined twice"),
                    );
                    continue;
                }
                if matches!(vname.as_str(), "true" | "false" | "null") {
                    diags.error(Some(site.loc(v.pos)), format!("`{vname}` cannot be an enum value"));
                }
                values.push(EnumValueDef {
                    name: vname,
                    description: description(&v.node.description),
                    deprecation: deprecation(&v.node.directives),
                });
            }
            TypeDef::Enum(EnumType {
                name,
                description: desc,
                values,
            })
        }
        TypeKind::InputObject(io) => {
            directives::no_directives_expected(&def.directives, "an input type", site, diags);
            TypeDef::InputObject(InputObjectType {
                fields: input_values(&name, &io.fields, site, diags),
                name,
                description: desc,
            })
        }
    }
}

pub(super) fn discriminator(
    d: directives::DiscriminatorArgs,
    site: &Site,
    diags: &mut Diagnostics,
) -> Option<Discriminator> {
    match JsonPath::parse(&d.field) {
        Ok(path) => Some(Discriminator { path, map: d.map }),
        Err(e) => {
            diags.error(Some(site.loc(d.pos)), e.to_string());
            None
        }
    }
}

pub(super) fn apply_extension(
    types: &mut IndexMap<String, TypeDef>,
    defs: &IndexMap<String, RawType<'_>>,
    ext: &RawType<'_>,
    diags: &mut Diagnostics,
) {
    let name = ext.def.name.node.to_string();
    let loc = ext.site.loc(ext.pos);
    let Some(target) = types.get_mut(&name) else {
        let hint = match suggest(&name, defs.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("define `type {name}` before extending it"),
        };
        diags.error_with_hint(Some(loc), format!("`extend type {name}` extends an unknown type"), hint);
        return;
    };
    match (&ext.def.kind, target) {
        (TypeKind::Object(o), TypeDef::Object(t)) => {
            let new = field_defs(&name, &o.fields, &ext.site, diags);
            for (fname, f) in new {
                if t.fields.contains_key(&fname) {
                    diags.error(f.location.clone(), format!("field `{name}.{fname}` is defined twice"));
                } else {
                    t.fields.insert(fname, f);
                }
            }
            t.implements.extend(o.implements.iter().map(|i| i.node.to_string()));
        }
        (TypeKind::Enum(e), TypeDef::Enum(t)) => {
            for v in &e.values {
                t.values.push(EnumValueDef {
                    name: v.node.value.node.to_string(),
                    description: description(&v.node.description),
                    deprecation: deprecation(&v.node.directives),
                });
            }
        }
        (TypeKind::Union(u), TypeDef::Union(t)) => {
            t.members.extend(u.members.iter().map(|m| m.node.to_string()));
        }
        (TypeKind::InputObject(io), TypeDef::InputObject(t)) => {
            for (k, v) in input_values(&name, &io.fields, &ext.site, diags) {
                t.fields.insert(k, v);
            }
        }
        _ => diags.error_with_hint(
            Some(loc),
            format!("`extend` of `{name}` does not match the kind of its definition"),
            "extend an object with `extend type`, an enum with `extend enum`, and so on",
        ),
    }
}
