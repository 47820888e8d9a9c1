//! What a bound field is for one parent: its slot's answers read through the binding — the
//! selected value, the parent's items of a batch (by its key or list of keys), its keys' answers of
//! a fan-out — each with the binding's `value` applied.

use std::borrow::Cow;

use serde_json::Value;

use super::fetch::{addr, SlotData};
use crate::backend::batch::{parent_keys, KeyItems};
use crate::backend::call::{Failed, Reply};
use crate::backend::payload::Answer;
use crate::backend::CallError;
use crate::plan::Binding;

/// What a bound field resolves to for one parent. Values are borrowed from the answers, except
/// what a `value` expression computes.
pub enum Resolved<'a> {
    Value(Option<Cow<'a, Value>>),
    Items(Vec<Cow<'a, Value>>),
    Error(&'a CallError),
    /// A mapping failed on the answer (what failed, in types only).
    Mismatch(String),
}

/// What `binding` gives a parent from one value of the answer (its `value` mapping applied).
fn pick<'a>(binding: &Binding, v: Option<&'a Value>) -> Result<Option<Cow<'a, Value>>, String> {
    let Some(v) = v else { return Ok(None) };
    match &binding.value {
        None => Ok(Some(Cow::Borrowed(v))),
        Some(m) => m.eval(v, None).map_err(|e| mapping_failed(binding, "value", &e)),
    }
}

fn mapping_failed(binding: &Binding, what: &str, e: &crate::plan::mapping::EvalError) -> String {
    format!(
        "the {what} mapping of {} failed on the backend's answer: {e}",
        binding.owner
    )
}

/// The selected value of an answer, with `value` applied.
fn answer_value<'a>(binding: &Binding, answer: &'a Answer) -> Result<Option<Cow<'a, Value>>, String> {
    let selected = answer
        .selected(binding)
        .map_err(|e| mapping_failed(binding, "select", e))?;
    pick(binding, selected)
}

fn resolved_value<'a>(r: Result<Option<Cow<'a, Value>>, String>) -> Resolved<'a> {
    match r {
        Ok(v) => Resolved::Value(v),
        Err(m) => Resolved::Mismatch(m),
    }
}

pub(super) fn resolve_slot<'a>(
    data: &'a SlotData,
    binding: &Binding,
    parent: Option<&Value>,
) -> (Resolved<'a>, Option<&'a CallError>) {
    let one = |r: &'a Reply| match r {
        Ok(Some(a)) => (resolved_value(answer_value(binding, a)), None),
        Ok(None) => (Resolved::Value(None), None),
        Err(Failed { error, stale: Some(a) }) => (resolved_value(answer_value(binding, a)), Some(error)),
        Err(f) => (Resolved::Error(&f.error), None),
    };
    match data {
        SlotData::Single(r) => one(r),
        SlotData::PerParent { by_parent, calls } => {
            match parent.and_then(|p| by_parent.get(&addr(p))).and_then(|i| calls.get(*i)) {
                Some(r) => one(r),
                None => (Resolved::Value(None), None),
            }
        }
        SlotData::Batched { positions, answers } => resolve_batched(binding, positions.as_ref(), answers, parent),
        SlotData::Fanout { by_key, calls } => resolve_fanout(binding, by_key, calls, parent),
        SlotData::Representations(_) => (Resolved::Value(None), None),
    }
}

