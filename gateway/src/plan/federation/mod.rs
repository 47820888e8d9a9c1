//! Apollo Federation v2: the schema served as a subgraph. The federation directives are taken out
//! of the SDL before the rest of the plan reads it ([`extract`]); what they say is kept here — the
//! marks the public schema carries into `_service { sdl }`, and each entity type's keys and
//! resolvers (`@http` on the type, compiled into ordinary [`Binding`](crate::plan::Binding)s, so
//! entity lookups are batched, cached, coalesced and guarded like any field).
//!
//! It owns no request-time behaviour: the executor reads [`Federation::route`] and the bindings.

mod extract;
mod keys;

use std::collections::HashMap;

use async_graphql_parser::types::{BaseType, Type};
use async_graphql_value::Name;
use indexmap::IndexMap;
use serde_json::Value;

pub(super) use extract::{extract, Extracted};
use keys::{parse_field_set, FieldSet};

use super::bind::Binder;
use super::{BindingId, FieldDef, FieldSource, InputValueDef, JsonPath, ScalarKind, ScalarType, TypeDef, UnionType};
use crate::config::Diagnostics;
pub use crate::plan::directives::federation::FedDirective as Mark;

/// Where a federation directive was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Schema,
    Type(String),
    Field(String, String),
    Arg(String, String, String),
    /// An enum value or an input object's field.
    Member(String, String),
}

/// The subgraph: marks for the SDL and the entity types.
#[derive(Debug)]
pub struct Federation {
    pub marks: HashMap<Target, Vec<Mark>>,
    pub entities: IndexMap<String, Entity>,
    /// `_entities(representations: [_Any!]!): [_Entity]!`, for its arguments' coercion.
    pub entities_field: FieldDef,
}

/// An entity type: its keys and how its entities are fetched.
#[derive(Debug)]
pub struct Entity {
    pub keys: Vec<EntityKey>,
    /// In the order written; a representation goes to the first whose key it carries.
    pub resolvers: Vec<EntityResolver>,
    /// Some field `@requires` fields only the representation has: the entity's object is its
    /// backend object with the representation's fields added.
    pub merge_representation: bool,
}

#[derive(Debug)]
pub struct EntityKey {
    /// The `fields` text of `@key`.
    pub fields: String,
    pub resolvable: bool,
    /// The paths of its leaf fields, in the representation.
    pub leaves: Vec<Vec<String>>,
}

#[derive(Debug)]
pub struct EntityResolver {
    /// Index into [`Entity::keys`].
    pub key: usize,
    pub binding: BindingId,
}

impl Federation {
    pub fn marks(&self, target: &Target) -> &[Mark] {
        self.marks.get(target).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The entity type a representation names, and which of its resolvers fetches it: the first
    /// whose key's fields the representation carries (`None`: the representation is the entity,
    /// the type has no resolver).
    pub fn route<'a>(&'a self, rep: &Value) -> Result<(&'a str, Option<&'a EntityResolver>), RouteError> {
        let Some(name) = rep.get("__typename").and_then(Value::as_str) else {
            return Err(RouteError::NoTypename);
        };
        let Some((tname, entity)) = self.entities.get_key_value(name) else {
            return Err(RouteError::NotAnEntity);
        };
        if entity.resolvers.is_empty() {
            return Ok((tname, None));
        }
        let carries = |key: &EntityKey| {
            key.leaves.iter().all(|path| {
                let mut v = rep;
                for seg in path {
                    match v.get(seg) {
                        Some(next) => v = next,
                        None => return false,
                    }
                }
                !v.is_null()
            })
        };
        entity
            .resolvers
            .iter()
            .find(|r| entity.keys.get(r.key).is_some_and(carries))
            .map(|r| (tname.as_str(), Some(r)))
            .ok_or(RouteError::NoKey)
    }
}

/// Why a representation cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("the representation has no `__typename`")]
    NoTypename,
    #[error("the representation's `__typename` is not an entity type of this subgraph")]
    NotAnEntity,
    #[error("the representation carries none of its type's resolvable keys")]
    NoKey,
}

