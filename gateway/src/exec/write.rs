//! The write phase: the response JSON written straight from the backends' JSON, walking the
//! compiled selection — no resolver, no intermediate value tree.
//!
//! Null propagation is done on the bytes: a nullable position remembers where it started, and a
//! non-null failure below it ([`Bubble`]) truncates back to there and writes `null`. Siblings are
//! still written after a failure so every field error is reported, as the async-graphql path does.

use std::sync::Arc;

use async_graphql_parser::types::{BaseType, Type};
use serde_json::Value;

use super::compile::{FieldPlan, OpPlan, Output, SelectionPlan, Src};
use super::fetch::{Fetched, Resolved};
use crate::plan::coerce::{coerce_leaf, LeafOut};
use crate::plan::Plan;
use crate::response::{
    backend_error, call_error, not_a_list, null_in_non_null, unknown_concrete_type, write_json_str, FieldError,
    PathSegment, SCHEMA_MISMATCH,
};

/// The code of the error of a representation whose entity the backend does not have.
const ENTITY_NOT_FOUND: &str = "ENTITY_NOT_FOUND";

/// A non-null position failed; its null goes to the nearest nullable position above.
struct Bubble;

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Writer<'a> {
    plan: &'a Plan,
    identity: &'a crate::auth::identity::Identity,
    fetched: &'a Fetched,
    out: Vec<u8>,
    errors: Vec<FieldError>,
    path: Vec<Seg<'a>>,
    /// The backend whose JSON is being written (named in schema mismatch errors).
    backend: Option<&'a str>,
}

/// Writes `{"data": ..., "errors": [...]}` for a fetched operation.
/// Writes the response; also returns the `extensions.code` of each error (for metrics).
pub fn write_response(
    plan: &Plan,
    op: &OpPlan,
    fetched: &Fetched,
    identity: &crate::auth::identity::Identity,
    capacity: usize,
) -> (Vec<u8>, Vec<String>) {
    let mut w = Writer {
        plan,
        identity,
        fetched,
        out: Vec::with_capacity(capacity),
        errors: Vec::new(),
        path: Vec::with_capacity(8),
        backend: None,
    };
    w.out.extend_from_slice(b"{\"data\":");
    let start = w.out.len();
    if w.object(&op.root, &op.root_type, None).is_err() {
        w.out.truncate(start);
        w.out.extend_from_slice(b"null");
    }
    let mut codes = Vec::new();
    if !w.errors.is_empty() {
        w.out.extend_from_slice(b",\"errors\":[");
        let errors = std::mem::take(&mut w.errors);
        codes = errors
            .iter()
            .filter_map(|e| e.extensions.iter().find(|(k, _)| *k == "code"))
            .filter_map(|(_, v)| v.as_str().map(str::to_string))
            .collect();
        for (i, e) in errors.iter().enumerate() {
            if i > 0 {
                w.out.push(b',');
            }
            e.write_json(&mut w.out);
        }
        w.out.push(b']');
    }
    w.out.push(b'}');
    (w.out, codes)
}