/// A batch: the items matching the parent's key (or each of its keys), `value` applied to each.
fn resolve_batched<'a>(
    binding: &Binding,
    positions: Option<&std::collections::HashMap<Box<str>, usize>>,
    answers: &'a crate::backend::batch::BatchAnswers,
    parent: Option<&Value>,
) -> (Resolved<'a>, Option<&'a CallError>) {
    let none = (Resolved::Value(None), None);
    let Some(rule) = &binding.batch else { return none };
    let Some(parent) = parent else { return none };
    let keys = parent_keys(&rule.parent_key, parent);
    let mut items: Vec<Cow<'a, Value>> = Vec::new();
    let mut stale = None;
    for (key, _) in keys.iter() {
        let pos = match positions {
            Some(positions) => match positions.get(&**key) {
                Some(p) => *p,
                None => continue,
            },
            None => 0,
        };
        match answers.items_for(binding, pos, key) {
            KeyItems::Failed(e) => return (Resolved::Error(e), None),
            KeyItems::None => {}
            KeyItems::Found {
                answer,
                indices,
                stale_after,
            } => {
                stale = stale.or(stale_after);
                let all = answer.items(binding);
                let take = if rule.many { indices.len() } else { 1 };
                for i in indices.iter().take(take) {
                    match pick(binding, all.get(*i as usize)) {
                        Ok(Some(v)) => items.push(v),
                        Ok(None) => {}
                        Err(m) => return (Resolved::Mismatch(m), None),
                    }
                }
            }
        }
    }
    let resolved = if rule.many {
        Resolved::Items(items)
    } else {
        Resolved::Value(items.into_iter().next())
    };
    (resolved, stale)
}

/// A fan-out: the answer of the parent's key, or one value per key of its list, in its order.
fn resolve_fanout<'a>(
    binding: &Binding,
    by_key: &std::collections::HashMap<Box<str>, usize>,
    calls: &'a [Reply],
    parent: Option<&Value>,
) -> (Resolved<'a>, Option<&'a CallError>) {
    let none = (Resolved::Value(None), None);
    let (Some(rule), Some(parent)) = (&binding.fanout, parent) else {
        return none;
    };
    let listed = matches!(rule.from.eval(parent, None), Ok(Some(ref v)) if v.is_array());
    let keys = parent_keys(&rule.from, parent);
    if !listed {
        // One key: the answer is the value (or, for a list field, the list of items).
        let Some(r) = keys
            .first()
            .and_then(|(k, _)| by_key.get(&**k))
            .and_then(|i| calls.get(*i))
        else {
            return none;
        };
        return match r {
            Ok(Some(a)) | Err(Failed { stale: Some(a), .. }) => {
                let stale = r.as_ref().err().map(|f| &f.error);
                let selected = match a.selected(binding) {
                    Ok(v) => v,
                    Err(e) => return (Resolved::Mismatch(mapping_failed(binding, "select", e)), None),
                };
                match (selected, binding.value.is_some(), rule.many) {
                    (Some(Value::Array(list)), true, true) => {
                        let mut items = Vec::with_capacity(list.len());
                        for item in list {
                            match pick(binding, Some(item)) {
                                Ok(Some(v)) => items.push(v),
                                Ok(None) => {}
                                Err(m) => return (Resolved::Mismatch(m), None),
                            }
                        }
                        (Resolved::Items(items), stale)
                    }
                    _ => (resolved_value(pick(binding, selected)), stale),
                }
            }
            Ok(None) => none,
            Err(f) => (Resolved::Error(&f.error), None),
        };
    }
    // A list of keys: one value per key, in the parent's order; keys without an answer
    // (404) are left out.
    let mut items = Vec::with_capacity(keys.len());
    let mut stale = None;
    for (k, _) in keys.iter() {
        let Some(r) = by_key.get(&**k).and_then(|i| calls.get(*i)) else {
            continue;
        };
        let answer = match r {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(Failed { error, stale: Some(a) }) => {
                stale = stale.or(Some(error));
                a
            }
            Err(f) => return (Resolved::Error(&f.error), None),
        };
        match answer_value(binding, answer) {
            Ok(Some(v)) if !v.is_null() => items.push(v),
            Ok(_) => {}
            Err(m) => return (Resolved::Mismatch(m), None),
        }
    }
    if rule.many {
        (Resolved::Items(items), stale)
    } else {
        (Resolved::Value(items.into_iter().next()), stale)
    }
}
