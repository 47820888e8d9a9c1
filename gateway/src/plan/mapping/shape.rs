//! What `mosaic check` can tell of an expression's output without running it: its [`Shape`],
//! inferred from the syntax, and whether that shape can be the GraphQL type the field declares.
//!
//! Inference is conservative: whatever it cannot tell is [`Shape::Any`], which fits any type, so
//! a reported mismatch is a certain one (a string where the field is `Int`, a list where it is an
//! object, an object built without a key a non-null field reads).

use serde_json::Value;

use super::ast::{BinOp, Expr, ObjKey};
use super::builtins::Builtin;

/// The kind of value an expression gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Any,
    Null,
    Bool,
    Number,
    String,
    Array(Box<Shape>),
    /// An object; its keys when the expression builds it (`{a: …, b: …}`).
    Object(Option<Vec<(String, Shape)>>),
}

impl Shape {
    pub fn of_value(v: &Value) -> Shape {
        match v {
            Value::Null => Shape::Null,
            Value::Bool(_) => Shape::Bool,
            Value::Number(_) => Shape::Number,
            Value::String(_) => Shape::String,
            Value::Array(items) => Shape::Array(Box::new(
                items
                    .iter()
                    .map(Shape::of_value)
                    .reduce(|a, b| a.join(&b))
                    .unwrap_or(Shape::Any),
            )),
            Value::Object(m) => Shape::Object(Some(m.iter().map(|(k, v)| (k.clone(), Shape::of_value(v))).collect())),
        }
    }

    /// Either shape.
    pub fn join(&self, other: &Shape) -> Shape {
        match (self, other) {
            (a, b) if a == b => a.clone(),
            (Shape::Null, b) => b.clone(),
            (a, Shape::Null) => a.clone(),
            (Shape::Array(a), Shape::Array(b)) => Shape::Array(Box::new(a.join(b))),
            (Shape::Object(_), Shape::Object(_)) => Shape::Object(None),
            _ => Shape::Any,
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Shape::Any => "any value",
            Shape::Null => "null",
            Shape::Bool => "a boolean",
            Shape::Number => "a number",
            Shape::String => "a string",
            Shape::Array(_) => "a list",
            Shape::Object(_) => "an object",
        }
    }
}

/// The shape of `e`'s output when its input has shape `input`; `many` is set when it may give
/// several outputs (which a field collects into a list).
pub fn infer(e: &Expr, input: &Shape, many: &mut bool) -> Shape {
    match e {
        Expr::Identity => input.clone(),
        Expr::Literal(v) => Shape::of_value(v),
        Expr::Key(base, key) => match infer(base, input, many) {
            Shape::Object(Some(fields)) => fields
                .iter()
                .find(|(k, _)| k == &**key)
                .map_or(Shape::Null, |(_, s)| s.clone()),
            _ => Shape::Any,
        },
        Expr::Index(base, _) => match infer(base, input, many) {
            Shape::Array(item) => item.join(&Shape::Null),
            _ => Shape::Any,
        },
        Expr::Slice(base, ..) => match infer(base, input, many) {
            s @ (Shape::Array(_) | Shape::String) => s,
            _ => Shape::Any,
        },
        Expr::Iterate(base) => {
            *many = true;
            match infer(base, input, many) {
                Shape::Array(item) => *item,
                _ => Shape::Any,
            }
        }
        Expr::Try(inner) => infer(inner, input, many),
        Expr::Interpolated(_) => Shape::String,
        Expr::Collect(inner) => {
            let mut inner_many = false;
            let item = inner.as_ref().map_or(Shape::Any, |i| infer(i, input, &mut inner_many));
            Shape::Array(Box::new(item))
        }
        Expr::Object(entries) => {
            let mut fields = Vec::new();
            for (k, v) in entries {
                let shape = infer(v, input, many);
                match k {
                    ObjKey::Name(n) | ObjKey::Var(n) => fields.push((n.to_string(), shape)),
                    ObjKey::Computed(_) => return Shape::Object(None),
                }
            }
            Shape::Object(Some(fields))
        }
        Expr::Pipe(a, b) => {
            let left = infer(a, input, many);
            infer(b, &left, many)
        }
        Expr::Comma(a, b) => {
            *many = true;
            infer(a, input, many).join(&infer(b, input, many))
        }
        Expr::Alternative(a, b) => {
            let left = infer(a, input, many);
            let right = infer(b, input, many);
            match left {
                Shape::Null => right,
                l => l.join(&right),
            }
        }
        Expr::Binary(op, a, b) => match op {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::And | BinOp::Or => {
                Shape::Bool
            }
            BinOp::Add => {
                let (x, y) = (infer(a, input, many), infer(b, input, many));
                match (&x, &y) {
                    (Shape::Number, Shape::Number) => Shape::Number,
                    (Shape::String, Shape::String) => Shape::String,
                    (Shape::Array(_), Shape::Array(_)) => x.join(&y),
                    _ => Shape::Any,
                }
            }
            BinOp::Sub | BinOp::Mul | BinOp::Rem => Shape::Number,
            BinOp::Div => match (infer(a, input, many), infer(b, input, many)) {
                (Shape::String, Shape::String) => Shape::Array(Box::new(Shape::String)),
                _ => Shape::Number,
            },
        },
        Expr::Neg(_) => Shape::Number,
        Expr::If(branches, other) => {
            let mut s: Option<Shape> = None;
            for (_, then) in branches {
                let t = infer(then, input, many);
                s = Some(s.map_or(t.clone(), |s| s.join(&t)));
            }
            let o = other.as_ref().map_or(input.clone(), |o| infer(o, input, many));
            s.map_or(o.clone(), |s| s.join(&o))
        }
        Expr::Var(_) => Shape::Any,
        Expr::Bind(_, _, body) => infer(body, input, many),
        Expr::Call(f, args) => builtin_shape(*f, args, input, many),
    }
}