/// Checks the entity types, binds their resolvers, and adds `_Any` and `_Entity` to the types.
pub(super) fn finish(
    x: Extracted,
    types: &mut IndexMap<String, TypeDef>,
    binder: &mut Binder<'_>,
    diags: &mut Diagnostics,
) -> Federation {
    let mut entities: IndexMap<String, Entity> = IndexMap::new();
    // In the order of the types (the SDL's), not the marks' map.
    let names: Vec<String> = types.keys().cloned().collect();
    for tname in &names {
        let Some(marks) = x.marks.get(&Target::Type(tname.clone())) else {
            continue;
        };
        let loc = x.key_sites.get(tname).cloned();
        let mut keys = Vec::new();
        for m in marks {
            let Mark::Key { fields, resolvable } = m else { continue };
            match types.get(tname) {
                Some(TypeDef::Object(_)) => {}
                Some(_) => {
                    diags.error_with_hint(
                        loc.clone(),
                        format!("@key on `{tname}`: Mosaic's entities are object types"),
                        "put @key on the object types (an interface's implementations can each be an entity)",
                    );
                    break;
                }
                None => break,
            }
            match parse_field_set(fields).and_then(|set| check_field_set(types, tname, &set).map(|()| set)) {
                Ok(set) => keys.push(EntityKey {
                    fields: normalize(fields),
                    resolvable: *resolvable,
                    leaves: set.leaves(),
                }),
                Err(e) => diags.error_with_hint(
                    loc.clone(),
                    format!("@key(fields: {fields:?}) on `{tname}`: {e}"),
                    "name fields of the type, nested ones in braces: \"id\", \"id organization { id }\"",
                ),
            }
        }
        if !keys.is_empty() {
            entities.insert(
                tname.clone(),
                Entity {
                    keys,
                    resolvers: Vec::new(),
                    merge_representation: false,
                },
            );
        }
    }
    check_field_marks(&x, types, &mut entities, diags);
    for r in &x.resolvers {
        let loc = Some(r.site.loc(r.http.pos));
        let Some(entity) = entities.get_mut(&r.type_name) else {
            diags.error_with_hint(
                loc,
                format!("@http on type `{}`, which has no @key", r.type_name),
                "an entity resolver fetches the entities of a key: add @key(fields: \"id\") to the type",
            );
            continue;
        };
        let key = match &r.for_key {
            None => 0,
            Some((text, pos)) => match entity.keys.iter().position(|k| k.fields == normalize(text)) {
                Some(i) => i,
                None => {
                    let known: Vec<String> = entity.keys.iter().map(|k| format!("{:?}", k.fields)).collect();
                    diags.error_with_hint(
                        Some(r.site.loc(*pos)),
                        format!("forKey {text:?} is not a @key of `{}`", r.type_name),
                        format!("its keys: {}", known.join(", ")),
                    );
                    continue;
                }
            },
        };
        if let Some(binding) = binder.bind_entity(types, &r.type_name, &r.http, r.cache.clone(), &r.site, diags) {
            entity.resolvers.push(EntityResolver { key, binding });
        }
    }
    check_unresolved(types, &entities, &x, diags);
    add_types(types, &entities);
    Federation {
        marks: x.marks,
        entities,
        entities_field: entities_field(),
    }
}

/// `@requires` and `@provides` name real fields; `@requires` makes the entity merge its
/// representation in.
fn check_field_marks(
    x: &Extracted,
    types: &IndexMap<String, TypeDef>,
    entities: &mut IndexMap<String, Entity>,
    diags: &mut Diagnostics,
) {
    for (target, marks) in &x.marks {
        let Target::Field(tname, fname) = target else { continue };
        for m in marks {
            let (what, fields, on) = match m {
                Mark::Requires(f) => ("@requires", f, tname.clone()),
                Mark::Provides(f) => {
                    let ty = match types.get(tname) {
                        Some(TypeDef::Object(o)) => o.fields.get(fname).map(|f| super::named_type(&f.ty).to_string()),
                        _ => None,
                    };
                    ("@provides", f, ty.unwrap_or_default())
                }
                _ => continue,
            };
            if let Err(e) = parse_field_set(fields).and_then(|set| check_field_set(types, &on, &set)) {
                diags.error(
                    x.key_sites.get(tname).cloned(),
                    format!("{what}(fields: {fields:?}) on `{tname}.{fname}`: {e}"),
                );
            }
            if matches!(m, Mark::Requires(_)) {
                if let Some(e) = entities.get_mut(tname) {
                    e.merge_representation = true;
                }
            }
        }
    }
}

