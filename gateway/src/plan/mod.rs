//! The validated plan: everything request time needs, compiled from the user's config once.
//!
//! `build` turns a [`ConfigSource`](crate::config::ConfigSource) into a [`Plan`] or every problem
//! found. The plan holds the type system (what clients see), each field's data source (a path in
//! the parent's backend JSON, a backend call, or a registered Rust resolver), the bindings and the
//! backends. Nothing in it is parsed again at request time.

mod bind;
pub mod binding;
mod build;
pub mod coerce;
mod directives;
pub mod documents;
pub mod federation;
pub mod json_path;
pub mod mapping;
pub mod resilience;
pub mod summary;
pub mod template;
pub mod warmup;

use std::sync::Arc;

use async_graphql_parser::types::{BaseType, Type};
use async_graphql_value::ConstValue;
use indexmap::IndexMap;

pub use binding::{
    BackendId, BackendPlan, BatchRule, BatchStyle, Binding, BindingId, BodyTemplate, ErrorRule, FanoutRule,
};
pub use build::build;
pub use json_path::JsonPath;

use crate::config::settings::{LimitSettings, ServerSettings};
use crate::config::Location;

/// Loads the config file at `path` (and the schema files it names) and builds its plan;
/// `resolvers` are the names of the Rust resolvers registered.
pub fn load(path: &std::path::Path, resolvers: &[&str]) -> Result<Plan, crate::config::Diagnostics> {
    let src = crate::config::load_from_path(path)?;
    build(&src, resolvers)
}

/// A compiled, validated gateway configuration.
#[derive(Debug)]
pub struct Plan {
    pub types: IndexMap<String, TypeDef>,
    pub query_type: String,
    pub mutation_type: Option<String>,
    pub subscription_type: Option<String>,
    pub bindings: Vec<Binding>,
    pub backends: Vec<BackendPlan>,
    pub server: ServerSettings,
    pub limits: LimitSettings,
    pub cache: crate::config::settings::CacheToml,
    pub security: crate::config::settings::SecurityToml,
    pub auth: crate::config::settings::AuthToml,
    pub rate_limit: crate::config::settings::RateLimitToml,
    pub telemetry: crate::config::settings::TelemetryToml,
    pub log: crate::config::settings::LogToml,
    /// The trusted documents (SHA-256 → document), when the gateway runs only those.
    pub trusted_documents: Option<std::collections::HashMap<String, Arc<str>>>,
    /// The folder of the config file (relative paths in it are read from there).
    pub config_dir: std::path::PathBuf,
    /// Client headers templates may read.
    pub request_headers: Vec<String>,
    /// Names of the Rust resolvers the schema refers to (`@resolver(name:)`).
    pub resolvers: Vec<String>,
    /// `[federation] enabled`: the subgraph's entities and the marks of its SDL.
    pub federation: Option<federation::Federation>,
}

impl Plan {
    pub fn object(&self, name: &str) -> Option<&ObjectType> {
        match self.types.get(name)? {
            TypeDef::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn binding(&self, id: BindingId) -> &Binding {
        &self.bindings[id.0]
    }

    pub fn backend(&self, id: BackendId) -> &BackendPlan {
        &self.backends[id.0]
    }

    /// The fields of an object or interface type.
    pub fn fields_of(&self, type_name: &str) -> Option<&IndexMap<String, FieldDef>> {
        match self.types.get(type_name)? {
            TypeDef::Object(o) => Some(&o.fields),
            TypeDef::Interface(i) => Some(&i.fields),
            _ => None,
        }
    }

    /// The object type of a backend value returned as `type_name` (an object, interface or union
    /// type): the object type itself, the discriminator's answer, or the only possible type.
    pub fn concrete_type<'a>(&'a self, type_name: &'a str, value: &'a serde_json::Value) -> Option<&'a str> {
        let (disc, possible): (Option<&Discriminator>, &[String]) = match self.types.get(type_name)? {
            TypeDef::Object(o) => return Some(o.name.as_str()),
            TypeDef::Interface(i) => (i.discriminator.as_ref(), &i.possible_types),
            TypeDef::Union(u) => (u.discriminator.as_ref(), &u.members),
            _ => return None,
        };
        match disc {
            Some(d) => {
                let name = d.resolve(value)?;
                possible.iter().find(|p| p.as_str() == name).map(String::as_str)
            }
            None if possible.len() == 1 => possible.first().map(String::as_str),
            None => None,
        }
    }

