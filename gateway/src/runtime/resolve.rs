//! The async-graphql path's resolvers: one per field, reading the parent's backend JSON, making
//! the field's backend call (batched through the request's loader), or running a Rust resolver.
//!
//! Values are shaped by the same coercion as the compiled executor. A failure never fails the
//! resolver: it is recorded with the place its null lands (see `request_state`) and a placeholder
//! of the right type is returned, so async-graphql's own null handling is never involved.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::{FieldFuture, FieldValue, ResolverContext};
use async_graphql::{QueryPathSegment, Value as GqlValue};
use async_graphql_parser::types::{BaseType, Type};
use serde_json::{Map, Value};

use super::batch_loader::{BatchHit, BatchKey, BatchLoader};
use super::request_state::RequestState;
use super::resolvers::ResolverInput;
use super::Engine;
use crate::backend::payload::Answer;
use crate::backend::request::{render, RenderError};
use crate::backend::{CallError, CallFailure, Payload};
use crate::plan::coerce::{coerce_input, coerce_leaf, LeafKind};
use crate::plan::json_path::Segment;
use crate::plan::template::RenderContext;
use crate::plan::{FieldDef, FieldSource, Plan, TypeDef};
use crate::response::{null_in_non_null, FieldError, NullTarget, PathSegment, ResponsePath, SCHEMA_MISMATCH};

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

    fn get(&self) -> Option<&Value> {
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

    fn child(&self, more: &[Segment]) -> Self {
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
    json: Option<JsonRef>,
    /// The backend the JSON came from (named in schema mismatch errors).
    backend: Option<Arc<str>>,
    /// The nearest nullable position at or above this object.
    null_target: NullTarget,
    /// A placeholder standing in for a failed value: its fields do no work and report nothing.
    poisoned: bool,
}

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

/// Per-resolution context shared by the shaping helpers.
pub(super) struct Shape<'c> {
    pub(super) plan: &'c Plan,
    pub(super) state: &'c RequestState,
    pub(super) pos: (usize, usize),
    pub(super) owner: (&'c str, &'c str),
    pub(super) fallback: Option<&'c Value>,
    pub(super) selection: Option<Selection<'c>>,
    /// The backend whose JSON is being shaped.
    pub(super) backend: Option<Arc<str>>,
}

