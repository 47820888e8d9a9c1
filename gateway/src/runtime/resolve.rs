//! The async-graphql path's resolvers: one per field, reading the parent's backend JSON, making
//! the field's backend call (batched through the request's loader), or running a Rust resolver.
//!
//! Values are shaped by the same coercion as the compiled executor. A failure never fails the
//! resolver: it is recorded with the place its null lands (see `request_state`) and a placeholder
//! of the right type is returned, so async-graphql's own null handling is never involved.

use std::sync::Arc;

use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use async_graphql::QueryPathSegment;
use async_graphql_parser::types::BaseType;
use serde_json::{Map, Value};

use super::request_state::RequestState;
use super::resolvers::ResolverInput;
use super::Engine;
use crate::backend::Payload;
use crate::plan::coerce::coerce_input;
use crate::plan::{FieldDef, FieldSource, Plan};
use crate::response::{FieldError, PathSegment, ResponsePath, SCHEMA_MISMATCH};

pub(super) use super::complete::Shape;
use super::complete::{placeholder, Selection};
pub use super::complete::{JsonRef, SlowObject};
use super::fetch::fetch_call;

/// What a field's resolver needs, computed once at schema build.
pub struct FieldInfo {
    pub(super) plan: Arc<Plan>,
    pub(super) type_name: String,
    pub(super) field: FieldDef,
}

impl FieldInfo {
    pub fn new(plan: Arc<Plan>, type_name: &str, field: &FieldDef) -> Self {
        Self {
            plan,
            type_name: type_name.to_string(),
            field: field.clone(),
        }
    }
}

pub fn field_resolver(info: Arc<FieldInfo>) -> impl for<'a> Fn(ResolverContext<'a>) -> FieldFuture<'a> + Send + Sync {
    move |ctx| {
        let info = info.clone();
        FieldFuture::new(async move { resolve(ctx, &info).await })
    }
}

/// The current field's response path.
fn response_path(ctx: &ResolverContext<'_>) -> ResponsePath {
    let mut out = Vec::new();
    let mut node = ctx.path_node.as_ref();
    while let Some(n) = node {
        out.push(match n.segment {
            QueryPathSegment::Index(i) => PathSegment::Index(i),
            QueryPathSegment::Name(name) => PathSegment::Key(Arc::from(name)),
        });
        node = n.parent;
    }
    out.reverse();
    out
}