    /// Object types an abstract type can be at run time (itself for an object type).
    pub fn possible_types(&self, type_name: &str) -> Vec<&str> {
        match self.types.get(type_name) {
            Some(TypeDef::Object(o)) => vec![o.name.as_str()],
            Some(TypeDef::Interface(i)) => i.possible_types.iter().map(String::as_str).collect(),
            Some(TypeDef::Union(u)) => u.members.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// A named type of the public schema.
#[derive(Debug, Clone)]
pub enum TypeDef {
    Object(ObjectType),
    Interface(InterfaceType),
    Union(UnionType),
    Enum(EnumType),
    InputObject(InputObjectType),
    Scalar(ScalarType),
}

impl TypeDef {
    pub fn name(&self) -> &str {
        match self {
            TypeDef::Object(t) => &t.name,
            TypeDef::Interface(t) => &t.name,
            TypeDef::Union(t) => &t.name,
            TypeDef::Enum(t) => &t.name,
            TypeDef::InputObject(t) => &t.name,
            TypeDef::Scalar(t) => &t.name,
        }
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self, TypeDef::Enum(_) | TypeDef::Scalar(_))
    }

    pub fn is_input(&self) -> bool {
        matches!(self, TypeDef::Enum(_) | TypeDef::Scalar(_) | TypeDef::InputObject(_))
    }
}

#[derive(Debug, Clone)]
pub struct ObjectType {
    pub name: String,
    pub description: Option<String>,
    /// `@auth` on the type: applies to every field.
    pub auth: Option<AuthRule>,
    pub implements: Vec<String>,
    pub fields: IndexMap<String, FieldDef>,
}

#[derive(Debug, Clone)]
pub struct InterfaceType {
    pub name: String,
    pub description: Option<String>,
    pub fields: IndexMap<String, FieldDef>,
    pub possible_types: Vec<String>,
    pub discriminator: Option<Discriminator>,
}

#[derive(Debug, Clone)]
pub struct UnionType {
    pub name: String,
    pub description: Option<String>,
    pub members: Vec<String>,
    pub discriminator: Option<Discriminator>,
}

/// How the concrete type of an interface or union value is read from backend JSON: the value at
/// `path` names the object type (directly, or through `map`).
#[derive(Debug, Clone)]
pub struct Discriminator {
    pub path: JsonPath,
    pub map: Vec<(String, String)>,
}

impl Discriminator {
    /// The object type name for a backend JSON object, if it can be told.
    pub fn resolve<'a>(&'a self, value: &'a serde_json::Value) -> Option<&'a str> {
        let tag = self.path.get(value)?.as_str()?;
        if self.map.is_empty() {
            return Some(tag);
        }
        self.map.iter().find(|(from, _)| from == tag).map(|(_, to)| to.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct EnumType {
    pub name: String,
    pub description: Option<String>,
    pub values: Vec<EnumValueDef>,
}

impl EnumType {
    pub fn has(&self, value: &str) -> bool {
        self.values.iter().any(|v| v.name == value)
    }
}

#[derive(Debug, Clone)]
pub struct EnumValueDef {
    pub name: String,
    pub description: Option<String>,
    pub deprecation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InputObjectType {
    pub name: String,
    pub description: Option<String>,
    pub fields: IndexMap<String, InputValueDef>,
}

/// The five built-in scalars, or a custom one (any JSON value passes through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarKind {
    Int,
    Float,
    String,
    Boolean,
    Id,
    Custom,
}

#[derive(Debug, Clone)]
pub struct ScalarType {
    pub name: String,
    pub description: Option<String>,
    pub kind: ScalarKind,
}

/// A field of an object or interface type.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: String,
    pub description: Option<String>,
    pub deprecation: Option<String>,
    pub args: IndexMap<String, InputValueDef>,
    pub ty: Type,
    pub source: FieldSource,
    /// `@fallback(value:)`: served (with an error saying so) when the field's call fails.
    pub fallback: Option<serde_json::Value>,
    /// `@auth` on the field or its type: who may read it.
    pub auth: Option<AuthRule>,
    pub location: Option<Location>,
}

/// Where a field's value comes from.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// A path in the parent object's backend JSON (the field's own name unless `@from` says).
    Parent(JsonPath),
    /// `@from(expr:)`: computed from the parent object's backend JSON.
    Computed(Arc<mapping::Mapping>),
    /// A backend call.
    Call(BindingId),
    /// A Rust resolver registered under this name.
    Resolver(Arc<str>),
    /// A backend's Server-Sent Events stream (subscription fields): each event is a value.
    Stream(BindingId),
}

pub use crate::auth::AuthRule;

/// An argument or input-object field.
#[derive(Debug, Clone)]
pub struct InputValueDef {
    pub name: String,
    pub description: Option<String>,
    pub ty: Type,
    pub default: Option<ConstValue>,
}

/// The named type at the bottom of a (possibly list / non-null) type.
pub fn named_type(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(n) => n.as_str(),
        BaseType::List(inner) => named_type(inner),
    }
}

/// Whether a type is a list (at its outermost level, ignoring non-null).
pub fn is_list(ty: &Type) -> bool {
    matches!(ty.base, BaseType::List(_))
}
