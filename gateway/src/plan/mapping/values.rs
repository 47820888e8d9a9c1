//! JSON values as jq sees them: truthiness, order, equality, text, arithmetic.

use std::borrow::Cow;

use serde_json::{Number, Value};

use super::ast::BinOp;
use super::eval::{EvalError, Val};

fn err<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(message.into()))
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// A child of a value (borrowed when the value is).
pub(super) fn child<'a>(v: &Val<'a>, get: impl Fn(&Value) -> Option<&Value>) -> Val<'a> {
    match v {
        Cow::Borrowed(b) => get(b).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
        Cow::Owned(o) => Cow::Owned(get(o).cloned().unwrap_or(Value::Null)),
    }
}

pub(super) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

pub(super) fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// jq's order of values: null < false < true < numbers < strings < arrays < objects.
pub fn compare(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(false) => 1,
            Value::Bool(true) => 2,
            Value::Number(_) => 3,
            Value::String(_) => 4,
            Value::Array(_) => 5,
            Value::Object(_) => 6,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let o = compare(i, j);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut kx: Vec<&String> = x.keys().collect();
            let mut ky: Vec<&String> = y.keys().collect();
            kx.sort();
            ky.sort();
            match kx.cmp(&ky) {
                Ordering::Equal => {}
                o => return o,
            }
            for k in kx {
                let o = compare(&x[k], &y[k]);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

pub(super) fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == std::cmp::Ordering::Equal
}

/// Text of a value as `tostring` gives it: strings as they are, others as JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn arith(op: BinOp, x: &Value, y: &Value) -> Result<Value, EvalError> {
    use Value::*;
    Ok(match op {
        BinOp::Eq => Bool(equal(x, y)),
        BinOp::Ne => Bool(!equal(x, y)),
        BinOp::Lt => Bool(compare(x, y).is_lt()),
        BinOp::Le => Bool(compare(x, y).is_le()),
        BinOp::Gt => Bool(compare(x, y).is_gt()),
        BinOp::Ge => Bool(compare(x, y).is_ge()),
        BinOp::Add => match (x, y) {
            (Null, v) | (v, Null) => v.clone(),
            (Number(a), Number(b)) => number(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
            (String(a), String(b)) => String(format!("{a}{b}")),
            (Array(a), Array(b)) => Array(a.iter().chain(b).cloned().collect()),
            (Object(a), Object(b)) => {
                let mut m = a.clone();
                m.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
                Object(m)
            }
            _ => return err(format!("cannot add a {} and a {}", type_name(x), type_name(y))),
        },
        BinOp::Sub => match (x, y) {
            (Number(a), Number(b)) => number(a.as_f64().unwrap_or(0.0) - b.as_f64().unwrap_or(0.0)),
            (Array(a), Array(b)) => Array(a.iter().filter(|i| !b.iter().any(|j| equal(i, j))).cloned().collect()),
            _ => return err(format!("cannot subtract a {} from a {}", type_name(y), type_name(x))),
        },
        BinOp::Mul | BinOp::Div | BinOp::Rem => match (x, y) {
            (Number(a), Number(b)) => {
                let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                match op {
                    BinOp::Mul => number(a * b),
                    _ if b == 0.0 => return err("division by zero"),
                    BinOp::Div => number(a / b),
                    _ => number((a as i64 % b as i64) as f64),
                }
            }
            (String(a), String(b)) if op == BinOp::Div => {
                Array(a.split(b.as_str()).map(|s| String(s.into())).collect())
            }
            _ => {
                return err(format!(
                    "cannot combine a {} and a {} that way",
                    type_name(x),
                    type_name(y)
                ))
            }
        },
        BinOp::And | BinOp::Or => Bool(false),
    })
}
