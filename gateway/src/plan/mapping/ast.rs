//! The syntax tree of a mapping expression.

use serde_json::Value;

/// One node of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `.`
    Identity,
    /// `E.name`, `E."name"`, `E["name"]` with a literal key.
    Key(Box<Expr>, Box<str>),
    /// `E[i]` (a number: an index, negative from the end; a string: a key).
    Index(Box<Expr>, Box<Expr>),
    /// `E[a:b]`
    Slice(Box<Expr>, Option<Box<Expr>>, Option<Box<Expr>>),
    /// `E[]`: every element (or every value of an object).
    Iterate(Box<Expr>),
    /// `E?`: errors become no output.
    Try(Box<Expr>),
    Literal(Value),
    /// `"text \(E) text"`
    Interpolated(Vec<StrPart>),
    /// `[E]` (`[]` when empty): the outputs of E collected.
    Collect(Option<Box<Expr>>),
    /// `{k: E, "k": E, (E): E, k}`
    Object(Vec<(ObjKey, Expr)>),
    /// `A | B`
    Pipe(Box<Expr>, Box<Expr>),
    /// `A, B`
    Comma(Box<Expr>, Box<Expr>),
    /// `A // B`: the outputs of A that are not null or false, else B.
    Alternative(Box<Expr>, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `-E`
    Neg(Box<Expr>),
    /// `if C then A (elif C then A)* (else B)? end`
    If(Vec<(Expr, Expr)>, Option<Box<Expr>>),
    /// `$name`
    Var(Box<str>),
    /// `E as $name | body`
    Bind(Box<Expr>, Box<str>, Box<Expr>),
    /// A built-in function with its arguments (`map(.x)`, `join(", ")`, `length`).
    Call(super::builtins::Builtin, Vec<Expr>),
}

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    Lit(String),
    Expr(Expr),
}

/// A key of an object construction.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjKey {
    Name(Box<str>),
    /// `$name` (the value is the variable's).
    Var(Box<str>),
    /// `(E)`: the key is E's string output.
    Computed(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl Expr {
    /// The path this expression is, when it is a plain chain of keys and non-negative indexes
    /// from `.` (evaluated by borrowing, without the expression evaluator).
    pub fn as_path(&self) -> Option<Vec<crate::plan::json_path::Segment>> {
        use crate::plan::json_path::Segment;
        match self {
            Expr::Identity => Some(Vec::new()),
            Expr::Key(base, k) => {
                let mut p = base.as_path()?;
                p.push(Segment::Key(k.clone()));
                Some(p)
            }
            Expr::Index(base, i) => match &**i {
                Expr::Literal(Value::Number(n)) => {
                    let i = usize::try_from(n.as_u64()?).ok()?;
                    let mut p = base.as_path()?;
                    p.push(Segment::Index(i));
                    Some(p)
                }
                Expr::Literal(Value::String(k)) => {
                    let mut p = base.as_path()?;
                    p.push(Segment::Key(k.as_str().into()));
                    Some(p)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the expression reads the variable `name`.
    pub fn uses_var(&self, name: &str) -> bool {
        let mut found = false;
        self.walk(&mut |e| {
            if let Expr::Var(v) = e {
                found |= &**v == name;
            }
        });
        found
    }

    /// Calls `f` on this node and every node below it.
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Identity | Expr::Literal(_) | Expr::Var(_) => {}
            Expr::Key(e, _) | Expr::Iterate(e) | Expr::Try(e) | Expr::Neg(e) => e.walk(f),
            Expr::Index(a, b)
            | Expr::Pipe(a, b)
            | Expr::Comma(a, b)
            | Expr::Alternative(a, b)
            | Expr::Binary(_, a, b)
            | Expr::Bind(a, _, b) => {
                a.walk(f);
                b.walk(f);
            }
            Expr::Slice(e, a, b) => {
                e.walk(f);
                if let Some(a) = a {
                    a.walk(f);
                }
                if let Some(b) = b {
                    b.walk(f);
                }
            }
            Expr::Interpolated(parts) => {
                for p in parts {
                    if let StrPart::Expr(e) = p {
                        e.walk(f);
                    }
                }
            }
            Expr::Collect(e) => {
                if let Some(e) = e {
                    e.walk(f);
                }
            }
            Expr::Object(entries) => {
                for (k, v) in entries {
                    if let ObjKey::Computed(k) = k {
                        k.walk(f);
                    }
                    v.walk(f);
                }
            }
            Expr::If(branches, other) => {
                for (c, t) in branches {
                    c.walk(f);
                    t.walk(f);
                }
                if let Some(o) = other {
                    o.walk(f);
                }
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.walk(f)),
        }
    }
}
