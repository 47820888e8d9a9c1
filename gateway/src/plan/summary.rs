//! What `mosaic check` prints for a valid config: counts, and every field that would still make
//! one backend call per parent object (N+1) when reached through a list.

use std::fmt;

use super::{FieldSource, Plan, TypeDef};

/// A short description of a plan.
pub struct Summary {
    pub types: usize,
    pub bound_fields: usize,
    pub batched_fields: usize,
    pub backends: Vec<String>,
    /// `Type.field` of bindings that call once per parent object.
    pub per_parent_fields: Vec<String>,
    /// `Type.field (from)` of fan-outs: one call per distinct key per level.
    pub fanout_fields: Vec<String>,
    /// Federation: each entity type, its keys and how it is fetched.
    pub entities: Option<Vec<String>>,
}

impl Summary {
    pub fn of(plan: &Plan) -> Self {
        let mut bound = 0;
        let mut batched = 0;
        let mut per_parent = Vec::new();
        let mut fanout = Vec::new();
        for def in plan.types.values() {
            let TypeDef::Object(o) = def else { continue };
            for f in o.fields.values() {
                if let FieldSource::Call(b) = &f.source {
                    bound += 1;
                    let binding = plan.binding(*b);
                    if binding.batch.is_some() {
                        batched += 1;
                    } else if let Some(rule) = &binding.fanout {
                        fanout.push(format!(
                            "{}.{}: one call per distinct `{}` value per level, {} at once",
                            o.name,
                            f.name,
                            rule.from.text(),
                            rule.concurrency
                        ));
                    } else if binding.uses_parent() {
                        per_parent.push(format!("{}.{}", o.name, f.name));
                    }
                }
            }
        }
        let entities = plan.federation.as_ref().map(|fed| {
            fed.entities
                .iter()
                .map(|(name, e)| {
                    let keys: Vec<String> = e.keys.iter().map(|k| format!("{:?}", k.fields)).collect();
                    let how: Vec<&str> = e
                        .resolvers
                        .iter()
                        .map(|r| {
                            let b = plan.binding(r.binding);
                            if b.batch.is_some() {
                                "batched"
                            } else if b.fanout.is_some() {
                                "fanned out"
                            } else {
                                per_parent.push(format!("{name} (entity resolver)"));
                                "one call per entity"
                            }
                        })
                        .collect();
                    let how = if how.is_empty() {
                        "no resolver: the representation is the entity".to_string()
                    } else {
                        how.join(", ")
                    };
                    format!("{name} (key {}): {how}", keys.join(", key "))
                })
                .collect()
        });
        Self {
            types: plan
                .types
                .values()
                .filter(|t| !matches!(t, TypeDef::Scalar(s) if s.kind != super::ScalarKind::Custom))
                .count(),
            bound_fields: bound,
            batched_fields: batched,
            backends: plan.backends.iter().map(|b| b.name.clone()).collect(),
            per_parent_fields: per_parent,
            fanout_fields: fanout,
            entities,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "ok")?;
        writeln!(f, "  types:          {}", self.types)?;
        writeln!(f, "  bound fields:   {}", self.bound_fields)?;
        writeln!(f, "  batched fields: {}", self.batched_fields)?;
        writeln!(f, "  backends:       {}", self.backends.join(", "))?;
        if let Some(entities) = &self.entities {
            writeln!(f, "  subgraph:       Federation v2, {} entity type(s):", entities.len())?;
            for e in entities {
                writeln!(f, "    - {e}")?;
            }
        }
        if !self.fanout_fields.is_empty() {
            writeln!(
                f,
                "  fan-outs:       {} field(s) without a batch endpoint:",
                self.fanout_fields.len()
            )?;
            for field in &self.fanout_fields {
                writeln!(f, "    - {field}")?;
            }
        }
        if self.per_parent_fields.is_empty() {
            write!(
                f,
                "  N+1 risks:      none (every parent-dependent call is batched or fanned out)"
            )
        } else {
            writeln!(
                f,
                "  N+1 risks:      {} field(s) call once per parent object:",
                self.per_parent_fields.len()
            )?;
            for (i, field) in self.per_parent_fields.iter().enumerate() {
                if i > 0 {
                    writeln!(f)?;
                }
                write!(
                    f,
                    "    - {field} (add `batch: {{...}}` to its @http to make one call per level)"
                )?;
            }
            Ok(())
        }
    }
}
