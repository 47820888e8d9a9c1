//! The fetch phase: walks the compiled selection level by level, gathering every parent of a bound
//! field and making its calls — one batch request per (field, level), one call per distinct
//! request otherwise, independent fields concurrently — and keeps each answer in a slot.
//!
//! Nothing here writes the response; [`Fetched::resolve`] tells the writer what a bound field's
//! value is for a given parent.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use futures::future::{join_all, BoxFuture};
use futures::StreamExt;
use serde_json::{Map, Value};

use super::compile::{FieldPlan, OpPlan, Output, SelectionPlan, Src};
use super::resolve::resolve_slot;
pub use super::resolve::Resolved;
use crate::backend::batch::{call_batch, parent_keys, BatchAnswers};
use crate::backend::call::{call, call_rendered, Reply, RequestScope};
use crate::backend::request::{render, RenderError};
use crate::backend::{BackendClients, CallError, CallMemo, Payload};
use crate::plan::template::RenderContext;
use crate::plan::{Binding, Plan};

/// The answers of one bound field, for all its parents.
pub enum SlotData {
    /// The call does not depend on the parent: one answer for all.
    Single(Reply),
    /// One call per distinct request; parents (by address) point at their call.
    PerParent {
        by_parent: HashMap<usize, usize>,
        calls: Vec<Reply>,
    },
    /// A batch: the answers by chunk, and (when split into several) each key's position.
    Batched {
        positions: Option<HashMap<Box<str>, usize>>,
        answers: BatchAnswers,
    },
    /// A fan-out: one call per distinct key.
    Fanout {
        by_key: HashMap<Box<str>, usize>,
        calls: Vec<Reply>,
    },
    /// `_entities`: the representations, and the entity objects built for them (see
    /// [`super::entities`]).
    Representations(super::entities::Representations),
}

/// Everything fetched for one request.
pub struct Fetched {
    slots: Vec<Option<SlotData>>,
}

impl Fetched {
    /// Every answer, slot by slot, in a fixed order (`None` for a slot without a call); `None`
    /// when a call failed. What [`super::memo::WriteMemo`] compares.
    pub fn answers(&self) -> Option<Vec<Option<&Arc<Payload>>>> {
        let mut out = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            match slot {
                None => out.push(None),
                Some(SlotData::Single(r)) => out.push(r.as_ref().ok()?.as_ref().map(|a| &a.payload)),
                Some(SlotData::PerParent { calls, .. } | SlotData::Fanout { calls, .. }) => {
                    out.push(None);
                    for c in calls {
                        out.push(c.as_ref().ok()?.as_ref().map(|a| &a.payload));
                    }
                }
                Some(SlotData::Batched { answers, .. }) => {
                    out.push(None);
                    for c in &answers.chunks {
                        out.push(Some(&c.as_ref().ok()?.payload));
                    }
                }
                // The response depends on the representations too: never reused.
                Some(SlotData::Representations(_)) => return None,
            }
        }
        Some(out)
    }
}

/// What the fetch needs from the request.
pub struct FetchContext<'a> {
    pub plan: &'a Plan,
    pub identity: &'a crate::auth::identity::Identity,
    pub clients: &'a BackendClients,
    pub memo: &'a CallMemo,
    pub headers: &'a http::HeaderMap,
    pub vars: &'a Map<String, Value>,
}

impl FetchContext<'_> {
    /// What the backend module's call step needs from the request.
    pub(super) fn scope(&self) -> RequestScope<'_> {
        RequestScope {
            plan: self.plan,
            clients: self.clients,
            memo: self.memo,
            headers: self.headers,
            claims: self.identity.claims.as_deref(),
        }
    }
}

pub(super) fn addr(v: &Value) -> usize {
    v as *const Value as usize
}

impl Fetched {
    /// The representations of `_entities` (slot `slot`).
    pub fn representations(&self, slot: usize) -> Option<&super::entities::Representations> {
        match self.slots.get(slot) {
            Some(Some(SlotData::Representations(r))) => Some(r),
            _ => None,
        }
    }

    /// The value of bound field `f` (slot `slot`) under `parent`, and the error of the failed
    /// call when the value is a stale answer served in its place.
    pub fn resolve<'a>(
        &'a self,
        binding: &Binding,
        slot: usize,
        parent: Option<&Value>,
    ) -> (Resolved<'a>, Option<&'a CallError>) {
        match self.slots.get(slot) {
            Some(Some(data)) => resolve_slot(data, binding, parent),
            _ => (Resolved::Value(None), None),
        }
    }
}

