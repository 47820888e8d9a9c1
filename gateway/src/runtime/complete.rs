//! Completing values on async-graphql's path: backend JSON (addressed as a payload and a path,
//! [`JsonRef`]) shaped into the field's GraphQL type — lists, leaves coerced as the compiled
//! executor does, objects as [`SlowObject`]s, abstract types by their discriminator — with nulls and
//! errors recorded where they land, and placeholders standing in for failed values.

use std::sync::Arc;

use async_graphql::dynamic::{FieldValue, ResolverContext};
use async_graphql::Value as GqlValue;
use async_graphql_parser::types::{BaseType, Type};
use serde_json::Value;

use super::request_state::RequestState;
use crate::backend::Payload;
use crate::plan::coerce::{coerce_leaf, LeafKind};
use crate::plan::json_path::Segment;
use crate::plan::{Plan, TypeDef};
use crate::response::{null_in_non_null, FieldError, NullTarget, PathSegment, SCHEMA_MISMATCH};

/// Where a JSON value lives: a payload and a path inside it.
#[derive(Clone)]
pub struct JsonRef {
    root: Arc<Payload>,
    steps: Arc<[Segment]>,
}

impl JsonRef {
    pub(super) fn new(root: Arc<Payload>, steps: &[Segment]) -> Self {
        Self {
            root,
            steps: steps.into(),
        }
    }

