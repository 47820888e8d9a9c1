//! Field arguments on the compiled path: constant ones coerced once at compile time, ones that use
//! variables evaluated per request (once per field, not per parent).

use std::sync::Arc;

use async_graphql::{Name, Positioned};
use async_graphql_value::{ConstValue, Value as GqlValue};
use serde_json::{Map, Value};

use crate::plan::coerce::coerce_input;
use crate::plan::{FieldDef, Plan};

/// How a field's argument map is obtained.
#[derive(Debug)]
pub enum ArgsPlan {
    /// No variables: coerced at compile time.
    Const(Arc<Map<String, Value>>),
    /// Uses variables: the literal with its variables, and the field's definitions for coercion.
    Dynamic(Vec<(String, GqlValue)>),
}

impl ArgsPlan {
    pub fn compile(plan: &Plan, def: &FieldDef, args: &[(Positioned<Name>, Positioned<GqlValue>)]) -> Self {
        let uses_vars = args.iter().any(|(_, v)| has_variables(&v.node));
        if uses_vars {
            return ArgsPlan::Dynamic(args.iter().map(|(n, v)| (n.node.to_string(), v.node.clone())).collect());
        }
        let given: Vec<(String, Option<Value>)> = args
            .iter()
            .map(|(n, v)| {
                let c = v.node.clone().into_const_with(|_| Err::<ConstValue, ()>(())).ok();
                (n.node.to_string(), c.and_then(|c| c.into_json().ok()))
            })
            .collect();
        ArgsPlan::Const(Arc::new(finish(plan, def, given)))
    }

    /// The argument map for this request.
    pub fn evaluate(&self, plan: &Plan, def: &FieldDef, vars: &Map<String, Value>) -> Arc<Map<String, Value>> {
        match self {
            ArgsPlan::Const(m) => m.clone(),
            ArgsPlan::Dynamic(args) => {
                let given = args
                    .iter()
                    .filter_map(|(name, v)| {
                        // An argument that is exactly an absent variable counts as not given.
                        if let GqlValue::Variable(var) = v {
                            if !vars.contains_key(var.as_str()) {
                                return None;
                            }
                        }
                        let c = v.clone().into_const_with(|var| {
                            Ok::<_, ()>(
                                vars.get(var.as_str())
                                    .cloned()
                                    .and_then(|j| ConstValue::from_json(j).ok())
                                    .unwrap_or(ConstValue::Null),
                            )
                        });
                        Some((name.clone(), c.ok().and_then(|c| c.into_json().ok())))
                    })
                    .collect();
                Arc::new(finish(plan, def, given))
            }
        }
    }
}

/// Applies defaults and input coercion (the same rules as the async-graphql path).
fn finish(plan: &Plan, def: &FieldDef, given: Vec<(String, Option<Value>)>) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in given {
        let value = value.unwrap_or(Value::Null);
        let coerced = match def.args.get(&name) {
            Some(a) => coerce_input(&plan.types, &a.ty, &value).unwrap_or(value),
            None => value,
        };
        out.insert(name, coerced);
    }
    for (name, a) in &def.args {
        if !out.contains_key(name) {
            if let Some(d) = &a.default {
                let json = d.clone().into_json().unwrap_or(Value::Null);
                let coerced = coerce_input(&plan.types, &a.ty, &json).unwrap_or(json);
                out.insert(name.clone(), coerced);
            }
        }
    }
    out
}

fn has_variables(v: &GqlValue) -> bool {
    match v {
        GqlValue::Variable(_) => true,
        GqlValue::List(items) => items.iter().any(has_variables),
        GqlValue::Object(m) => m.values().any(has_variables),
        _ => false,
    }
}