/// Fetches everything the operation needs.
pub async fn fetch(cx: &FetchContext<'_>, op: &OpPlan) -> Fetched {
    let mut slots: Vec<Option<SlotData>> = (0..op.slots).map(|_| None).collect();
    let root = Value::Null;
    let parents = [&root];
    let results = if op.kind == async_graphql::parser::types::OperationType::Mutation {
        // Root fields of a mutation run one after the other, as the spec says.
        let mut all = Vec::new();
        for (_, fields) in &op.root.by_type {
            for f in fields {
                all.extend(fetch_field_or_descend(cx, f, parents.to_vec()).await);
            }
        }
        all
    } else {
        fetch_selection(cx, &op.root, &parents).await
    };
    for (slot, data) in results {
        if let Some(s) = slots.get_mut(slot) {
            *s = Some(data);
        }
    }
    Fetched { slots }
}

fn fetch_selection<'b>(
    cx: &'b FetchContext<'_>,
    sel: &'b SelectionPlan,
    parents: &'b [&'b Value],
) -> BoxFuture<'b, Vec<(usize, SlotData)>> {
    Box::pin(async move {
        if !sel.has_calls || parents.is_empty() {
            return Vec::new();
        }
        let mut futs = Vec::new();
        for (tname, fields) in &sel.by_type {
            let group: Vec<&Value> = if sel.by_type.len() == 1 {
                parents.to_vec()
            } else {
                parents
                    .iter()
                    .copied()
                    .filter(|p| concrete_of(cx.plan, sel, p) == Some(&**tname))
                    .collect()
            };
            if group.is_empty() {
                continue;
            }
            push_fetches(cx, fields, &group, &mut futs);
        }
        join_all(futs).await.into_iter().flatten().collect()
    })
}

/// The fetches of `fields` (of one object type) for `parents`: those with a call at or below them.
pub(super) fn push_fetches<'b, 'c>(
    cx: &'b FetchContext<'c>,
    fields: &'b [FieldPlan],
    parents: &[&'b Value],
    futs: &mut Vec<BoxFuture<'b, Vec<(usize, SlotData)>>>,
) {
    for f in fields {
        let needs = matches!(f.source, Src::Call { .. } | Src::Entities { .. })
            || matches!(&f.output, Output::Composite(_, s) if s.has_calls);
        if needs {
            futs.push(Box::pin(fetch_field_or_descend(cx, f, parents.to_vec())));
        }
    }
}

/// The concrete type of `value` among the selection's types.
fn concrete_of<'p>(plan: &'p Plan, sel: &'p SelectionPlan, value: &'p Value) -> Option<&'p str> {
    plan.concrete_type(&sel.type_name, value)
}

async fn fetch_field_or_descend<'b>(
    cx: &'b FetchContext<'_>,
    f: &'b FieldPlan,
    parents: Vec<&'b Value>,
) -> Vec<(usize, SlotData)> {
    if let Some(rule) = &f.auth {
        // Not allowed: no call is made; the writer reports it.
        if crate::auth::identity::check(rule, cx.identity).is_err() {
            return Vec::new();
        }
    }
    match &f.source {
        Src::Call { binding, slot, args } => {
            let binding = cx.plan.binding(*binding);
            let Some(def) = cx.plan.fields_of(&f.parent_type).and_then(|m| m.get(&*f.field_name)) else {
                return Vec::new();
            };
            let args = args.evaluate(cx.plan, def, cx.vars);
            let data = call_field(cx, binding, &args, &parents).await;
            let mut out = Vec::new();
            if let Output::Composite(_, sub) = &f.output {
                if sub.has_calls {
                    let mut children = Vec::new();
                    for p in &parents {
                        match resolve_slot(&data, binding, Some(p)).0 {
                            // Computed values (a `value` expression) have no calls below them.
                            Resolved::Value(Some(Cow::Borrowed(v))) => flatten_objects(v, &mut children),
                            Resolved::Items(items) => items.into_iter().for_each(|v| {
                                if let Cow::Borrowed(v) = v {
                                    flatten_objects(v, &mut children)
                                }
                            }),
                            Resolved::Error(_) => {
                                if let Some(fb) = &f.fallback {
                                    flatten_objects(fb, &mut children);
                                }
                            }
                            Resolved::Value(_) | Resolved::Mismatch(_) => {}
                        }
                    }
                    out = fetch_selection(cx, sub, &children).await;
                }
            }
            out.push((*slot, data));
            out
        }
        Src::Parent(path) => {
            let Output::Composite(_, sub) = &f.output else {
                return Vec::new();
            };
            let mut children = Vec::new();
            for p in &parents {
                if let Some(v) = path.get(p) {
                    flatten_objects(v, &mut children);
                }
            }
            fetch_selection(cx, sub, &children).await
        }
        Src::Entities { args, slot, resolvers } => {
            let Output::Composite(_, sub) = &f.output else {
                return Vec::new();
            };
            super::entities::fetch(cx, args, *slot, resolvers, sub).await
        }
        Src::Typename | Src::Computed(_) => Vec::new(),
    }
}

