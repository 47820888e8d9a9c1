//! The arguments of one directive, taken one by one with their types checked; what is left over
//! is reported as unknown, with the closest known name.

use async_graphql_parser::types::ConstDirective;
use async_graphql_parser::Pos;
use async_graphql_value::ConstValue;

use super::*;
use crate::config::diagnostic::{available, suggest};
use crate::config::Diagnostics;

/// The arguments of one directive, taken one by one; what is left over is reported as unknown.
pub(super) struct Args<'a> {
    directive: &'a str,
    pos: Pos,
    pub(super) site: &'a Site,
    items: Vec<(String, ConstValue, Pos)>,
    known: Vec<&'static str>,
}

impl<'a> Args<'a> {
    pub(super) fn new(d: &'a ConstDirective, pos: Pos, site: &'a Site) -> Self {
        Self {
            directive: d.name.node.as_str(),
            pos,
            site,
            items: d
                .arguments
                .iter()
                .map(|(n, v)| (n.node.to_string(), v.node.clone(), v.pos))
                .collect(),
            known: Vec::new(),
        }
    }

    pub(super) fn take(&mut self, name: &'static str) -> Option<(ConstValue, Pos)> {
        self.known.push(name);
        let i = self.items.iter().position(|(n, _, _)| n == name)?;
        let (_, v, p) = self.items.remove(i);
        Some((v, p))
    }

    pub(super) fn wrong_type(&self, name: &str, pos: Pos, expected: &str, diags: &mut Diagnostics) {
        diags.error(
            Some(self.site.loc(pos)),
            format!("argument `{name}` of @{} must be {expected}", self.directive),
        );
    }

    pub(super) fn string(
        &mut self,
        name: &'static str,
        required: bool,
        diags: &mut Diagnostics,
    ) -> Option<(String, Pos)> {
        match self.take(name) {
            Some((ConstValue::String(s), p)) => Some((s, p)),
            Some((_, p)) => {
                self.wrong_type(name, p, "a string", diags);
                None
            }
            None if required => {
                diags.error_with_hint(
                    Some(self.site.loc(self.pos)),
                    format!("@{} needs the argument `{name}`", self.directive),
                    example_for(self.directive, name),
                );
                None
            }
            None => None,
        }
    }

    pub(super) fn bool(&mut self, name: &'static str, diags: &mut Diagnostics) -> Option<bool> {
        match self.take(name) {
            Some((ConstValue::Boolean(b), _)) => Some(b),
            Some((_, p)) => {
                self.wrong_type(name, p, "true or false", diags);
                None
            }
            None => None,
        }
    }

    /// `{name: "value"}` or `[{name: "x-a", value: "..."}]`.
    pub(super) fn pairs(&mut self, name: &'static str, diags: &mut Diagnostics) -> Vec<(String, String, Pos)> {
        let Some((value, pos)) = self.take(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match value {
            ConstValue::Object(map) => {
                for (k, v) in map {
                    match v {
                        ConstValue::String(s) => out.push((k.to_string(), s, pos)),
                        other => out.push((k.to_string(), scalar_text(&other), pos)),
                    }
                }
            }
            ConstValue::List(items) => {
                for item in items {
                    let pair = match &item {
                        ConstValue::Object(m) => match (m.get("name"), m.get("value")) {
                            (Some(ConstValue::String(n)), Some(v)) => Some((n.clone(), scalar_text(v))),
                            _ => None,
                        },
                        _ => None,
                    };
                    match pair {
                        Some((n, v)) => out.push((n, v, pos)),
                        None => self.wrong_type(
                            name,
                            pos,
                            "an object {key: \"value\"} or a list [{name: \"...\", value: \"...\"}]",
                            diags,
                        ),
                    }
                }
            }
            _ => self.wrong_type(
                name,
                pos,
                "an object {key: \"value\"} or a list [{name: \"...\", value: \"...\"}]",
                diags,
            ),
        }
        out
    }

    pub(super) fn finish(self, diags: &mut Diagnostics) {
        for (name, _, pos) in &self.items {
            let hint = match suggest(name, self.known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => available("arguments", &self.known),
            };
            diags.error_with_hint(
                Some(self.site.loc(*pos)),
                format!("unknown argument `{name}` of @{}", self.directive),
                hint,
            );
        }
    }
}

pub(super) fn scalar_text(v: &ConstValue) -> String {
    match v {
        ConstValue::String(s) => s.clone(),
        ConstValue::Enum(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// An example of a required argument, for the hint of its absence.
pub(super) fn example_for(directive: &str, arg: &str) -> String {
    match (directive, arg) {
        ("http" | "stream", "backend") => "name a [backends.NAME] of mosaic.toml: backend: \"customers\"".into(),
        ("http" | "stream", "path") => {
            "give the path appended to the backend's url: path: \"/customers/{{args.id}}\"".into()
        }
        ("from", "path") => "give where the value is in the parent's JSON: @from(path: \"customer_id\")".into(),
        ("resolver", "name") => "name a registered Rust resolver: @resolver(name: \"myResolver\")".into(),
        ("discriminator", "field") => "name the JSON field holding the type: @discriminator(field: \"type\")".into(),
        _ => format!("add {arg}: ... to @{directive}"),
    }
}