/// An entity without a resolver is its representation: every field must come from it (a key
/// field, an `@external` one) or from a call of its own.
fn check_unresolved(
    types: &IndexMap<String, TypeDef>,
    entities: &IndexMap<String, Entity>,
    x: &Extracted,
    diags: &mut Diagnostics,
) {
    for (tname, entity) in entities {
        if !entity.resolvers.is_empty() || !entity.keys.iter().any(|k| k.resolvable) {
            continue;
        }
        let Some(TypeDef::Object(o)) = types.get(tname) else {
            continue;
        };
        for (fname, f) in &o.fields {
            let in_key = entity
                .keys
                .iter()
                .any(|k| k.leaves.iter().any(|p| p.first() == Some(fname)));
            let external = x
                .marks
                .get(&Target::Field(tname.clone(), fname.clone()))
                .is_some_and(|m| m.contains(&Mark::External));
            let own_call = matches!(f.source, FieldSource::Call(_) | FieldSource::Resolver(_));
            if !(in_key || external || own_call) {
                diags.error_with_hint(
                    x.key_sites.get(tname).cloned(),
                    format!(
                        "entity `{tname}` has no resolver, and its field `{fname}` is neither in a key, @external, nor bound"
                    ),
                    format!(
                        "fetch the entity by its key: @http(backend: \"...\", path: \"/...\", batch: {{key: \"id\", from: \"id\", param: \"id\"}}) on `type {tname}` (docs/federation.md)"
                    ),
                );
                break;
            }
        }
    }
}

fn check_field_set(types: &IndexMap<String, TypeDef>, tname: &str, set: &FieldSet) -> Result<(), String> {
    let Some(fields) = (match types.get(tname) {
        Some(TypeDef::Object(o)) => Some(&o.fields),
        Some(TypeDef::Interface(i)) => Some(&i.fields),
        _ => None,
    }) else {
        return Err(format!("`{tname}` is not an object type"));
    };
    for (name, sub) in &set.0 {
        let Some(f) = fields.get(name) else {
            return Err(format!("`{name}` is not a field of `{tname}`"));
        };
        let named = super::named_type(&f.ty);
        let composite = !types.get(named).is_some_and(TypeDef::is_leaf);
        match (sub, composite) {
            (Some(sub), true) => check_field_set(types, named, sub)?,
            (None, true) => return Err(format!("`{tname}.{name}` is an object: select its fields in braces")),
            (Some(_), false) => return Err(format!("`{tname}.{name}` is a leaf: it has no fields to select")),
            (None, false) => {}
        }
    }
    Ok(())
}

/// A field set's text with its whitespace collapsed (how `forKey` is matched to `@key`).
fn normalize(fields: &str) -> String {
    fields.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn add_types(types: &mut IndexMap<String, TypeDef>, entities: &IndexMap<String, Entity>) {
    types.insert(
        "_Any".to_string(),
        TypeDef::Scalar(ScalarType {
            name: "_Any".to_string(),
            description: None,
            kind: ScalarKind::Custom,
        }),
    );
    let members: Vec<String> = entities
        .iter()
        .filter(|(_, e)| e.keys.iter().any(|k| k.resolvable))
        .map(|(n, _)| n.clone())
        .collect();
    if !members.is_empty() {
        types.insert(
            "_Entity".to_string(),
            TypeDef::Union(UnionType {
                name: "_Entity".to_string(),
                description: None,
                members,
                discriminator: None,
            }),
        );
    }
}

fn named(name: &str, nullable: bool) -> Type {
    Type {
        base: BaseType::Named(Name::new(name)),
        nullable,
    }
}

fn list_of(inner: Type, nullable: bool) -> Type {
    Type {
        base: BaseType::List(Box::new(inner)),
        nullable,
    }
}

fn entities_field() -> FieldDef {
    let mut args = IndexMap::new();
    args.insert(
        "representations".to_string(),
        InputValueDef {
            name: "representations".to_string(),
            description: None,
            ty: list_of(named("_Any", false), false),
            default: None,
        },
    );
    FieldDef {
        name: "_entities".to_string(),
        description: None,
        deprecation: None,
        args,
        ty: list_of(named("_Entity", true), false),
        source: FieldSource::Parent(JsonPath::default()),
        fallback: None,
        auth: None,
        location: None,
    }
}