/// Objects inside `v` (through nested lists), in order.
fn flatten_objects<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Object(_) => out.push(v),
        Value::Array(items) => items.iter().for_each(|i| flatten_objects(i, out)),
        _ => {}
    }
}

pub(super) async fn call_field(
    cx: &FetchContext<'_>,
    binding: &Binding,
    args: &Map<String, Value>,
    parents: &[&Value],
) -> SlotData {
    let backend = cx.plan.backend(binding.backend);
    if let Some(rule) = &binding.batch {
        // Distinct keys, sorted: the same set of keys always makes the same request, so it is
        // deduplicated, coalesced and cached whatever order the parents came in.
        let mut keys: Vec<(Cow<'_, str>, Cow<'_, Value>)> = Vec::with_capacity(parents.len());
        for p in parents {
            keys.extend(parent_keys(&rule.parent_key, p).iter().cloned());
        }
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        keys.dedup_by(|a, b| a.0 == b.0);
        let values: Vec<&Value> = keys.iter().map(|(_, v)| &**v).collect();
        let answers = if values.is_empty() {
            BatchAnswers {
                chunks: Vec::new(),
                chunk_size: 1,
            }
        } else {
            call_batch(&cx.scope(), binding, args, &values).await
        };
        // Which chunk holds a key matters only when the batch was split.
        let positions = (answers.len() > 1).then(|| {
            keys.iter()
                .enumerate()
                .map(|(i, (k, _))| (Box::<str>::from(&**k), i))
                .collect::<HashMap<_, _>>()
        });
        return SlotData::Batched { positions, answers };
    }
    if let Some(rule) = &binding.fanout {
        return fan_out(cx, binding, backend, rule, args, parents).await;
    }
    if !binding.uses_parent() {
        let ctx = RenderContext {
            args,
            parent: None,
            headers: cx.headers,
            claims: cx.identity.claims.as_deref(),
            key: None,
        };
        return SlotData::Single(call(&cx.scope(), binding, &ctx).await);
    }
    // One call per distinct request (N+1 by the schema's design; `mosaic check` warns about it).
    let mut by_parent = HashMap::with_capacity(parents.len());
    let mut requests: Vec<Result<crate::backend::BackendRequest, RenderError>> = Vec::new();
    let mut seen: HashMap<crate::backend::CallKey, usize> = HashMap::new();
    for p in parents {
        let ctx = RenderContext {
            args,
            parent: Some(p),
            headers: cx.headers,
            claims: cx.identity.claims.as_deref(),
            key: None,
        };
        let idx = match render(binding, backend, &ctx, None) {
            Ok(req) => *seen.entry(req.call_key()).or_insert_with(|| {
                requests.push(Ok(req));
                requests.len() - 1
            }),
            Err(e) => {
                requests.push(Err(e));
                requests.len() - 1
            }
        };
        by_parent.insert(addr(p), idx);
    }
    let scope = cx.scope();
    let calls = join_all(requests.into_iter().map(|r| call_rendered(&scope, binding, args, r))).await;
    SlotData::PerParent { by_parent, calls }
}

/// One call per distinct key over all `parents`, at most `rule.concurrency` at once.
async fn fan_out(
    cx: &FetchContext<'_>,
    binding: &Binding,
    backend: &crate::plan::BackendPlan,
    rule: &crate::plan::FanoutRule,
    args: &Map<String, Value>,
    parents: &[&Value],
) -> SlotData {
    let mut by_key: HashMap<Box<str>, usize> = HashMap::new();
    let mut keys: Vec<Cow<'_, Value>> = Vec::new();
    for p in parents {
        for (k, v) in parent_keys(&rule.from, p).iter().cloned() {
            by_key.entry(Box::from(&*k)).or_insert_with(|| {
                keys.push(v);
                keys.len() - 1
            });
        }
    }
    let requests: Vec<_> = keys
        .iter()
        .map(|key| {
            let ctx = RenderContext {
                args,
                parent: None,
                headers: cx.headers,
                claims: cx.identity.claims.as_deref(),
                key: Some(&**key),
            };
            render(binding, backend, &ctx, None)
        })
        .collect();
    let scope = cx.scope();
    let scope = &scope;
    let calls = futures::stream::iter(
        requests
            .into_iter()
            .map(|r| async move { call_rendered(scope, binding, args, r).await }),
    )
    .buffered(rule.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    SlotData::Fanout { by_key, calls }
}