/// The field's selection in the document, to tell when it selects nothing for an object type:
/// the spec's answer is then `{}`, which async-graphql writes as `null`; `finish` repairs it.
#[derive(Clone, Copy)]
pub(super) struct Selection<'c> {
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
        if let Err(denied) = super::identity::check(rule, &state.identity) {
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
enum Fetched {
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

fn call_error(
    e: &CallError,
    plan: &Plan,
    binding: &crate::plan::Binding,
    path: &[PathSegment],
    shape: &Shape<'_>,
    served: bool,
) -> FieldError {
    let name = &plan.backend(binding.backend).name;
    let operation = crate::telemetry::trace_context::operation();
    tracing::warn!(
        operation = operation.as_ref().and_then(|o| o.name.as_deref()),
        document = operation.as_ref().map(|o| &*o.document),
        backend = %name,
        field = %format!("{}.{}", shape.owner.0, shape.owner.1),
        error = %e,
        "backend call failed"
    );
    crate::response::call_error(
        binding,
        e,
        name,
        shape.pos,
        path.to_vec(),
        served || shape.fallback.is_some(),
    )
    .0
}

#[allow(clippy::too_many_arguments)]
async fn fetch_call(
    ctx: &ResolverContext<'_>,
    engine: &Engine,
    state: &RequestState,
    bid: crate::plan::BindingId,
    args: &Map<String, Value>,
    parent: Option<&JsonRef>,
    path: &[PathSegment],
    shape: &Shape<'_>,
) -> Result<Option<Fetched>, FieldError> {
    let plan = &engine.plan;
    let binding = plan.binding(bid);
    let mismatch = |m: String| shape.with_backend(FieldError::new(m, shape.pos, path.to_vec(), SCHEMA_MISMATCH));
    if let Some(rule) = &binding.batch {
        let Some(parent_value) = parent.and_then(JsonRef::get) else {
            return Ok(None);
        };
        let keys = crate::backend::batch::parent_keys(&rule.parent_key, parent_value);
        if keys.is_empty() {
            return Ok(None);
        }
        let loader = ctx
            .data::<DataLoader<BatchLoader>>()
            .map_err(|e| FieldError::new(e.message, shape.pos, path.to_vec(), "INTERNAL_ERROR"))?;
        let args_text: Arc<str> = Arc::from(Value::Object(args.clone()).to_string());
        loader.loader().register_args(&args_text, args);
        let bkeys: Vec<BatchKey> = keys
            .iter()
            .map(|(_, v)| BatchKey {
                binding: bid,
                args: args_text.clone(),
                key: Arc::from(v.to_string()),
            })
            .collect();
        let hits = loader.load_many(bkeys.iter().cloned()).await.unwrap_or_default();
        let mut items = Vec::new();
        for k in &bkeys {
            match hits.get(k) {
                None | Some(BatchHit::Missing) => {}
                Some(BatchHit::Failed(e)) => return Err(call_error(e, plan, binding, path, shape, false)),
                Some(BatchHit::Items {
                    answer,
                    indices,
                    stale_after,
                }) => {
                    if let Some(e) = stale_after {
                        state.note(call_error(e, plan, binding, path, shape, true));
                    }
                    let (root, base) = answer
                        .root(binding)
                        .map_err(|e| mismatch(mapping_failed(binding, "select", e)))?;
                    let take = if rule.many { indices.len() } else { 1 };
                    for i in indices.iter().take(take) {
                        let mut steps = base.to_vec();
                        steps.push(Segment::Index(*i as usize));
                        if let Some(item) = pick_ref(binding, JsonRef::new(root.clone(), &steps)).map_err(mismatch)? {
                            items.push(item);
                        }
                    }
                }
            }
        }
        return Ok(if rule.many {
            Some(Fetched::Many(items))
        } else {
            items.into_iter().next().map(Fetched::One)
        });
    }
    let parent_value = parent.and_then(JsonRef::get);
    if let Some(rule) = &binding.fanout {
        let Some(parent_value) = parent_value else {
            return Ok(None);
        };
        let listed = matches!(rule.from.eval(parent_value, None), Ok(Some(ref v)) if v.is_array());
        let keys = crate::backend::batch::parent_keys(&rule.from, parent_value);
        let calls = keys.iter().map(|(_, key)| {
            let rctx = RenderContext {
                args,
                parent: None,
                headers: &state.headers,
                claims: state.identity.claims.as_deref(),
                key: Some(&**key),
            };
            let req = render(binding, plan.backend(binding.backend), &rctx, None);
            async move {
                match req {
                    Ok(req) => Some(state.memo().call(&engine.clients, req).await),
                    Err(RenderError::MissingPathValue(_)) => None,
                    Err(e) => Some(Err(CallError::from(e).into())),
                }
            }
        });
        let results = futures::future::join_all(calls).await;
        let mut values = Vec::new();
        for r in results {
            let answer = match r {
                None => continue,
                Some(Ok(p)) => Answer::new(p, binding),
                Some(Err(CallFailure { error, stale: Some(p) })) => {
                    state.note(call_error(&error, plan, binding, path, shape, true));
                    Answer::new(p, binding)
                }
                Some(Err(f)) => return Err(call_error(&f.error, plan, binding, path, shape, false)),
            };
            let (root, base) = answer
                .root(binding)
                .map_err(|e| mismatch(mapping_failed(binding, "select", e)))?;
            values.push(JsonRef::new(root, base));
        }
        if !listed {
            let Some(one) = values.into_iter().next() else {
                return Ok(None);
            };
            // One key whose answer is a list, for a list field: each item through `value`.
            if rule.many && binding.value.is_some() {
                if let Some(Value::Array(list)) = one.get() {
                    let mut items = Vec::with_capacity(list.len());
                    for i in 0..list.len() {
                        if let Some(item) = pick_ref(binding, one.child(&[Segment::Index(i)])).map_err(mismatch)? {
                            items.push(item);
                        }
                    }
                    return Ok(Some(Fetched::Many(items)));
                }
            }
            return Ok(pick_ref(binding, one).map_err(mismatch)?.map(Fetched::One));
        }
        let mut items = Vec::with_capacity(values.len());
        for v in values {
            if let Some(item) = pick_ref(binding, v).map_err(mismatch)? {
                if item.get().is_some_and(|v| !v.is_null()) {
                    items.push(item);
                }
            }
        }
        return Ok(if rule.many {
            Some(Fetched::Many(items))
        } else {
            items.into_iter().next().map(Fetched::One)
        });
    }
    let rctx = RenderContext {
        args,
        parent: parent_value,
        headers: &state.headers,
        claims: state.identity.claims.as_deref(),
        key: None,
    };
    let req = match render(binding, plan.backend(binding.backend), &rctx, None) {
        Ok(r) => r,
        Err(RenderError::MissingPathValue(_)) => return Ok(None),
        Err(e) => {
            return Err(call_error(&CallError::from(e), plan, binding, path, shape, false));
        }
    };
    let answer = match state.memo().call(&engine.clients, req).await {
        Ok(payload) => {
            crate::backend::invalidate::after_success(&engine.clients, binding, args).await;
            Answer::new(payload, binding)
        }
        Err(CallFailure {
            error,
            stale: Some(payload),
        }) => {
            // A stale answer stands in for the failed call: the error says so.
            state.note(call_error(&error, plan, binding, path, shape, true));
            Answer::new(payload, binding)
        }
        Err(f) => return Err(call_error(&f.error, plan, binding, path, shape, false)),
    };
    let (root, base) = answer
        .root(binding)
        .map_err(|e| mismatch(mapping_failed(binding, "select", e)))?;
    Ok(pick_ref(binding, JsonRef::new(root, base))
        .map_err(mismatch)?
        .map(Fetched::One))
}

fn mapping_failed(binding: &crate::plan::Binding, what: &str, e: &crate::plan::mapping::EvalError) -> String {
    format!(
        "the {what} mapping of {} failed on the backend's answer: {e}",
        binding.owner
    )
}

/// What `binding` gives a parent from `item` (its `value` mapping applied).
fn pick_ref(binding: &crate::plan::Binding, item: JsonRef) -> Result<Option<JsonRef>, String> {
    let Some(m) = &binding.value else {
        return Ok(Some(item));
    };
    if let Some(p) = m.as_path() {
        return Ok(Some(item.child(p.segments())));
    }
    let Some(v) = item.get() else { return Ok(None) };
    match m.eval(v, None) {
        Ok(Some(out)) => Ok(Some(JsonRef::new(Arc::new(Payload::new(out.into_owned())), &[]))),
        Ok(None) => Ok(None),
        Err(e) => Err(mapping_failed(binding, "value", &e)),
    }
}

async fn run_resolver(
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

impl Shape<'_> {
    /// A null or missing value at `path`: null if the type allows it, else an error whose null
    /// lands at `inherited`.
    fn complete_missing<'a>(
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
    fn with_backend(&self, e: FieldError) -> FieldError {
        match &self.backend {
            Some(b) => e
                .with_extension("backend", Value::String(b.to_string()))
                .with_extension("fallback", Value::Bool(false)),
            None => e,
        }
    }

    /// Records `{}` for an object whose selection is empty (async-graphql would write null).
    fn note_empty(&self, concrete: &str, path: &[PathSegment]) {
        if self.selection.is_some_and(|s| s.is_empty_for(self.plan, concrete)) {
            self.state.empty_object(path.to_vec());
        }
    }

    /// A legitimate null of a nullable type.
    fn null_here<'a>(&self, ty: &Type, path: &[PathSegment], field_level: bool) -> Option<FieldValue<'a>> {
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

    fn fail<'a>(
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
fn placeholder<'a>(plan: &Plan, ty: &Type) -> FieldValue<'a> {
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
