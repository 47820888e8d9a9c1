//! Whether an expression's inferred [`Shape`] can be the GraphQL type a field declares.

use async_graphql_parser::types::{BaseType, Type};
use indexmap::IndexMap;

use super::Shape;
use crate::plan::json_path::Segment;
use crate::plan::{FieldSource, ScalarKind, TypeDef};

/// `Ok` when a value of `shape` may fit `ty`; else what is wrong and how to fix it.
pub fn fits(shape: &Shape, ty: &Type, types: &IndexMap<String, TypeDef>) -> Result<(), String> {
    if matches!(shape, Shape::Any) {
        return Ok(());
    }
    if matches!(shape, Shape::Null) {
        return if ty.nullable {
            Ok(())
        } else {
            Err(format!("it always gives null, and the type {ty} is non-null"))
        };
    }
    match &ty.base {
        BaseType::List(inner) => match shape {
            Shape::Array(item) => fits(item, inner, types).map_err(|e| format!("an item: {e}")),
            other => Err(format!(
                "it gives {}, and the type {ty} is a list (collect with [ … ] or map(…))",
                other.describe()
            )),
        },
        BaseType::Named(name) => match types.get(name.as_str()) {
            Some(TypeDef::Scalar(s)) => scalar(shape, s.kind, ty),
            Some(TypeDef::Enum(e)) => match shape {
                Shape::String => Ok(()),
                other => Err(format!(
                    "it gives {}, and the enum {} needs one of its values as a string",
                    other.describe(),
                    e.name
                )),
            },
            Some(TypeDef::Object(o)) => match shape {
                Shape::Object(Some(keys)) => {
                    for f in o.fields.values() {
                        let FieldSource::Parent(path) = &f.source else { continue };
                        let [Segment::Key(key)] = path.segments() else { continue };
                        if !f.ty.nullable && !keys.iter().any(|(k, _)| k.as_str() == &**key) {
                            return Err(format!(
                                "the object it builds has no `{key}`, which the non-null field {}.{} reads",
                                o.name, f.name
                            ));
                        }
                    }
                    Ok(())
                }
                Shape::Object(None) => Ok(()),
                other => Err(format!(
                    "it gives {}, and {} is an object type",
                    other.describe(),
                    o.name
                )),
            },
            Some(TypeDef::Interface(_) | TypeDef::Union(_)) => match shape {
                Shape::Object(_) => Ok(()),
                other => Err(format!(
                    "it gives {}, and {name} is an abstract type of objects",
                    other.describe()
                )),
            },
            _ => Ok(()),
        },
    }
}

fn scalar(shape: &Shape, kind: ScalarKind, ty: &Type) -> Result<(), String> {
    let ok = match kind {
        ScalarKind::Custom => true,
        ScalarKind::Int | ScalarKind::Float => matches!(shape, Shape::Number),
        ScalarKind::Boolean => matches!(shape, Shape::Bool),
        ScalarKind::String | ScalarKind::Id => matches!(shape, Shape::String | Shape::Number | Shape::Bool),
    };
    if ok {
        return Ok(());
    }
    let hint = match (kind, shape) {
        (ScalarKind::Int | ScalarKind::Float, Shape::String) => " (convert with `| tonumber`)",
        (ScalarKind::String | ScalarKind::Id, Shape::Object(_) | Shape::Array(_)) => {
            " (pick a value from it, or `| tojson` for its text)"
        }
        (ScalarKind::Boolean, _) => " (compare it, e.g. `== \"yes\"`)",
        _ => "",
    };
    Err(format!("it gives {}, and the type is {ty}{hint}", shape.describe()))
}