async fn resolve<'a>(ctx: ResolverContext<'a>, info: &FieldInfo) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let state: &RequestState = ctx.data::<Arc<RequestState>>()?;
    let engine = ctx.data::<Arc<Engine>>()?;
    let parent = ctx.parent_value.try_downcast_ref::<SlowObject>().ok();
    if parent.is_some_and(|p| p.poisoned) {
        return Ok(Some(placeholder(&info.plan, &info.field.ty)));
    }
    let path = response_path(&ctx);
    let inherited = parent.and_then(|p| p.null_target.clone());
    if let Some(rule) = &info.field.auth {
        if let Err(denied) = crate::auth::identity::check(rule, &state.identity) {
            let pos = ctx.ctx.item.pos;
            let e = FieldError::new(
                denied.message(&info.type_name, &info.field.name),
                (pos.line, pos.column),
                path.clone(),
                denied.code(),
            );
            let target = if info.field.ty.nullable { Some(path) } else { inherited };
            state.error(e, target);
            return Ok(Some(placeholder(&info.plan, &info.field.ty)));
        }
    }
    let item_pos = ctx.ctx.item.pos;
    let shape = Shape {
        plan: &info.plan,
        state,
        pos: (item_pos.line, item_pos.column),
        owner: (&info.type_name, &info.field.name),
        fallback: info.field.fallback.as_ref(),
        selection: Some(Selection::of(&ctx)),
        backend: match &info.field.source {
            FieldSource::Call(b) => Some(Arc::from(
                info.plan.backend(info.plan.binding(*b).backend).name.as_str(),
            )),
            _ => parent.and_then(|p| p.backend.clone()),
        },
    };
    let parent_json = parent.and_then(|p| p.json.clone());
    let ty = &info.field.ty;

    let fetched: Result<Option<Fetched>, FieldError> = match &info.field.source {
        FieldSource::Parent(p) => Ok(parent_json.map(|j| Fetched::One(j.child(p.segments())))),
        FieldSource::Computed(m) => match parent_json.as_ref().and_then(JsonRef::get).map(|v| m.eval(v, None)) {
            None | Some(Ok(None)) => Ok(None),
            Some(Ok(Some(v))) => Ok(Some(Fetched::One(JsonRef::new(
                Arc::new(Payload::new(v.into_owned())),
                &[],
            )))),
            Some(Err(e)) => Err(shape.with_backend(FieldError::new(
                format!(
                    "the expression of {}.{} failed on the backend's answer: {e}",
                    info.type_name, info.field.name
                ),
                shape.pos,
                path.clone(),
                SCHEMA_MISMATCH,
            ))),
        },
        FieldSource::Call(bid) => {
            let args = coerced_args(&ctx, &info.plan, &info.field);
            fetch_call(&ctx, engine, state, *bid, &args, parent_json.as_ref(), &path, &shape).await
        }
        FieldSource::Resolver(name) => {
            let args = coerced_args(&ctx, &info.plan, &info.field);
            run_resolver(engine, state, name, args, parent_json.as_ref(), &path, &shape).await
        }
        // Stream fields are subscription fields, resolved by `subscription`.
        FieldSource::Stream(_) => Ok(None),
    };
    match fetched {
        Err(e) => match (&info.field.fallback, matches!(info.field.source, FieldSource::Call(_))) {
            (Some(value), true) if !e.declared => {
                // The declared fallback stands in for the failed answer, read like one.
                state.note(e);
                let payload = Arc::new(Payload::new(value.clone()));
                Ok(shape.complete(ty, Some(JsonRef::new(payload, &[])), &path, inherited, true))
            }
            _ => {
                let target = if ty.nullable { Some(path.clone()) } else { inherited };
                state.error(e, target);
                Ok(Some(placeholder(&info.plan, ty)))
            }
        },
        Ok(None) => Ok(shape.complete_missing(ty, &path, inherited, true)),
        Ok(Some(Fetched::One(j))) => Ok(shape.complete(ty, Some(j), &path, inherited, true)),
        Ok(Some(Fetched::Many(items))) => {
            let target = if ty.nullable { Some(path.clone()) } else { inherited };
            let inner = match &ty.base {
                BaseType::List(inner) => inner.as_ref(),
                BaseType::Named(_) => ty,
            };
            let values = items
                .into_iter()
                .enumerate()
                .map(|(i, j)| {
                    let mut p = path.clone();
                    p.push(PathSegment::Index(i));
                    shape
                        .complete(inner, Some(j), &p, target.clone(), false)
                        .unwrap_or(FieldValue::NULL)
                })
                .collect::<Vec<_>>();
            Ok(Some(FieldValue::list(values)))
        }
    }
}

/// What a call produced: one value, or (a batched `many` field) the list of matched items.
pub(super) enum Fetched {
    One(JsonRef),
    Many(Vec<JsonRef>),
}

pub(super) fn coerced_args(ctx: &ResolverContext<'_>, plan: &Plan, field: &FieldDef) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in ctx.args.iter() {
        let json = value.as_value().clone().into_json().unwrap_or(Value::Null);
        let coerced = match field.args.get(name.as_str()) {
            Some(def) => coerce_input(&plan.types, &def.ty, &json).unwrap_or(json),
            None => json,
        };
        out.insert(name.to_string(), coerced);
    }
    out
}

pub(super) async fn run_resolver(
    engine: &Engine,
    state: &RequestState,
    name: &str,
    args: Map<String, Value>,
    parent: Option<&JsonRef>,
    path: &[PathSegment],
    shape: &Shape<'_>,
) -> Result<Option<Fetched>, FieldError> {
    let Some(f) = engine.resolvers.get(name) else {
        return Err(FieldError::new(
            "resolver is not available",
            shape.pos,
            path.to_vec(),
            "INTERNAL_ERROR",
        ));
    };
    let input = ResolverInput {
        args,
        parent: parent.and_then(JsonRef::get).cloned(),
        headers: state.headers.clone(),
    };
    match f(input).await {
        Ok(v) => Ok(Some(Fetched::One(JsonRef::new(Arc::new(Payload::new(v)), &[])))),
        Err(e) => Err(FieldError::new(e.0, shape.pos, path.to_vec(), "RESOLVER_ERROR")),
    }
}
