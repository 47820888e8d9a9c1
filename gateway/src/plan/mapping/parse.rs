//! The parser: text → [`Expr`], with the column of the first mistake.
//!
//! Recursive descent over the characters; precedence from lowest to highest as in jq:
//! `|` (and `E as $x | …`), `,`, `//` (right-associative), `or`, `and`, comparisons
//! (non-associative), `+ -`, `* / %`, unary minus, postfix (`.k`, `[i]`, `[a:b]`, `[]`, `?`).

use serde_json::Value;

use super::ast::{BinOp, Expr};
use super::builtins;
use super::scan::{Parser, KEYWORDS};
use super::MappingError;

pub fn parse(text: &str) -> Result<Expr, MappingError> {
    let mut p = Parser {
        src: text,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("the expression is empty"));
    }
    let e = p.pipe()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!("unexpected `{}`", p.rest_token())));
    }
    Ok(e)
}

impl Parser<'_> {
    pub(super) fn pipe(&mut self) -> Result<Expr, MappingError> {
        self.enter()?;
        let start = self.pos;
        // `Term as $name | body`
        if let Ok(term) = self.postfix() {
            if self.eat_keyword("as") {
                self.skip_ws();
                let name = self.variable()?;
                self.expect("|")?;
                let body = self.pipe()?;
                self.depth -= 1;
                return Ok(Expr::Bind(Box::new(term), name, Box::new(body)));
            }
        }
        self.pos = start;
        let left = self.comma()?;
        let out = if self.eat("|") {
            Expr::Pipe(Box::new(left), Box::new(self.pipe()?))
        } else {
            left
        };
        self.depth -= 1;
        Ok(out)
    }

    fn comma(&mut self) -> Result<Expr, MappingError> {
        let mut left = self.alternative()?;
        while self.eat(",") {
            left = Expr::Comma(Box::new(left), Box::new(self.alternative()?));
        }
        Ok(left)
    }

    pub(super) fn alternative(&mut self) -> Result<Expr, MappingError> {
        let left = self.or()?;
        if self.eat("//") {
            return Ok(Expr::Alternative(Box::new(left), Box::new(self.alternative()?)));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, MappingError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            left = Expr::Binary(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, MappingError> {
        let mut left = self.comparison()?;
        while self.eat_keyword("and") {
            left = Expr::Binary(BinOp::And, Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, MappingError> {
        let left = self.additive()?;
        self.skip_ws();
        let op = [
            ("==", BinOp::Eq),
            ("!=", BinOp::Ne),
            ("<=", BinOp::Le),
            (">=", BinOp::Ge),
            ("<", BinOp::Lt),
            (">", BinOp::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.rest().starts_with(s));
        match op {
            Some((s, op)) => {
                self.pos += s.len();
                Ok(Expr::Binary(op, Box::new(left), Box::new(self.additive()?)))
            }
            None => Ok(left),
        }
    }

    fn additive(&mut self) -> Result<Expr, MappingError> {
        let mut left = self.multiplicative()?;
        loop {
            self.skip_ws();
            let op = if self.rest().starts_with('+') {
                BinOp::Add
            } else if self.rest().starts_with('-') {
                BinOp::Sub
            } else {
                return Ok(left);
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.multiplicative()?));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, MappingError> {
        let mut left = self.unary()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('*') => BinOp::Mul,
                // `//` is the alternative operator, not a division.
                Some('/') if !self.rest().starts_with("//") => BinOp::Div,
                Some('%') => BinOp::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, MappingError> {
        self.skip_ws();
        if self.peek() == Some('-') {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.postfix()?)));
        }
        self.postfix()
    }

    pub(super) fn postfix(&mut self) -> Result<Expr, MappingError> {
        let mut e = self.term()?;
        loop {
            // No white space inside a path: `.a .b` is not `.a.b`.
            match self.peek() {
                Some('.') if !self.rest().starts_with("..") => {
                    self.pos += 1;
                    if self.peek() == Some('[') {
                        e = self.bracket(e)?;
                    } else {
                        let key = self.key_name()?;
                        e = Expr::Key(Box::new(e), key);
                    }
                }
                Some('[') => e = self.bracket(e)?,
                Some('?') => {
                    self.pos += 1;
                    e = Expr::Try(Box::new(e));
                }
                _ => return Ok(e),
            }
        }
    }

    /// After `.`: a name or a quoted name.
    fn key_name(&mut self) -> Result<Box<str>, MappingError> {
        if self.peek() == Some('"') {
            return match self.string()? {
                Expr::Literal(Value::String(s)) => Ok(s.into()),
                _ => Err(self.error("a key in quotes cannot interpolate")),
            };
        }
        match self.ident_ahead() {
            Some(name) => {
                self.pos += name.len();
                Ok(name.into())
            }
            None => Err(self.error("expected a key after `.`, e.g. `.title` or `.\"odd key\"`")),
        }
    }

    /// `[` … `]` after a value: index, key, slice or iteration.
    fn bracket(&mut self, base: Expr) -> Result<Expr, MappingError> {
        self.expect("[")?;
        self.enter()?;
        let out = if self.eat("]") {
            Expr::Iterate(Box::new(base))
        } else if self.eat(":") {
            let to = self.pipe()?;
            self.expect("]")?;
            Expr::Slice(Box::new(base), None, Some(Box::new(to)))
        } else {
            let index = self.pipe()?;
            if self.eat(":") {
                let to = if self.eat("]") {
                    None
                } else {
                    let t = self.pipe()?;
                    self.expect("]")?;
                    Some(Box::new(t))
                };
                Expr::Slice(Box::new(base), Some(Box::new(index)), to)
            } else {
                self.expect("]")?;
                match index {
                    Expr::Literal(Value::String(k)) => Expr::Key(Box::new(base), k.into()),
                    other => Expr::Index(Box::new(base), Box::new(other)),
                }
            }
        };
        self.depth -= 1;
        Ok(out)
    }

    pub(super) fn variable(&mut self) -> Result<Box<str>, MappingError> {
        if !self.eat("$") {
            return Err(self.error("expected a variable such as `$x`"));
        }
        match self.ident_ahead() {
            Some(name) if !KEYWORDS.contains(&name) => {
                self.pos += name.len();
                Ok(name.into())
            }
            _ => Err(self.error("expected a variable name after `$`")),
        }
    }

    pub(super) fn term(&mut self) -> Result<Expr, MappingError> {
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Err(self.error("the expression ends too soon"));
        };
        match c {
            '.' => {
                self.pos += 1;
                match self.peek() {
                    Some('"') => Ok(Expr::Key(Box::new(Expr::Identity), self.key_name()?)),
                    Some('[') => Ok(Expr::Identity),
                    Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                        Ok(Expr::Key(Box::new(Expr::Identity), self.key_name()?))
                    }
                    _ => Ok(Expr::Identity),
                }
            }
            '"' => self.string(),
            '$' => Ok(Expr::Var(self.variable()?)),
            '(' => {
                self.pos += 1;
                let e = self.pipe()?;
                self.expect(")")?;
                Ok(e)
            }
            '[' => {
                self.pos += 1;
                if self.eat("]") {
                    return Ok(Expr::Collect(None));
                }
                let e = self.pipe()?;
                self.expect("]")?;
                Ok(Expr::Collect(Some(Box::new(e))))
            }
            '{' => self.object(),
            c if c.is_ascii_digit() => self.number(),
            _ => self.word(),
        }
    }

    fn number(&mut self) -> Result<Expr, MappingError> {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-')))
            .map_or(rest.len(), |(i, _)| i);
        // `1.` followed by a key is not a number with a fraction.
        let mut text = &rest[..len];
        while text.ends_with(['.', '+', '-', 'e', 'E']) {
            text = &text[..text.len() - 1];
        }
        let value: Value = serde_json::from_str(text).map_err(|_| self.error(format!("`{text}` is not a number")))?;
        self.pos += text.len();
        Ok(Expr::Literal(value))
    }

    pub(super) fn word(&mut self) -> Result<Expr, MappingError> {
        let Some(name) = self.ident_ahead() else {
            return Err(self.error(format!("unexpected `{}`", self.rest_token())));
        };
        match name {
            "true" | "false" | "null" => {
                self.pos += name.len();
                return Ok(Expr::Literal(match name {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => Value::Null,
                }));
            }
            "if" => {
                self.pos += 2;
                return self.if_then();
            }
            _ => {}
        }
        if KEYWORDS.contains(&name) {
            return Err(self.error(format!("unexpected `{name}`")));
        }
        let at = self.pos;
        self.pos += name.len();
        let mut args = Vec::new();
        if self.peek() == Some('(') {
            self.pos += 1;
            self.enter()?;
            loop {
                args.push(self.pipe()?);
                if self.eat(";") {
                    continue;
                }
                self.expect(")")?;
                break;
            }
            self.depth -= 1;
        }
        match builtins::lookup(name, args.len()) {
            Some(b) => Ok(Expr::Call(b, args)),
            None => {
                self.pos = at;
                Err(self.error(match builtins::known_name(name) {
                    Some(arities) => format!(
                        "`{name}` takes {} argument(s), not {}",
                        arities.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or "),
                        args.len()
                    ),
                    None if args.is_empty() => {
                        format!("unknown function `{name}`; to read the key, write `.{name}` (keys start with a dot)")
                    }
                    None => format!("unknown function `{name}`"),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Expr {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn paths_parse_as_chains_of_keys_and_indexes() {
        let e = ok(".data.items[0].\"odd key\"");
        let path = e.as_path().expect("a plain path");
        assert_eq!(path.len(), 4);
        assert_eq!(ok(".").as_path(), Some(vec![]));
        assert!(ok(".items[]").as_path().is_none());
    }

    #[test]
    fn precedence_follows_jq() {
        assert_eq!(
            ok(".a // .b | .c"),
            Expr::Pipe(
                Box::new(Expr::Alternative(Box::new(ok(".a")), Box::new(ok(".b")))),
                Box::new(ok(".c"))
            )
        );
        assert!(matches!(ok("1 + 2 * 3"), Expr::Binary(BinOp::Add, _, _)));
        assert!(matches!(ok(".a, .b | .c"), Expr::Pipe(_, _)));
        assert!(matches!(ok(".items[] as $i | $i.id"), Expr::Bind(_, _, _)));
    }

    #[test]
    fn objects_strings_and_calls_parse() {
        assert!(matches!(ok("{id, name: .full_name, \"x-y\": 1, (.k): .v}"), Expr::Object(e) if e.len() == 4));
        assert!(matches!(ok("\"\\(.first) \\(.last)\""), Expr::Interpolated(p) if p.len() == 3));
        assert!(matches!(ok("map(.id) | join(\", \")"), Expr::Pipe(_, _)));
        assert!(matches!(ok("if .a then 1 elif .b then 2 else 3 end"), Expr::If(b, Some(_)) if b.len() == 2));
        assert!(matches!(ok(".items[1:3]"), Expr::Slice(_, Some(_), Some(_))));
        assert!(matches!(ok(".price_cents / 100"), Expr::Binary(BinOp::Div, _, _)));
    }

    #[test]
    fn mistakes_are_reported_with_their_column() {
        let e = parse(".a | foo").expect_err("unknown function");
        assert_eq!(e.column, 6);
        assert!(e.message.contains("`.foo`"), "{e}");
        let e = parse("map(.a; .b)").expect_err("arity");
        assert!(e.message.contains("takes 1"), "{e}");
        assert!(parse("").is_err());
        assert!(parse(".a |").is_err());
        assert!(parse("{a: 1").is_err());
        assert!(parse("\"open").is_err());
        let deep = format!("{}.a{}", "(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_err(), "bounded nesting");
    }
}
