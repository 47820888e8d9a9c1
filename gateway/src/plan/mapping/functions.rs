//! The built-in functions, evaluated: those that take expressions as arguments on the
//! [`Evaluator`], the rest as plain functions of their input.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::ast::{BinOp, Expr};
use super::builtins::Builtin;
use super::eval::{EvalError, Evaluator, Val};
use super::values::{arith, compare, equal, number, to_text, truthy, type_name};

fn err<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(message.into()))
}

impl<'a> Evaluator<'_, 'a> {
    pub(super) fn call(
        &mut self,
        f: Builtin,
        args: &[Expr],
        input: &Val<'a>,
        out: &mut Vec<Val<'a>>,
    ) -> Result<(), EvalError> {
        let arg = |i: usize| &args[i];
        let owned = |v: Value| Cow::Owned(v);
        let array = |v: &Value| -> Result<Vec<Value>, EvalError> {
            match v {
                Value::Array(items) => Ok(items.clone()),
                Value::Null => Ok(Vec::new()),
                other => err(format!("expected an array, got a {}", type_name(other))),
            }
        };
        match f {
            Builtin::Empty => Ok(()),
            Builtin::Error => {
                let m = self.one(arg(0), input)?;
                err(to_text(&m))
            }
            Builtin::Select => {
                for c in self.run(arg(0), input)? {
                    if truthy(&c) {
                        self.emit(out, input.clone())?;
                    }
                }
                Ok(())
            }
            Builtin::Map => {
                let items = array(input)?;
                let mapped = self.each(arg(0), &items)?;
                self.emit(out, owned(Value::Array(mapped)))
            }
            Builtin::MapValues => match &**input {
                Value::Object(m) => {
                    let mut o = Map::new();
                    for (k, v) in m {
                        if let Some(first) = self.run(arg(0), &Cow::Owned(v.clone()))?.into_iter().next() {
                            o.insert(k.clone(), first.into_owned());
                        }
                    }
                    self.emit(out, owned(Value::Object(o)))
                }
                other => {
                    let items = array(other)?;
                    let mut mapped = Vec::new();
                    for item in items {
                        if let Some(first) = self.run(arg(0), &Cow::Owned(item))?.into_iter().next() {
                            mapped.push(first.into_owned());
                        }
                    }
                    self.emit(out, owned(Value::Array(mapped)))
                }
            },
            Builtin::WithEntries => {
                let entries = to_entries(input)?;
                let mapped = self.each(arg(0), &entries)?;
                self.emit(out, owned(from_entries(&Value::Array(mapped))?))
            }
            Builtin::SortBy => {
                let items = array(input)?;
                let sorted = self.keyed(arg(0), &items)?.into_iter().map(|(_, v)| v).collect();
                self.emit(out, owned(Value::Array(sorted)))
            }
            Builtin::GroupBy => {
                let items = array(input)?;
                let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
                for (k, v) in self.keyed(arg(0), &items)? {
                    match groups.last_mut() {
                        Some((gk, g)) if equal(gk, &k) => g.push(v),
                        _ => groups.push((k, vec![v])),
                    }
                }
                let out_v = groups.into_iter().map(|(_, g)| Value::Array(g)).collect();
                self.emit(out, owned(Value::Array(out_v)))
            }
            Builtin::UniqueBy => {
                let items = array(input)?;
                let mut kept: Vec<(Value, Value)> = Vec::new();
                for (k, v) in self.keyed(arg(0), &items)? {
                    if kept.last().is_none_or(|(lk, _)| !equal(lk, &k)) {
                        kept.push((k, v));
                    }
                }
                self.emit(out, owned(Value::Array(kept.into_iter().map(|(_, v)| v).collect())))
            }
            Builtin::MinBy | Builtin::MaxBy => {
                let items = array(input)?;
                let keyed = self.keyed(arg(0), &items)?;
                let pick = if f == Builtin::MinBy {
                    keyed.into_iter().next()
                } else {
                    keyed.into_iter().next_back()
                };
                self.emit(out, owned(pick.map_or(Value::Null, |(_, v)| v)))
            }
            Builtin::FirstOf => {
                if let Some(v) = self.run(arg(0), input)?.into_iter().next() {
                    self.emit(out, v)?;
                }
                Ok(())
            }
            Builtin::LastOf => {
                if let Some(v) = self.run(arg(0), input)?.into_iter().next_back() {
                    self.emit(out, v)?;
                }
                Ok(())
            }
            Builtin::AnyOf | Builtin::AllOf => {
                let items = array(input)?;
                let mut result = f == Builtin::AllOf;
                for item in items {
                    let t = self.run(arg(0), &Cow::Owned(item))?.iter().any(|v| truthy(v));
                    if f == Builtin::AnyOf && t {
                        result = true;
                        break;
                    }
                    if f == Builtin::AllOf && !t {
                        result = false;
                        break;
                    }
                }
                self.emit(out, owned(Value::Bool(result)))
            }
            Builtin::Limit => {
                let n = match &*self.one(arg(0), input)? {
                    Value::Number(n) => n.as_f64().unwrap_or(0.0).max(0.0) as usize,
                    other => return err(format!("limit needs a number, not a {}", type_name(other))),
                };
                for v in self.run(arg(1), input)?.into_iter().take(n) {
                    self.emit(out, v)?;
                }
                Ok(())
            }
            Builtin::Has
            | Builtin::Contains
            | Builtin::Join
            | Builtin::Split
            | Builtin::StartsWith
            | Builtin::EndsWith
            | Builtin::LtrimStr
            | Builtin::RtrimStr => {
                for a in self.run(arg(0), input)? {
                    let v = with_arg(f, input, &a)?;
                    self.emit(out, owned(v))?;
                }
                Ok(())
            }
            _ => {
                let v = simple(f, input)?;
                match v {
                    Some(v) => self.emit(out, owned(v)),
                    None => Ok(()),
                }
            }
        }
    }
}

