//! The evaluator: an [`Expr`] applied to a JSON value, with jq's semantics for the subset we
//! support. Values are borrowed from the input wherever the expression only reads it.
//!
//! An expression has zero or more outputs (`.items[]` has one per item). Errors are jq's:
//! indexing a number, adding a string to a number; `?` turns them into no output.

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

use super::ast::{BinOp, Expr, ObjKey, StrPart};
use super::builtins::Builtin;

pub type Val<'a> = Cow<'a, Value>;

/// Why an evaluation failed (types only: never the data, which may be private).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

fn err<T>(message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(message.into()))
}

/// Most outputs an expression may produce, and most steps, in one evaluation: a bound on what
/// a hostile or runaway expression costs.
const MAX_OUTPUTS: usize = 1 << 20;

/// Variables in scope.
pub struct Scope<'s, 'a> {
    pub name: &'s str,
    pub value: Val<'a>,
    pub parent: Option<&'s Scope<'s, 'a>>,
}

impl<'a> Scope<'_, 'a> {
    fn get(&self, name: &str) -> Option<&Val<'a>> {
        let mut s = Some(self);
        while let Some(scope) = s {
            if scope.name == name {
                return Some(&scope.value);
            }
            s = scope.parent;
        }
        None
    }
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

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// A child of a value (borrowed when the value is).
fn child<'a>(v: &Val<'a>, get: impl Fn(&Value) -> Option<&Value>) -> Val<'a> {
    match v {
        Cow::Borrowed(b) => get(b).map_or(Cow::Owned(Value::Null), Cow::Borrowed),
        Cow::Owned(o) => Cow::Owned(get(o).cloned().unwrap_or(Value::Null)),
    }
}

fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

