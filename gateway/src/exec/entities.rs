//! `Query._entities` of a federated subgraph: the representations grouped by the entity resolver
//! that fetches them ([`Federation::route`](crate::plan::federation::Federation::route)), one
//! call (a batch, a fan-out, or one per distinct request) per resolver — all of them concurrently —
//! then the fields below each entity fetched level by level like any other.
//!
//! An entity's object is its resolver's answer for the representation (or the representation
//! itself, for a type without resolver); for a type whose fields `@require` fields only the
//! representation carries, a copy of that answer with the representation's fields added.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use serde_json::{Map, Value};

use super::args::ArgsPlan;
use super::compile::SelectionPlan;
use super::fetch::{addr, call_field, push_fetches, FetchContext, SlotData};
use super::resolve::{resolve_slot, Resolved};
use crate::plan::BindingId;

/// What `_entities` keeps for the writer: the representations (the request's argument) and the
/// entity objects that had to be built rather than borrowed from an answer.
pub struct Representations {
    args: Arc<Map<String, Value>>,
    owned: Vec<Value>,
    /// Representation (by address) → its entity object in `owned`.
    owned_at: HashMap<usize, usize>,
}

impl Representations {
    pub fn list(&self) -> &[Value] {
        list(&self.args)
    }

    /// The built entity object of `rep`, if it has one.
    pub fn owned(&self, rep: &Value) -> Option<&Value> {
        self.owned_at.get(&addr(rep)).and_then(|i| self.owned.get(*i))
    }
}

fn list(args: &Map<String, Value>) -> &[Value] {
    match args.get("representations") {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// The backend object with the representation's fields it lacks.
fn merged(object: &Value, rep: &Value) -> Value {
    let mut out = object.clone();
    if let (Value::Object(out), Value::Object(rep)) = (&mut out, rep) {
        for (k, v) in rep {
            if k != "__typename" && !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Fetches the entities of the representations, and everything selected below them.
pub(super) async fn fetch(
    cx: &FetchContext<'_>,
    args: &ArgsPlan,
    slot: usize,
    resolvers: &[(BindingId, usize)],
    sub: &SelectionPlan,
) -> Vec<(usize, SlotData)> {
    let Some(fed) = &cx.plan.federation else {
        return Vec::new();
    };
    let args = args.evaluate(cx.plan, &fed.entities_field, cx.vars);
    let reps = list(&args);
    let routed: Vec<_> = reps.iter().map(|rep| fed.route(rep).ok()).collect();
    let resolver_of = |b: BindingId| resolvers.iter().position(|(r, _)| *r == b);

    // 1. One call per resolver, for all its representations, concurrently.
    let mut groups: Vec<Vec<&Value>> = vec![Vec::new(); resolvers.len()];
    for (rep, route) in reps.iter().zip(&routed) {
        if let Some((_, Some(r))) = route {
            if let Some(i) = resolver_of(r.binding) {
                groups[i].push(rep);
            }
        }
    }
    let empty = Map::new();
    let datas: Vec<Option<SlotData>> = join_all(resolvers.iter().zip(&groups).map(|((b, _), parents)| {
        let empty = &empty;
        async move {
            if parents.is_empty() {
                return None;
            }
            Some(call_field(cx, cx.plan.binding(*b), empty, parents).await)
        }
    }))
    .await;

    // 2. The entity objects that cannot be borrowed from an answer.
    let mut owned = Vec::new();
    let mut owned_at = HashMap::new();
    for (rep, route) in reps.iter().zip(&routed) {
        let Some((tname, Some(r))) = route else { continue };
        let merge = fed.entities.get(*tname).is_some_and(|e| e.merge_representation);
        let binding = cx.plan.binding(r.binding);
        // Only a merge or a `value` expression builds an object; the rest is borrowed.
        if !merge && binding.value.is_none() {
            continue;
        }
        let Some(Some(data)) = resolver_of(r.binding).and_then(|i| datas.get(i)) else {
            continue;
        };
        let built = match resolve_slot(data, binding, Some(rep)).0 {
            Resolved::Value(Some(Cow::Owned(v))) if merge => merged(&v, rep),
            Resolved::Value(Some(Cow::Owned(v))) => v,
            Resolved::Value(Some(Cow::Borrowed(v))) if merge => merged(v, rep),
            _ => continue,
        };
        owned_at.insert(addr(rep), owned.len());
        owned.push(built);
    }

    // 3. What is selected below the entities, per type.
    let mut out = if !sub.has_calls {
        Vec::new()
    } else {
        let mut by_type: Vec<(&str, Vec<&Value>)> = Vec::new();
        for (rep, route) in reps.iter().zip(&routed) {
            let Some((tname, resolver)) = route else { continue };
            let object = match (owned_at.get(&addr(rep)), resolver) {
                (Some(i), _) => owned.get(*i),
                (None, None) => Some(rep),
                (None, Some(r)) => match resolver_of(r.binding).and_then(|i| datas.get(i)) {
                    Some(Some(data)) => match resolve_slot(data, cx.plan.binding(r.binding), Some(rep)).0 {
                        Resolved::Value(Some(Cow::Borrowed(v))) => Some(v),
                        _ => None,
                    },
                    _ => None,
                },
            };
            let Some(object) = object else { continue };
            match by_type.iter_mut().find(|(t, _)| t == tname) {
                Some((_, list)) => list.push(object),
                None => by_type.push((tname, vec![object])),
            }
        }
        let mut futs = Vec::new();
        for (tname, objects) in &by_type {
            push_fetches(cx, sub.fields_for(tname), objects, &mut futs);
        }
        join_all(futs).await.into_iter().flatten().collect::<Vec<_>>()
    };
    for ((_, s), data) in resolvers.iter().zip(datas) {
        if let Some(data) = data {
            out.push((*s, data));
        }
    }
    out.push((
        slot,
        SlotData::Representations(Representations { args, owned, owned_at }),
    ));
    out
}