pub(super) fn to_entries(v: &Value) -> Result<Vec<Value>, EvalError> {
    match v {
        Value::Object(m) => Ok(m
            .iter()
            .map(|(k, v)| {
                let mut e = Map::new();
                e.insert("key".into(), Value::String(k.clone()));
                e.insert("value".into(), v.clone());
                Value::Object(e)
            })
            .collect()),
        Value::Null => Ok(Vec::new()),
        other => err(format!("to_entries needs an object, not a {}", type_name(other))),
    }
}

pub(super) fn from_entries(v: &Value) -> Result<Value, EvalError> {
    let Value::Array(items) = v else {
        return err(format!("from_entries needs an array, not a {}", type_name(v)));
    };
    let mut m = Map::new();
    for item in items {
        let key = ["key", "k", "name", "Name", "Key", "K"]
            .iter()
            .find_map(|k| item.get(*k).filter(|v| !v.is_null()));
        let key = match key {
            Some(Value::String(s)) => s.clone(),
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => return err("from_entries needs entries with a string `key`"),
        };
        let value = ["value", "v", "Value", "V"]
            .iter()
            .find_map(|k| item.get(*k))
            .cloned()
            .unwrap_or(Value::Null);
        m.insert(key, value);
    }
    Ok(Value::Object(m))
}

pub(super) fn with_arg(f: Builtin, input: &Value, a: &Value) -> Result<Value, EvalError> {
    use Value::*;
    let need_str = |what: &str| err(format!("{what} needs strings"));
    Ok(match f {
        Builtin::Has => match (input, a) {
            (Object(m), String(k)) => Bool(m.contains_key(k)),
            (Array(items), Number(n)) => Bool(n.as_u64().is_some_and(|i| (i as usize) < items.len())),
            _ => return err(format!("has needs an object and a key, not a {}", type_name(input))),
        },
        Builtin::Contains => Bool(contains(input, a)),
        Builtin::Join => {
            let Array(items) = input else {
                return err(format!("join needs an array, not a {}", type_name(input)));
            };
            let String(sep) = a else { return need_str("join") };
            let mut s = std::string::String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(sep);
                }
                match item {
                    Null => {}
                    String(t) => s.push_str(t),
                    Number(_) | Bool(_) => s.push_str(&item.to_string()),
                    other => return err(format!("join cannot join a {}", type_name(other))),
                }
            }
            String(s)
        }
        Builtin::Split => match (input, a) {
            (String(s), String(sep)) if sep.is_empty() => Array(s.chars().map(|c| String(c.to_string())).collect()),
            (String(s), String(sep)) => Array(s.split(sep.as_str()).map(|p| String(p.into())).collect()),
            _ => return need_str("split"),
        },
        Builtin::StartsWith | Builtin::EndsWith => match (input, a) {
            (String(s), String(p)) => Bool(if f == Builtin::StartsWith {
                s.starts_with(p.as_str())
            } else {
                s.ends_with(p.as_str())
            }),
            _ => return need_str("startswith/endswith"),
        },
        Builtin::LtrimStr | Builtin::RtrimStr => match (input, a) {
            (String(s), String(p)) => String(
                if f == Builtin::LtrimStr {
                    s.strip_prefix(p.as_str())
                } else {
                    s.strip_suffix(p.as_str())
                }
                .unwrap_or(s)
                .to_string(),
            ),
            (other, _) => other.clone(),
        },
        _ => Null,
    })
}

pub(super) fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.contains(y.as_str()),
        (Value::Array(x), Value::Array(y)) => y.iter().all(|j| x.iter().any(|i| contains(i, j))),
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, v)| x.get(k).is_some_and(|xv| contains(xv, v))),
        _ => equal(a, b),
    }
}