fn as_f64(v: &Value) -> Option<f64> {
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

fn equal(a: &Value, b: &Value) -> bool {
    compare(a, b) == std::cmp::Ordering::Equal
}

/// Text of a value as `tostring` gives it: strings as they are, others as JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluates expressions over one input.
pub struct Evaluator<'s, 'a> {
    scope: Option<&'s Scope<'s, 'a>>,
    outputs: usize,
}

impl<'s, 'a> Evaluator<'s, 'a> {
    pub fn new(scope: Option<&'s Scope<'s, 'a>>) -> Self {
        Self { scope, outputs: 0 }
    }

    fn emit(&mut self, out: &mut Vec<Val<'a>>, v: Val<'a>) -> Result<(), EvalError> {
        self.outputs += 1;
        if self.outputs > MAX_OUTPUTS {
            return err("the mapping produced too many values");
        }
        out.push(v);
        Ok(())
    }

    /// Every output of `e` applied to `input`.
    pub fn run(&mut self, e: &Expr, input: &Val<'a>) -> Result<Vec<Val<'a>>, EvalError> {
        let mut out = Vec::new();
        self.eval(e, input, &mut out)?;
        Ok(out)
    }

    /// The single output of `e` (an error when it has none or several).
    fn one(&mut self, e: &Expr, input: &Val<'a>) -> Result<Val<'a>, EvalError> {
        let mut out = self.run(e, input)?;
        match out.len() {
            1 => Ok(out.pop().unwrap_or(Cow::Owned(Value::Null))),
            0 => err("an argument gave no value"),
            _ => err("an argument gave several values where one was expected"),
        }
    }

    fn eval(&mut self, e: &Expr, input: &Val<'a>, out: &mut Vec<Val<'a>>) -> Result<(), EvalError> {
        match e {
            Expr::Identity => self.emit(out, input.clone()),
            Expr::Literal(v) => self.emit(out, Cow::Owned(v.clone())),
            Expr::Key(base, key) => {
                for b in self.run(base, input)? {
                    let v = match &*b {
                        Value::Object(_) => child(&b, |v| v.get(&**key)),
                        Value::Null => Cow::Owned(Value::Null),
                        other => return err(format!("cannot read key {key:?} of a {}", type_name(other))),
                    };
                    self.emit(out, v)?;
                }
                Ok(())
            }
            Expr::Index(base, index) => {
                for b in self.run(base, input)? {
                    for i in self.run(index, input)? {
                        let v = match (&*b, &*i) {
                            (Value::Null, _) => Cow::Owned(Value::Null),
                            (Value::Array(items), Value::Number(n)) => {
                                let n = n.as_f64().unwrap_or(0.0).floor() as i64;
                                let len = items.len() as i64;
                                let at = if n < 0 { len + n } else { n };
                                if at < 0 || at >= len {
                                    Cow::Owned(Value::Null)
                                } else {
                                    child(&b, |v| v.get(at as usize))
                                }
                            }
                            (Value::Object(_), Value::String(k)) => child(&b, |v| v.get(k.as_str())),
                            (x, y) => return err(format!("cannot index a {} with a {}", type_name(x), type_name(y))),
                        };
                        self.emit(out, v)?;
                    }
                }
                Ok(())
            }
            Expr::Slice(base, from, to) => {
                for b in self.run(base, input)? {
                    let bound = |ev: &mut Self, e: &Option<Box<Expr>>| -> Result<Option<i64>, EvalError> {
                        match e {
                            None => Ok(None),
                            Some(e) => match &*ev.one(e, input)? {
                                Value::Number(n) => Ok(Some(n.as_f64().unwrap_or(0.0).floor() as i64)),
                                Value::Null => Ok(None),
                                other => err(format!("a slice bound must be a number, not a {}", type_name(other))),
                            },
                        }
                    };
                    let (f, t) = (bound(self, from)?, bound(self, to)?);
                    let clamp = |n: Option<i64>, len: usize, default: usize| -> usize {
                        match n {
                            None => default,
                            Some(n) if n < 0 => (len as i64 + n).max(0) as usize,
                            Some(n) => (n as usize).min(len),
                        }
                    };
                    let v = match &*b {
                        Value::Null => Value::Null,
                        Value::Array(items) => {
                            let (a, z) = (clamp(f, items.len(), 0), clamp(t, items.len(), items.len()));
                            Value::Array(items.get(a..z.max(a)).unwrap_or(&[]).to_vec())
                        }
                        Value::String(s) => {
                            let chars: Vec<char> = s.chars().collect();
                            let (a, z) = (clamp(f, chars.len(), 0), clamp(t, chars.len(), chars.len()));
                            Value::String(chars.get(a..z.max(a)).unwrap_or(&[]).iter().collect())
                        }
                        other => return err(format!("cannot slice a {}", type_name(other))),
                    };
                    self.emit(out, Cow::Owned(v))?;
                }
                Ok(())
            }
            Expr::Iterate(base) => {
                for b in self.run(base, input)? {
                    match &*b {
                        Value::Array(items) => {
                            for i in 0..items.len() {
                                let v = child(&b, |v| v.get(i));
                                self.emit(out, v)?;
                            }
                        }
                        Value::Object(map) => {
                            let keys: Vec<String> = map.keys().cloned().collect();
                            for k in keys {
                                let v = child(&b, |v| v.get(&k));
                                self.emit(out, v)?;
                            }
                        }
                        Value::Null => {}
                        other => return err(format!("cannot iterate over a {}", type_name(other))),
                    }
                }
                Ok(())
            }
            Expr::Try(inner) => {
                let mut tmp = Vec::new();
                if self.eval(inner, input, &mut tmp).is_ok() {
                    for v in tmp {
                        self.emit(out, v)?;
                    }
                }
                Ok(())
            }
            Expr::Interpolated(parts) => {
                let mut texts = vec![String::new()];
                for part in parts {
                    match part {
                        StrPart::Lit(s) => texts.iter_mut().for_each(|t| t.push_str(s)),
                        StrPart::Expr(e) => {
                            let values = self.run(e, input)?;
                            let mut next = Vec::with_capacity(texts.len() * values.len());
                            for t in &texts {
                                for v in &values {
                                    next.push(format!("{t}{}", to_text(v)));
                                }
                            }
                            texts = next;
                        }
                    }
                }
                for t in texts {
                    self.emit(out, Cow::Owned(Value::String(t)))?;
                }
                Ok(())
            }
            Expr::Collect(inner) => {
                let items = match inner {
                    Some(e) => self.run(e, input)?.into_iter().map(Cow::into_owned).collect(),
                    None => Vec::new(),
                };
                self.emit(out, Cow::Owned(Value::Array(items)))
            }
            Expr::Object(entries) => {
                // Each entry may have several outputs: the product of them, as jq does.
                let mut objects = vec![Map::new()];
                for (key, value) in entries {
                    let keys: Vec<String> = match key {
                        ObjKey::Name(n) => vec![n.to_string()],
                        ObjKey::Var(v) => vec![v.to_string()],
                        ObjKey::Computed(e) => self
                            .run(e, input)?
                            .into_iter()
                            .map(|k| match &*k {
                                Value::String(s) => Ok(s.clone()),
                                other => err(format!("an object key must be a string, not a {}", type_name(other))),
                            })
                            .collect::<Result<_, _>>()?,
                    };
                    let values = self.run(value, input)?;
                    let mut next = Vec::with_capacity(objects.len() * keys.len() * values.len());
                    for o in &objects {
                        for k in &keys {
                            for v in &values {
                                let mut o = o.clone();
                                o.insert(k.clone(), v.clone().into_owned());
                                next.push(o);
                            }
                        }
                    }
                    objects = next;
                }
                for o in objects {
                    self.emit(out, Cow::Owned(Value::Object(o)))?;
                }
                Ok(())
            }
            Expr::Pipe(a, b) => {
                for v in self.run(a, input)? {
                    self.eval(b, &v, out)?;
                }
                Ok(())
            }
            Expr::Comma(a, b) => {
                self.eval(a, input, out)?;
                self.eval(b, input, out)
            }
            Expr::Alternative(a, b) => {
                let mut tmp = Vec::new();
                let ok = self.eval(a, input, &mut tmp).is_ok();
                let kept: Vec<Val<'a>> = tmp.into_iter().filter(|v| truthy(v)).collect();
                if ok && !kept.is_empty() {
                    for v in kept {
                        self.emit(out, v)?;
                    }
                    Ok(())
                } else {
                    self.eval(b, input, out)
                }
            }
            Expr::Binary(op, a, b) => self.binary(*op, a, b, input, out),
            Expr::Neg(inner) => {
                for v in self.run(inner, input)? {
                    match as_f64(&v) {
                        Some(f) => self.emit(out, Cow::Owned(number(-f)))?,
                        None => return err(format!("cannot negate a {}", type_name(&v))),
                    }
                }
                Ok(())
            }
            Expr::If(branches, other) => self.if_then(branches, other.as_deref(), 0, input, out),
            Expr::Var(name) => match self.scope.and_then(|s| s.get(name)) {
                Some(v) => {
                    let v = v.clone();
                    self.emit(out, v)
                }
                None => self.emit(out, Cow::Owned(Value::Null)),
            },
            Expr::Bind(source, name, body) => {
                for v in self.run(source, input)? {
                    let scope = Scope {
                        name,
                        value: v,
                        parent: self.scope,
                    };
                    let mut inner = Evaluator {
                        scope: Some(&scope),
                        outputs: self.outputs,
                    };
                    let mut tmp = Vec::new();
                    inner.eval(body, input, &mut tmp)?;
                    self.outputs = inner.outputs;
                    out.extend(tmp);
                }
                Ok(())
            }
            Expr::Call(f, args) => self.call(*f, args, input, out),
        }
    }

    fn if_then(
        &mut self,
        branches: &[(Expr, Expr)],
        other: Option<&Expr>,
        at: usize,
        input: &Val<'a>,
        out: &mut Vec<Val<'a>>,
    ) -> Result<(), EvalError> {
        let Some((cond, then)) = branches.get(at) else {
            return match other {
                Some(e) => self.eval(e, input, out),
                None => self.emit(out, input.clone()),
            };
        };
        for c in self.run(cond, input)? {
            if truthy(&c) {
                self.eval(then, input, out)?;
            } else {
                self.if_then(branches, other, at + 1, input, out)?;
            }
        }
        Ok(())
    }

    fn binary(
        &mut self,
        op: BinOp,
        a: &Expr,
        b: &Expr,
        input: &Val<'a>,
        out: &mut Vec<Val<'a>>,
    ) -> Result<(), EvalError> {
        if matches!(op, BinOp::And | BinOp::Or) {
            for x in self.run(a, input)? {
                let short = match op {
                    BinOp::And => !truthy(&x),
                    _ => truthy(&x),
                };
                if short {
                    self.emit(out, Cow::Owned(Value::Bool(op == BinOp::Or)))?;
                    continue;
                }
                for y in self.run(b, input)? {
                    self.emit(out, Cow::Owned(Value::Bool(truthy(&y))))?;
                }
            }
            return Ok(());
        }
        let right = self.run(b, input)?;
        for x in self.run(a, input)? {
            for y in &right {
                let v = arith(op, &x, y)?;
                self.emit(out, Cow::Owned(v))?;
            }
        }
        Ok(())
    }

    /// Applies `f` to each element, collecting the single-or-many outputs.
    fn each(&mut self, f: &Expr, items: &[Value]) -> Result<Vec<Value>, EvalError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            for v in self.run(f, &Cow::Owned(item.clone()))? {
                out.push(v.into_owned());
            }
        }
        Ok(out)
    }

    /// `(key, item)` pairs sorted by the key `f` gives each item.
    fn keyed(&mut self, f: &Expr, items: &[Value]) -> Result<Vec<(Value, Value)>, EvalError> {
        let mut keyed = Vec::with_capacity(items.len());
        for item in items {
            let k: Vec<Value> = self
                .run(f, &Cow::Owned(item.clone()))?
                .into_iter()
                .map(Cow::into_owned)
                .collect();
            keyed.push((Value::Array(k), item.clone()));
        }
        keyed.sort_by(|a, b| compare(&a.0, &b.0));
        Ok(keyed)
    }

    fn call(&mut self, f: Builtin, args: &[Expr], input: &Val<'a>, out: &mut Vec<Val<'a>>) -> Result<(), EvalError> {
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

fn arith(op: BinOp, x: &Value, y: &Value) -> Result<Value, EvalError> {
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

fn to_entries(v: &Value) -> Result<Vec<Value>, EvalError> {
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

fn from_entries(v: &Value) -> Result<Value, EvalError> {
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

fn with_arg(f: Builtin, input: &Value, a: &Value) -> Result<Value, EvalError> {
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

fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.contains(y.as_str()),
        (Value::Array(x), Value::Array(y)) => y.iter().all(|j| x.iter().any(|i| contains(i, j))),
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, v)| x.get(k).is_some_and(|xv| contains(xv, v))),
        _ => equal(a, b),
    }
}

/// Functions of the input alone; `None` for no output.
fn simple(f: Builtin, input: &Value) -> Result<Option<Value>, EvalError> {
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

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;
    use serde_json::json;

    fn run(expr: &str, input: Value) -> Vec<Value> {
        let e = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut ev = Evaluator::new(None);
        ev.run(&e, &Cow::Owned(input))
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .into_iter()
            .map(Cow::into_owned)
            .collect()
    }

    fn one(expr: &str, input: Value) -> Value {
        let mut out = run(expr, input);
        assert_eq!(out.len(), 1, "{expr}: {out:?}");
        out.remove(0)
    }

    #[test]
    fn paths_iteration_and_collection() {
        let doc = json!({"items": [{"id": 1, "tags": [{"name": "a"}, {"name": "b"}]}, {"id": 2, "tags": []}]});
        assert_eq!(run(".items[].id", doc.clone()), vec![json!(1), json!(2)]);
        assert_eq!(one("[.items[0].tags[].name]", doc.clone()), json!(["a", "b"]));
        assert_eq!(one(".items[-1].id", doc.clone()), json!(2));
        assert_eq!(one(".nope.deeper", doc.clone()), json!(null));
        assert_eq!(one(".items | length", doc.clone()), json!(2));
        assert_eq!(one(".items[1:]", doc), json!([{"id": 2, "tags": []}]));
    }

    #[test]
    fn reshaping_renaming_defaults_and_joins() {
        let doc = json!({"first": "Ada", "last": "Lovelace", "age": null, "props": {"a": 1, "b": 2}});
        assert_eq!(one("\"\\(.first) \\(.last)\"", doc.clone()), json!("Ada Lovelace"));
        assert_eq!(one("[.first, .last] | join(\" \")", doc.clone()), json!("Ada Lovelace"));
        assert_eq!(one(".age // 0", doc.clone()), json!(0));
        assert_eq!(
            one("{name: .first, years: (.age // 30)}", doc.clone()),
            json!({"name": "Ada", "years": 30})
        );
        assert_eq!(
            one(".props | to_entries | map({k: .key, v: .value})", doc.clone()),
            json!([{"k": "a", "v": 1}, {"k": "b", "v": 2}])
        );
        assert_eq!(
            one("[{key: \"x\", value: 1}] | from_entries", doc.clone()),
            json!({"x": 1})
        );
        assert_eq!(
            one(
                ".props | with_entries({key: (.key | ascii_upcase), value})",
                doc.clone()
            ),
            json!({"A": 1, "B": 2})
        );
        assert_eq!(one(".props | keys", doc), json!(["a", "b"]));
    }

    #[test]
    fn filters_sorting_and_arithmetic() {
        let doc = json!([{"n": 3, "ok": true}, {"n": 1, "ok": false}, {"n": 2, "ok": true}]);
        assert_eq!(one("map(select(.ok)) | map(.n)", doc.clone()), json!([3, 2]));
        assert_eq!(one("sort_by(.n) | map(.n)", doc.clone()), json!([1, 2, 3]));
        assert_eq!(one("map(.n) | add", doc.clone()), json!(6));
        assert_eq!(one("map(.n * 100) | max", doc.clone()), json!(300));
        assert_eq!(one(".[0].n / 2", doc.clone()), json!(1.5));
        assert_eq!(one("first(.[] | select(.n > 1)) | .n", doc.clone()), json!(3));
        assert_eq!(
            one("if .[0].ok then \"yes\" else \"no\" end", doc.clone()),
            json!("yes")
        );
        assert_eq!(one(".[] as $x | $x.n", json!([{"n": 5}])), json!(5));
        assert_eq!(one("\"12\" | tonumber", json!(null)), json!(12));
        assert_eq!(one("group_by(.ok) | map(length)", doc), json!([1, 2]));
    }

    #[test]
    fn type_errors_are_errors_and_try_silences_them() {
        let e = parse(".a + 1").expect("parses");
        let mut ev = Evaluator::new(None);
        let r = ev.run(&e, &Cow::Owned(json!({"a": "x"})));
        assert!(r.is_err());
        assert!(!r.expect_err("error").0.contains('x'), "no data in the message");
        assert_eq!(run("(.a + 1)?", json!({"a": "x"})), Vec::<Value>::new());
        assert_eq!(one(".a.b", json!({"a": null})), json!(null));
    }

    #[test]
    fn reading_borrows_from_the_input() {
        let doc = json!({"a": {"b": [1, 2]}});
        let e = parse(".a.b").expect("parses");
        let mut ev = Evaluator::new(None);
        let out = ev.run(&e, &Cow::Borrowed(&doc)).expect("runs");
        assert!(matches!(out[0], Cow::Borrowed(_)));
    }

    #[test]
    fn variables_come_from_the_scope() {
        let args = json!({"sep": "-"});
        let scope = Scope {
            name: "args",
            value: Cow::Borrowed(&args),
            parent: None,
        };
        let e = parse("[.a, .b] | join($args.sep)").expect("parses");
        let mut ev = Evaluator::new(Some(&scope));
        let out = ev.run(&e, &Cow::Owned(json!({"a": "x", "b": "y"}))).expect("runs");
        assert_eq!(*out[0], json!("x-y"));
    }
}
