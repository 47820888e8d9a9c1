//! Variable coercion for the compiled path: the same input rules as arguments, applied once per
//! request. A failure sends the request to async-graphql, whose error text is canonical.

use serde_json::{Map, Value};

use super::compile::OpPlan;
use crate::plan::coerce::coerce_input;
use crate::plan::Plan;

/// The coerced variables, or `None` when one does not fit its type.
pub fn coerce_variables(plan: &Plan, op: &OpPlan, given: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for def in &op.variables {
        match given.get(&def.name) {
            Some(v) => {
                out.insert(def.name.clone(), coerce_input(&plan.types, &def.ty, v).ok()?);
            }
            None => match &def.default {
                Some(d) => {
                    out.insert(def.name.clone(), coerce_input(&plan.types, &def.ty, d).ok()?);
                }
                None if !def.ty.nullable => return None,
                None => {}
            },
        }
    }
    Some(out)
}