    pub(super) fn get(&self) -> Option<&Value> {
        let mut cur = &self.root.value;
        for s in self.steps.iter() {
            cur = match (s, cur) {
                (Segment::Key(k), Value::Object(m)) => m.get(&**k)?,
                (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    pub(super) fn child(&self, more: &[Segment]) -> Self {
        let mut steps = self.steps.to_vec();
        steps.extend_from_slice(more);
        Self {
            root: self.root.clone(),
            steps: steps.into(),
        }
    }
}

/// An object value on the async-graphql path.
pub struct SlowObject {
    pub(super) json: Option<JsonRef>,
    /// The backend the JSON came from (named in schema mismatch errors).
    pub(super) backend: Option<Arc<str>>,
    /// The nearest nullable position at or above this object.
    pub(super) null_target: NullTarget,
    /// A placeholder standing in for a failed value: its fields do no work and report nothing.
    pub(super) poisoned: bool,
}

/// Per-resolution context shared by the shaping helpers.
pub(in crate::runtime) struct Shape<'c> {
    pub(in crate::runtime) plan: &'c Plan,
    pub(in crate::runtime) state: &'c RequestState,
    pub(in crate::runtime) pos: (usize, usize),
    pub(in crate::runtime) owner: (&'c str, &'c str),
    pub(in crate::runtime) fallback: Option<&'c Value>,
    pub(in crate::runtime) selection: Option<Selection<'c>>,
    /// The backend whose JSON is being shaped.
    pub(in crate::runtime) backend: Option<Arc<str>>,
}

/// The field's selection in the document, to tell when it selects nothing for an object type:
/// the spec's answer is then `{}`, which async-graphql writes as `null`; `finish` repairs it.
#[derive(Clone, Copy)]
pub(in crate::runtime) struct Selection<'c> {
    field: &'c async_graphql::Positioned<async_graphql::parser::types::Field>,
    fragments: &'c std::collections::HashMap<
        async_graphql::Name,
        async_graphql::Positioned<async_graphql::parser::types::FragmentDefinition>,
    >,
    variables: &'c async_graphql::Variables,
}

impl<'c> Selection<'c> {
    pub(super) fn of(ctx: &'c ResolverContext<'_>) -> Self {
        Self {
            field: ctx.ctx.item,
            fragments: &ctx.ctx.query_env.fragments,
            variables: &ctx.ctx.query_env.variables,
        }
    }

    /// Whether no field is selected for an object of type `concrete`.
    fn is_empty_for(&self, plan: &Plan, concrete: &str) -> bool {
        !self.selects_any(plan, concrete, &self.field.node.selection_set.node, 0)
    }

    fn skipped(&self, dirs: &[async_graphql::Positioned<async_graphql::parser::types::Directive>]) -> bool {
        dirs.iter().any(|d| {
            let name = d.node.name.node.as_str();
            if name != "skip" && name != "include" {
                return false;
            }
            let value = match d.node.get_argument("if").map(|v| &v.node) {
                Some(async_graphql_value::Value::Boolean(b)) => *b,
                Some(async_graphql_value::Value::Variable(v)) => {
                    matches!(self.variables.get(v), Some(async_graphql::Value::Boolean(true)))
                }
                _ => false,
            };
            (name == "skip") == value
        })
    }

    fn selects_any(
        &self,
        plan: &Plan,
        concrete: &str,
        set: &async_graphql::parser::types::SelectionSet,
        depth: usize,
    ) -> bool {
        use async_graphql::parser::types::Selection as S;
        if depth > 64 {
            return true;
        }
        let applies = |cond: &str| cond == concrete || plan.possible_types(cond).contains(&concrete);
        set.items.iter().any(|sel| match &sel.node {
            S::Field(f) => !self.skipped(&f.node.directives),
            S::InlineFragment(i) => {
                !self.skipped(&i.node.directives)
                    && i.node
                        .type_condition
                        .as_ref()
                        .is_none_or(|c| applies(c.node.on.node.as_str()))
                    && self.selects_any(plan, concrete, &i.node.selection_set.node, depth + 1)
            }
            S::FragmentSpread(sp) => {
                !self.skipped(&sp.node.directives)
                    && self.fragments.get(&sp.node.fragment_name.node).is_some_and(|f| {
                        applies(f.node.type_condition.node.on.node.as_str())
                            && self.selects_any(plan, concrete, &f.node.selection_set.node, depth + 1)
                    })
            }
        })
    }
}

impl Shape<'_> {
    /// A null or missing value at `path`: null if the type allows it, else an error whose null
    /// lands at `inherited`.
    pub(super) fn complete_missing<'a>(
        &self,
        ty: &Type,
        path: &[PathSegment],
        inherited: NullTarget,
        field_level: bool,
    ) -> Option<FieldValue<'a>> {
        if ty.nullable {
            return self.null_here(ty, path, field_level);
        }
        self.state.error(
            self.with_backend(FieldError::new(
                null_in_non_null(self.owner.0, self.owner.1),
                self.pos,
                path.to_vec(),
                SCHEMA_MISMATCH,
            )),
            inherited,
        );
        Some(placeholder(self.plan, ty))
    }

    /// Names the backend whose JSON did not fit, when known.
    pub(super) fn with_backend(&self, e: FieldError) -> FieldError {
        match &self.backend {
            Some(b) => e
                .with_extension("backend", Value::String(b.to_string()))
                .with_extension("fallback", Value::Bool(false)),
            None => e,
        }
    }

    /// Records `{}` for an object whose selection is empty (async-graphql would write null).
    pub(super) fn note_empty(&self, concrete: &str, path: &[PathSegment]) {
        if self.selection.is_some_and(|s| s.is_empty_for(self.plan, concrete)) {
            self.state.empty_object(path.to_vec());
        }
    }

    /// A legitimate null of a nullable type.
    pub(super) fn null_here<'a>(&self, ty: &Type, path: &[PathSegment], field_level: bool) -> Option<FieldValue<'a>> {
        if field_level {
            return None;
        }
        let plain_scalar = matches!(&ty.base, BaseType::Named(n) if matches!(self.plan.types.get(n.as_str()), Some(TypeDef::Scalar(_))));
        if plain_scalar {
            return Some(FieldValue::NULL);
        }
        // async-graphql cannot hold a null item of this type: hold a placeholder, null it afterwards.
        self.state.null(Some(path.to_vec()));
        Some(placeholder(self.plan, ty))
    }

    pub(super) fn fail<'a>(
        &self,
        ty: &Type,
        message: String,
        path: &[PathSegment],
        inherited: NullTarget,
    ) -> Option<FieldValue<'a>> {
        let target = if ty.nullable { Some(path.to_vec()) } else { inherited };
        self.state.error(
            self.with_backend(FieldError::new(message, self.pos, path.to_vec(), SCHEMA_MISMATCH)),
            target,
        );
        Some(placeholder(self.plan, ty))
    }

    pub(super) fn complete<'a>(
        &self,
        ty: &Type,
        json: Option<JsonRef>,
        path: &[PathSegment],
        inherited: NullTarget,
        field_level: bool,
    ) -> Option<FieldValue<'a>> {
        let holder = json.clone();
        let value = holder.as_ref().and_then(JsonRef::get);
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return self.complete_missing(ty, path, inherited, field_level);
        };
        let here: NullTarget = if ty.nullable {
            Some(path.to_vec())
        } else {
            inherited.clone()
        };
        match &ty.base {
            BaseType::List(inner) => {
                let Value::Array(items) = value else {
                    return self.fail(
                        ty,
                        crate::response::not_a_list(self.owner.0, self.owner.1, value),
                        path,
                        inherited,
                    );
                };
                let json = json.as_ref()?;
                let out = (0..items.len())
                    .map(|i| {
                        let mut p = path.to_vec();
                        p.push(PathSegment::Index(i));
                        self.complete(inner, Some(json.child(&[Segment::Index(i)])), &p, here.clone(), false)
                            .unwrap_or(FieldValue::NULL)
                    })
                    .collect::<Vec<_>>();
                Some(FieldValue::list(out))
            }
            BaseType::Named(name) => match self.plan.types.get(name.as_str()) {
                Some(def @ (TypeDef::Scalar(_) | TypeDef::Enum(_))) => {
                    let kind = LeafKind::of(def)?;
                    match coerce_leaf(&kind, value) {
                        Ok(out) => {
                            let v = out.into_value();
                            let gql = match def {
                                TypeDef::Enum(_) => match &v {
                                    Value::String(s) => GqlValue::Enum(async_graphql::Name::new(s)),
                                    _ => GqlValue::Null,
                                },
                                _ => GqlValue::from_json(v).unwrap_or(GqlValue::Null),
                            };
                            Some(FieldValue::value(gql))
                        }
                        Err(e) => self.fail(ty, e.0, path, inherited),
                    }
                }
                Some(TypeDef::Object(_)) => {
                    self.note_empty(name, path);
                    Some(FieldValue::owned_any(SlowObject {
                        backend: self.backend.clone(),
                        json,
                        null_target: here,
                        poisoned: false,
                    }))
                }
                Some(TypeDef::Interface(_) | TypeDef::Union(_)) => match self.plan.concrete_type(name, value) {
                    Some(concrete) => Some({
                        self.note_empty(concrete, path);
                        FieldValue::owned_any(SlowObject {
                            backend: self.backend.clone(),
                            json,
                            null_target: here,
                            poisoned: false,
                        })
                        .with_type(concrete.to_string())
                    }),
                    None => self.fail(
                        ty,
                        crate::response::unknown_concrete_type(self.owner.0, self.owner.1, name),
                        path,
                        inherited,
                    ),
                },
                _ => None,
            },
        }
    }
}

/// A value of the right type that does no work; it is replaced by null afterwards.
pub(super) fn placeholder<'a>(plan: &Plan, ty: &Type) -> FieldValue<'a> {
    match &ty.base {
        BaseType::List(_) => FieldValue::list(Vec::<FieldValue>::new()),
        BaseType::Named(name) => match plan.types.get(name.as_str()) {
            Some(TypeDef::Enum(e)) => match e.values.first() {
                Some(v) => FieldValue::value(GqlValue::Enum(async_graphql::Name::new(&v.name))),
                None => FieldValue::NULL,
            },
            Some(TypeDef::Object(_)) => FieldValue::owned_any(SlowObject {
                backend: None,
                json: None,
                null_target: None,
                poisoned: true,
            }),
            Some(TypeDef::Interface(_) | TypeDef::Union(_)) => {
                let first = plan
                    .possible_types(name)
                    .first()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                FieldValue::owned_any(SlowObject {
                    backend: None,
                    json: None,
                    null_target: None,
                    poisoned: true,
                })
                .with_type(first)
            }
            _ => FieldValue::NULL,
        },
    }
}