/// Functions of the input alone; `None` for no output.
pub(super) fn simple(f: Builtin, input: &Value) -> Result<Option<Value>, EvalError> {
    use Value::*;
    let items = |what: &str| -> Result<&Vec<Value>, EvalError> {
        match input {
            Array(items) => Ok(items),
            other => err(format!("{what} needs an array, not a {}", type_name(other))),
        }
    };
    Ok(Some(match f {
        Builtin::Length => match input {
            Null => Number(0.into()),
            Bool(_) => return err("a boolean has no length"),
            Number(n) => number(n.as_f64().unwrap_or(0.0).abs()),
            String(s) => Number(s.chars().count().into()),
            Array(a) => Number(a.len().into()),
            Object(m) => Number(m.len().into()),
        },
        Builtin::Keys => match input {
            Object(m) => {
                let mut k: Vec<&std::string::String> = m.keys().collect();
                k.sort();
                Array(k.into_iter().map(|k| String(k.clone())).collect())
            }
            Array(a) => Array((0..a.len()).map(|i| Number(i.into())).collect()),
            other => return err(format!("keys needs an object, not a {}", type_name(other))),
        },
        Builtin::Values => {
            if input.is_null() {
                return Ok(None);
            }
            input.clone()
        }
        Builtin::ToEntries => Array(to_entries(input)?),
        Builtin::FromEntries => from_entries(input)?,
        Builtin::Add => {
            let list = match input {
                Null => return Ok(Some(Null)),
                Object(m) => m.values().cloned().collect(),
                _ => items("add")?.clone(),
            };
            let mut acc = Null;
            for v in &list {
                acc = arith(BinOp::Add, &acc, v)?;
            }
            acc
        }
        Builtin::First => match input {
            Array(a) => a.first().cloned().unwrap_or(Null),
            Null => Null,
            other => return err(format!("first needs an array, not a {}", type_name(other))),
        },
        Builtin::Last => match input {
            Array(a) => a.last().cloned().unwrap_or(Null),
            Null => Null,
            other => return err(format!("last needs an array, not a {}", type_name(other))),
        },
        Builtin::Reverse => match input {
            String(s) => String(s.chars().rev().collect()),
            Null => Array(Vec::new()),
            _ => Array(items("reverse")?.iter().rev().cloned().collect()),
        },
        Builtin::Sort => {
            let mut v = items("sort")?.clone();
            v.sort_by(compare);
            Array(v)
        }
        Builtin::Unique => {
            let mut v = items("unique")?.clone();
            v.sort_by(compare);
            v.dedup_by(|a, b| equal(a, b));
            Array(v)
        }
        Builtin::Min => items("min")?
            .iter()
            .min_by(|a, b| compare(a, b))
            .cloned()
            .unwrap_or(Null),
        Builtin::Max => items("max")?
            .iter()
            .max_by(|a, b| compare(a, b))
            .cloned()
            .unwrap_or(Null),
        Builtin::Flatten => {
            fn flat(v: &[Value], out: &mut Vec<Value>) {
                for i in v {
                    match i {
                        Value::Array(inner) => flat(inner, out),
                        other => out.push(other.clone()),
                    }
                }
            }
            let mut out = Vec::new();
            flat(items("flatten")?, &mut out);
            Array(out)
        }
        Builtin::ToString => String(to_text(input)),
        Builtin::ToNumber => match input {
            Number(_) => input.clone(),
            String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => {
                    // Keep integers exact.
                    match s.trim().parse::<i64>() {
                        Ok(i) => Number(i.into()),
                        Err(_) => number(f),
                    }
                }
                _ => return err("a string that is not a number cannot be converted with tonumber"),
            },
            other => {
                return err(format!(
                    "tonumber needs a string or a number, not a {}",
                    type_name(other)
                ))
            }
        },
        Builtin::AsciiDowncase => match input {
            String(s) => String(s.to_ascii_lowercase()),
            other => return err(format!("ascii_downcase needs a string, not a {}", type_name(other))),
        },
        Builtin::AsciiUpcase => match input {
            String(s) => String(s.to_ascii_uppercase()),
            other => return err(format!("ascii_upcase needs a string, not a {}", type_name(other))),
        },
        Builtin::Trim => match input {
            String(s) => String(s.trim().to_string()),
            other => return err(format!("trim needs a string, not a {}", type_name(other))),
        },
        Builtin::Type => String(type_name(input).into()),
        Builtin::Not => Bool(!truthy(input)),
        Builtin::Floor | Builtin::Ceil | Builtin::Round => match input.as_f64() {
            Some(x) => number(match f {
                Builtin::Floor => x.floor(),
                Builtin::Ceil => x.ceil(),
                _ => x.round(),
            }),
            None => return err(format!("cannot round a {}", type_name(input))),
        },
        Builtin::Any => Bool(items("any")?.iter().any(truthy)),
        Builtin::All => Bool(items("all")?.iter().all(truthy)),
        Builtin::ToJson => String(input.to_string()),
        Builtin::FromJson => match input {
            String(s) => serde_json::from_str(s).map_err(|_| EvalError("fromjson: the string is not JSON".into()))?,
            other => return err(format!("fromjson needs a string, not a {}", type_name(other))),
        },
        _ => return err("this function takes arguments"),
    }))
}