impl<'a> Writer<'a> {
    fn response_path(&self) -> Vec<PathSegment> {
        self.path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => PathSegment::Key(Arc::from(*k)),
                Seg::Index(i) => PathSegment::Index(*i),
            })
            .collect()
    }

    fn error(&mut self, f: &FieldPlan, message: String) {
        let mut e = FieldError::new(message, f.pos, self.response_path(), SCHEMA_MISMATCH);
        if let Some(b) = self.backend {
            e = e
                .with_extension("backend", serde_json::Value::String(b.to_string()))
                .with_extension("fallback", serde_json::Value::Bool(false));
        }
        self.errors.push(e);
    }

    fn object(&mut self, sel: &'a SelectionPlan, concrete: &str, obj: Option<&Value>) -> Result<(), Bubble> {
        self.out.push(b'{');
        let mut failed = false;
        for (i, f) in sel.fields_for(concrete).iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(&f.key_json);
            self.path.push(Seg::Key(&f.key));
            if self.field(f, concrete, obj).is_err() {
                failed = true;
            }
            self.path.pop();
        }
        self.out.push(b'}');
        if failed {
            Err(Bubble)
        } else {
            Ok(())
        }
    }

    fn field(&mut self, f: &'a FieldPlan, concrete: &str, parent: Option<&Value>) -> Result<(), Bubble> {
        if let Some(rule) = &f.auth {
            if let Err(denied) = crate::auth::identity::check(rule, self.identity) {
                let message = denied.message(&f.parent_type, &f.field_name);
                let e = FieldError::new(message, f.pos, self.response_path(), denied.code());
                self.errors.push(e);
                return self.null_or_bubble(&f.ty);
            }
        }
        match &f.source {
            Src::Typename => {
                write_json_str(&mut self.out, concrete);
                Ok(())
            }
            Src::Parent(path) => self.value(f, &f.ty, parent.and_then(|p| path.get(p))),
            Src::Computed(m) => match parent.map(|p| m.eval(p, None)) {
                None | Some(Ok(None)) => self.value(f, &f.ty, None),
                Some(Ok(Some(v))) => self.value(f, &f.ty, Some(&v)),
                Some(Err(e)) => {
                    self.error(
                        f,
                        format!(
                            "the expression of {}.{} failed on the backend's answer: {e}",
                            f.parent_type, f.field_name
                        ),
                    );
                    self.null_or_bubble(&f.ty)
                }
            },
            Src::Call { binding, slot, .. } => {
                let binding = self.plan.binding(*binding);
                let outer = self.backend.replace(&self.plan.backend(binding.backend).name);
                let written = self.call_field(f, binding, *slot, parent);
                self.backend = outer;
                written
            }
            Src::Entities { slot, resolvers, .. } => self.entities(f, *slot, resolvers),
        }
    }

    /// `_entities`: one entity (or `null` and an error) per representation, in their order.
    fn entities(
        &mut self,
        f: &'a FieldPlan,
        slot: usize,
        resolvers: &[(crate::plan::BindingId, usize)],
    ) -> Result<(), Bubble> {
        let (Some(fed), Some(reps), Output::Composite(_, sub)) =
            (&self.plan.federation, self.fetched.representations(slot), &f.output)
        else {
            return self.null_or_bubble(&f.ty);
        };
        self.out.push(b'[');
        for (i, rep) in reps.list().iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.path.push(Seg::Index(i));
            let start = self.out.len();
            if self.entity(f, fed, sub, reps, rep, resolvers).is_err() {
                self.out.truncate(start);
                self.out.extend_from_slice(b"null");
            }
            self.path.pop();
        }
        self.out.push(b']');
        Ok(())
    }

    fn entity(
        &mut self,
        f: &'a FieldPlan,
        fed: &'a crate::plan::federation::Federation,
        sub: &'a SelectionPlan,
        reps: &'a super::entities::Representations,
        rep: &'a Value,
        resolvers: &[(crate::plan::BindingId, usize)],
    ) -> Result<(), Bubble> {
        let (tname, resolver) = match fed.route(rep) {
            Ok(routed) => routed,
            Err(e) => {
                let e = FieldError::new(e.to_string(), f.pos, self.response_path(), "INVALID_REPRESENTATION");
                self.errors.push(e);
                return Err(Bubble);
            }
        };
        if let Some(object) = reps.owned(rep) {
            return self.object(sub, tname, Some(object));
        }
        let Some(r) = resolver else {
            return self.object(sub, tname, Some(rep));
        };
        let binding = self.plan.binding(r.binding);
        let slot = resolvers
            .iter()
            .find(|(b, _)| *b == r.binding)
            .map_or(usize::MAX, |(_, s)| *s);
        let name = &self.plan.backend(binding.backend).name;
        let outer = self.backend.replace(name);
        let (resolved, stale_after) = self.fetched.resolve(binding, slot, Some(rep));
        if let Some(e) = stale_after {
            let err = backend_error(e, name, f.pos, self.response_path(), true);
            self.errors.push(err);
        }
        let written = match resolved {
            Resolved::Value(Some(v)) if !v.is_null() => self.object(sub, tname, Some(&v)),
            Resolved::Items(items) if !items.is_empty() => self.object(sub, tname, Some(&items[0])),
            Resolved::Value(_) | Resolved::Items(_) => {
                let message = format!("no `{tname}` matches this representation's key");
                let e = FieldError::new(message, f.pos, self.response_path(), ENTITY_NOT_FOUND);
                self.errors.push(e);
                Err(Bubble)
            }
            Resolved::Mismatch(message) => {
                self.error(f, message);
                Err(Bubble)
            }
            Resolved::Error(e) => {
                let (err, _) = call_error(binding, e, name, f.pos, self.response_path(), false);
                self.errors.push(err);
                Err(Bubble)
            }
        };
        self.backend = outer;
        written
    }

    fn call_field(
        &mut self,
        f: &'a FieldPlan,
        binding: &'a crate::plan::Binding,
        slot: usize,
        parent: Option<&Value>,
    ) -> Result<(), Bubble> {
        let (resolved, stale_after) = self.fetched.resolve(binding, slot, parent);
        if let Some(e) = stale_after {
            // A stale answer stands in for the failed call: the error says so.
            let name = &self.plan.backend(binding.backend).name;
            let err = backend_error(e, name, f.pos, self.response_path(), true);
            self.errors.push(err);
        }
        match resolved {
            Resolved::Value(v) => self.value(f, &f.ty, v.as_deref()),
            Resolved::Items(items) => self.nullable(&f.ty, |w| {
                let inner = match &f.ty.base {
                    BaseType::List(inner) => inner.as_ref(),
                    BaseType::Named(_) => &f.ty,
                };
                w.list(f, inner, items.iter().map(|v| &**v))
            }),
            Resolved::Mismatch(message) => {
                self.error(f, message);
                self.null_or_bubble(&f.ty)
            }
            Resolved::Error(e) => {
                let name = &self.plan.backend(binding.backend).name;
                let (err, declared) = call_error(binding, e, name, f.pos, self.response_path(), f.fallback.is_some());
                self.errors.push(err);
                match &f.fallback {
                    Some(value) if !declared => self.value(f, &f.ty, Some(value)),
                    _ => self.null_or_bubble(&f.ty),
                }
            }
        }
    }

    fn null_or_bubble(&mut self, ty: &Type) -> Result<(), Bubble> {
        if ty.nullable {
            self.out.extend_from_slice(b"null");
            Ok(())
        } else {
            Err(Bubble)
        }
    }

    /// Runs `write`; if it fails and `ty` is nullable, replaces what it wrote with `null`.
    fn nullable(&mut self, ty: &Type, write: impl FnOnce(&mut Self) -> Result<(), Bubble>) -> Result<(), Bubble> {
        let start = self.out.len();
        match write(self) {
            Err(Bubble) if ty.nullable => {
                self.out.truncate(start);
                self.out.extend_from_slice(b"null");
                Ok(())
            }
            r => r,
        }
    }

    fn value(&mut self, f: &'a FieldPlan, ty: &Type, v: Option<&Value>) -> Result<(), Bubble> {
        let v = match v {
            Some(v) if !v.is_null() => v,
            _ => {
                if ty.nullable {
                    self.out.extend_from_slice(b"null");
                    return Ok(());
                }
                self.error(f, null_in_non_null(&f.parent_type, &f.field_name));
                return Err(Bubble);
            }
        };
        self.nullable(ty, |w| match &ty.base {
            BaseType::List(inner) => match v {
                Value::Array(items) => w.list(f, inner, items.iter()),
                other => {
                    w.error(f, not_a_list(&f.parent_type, &f.field_name, other));
                    Err(Bubble)
                }
            },
            BaseType::Named(_) => match &f.output {
                Output::Leaf(kind) => match coerce_leaf(kind, v) {
                    Ok(LeafOut::Same(v)) => {
                        write_leaf(&mut w.out, v);
                        Ok(())
                    }
                    Ok(LeafOut::Text(s)) => {
                        write_json_str(&mut w.out, &s);
                        Ok(())
                    }
                    Ok(LeafOut::Number(n)) => {
                        w.out.extend_from_slice(n.to_string().as_bytes());
                        Ok(())
                    }
                    Err(e) => {
                        w.error(f, e.0);
                        Err(Bubble)
                    }
                },
                Output::Composite(_, sub) if sub.is_object => w.object(sub, &sub.type_name, Some(v)),
                Output::Composite(tname, sub) => match w.plan.concrete_type(tname, v) {
                    Some(concrete) => w.object(sub, concrete, Some(v)),
                    None => {
                        w.error(f, unknown_concrete_type(&f.parent_type, &f.field_name, tname));
                        Err(Bubble)
                    }
                },
            },
        })
    }

    fn list<'v>(
        &mut self,
        f: &'a FieldPlan,
        inner: &Type,
        items: impl Iterator<Item = &'v Value>,
    ) -> Result<(), Bubble> {
        self.out.push(b'[');
        let mut failed = false;
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.path.push(Seg::Index(i));
            if self.value(f, inner, Some(item)).is_err() {
                failed = true;
            }
            self.path.pop();
        }
        self.out.push(b']');
        if failed {
            Err(Bubble)
        } else {
            Ok(())
        }
    }
}

/// A coerced leaf, written as JSON.
#[inline]
fn write_leaf(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::String(s) => write_json_str(out, s),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        // Custom scalars: any JSON, written as it is.
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}
