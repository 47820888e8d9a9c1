//! Value coercion by the schema's types, shared by both executors so they agree to the byte.
//!
//! Input coercion turns client JSON (variables, argument defaults) into the argument values
//! templates see; leaf output coercion turns a backend's JSON scalar into what a field may return
//! (`Int` must be a 32-bit integer, `ID` is written as a string, enums must be declared values).

use std::fmt;

use async_graphql_parser::types::{BaseType, Type};
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use super::{EnumType, ScalarKind, TypeDef};

/// Why an input value does not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub message: String,
}

fn input_err(message: impl Into<String>) -> InputError {
    InputError {
        message: message.into(),
    }
}

/// Coerces a client JSON value to `ty` (GraphQL input coercion rules).
pub fn coerce_input(types: &IndexMap<String, TypeDef>, ty: &Type, value: &Value) -> Result<Value, InputError> {
    if value.is_null() {
        return if ty.nullable {
            Ok(Value::Null)
        } else {
            Err(input_err(format!("expected a non-null value of type {ty}")))
        };
    }
    match &ty.base {
        BaseType::List(inner) => match value {
            Value::Array(items) => items
                .iter()
                .map(|v| coerce_input(types, inner, v))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            single => Ok(Value::Array(vec![coerce_input(types, inner, single)?])),
        },
        BaseType::Named(name) => match types.get(name.as_str()) {
            Some(TypeDef::Scalar(s)) => coerce_scalar_input(s.kind, &s.name, value),
            Some(TypeDef::Enum(e)) => match value {
                Value::String(s) if e.has(s) => Ok(value.clone()),
                _ => Err(input_err(format!("{} is not a value of enum {}", short(value), e.name))),
            },
            Some(TypeDef::InputObject(o)) => {
                let Value::Object(map) = value else {
                    return Err(input_err(format!("expected an object of type {}", o.name)));
                };
                for key in map.keys() {
                    if !o.fields.contains_key(key) {
                        return Err(input_err(format!("unknown field \"{key}\" of input type {}", o.name)));
                    }
                }
                let mut out = Map::new();
                for (fname, fdef) in &o.fields {
                    match map.get(fname) {
                        Some(v) => {
                            let v = coerce_input(types, &fdef.ty, v)
                                .map_err(|e| input_err(format!("field \"{fname}\" of {}: {}", o.name, e.message)))?;
                            out.insert(fname.clone(), v);
                        }
                        None => match &fdef.default {
                            Some(d) => {
                                out.insert(fname.clone(), d.clone().into_json().unwrap_or(Value::Null));
                            }
                            None if !fdef.ty.nullable => {
                                return Err(input_err(format!("field \"{fname}\" of {} is required", o.name)))
                            }
                            None => {}
                        },
                    }
                }
                Ok(Value::Object(out))
            }
            _ => Err(input_err(format!("{name} is not an input type"))),
        },
    }
}

fn coerce_scalar_input(kind: ScalarKind, name: &str, value: &Value) -> Result<Value, InputError> {
    let bad = || input_err(format!("{} is not a valid {name}", short(value)));
    match kind {
        ScalarKind::Int => match value.as_i64() {
            Some(i) if i32::try_from(i).is_ok() => Ok(value.clone()),
            _ => Err(bad()),
        },
        ScalarKind::Float => match value {
            Value::Number(_) => Ok(value.clone()),
            _ => Err(bad()),
        },
        ScalarKind::String => match value {
            Value::String(_) => Ok(value.clone()),
            _ => Err(bad()),
        },
        ScalarKind::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err(bad()),
        },
        ScalarKind::Id => match value {
            Value::String(_) => Ok(value.clone()),
            Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
            _ => Err(bad()),
        },
        ScalarKind::Custom => Ok(value.clone()),
    }
}

/// How a leaf field's value is produced from backend JSON.
#[derive(Clone, Debug)]
pub enum LeafKind {
    Scalar(ScalarKind, Box<str>),
    Enum(Box<EnumType>),
}

impl LeafKind {
    pub fn of(def: &TypeDef) -> Option<Self> {
        match def {
            TypeDef::Scalar(s) => Some(LeafKind::Scalar(s.kind, s.name.as_str().into())),
            TypeDef::Enum(e) => Some(LeafKind::Enum(Box::new(e.clone()))),
            _ => None,
        }
    }

    pub fn type_name(&self) -> &str {
        match self {
            LeafKind::Scalar(_, n) => n,
            LeafKind::Enum(e) => &e.name,
        }
    }
}

/// A leaf value the schema cannot return (the message is what the client sees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafError(pub String);