fn builtin_shape(f: Builtin, args: &[Expr], input: &Shape, many: &mut bool) -> Shape {
    let item = match input {
        Shape::Array(i) => (**i).clone(),
        _ => Shape::Any,
    };
    match f {
        Builtin::Length => Shape::Number,
        Builtin::Keys => Shape::Array(Box::new(Shape::Any)),
        Builtin::ToEntries => Shape::Array(Box::new(Shape::Object(Some(vec![
            ("key".into(), Shape::String),
            ("value".into(), Shape::Any),
        ])))),
        Builtin::FromEntries | Builtin::WithEntries | Builtin::MapValues => Shape::Object(None),
        Builtin::Map => {
            let mut m = false;
            Shape::Array(Box::new(args.first().map_or(Shape::Any, |a| infer(a, &item, &mut m))))
        }
        Builtin::Select | Builtin::Values => input.clone(),
        Builtin::SortBy | Builtin::UniqueBy | Builtin::Sort | Builtin::Unique | Builtin::Reverse => match input {
            Shape::Array(_) => input.clone(),
            _ => Shape::Any,
        },
        Builtin::GroupBy => Shape::Array(Box::new(Shape::Array(Box::new(item)))),
        Builtin::First | Builtin::Last | Builtin::Min | Builtin::Max | Builtin::MinBy | Builtin::MaxBy => {
            item.join(&Shape::Null)
        }
        Builtin::FirstOf | Builtin::LastOf => {
            let mut m = false;
            args.first().map_or(Shape::Any, |a| infer(a, input, &mut m))
        }
        Builtin::Limit => {
            *many = true;
            let mut m = false;
            args.get(1).map_or(Shape::Any, |a| infer(a, input, &mut m))
        }
        Builtin::Add => item,
        Builtin::Flatten => Shape::Array(Box::new(Shape::Any)),
        Builtin::Join
        | Builtin::ToString
        | Builtin::AsciiDowncase
        | Builtin::AsciiUpcase
        | Builtin::Type
        | Builtin::LtrimStr
        | Builtin::RtrimStr
        | Builtin::Trim
        | Builtin::ToJson => Shape::String,
        Builtin::Split => Shape::Array(Box::new(Shape::String)),
        Builtin::ToNumber | Builtin::Floor | Builtin::Ceil | Builtin::Round => Shape::Number,
        Builtin::Not
        | Builtin::Any
        | Builtin::All
        | Builtin::AnyOf
        | Builtin::AllOf
        | Builtin::Has
        | Builtin::Contains
        | Builtin::StartsWith
        | Builtin::EndsWith => Shape::Bool,
        Builtin::Empty | Builtin::Error | Builtin::FromJson => Shape::Any,
    }
}
