//! What both executors put in a response besides data: located field errors, response paths and
//! the spec's null propagation.
//!
//! A field error carries a public message and code only (see [`FieldError`]); where an error's
//! null lands is decided by the nearest nullable position above it, which the executors track as
//! they go and record as a [`NullTarget`].

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;

/// One step of a response path.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSegment {
    Key(Arc<str>),
    Index(usize),
}

/// A position in the response (`["customers", 3, "name"]`).
pub type ResponsePath = Vec<PathSegment>;

/// A field error as clients see it: message, location in the query, path and extensions.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub path: ResponsePath,
    /// `extensions`, written with sorted keys.
    pub extensions: Vec<(&'static str, Value)>,
    /// A backend's client error the field declares (`errors:`): no fallback stands in for it.
    pub declared: bool,
}

impl FieldError {
    pub fn new(message: impl Into<String>, pos: (usize, usize), path: ResponsePath, code: &'static str) -> Self {
        Self {
            message: message.into(),
            line: pos.0,
            column: pos.1,
            path,
            extensions: vec![("code", Value::String(code.into()))],
            declared: false,
        }
    }

    /// Replaces the code (`extensions.code`).
    pub fn with_code(mut self, code: &str) -> Self {
        for (k, v) in &mut self.extensions {
            if *k == "code" {
                *v = Value::String(code.to_string());
            }
        }
        self
    }

    pub fn with_extension(mut self, key: &'static str, value: Value) -> Self {
        self.extensions.push((key, value));
        self.extensions.sort_by_key(|(k, _)| *k);
        self
    }

    /// The error as a JSON value (the shape async-graphql writes, keys in the same order).
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("message".into(), Value::String(self.message.clone()));
        map.insert(
            "locations".into(),
            serde_json::json!([{"line": self.line, "column": self.column}]),
        );
        map.insert("path".into(), path_json(&self.path));
        let ext: serde_json::Map<String, Value> = self
            .extensions
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        map.insert("extensions".into(), Value::Object(ext));
        Value::Object(map)
    }

    /// Appends the error's JSON to `out` (same bytes as serializing [`FieldError::to_json`] with
    /// insertion order kept).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"message\":");
        write_json_str(out, &self.message);
        let mut s = String::new();
        let _ = write!(
            s,
            ",\"locations\":[{{\"line\":{},\"column\":{}}}],\"path\":",
            self.line, self.column
        );
        out.extend_from_slice(s.as_bytes());
        out.push(b'[');
        for (i, seg) in self.path.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match seg {
                PathSegment::Key(k) => write_json_str(out, k),
                PathSegment::Index(n) => out.extend_from_slice(n.to_string().as_bytes()),
            }
        }
        out.extend_from_slice(b"],\"extensions\":{");
        for (i, (k, v)) in self.extensions.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(out, k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut *out, v);
        }
        out.extend_from_slice(b"}}");
    }
}

pub fn path_json(path: &ResponsePath) -> Value {
    Value::Array(
        path.iter()
            .map(|s| match s {
                PathSegment::Key(k) => Value::String(k.to_string()),
                PathSegment::Index(i) => Value::from(*i),
            })
            .collect(),
    )
}

/// Writes a JSON string literal.
#[inline]
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's escaper writes straight into the buffer; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Where a failed non-null position's null lands: the nearest nullable position at or above it,
/// or `None` when every position up to the root is non-null (then `data` is null).
pub type NullTarget = Option<ResponsePath>;

/// The message for a null (or missing) backend value in a non-null position.
pub fn null_in_non_null(type_name: &str, field: &str) -> String {
    format!("Cannot return null for non-nullable field {type_name}.{field}.")
}

/// Error code of a backend value that does not fit the schema.
pub const SCHEMA_MISMATCH: &str = "BACKEND_SCHEMA_MISMATCH";

/// The message for a backend value that should be a list but is not.
pub fn not_a_list(type_name: &str, field: &str, value: &Value) -> String {
    format!(
        "expected a list for {type_name}.{field} but the backend sent {}",
        crate::plan::coerce::short(value)
    )
}

/// The message for an interface or union value whose object type cannot be told.
pub fn unknown_concrete_type(type_name: &str, field: &str, abstract_type: &str) -> String {
    format!("the backend value for {type_name}.{field} has no known type of {abstract_type}")
}

/// The error a client sees for a failed backend call: public message and code, backend name, and
/// whether a fallback value was served in place of the answer.
pub fn backend_error(
    e: &crate::backend::CallError,
    backend: &str,
    pos: (usize, usize),
    path: ResponsePath,
    fallback: bool,
) -> FieldError {
    FieldError::new(e.public_message(backend), pos, path, e.public_code())
        .with_extension("backend", Value::String(backend.to_string()))
        .with_extension("fallback", Value::Bool(fallback))
}

/// The error for a failed call of `binding`, and whether the binding declared it: a 4xx answer
/// matching one of its `errors:` rules carries the reason read from the answer's body and the
/// declared code (the client's business: no fallback stands in for it); anything else is masked
/// as [`backend_error`] says.
pub fn call_error(
    binding: &crate::plan::Binding,
    e: &crate::backend::CallError,
    backend: &str,
    pos: (usize, usize),
    path: ResponsePath,
    fallback: bool,
) -> (FieldError, bool) {
    if let crate::backend::CallError::Status { status, body, .. } = e {
        if let Some(rule) = binding.errors.iter().find(|r| r.applies(*status)) {
            let reason = rule.message.as_ref().and_then(|m| {
                let value: Value = serde_json::from_str(body.as_deref()?).ok()?;
                match m.eval(&value, None).ok()??.as_ref() {
                    Value::String(s) if !s.is_empty() => Some(s.chars().take(1000).collect::<String>()),
                    Value::Null => None,
                    other => Some(crate::plan::coerce::short(other)),
                }
            });
            let message =
                reason.unwrap_or_else(|| format!("backend \"{backend}\" refused the request (status {status})"));
            let mut err = FieldError::new(message, pos, path, "BAD_USER_INPUT")
                .with_code(&rule.code)
                .with_extension("backend", Value::String(backend.to_string()))
                .with_extension("status", Value::from(*status));
            err.declared = true;
            return (err, true);
        }
    }
    (backend_error(e, backend, pos, path, fallback), false)
}
