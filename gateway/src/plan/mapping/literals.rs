//! The parser's literal forms: `if … then … end`, object constructions and strings with
//! interpolations.

use serde_json::Value;

use super::ast::{Expr, ObjKey, StrPart};
use super::scan::Parser;
use super::MappingError;

impl Parser<'_> {
    pub(super) fn if_then(&mut self) -> Result<Expr, MappingError> {
        self.enter()?;
        let mut branches = Vec::new();
        loop {
            let cond = self.pipe()?;
            if !self.eat_keyword("then") {
                return Err(self.error("expected `then`"));
            }
            let then = self.pipe()?;
            branches.push((cond, then));
            if self.eat_keyword("elif") {
                continue;
            }
            break;
        }
        let other = if self.eat_keyword("else") {
            Some(Box::new(self.pipe()?))
        } else {
            None
        };
        if !self.eat_keyword("end") {
            return Err(self.error("expected `end` to close `if`"));
        }
        self.depth -= 1;
        Ok(Expr::If(branches, other))
    }

    pub(super) fn object(&mut self) -> Result<Expr, MappingError> {
        self.expect("{")?;
        self.enter()?;
        let mut entries = Vec::new();
        if !self.eat("}") {
            loop {
                self.skip_ws();
                let key = match self.peek() {
                    Some('"') => match self.string()? {
                        Expr::Literal(Value::String(s)) => ObjKey::Name(s.into()),
                        other => ObjKey::Computed(Box::new(other)),
                    },
                    Some('$') => ObjKey::Var(self.variable()?),
                    Some('(') => {
                        self.pos += 1;
                        let k = self.pipe()?;
                        self.expect(")")?;
                        ObjKey::Computed(Box::new(k))
                    }
                    _ => match self.ident_ahead() {
                        Some(name) => {
                            self.pos += name.len();
                            ObjKey::Name(name.into())
                        }
                        None => return Err(self.error("expected a key in the object")),
                    },
                };
                let value = if self.eat(":") {
                    // A value is an alternative-level expression: `,` separates entries; use
                    // parentheses for a pipe.
                    self.alternative()?
                } else {
                    match &key {
                        ObjKey::Name(n) => Expr::Key(Box::new(Expr::Identity), n.clone()),
                        ObjKey::Var(v) => Expr::Var(v.clone()),
                        ObjKey::Computed(_) => return Err(self.error("a computed key needs `: value`")),
                    }
                };
                entries.push((key, value));
                if self.eat(",") {
                    continue;
                }
                self.expect("}")?;
                break;
            }
        }
        self.depth -= 1;
        Ok(Expr::Object(entries))
    }

    /// A string literal, with `\(E)` interpolations.
    pub(super) fn string(&mut self) -> Result<Expr, MappingError> {
        self.expect("\"")?;
        let mut parts = Vec::new();
        let mut lit = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unclosed string"));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => break,
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(self.error("unclosed string"));
                    };
                    self.pos += e.len_utf8();
                    match e {
                        '(' => {
                            if !lit.is_empty() {
                                parts.push(StrPart::Lit(std::mem::take(&mut lit)));
                            }
                            self.enter()?;
                            let inner = self.pipe()?;
                            self.expect(")")?;
                            self.depth -= 1;
                            parts.push(StrPart::Expr(inner));
                        }
                        'n' => lit.push('\n'),
                        't' => lit.push('\t'),
                        'r' => lit.push('\r'),
                        '"' | '\\' | '/' => lit.push(e),
                        'u' => {
                            let hex: String = self.rest().chars().take(4).collect();
                            let ch = u32::from_str_radix(&hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.error("invalid \\u escape"))?;
                            self.pos += 4;
                            lit.push(ch);
                        }
                        other => return Err(self.error(format!("unknown escape `\\{other}`"))),
                    }
                }
                c => lit.push(c),
            }
        }
        if parts.is_empty() {
            return Ok(Expr::Literal(Value::String(lit)));
        }
        if !lit.is_empty() {
            parts.push(StrPart::Lit(lit));
        }
        Ok(Expr::Interpolated(parts))
    }
}