impl fmt::Display for LeafError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a non-null backend JSON value becomes as a leaf of `kind`; borrowed when unchanged.
pub fn coerce_leaf<'v>(kind: &LeafKind, value: &'v Value) -> Result<LeafOut<'v>, LeafError> {
    let bad = || {
        LeafError(format!(
            "{} cannot represent the backend value {}",
            kind.type_name(),
            short(value)
        ))
    };
    match kind {
        LeafKind::Scalar(s, _) => match (s, value) {
            (ScalarKind::Int, Value::Number(n)) => match n.as_i64() {
                Some(i) if i32::try_from(i).is_ok() => Ok(LeafOut::Same(value)),
                Some(_) => Err(bad()),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f >= i32::MIN as f64 && f <= i32::MAX as f64 => {
                        Ok(LeafOut::Number(Number::from(f as i64)))
                    }
                    _ => Err(bad()),
                },
            },
            (ScalarKind::Float, Value::Number(_)) => Ok(LeafOut::Same(value)),
            (ScalarKind::String, Value::String(_)) => Ok(LeafOut::Same(value)),
            (ScalarKind::String, Value::Number(n)) => Ok(LeafOut::Text(n.to_string())),
            (ScalarKind::String, Value::Bool(b)) => Ok(LeafOut::Text(b.to_string())),
            (ScalarKind::Boolean, Value::Bool(_)) => Ok(LeafOut::Same(value)),
            (ScalarKind::Id, Value::String(_)) => Ok(LeafOut::Same(value)),
            (ScalarKind::Id, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(LeafOut::Text(n.to_string())),
            (ScalarKind::Custom, _) => Ok(LeafOut::Same(value)),
            _ => Err(bad()),
        },
        LeafKind::Enum(e) => match value {
            Value::String(s) if e.has(s) => Ok(LeafOut::Same(value)),
            _ => Err(bad()),
        },
    }
}

/// The result of [`coerce_leaf`].
#[derive(Debug, PartialEq)]
pub enum LeafOut<'v> {
    Same(&'v Value),
    Text(String),
    Number(Number),
}

impl LeafOut<'_> {
    pub fn into_value(self) -> Value {
        match self {
            LeafOut::Same(v) => v.clone(),
            LeafOut::Text(s) => Value::String(s),
            LeafOut::Number(n) => Value::Number(n),
        }
    }
}

/// A value shortened for error messages (never a whole backend body).
pub fn short(value: &Value) -> String {
    let text = match value {
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
        other => other.to_string(),
    };
    if text.len() > 40 {
        let mut cut = 40;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &text[..cut])
    } else {
        text
    }
}

/// Whether a JSON value (read as backend JSON) fits an output type: null only where nullable,
/// leaves coercible, lists as arrays, objects as objects (their fields are read like a backend's).
pub fn check_output(types: &IndexMap<String, TypeDef>, ty: &Type, value: &Value) -> Result<(), String> {
    if value.is_null() {
        return if ty.nullable {
            Ok(())
        } else {
            Err("null for a non-null type".into())
        };
    }
    match &ty.base {
        BaseType::List(inner) => match value {
            Value::Array(items) => items.iter().try_for_each(|v| check_output(types, inner, v)),
            _ => Err(format!("{} is not a list", short(value))),
        },
        BaseType::Named(name) => match types.get(name.as_str()) {
            Some(def @ (TypeDef::Scalar(_) | TypeDef::Enum(_))) => match LeafKind::of(def) {
                Some(kind) => coerce_leaf(&kind, value).map(|_| ()).map_err(|e| e.0),
                None => Ok(()),
            },
            Some(TypeDef::Object(_) | TypeDef::Interface(_) | TypeDef::Union(_)) => match value {
                Value::Object(_) => Ok(()),
                _ => Err(format!("{} is not an object", short(value))),
            },
            _ => Err(format!("{name} is not an output type")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn int() -> LeafKind {
        LeafKind::Scalar(ScalarKind::Int, "Int".into())
    }

    #[test]
    fn int_accepts_32_bit_integers_only() {
        assert_eq!(coerce_leaf(&int(), &json!(5)), Ok(LeafOut::Same(&json!(5))));
        assert!(coerce_leaf(&int(), &json!(5_000_000_000_i64)).is_err());
        assert!(coerce_leaf(&int(), &json!(1.5)).is_err());
        assert!(coerce_leaf(&int(), &json!("5")).is_err());
        assert_eq!(coerce_leaf(&int(), &json!(2.0)), Ok(LeafOut::Number(Number::from(2))));
    }

    #[test]
    fn id_writes_integers_as_strings() {
        let id = LeafKind::Scalar(ScalarKind::Id, "ID".into());
        assert_eq!(coerce_leaf(&id, &json!(7)), Ok(LeafOut::Text("7".into())));
    }

    #[test]
    fn messages_never_carry_whole_bodies() {
        let long = json!("x".repeat(1000));
        let err = coerce_leaf(&int(), &long).expect_err("not an int");
        assert!(err.0.len() < 120);
    }
}
