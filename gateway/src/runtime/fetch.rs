//! The backend call of a field on async-graphql's path: a batch through the request's loader, a
//! fan-out, or one call — each through the backend module's call step — read through the
//! binding's `select` and `value`.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::dynamic::ResolverContext;
use serde_json::{Map, Value};

use super::batch_loader::{BatchHit, BatchKey, BatchLoader};
use super::request_state::RequestState;
use super::Engine;
use crate::backend::call::{call, Failed, RequestScope};
use crate::backend::{CallError, Payload};
use crate::plan::json_path::Segment;
use crate::plan::template::RenderContext;
use crate::plan::Plan;
use crate::response::{FieldError, PathSegment, SCHEMA_MISMATCH};

use super::complete::{JsonRef, Shape};
use super::resolve::Fetched;

fn call_error(
    e: &CallError,
    plan: &Plan,
    binding: &crate::plan::Binding,
    path: &[PathSegment],
    shape: &Shape<'_>,
    served: bool,
) -> FieldError {
    let name = &plan.backend(binding.backend).name;
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
pub(super) async fn fetch_call(
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
        let memo = state.memo();
        let scope = RequestScope {
            plan,
            clients: &engine.clients,
            memo: &memo,
            headers: &state.headers,
            claims: state.identity.claims.as_deref(),
        };
        let scope = &scope;
        let calls = keys.iter().map(|(_, key)| async move {
            let rctx = RenderContext {
                args,
                parent: None,
                headers: &state.headers,
                claims: state.identity.claims.as_deref(),
                key: Some(&**key),
            };
            call(scope, binding, &rctx).await
        });
        let results = futures::future::join_all(calls).await;
        let mut values = Vec::new();
        for r in results {
            let answer = match r {
                Ok(None) => continue,
                Ok(Some(a)) => a,
                Err(Failed { error, stale: Some(a) }) => {
                    state.note(call_error(&error, plan, binding, path, shape, true));
                    a
                }
                Err(f) => return Err(call_error(&f.error, plan, binding, path, shape, false)),
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
    let memo = state.memo();
    let scope = RequestScope {
        plan,
        clients: &engine.clients,
        memo: &memo,
        headers: &state.headers,
        claims: state.identity.claims.as_deref(),
    };
    let answer = match call(&scope, binding, &rctx).await {
        Ok(None) => return Ok(None),
        Ok(Some(a)) => a,
        Err(Failed { error, stale: Some(a) }) => {
            // A stale answer stands in for the failed call: the error says so.
            state.note(call_error(&error, plan, binding, path, shape, true));
            a
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
