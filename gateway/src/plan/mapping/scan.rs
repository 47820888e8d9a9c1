//! The parser's cursor over the text: position, whitespace and comments, tokens, keywords, the
//! nesting bound, and errors with their column.

use super::MappingError;

/// Deepest nesting accepted (parentheses, brackets, calls): a bound on the parser's recursion.
const MAX_DEPTH: usize = 64;

pub(super) struct Parser<'s> {
    pub(super) src: &'s str,
    pub(super) pos: usize,
    pub(super) depth: usize,
}

pub(super) const KEYWORDS: &[&str] = &[
    "and", "or", "if", "then", "elif", "else", "end", "as", "true", "false", "null",
];

impl<'s> Parser<'s> {
    pub(super) fn error(&self, message: impl Into<String>) -> MappingError {
        MappingError {
            message: message.into(),
            column: self.src[..self.pos.min(self.src.len())].chars().count() + 1,
        }
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(super) fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    pub(super) fn rest_token(&self) -> String {
        self.rest()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(12)
            .collect()
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn skip_ws(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            // `#` comments run to the end of the line, as in jq.
            if self.peek() == Some('#') {
                let line = self.rest().find('\n').unwrap_or(self.rest().len());
                self.pos += line;
                continue;
            }
            break;
        }
    }

    /// Consumes `s` (after white space) if it comes next.
    pub(super) fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    pub(super) fn expect(&mut self, s: &str) -> Result<(), MappingError> {
        if self.eat(s) {
            Ok(())
        } else {
            self.skip_ws();
            let found = if self.at_end() {
                "the end".to_string()
            } else {
                format!("`{}`", self.rest_token())
            };
            Err(self.error(format!("expected `{s}`, found {found}")))
        }
    }

    /// The identifier starting here, without consuming it.
    pub(super) fn ident_ahead(&self) -> Option<&'s str> {
        let rest = self.rest();
        let first = rest.chars().next()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        Some(&rest[..len])
    }

    pub(super) fn eat_keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        if self.ident_ahead() == Some(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    pub(super) fn enter(&mut self) -> Result<(), MappingError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }
}
