//! The evaluator: an [`Expr`] applied to a JSON value, with jq's semantics for the subset we
//! support. Values are borrowed from the input wherever the expression only reads it.
//!
//! An expression has zero or more outputs (`.items[]` has one per item). Errors are jq's:
//! indexing a number, adding a string to a number; `?` turns them into no output.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::ast::{BinOp, Expr, ObjKey, StrPart};

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

use super::values::{arith, as_f64, child, compare, number, to_text, truthy, type_name};

/// Evaluates expressions over one input.
pub struct Evaluator<'s, 'a> {
    scope: Option<&'s Scope<'s, 'a>>,
    outputs: usize,
}

impl<'s, 'a> Evaluator<'s, 'a> {
    pub fn new(scope: Option<&'s Scope<'s, 'a>>) -> Self {
        Self { scope, outputs: 0 }
    }

    pub(super) fn emit(&mut self, out: &mut Vec<Val<'a>>, v: Val<'a>) -> Result<(), EvalError> {
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
    pub(super) fn one(&mut self, e: &Expr, input: &Val<'a>) -> Result<Val<'a>, EvalError> {
        let mut out = self.run(e, input)?;
        match out.len() {
            1 => Ok(out.pop().unwrap_or(Cow::Owned(Value::Null))),
            0 => err("an argument gave no value"),
            _ => err("an argument gave several values where one was expected"),
        }
    }

    pub(super) fn eval(&mut self, e: &Expr, input: &Val<'a>, out: &mut Vec<Val<'a>>) -> Result<(), EvalError> {
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
    pub(super) fn each(&mut self, f: &Expr, items: &[Value]) -> Result<Vec<Value>, EvalError> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            for v in self.run(f, &Cow::Owned(item.clone()))? {
                out.push(v.into_owned());
            }
        }
        Ok(out)
    }

    /// `(key, item)` pairs sorted by the key `f` gives each item.
    pub(super) fn keyed(&mut self, f: &Expr, items: &[Value]) -> Result<Vec<(Value, Value)>, EvalError> {
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
