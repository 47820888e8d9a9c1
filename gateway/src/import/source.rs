//! OpenAPI documents read as JSON values: files or URLs, JSON or YAML, OpenAPI 3.0 and 3.1 as
//! they are, Swagger 2.0 converted to the 3.x shapes the importer reads; `$ref`s followed within
//! the document and into relative files.
//!
//! Read as `serde_json::Value` rather than through a typed model (`openapiv3`, evaluated): it
//! covers 3.0 only, and refuses whole documents for the small deviations real ones have (a
//! `type` given as a list, an `example` of the wrong type, an unknown key); the importer reads
//! what it understands and says in its summary what it skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::ImportError;

/// One document and where it came from (for relative `$ref`s).
pub struct Document {
    pub origin: String,
    pub root: Value,
    /// The folder relative references are read from (files only).
    base: Option<PathBuf>,
    /// Other files that references named, read once.
    external: HashMap<PathBuf, Value>,
}

/// Reads `input`: a path, or an `http(s)://` URL (fetched by the caller and given as text).
pub fn parse(origin: &str, text: &str, base: Option<PathBuf>) -> Result<Document, ImportError> {
    let root = parse_text(origin, text)?;
    let root = if root
        .get("swagger")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with('2'))
    {
        swagger2::convert(root)
    } else if root.get("openapi").is_some() {
        root
    } else {
        return Err(ImportError::NotOpenApi(origin.to_string()));
    };
    Ok(Document {
        origin: origin.to_string(),
        root,
        base,
        external: HashMap::new(),
    })
}

fn parse_text(origin: &str, text: &str) -> Result<Value, ImportError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(text).map_err(|e| ImportError::Parse {
            origin: origin.to_string(),
            reason: e.to_string(),
        });
    }
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| ImportError::Parse {
        origin: origin.to_string(),
        reason: e.to_string(),
    })
}

/// Reads a local file.
pub fn read_file(path: &Path) -> Result<Document, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| ImportError::Read {
        origin: path.display().to_string(),
        reason: e.to_string(),
    })?;
    parse(&path.display().to_string(), &text, path.parent().map(Path::to_path_buf))
}

/// Where a reference points: a file (`None`: this document) and a JSON pointer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target {
    pub file: Option<PathBuf>,
    pub pointer: String,
}

impl Target {
    /// The last step of the pointer: the name of what it points at (`Account`).
    pub fn name(&self) -> &str {
        self.pointer.rsplit('/').next().unwrap_or_default()
    }
}

impl Document {
    /// Where `reference` points, relative to the document it is read in (`from`).
    pub fn target(&self, reference: &str, from: Option<&Path>) -> Target {
        let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let file = (!file.is_empty()).then(|| {
            let dir = from
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .or_else(|| self.base.clone())
                .unwrap_or_default();
            dir.join(file)
        });
        Target {
            file: file.or_else(|| from.map(Path::to_path_buf)),
            pointer: pointer.to_string(),
        }
    }

    /// The value a target points at, loading its file the first time.
    pub fn resolve(&mut self, target: &Target) -> Option<Value> {
        let root = match &target.file {
            None => &self.root,
            Some(path) => {
                if !self.external.contains_key(path) {
                    let text = std::fs::read_to_string(path).ok()?;
                    let value = parse_text(&path.display().to_string(), &text).ok()?;
                    self.external.insert(path.clone(), value);
                }
                self.external.get(path)?
            }
        };
        root.pointer(&unescape_pointer(&target.pointer)).cloned()
    }

    /// An object member of the root (`paths`, `components`...), or an empty map.
    pub fn section(&self, key: &str) -> Map<String, Value> {
        self.root
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// JSON pointers in `$ref`s are URI fragments: `%7B` for `{`, and so on.
fn unescape_pointer(p: &str) -> String {
    percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape_pointer;

    #[test]
    fn pointers_are_percent_decoded_whatever_they_hold() {
        assert_eq!(unescape_pointer("/paths/~1a~1%7Bid%7D"), "/paths/~1a~1{id}");
        assert_eq!(unescape_pointer("/schemas/Caf%C3%A9"), "/schemas/Café");
        assert_eq!(unescape_pointer("/schemas/Café%"), "/schemas/Café%");
        assert_eq!(unescape_pointer("/schemas/%é"), "/schemas/%é");
    }
}

/// Swagger 2.0 → the 3.x shapes the importer reads: `definitions` as `components.schemas`,
/// `host`/`basePath`/`schemes` as `servers`, body and form parameters as request bodies,
/// responses' `schema` under `content`, security definitions as security schemes.
mod swagger2 {
    use serde_json::{json, Map, Value};

    pub fn convert(mut doc: Value) -> Value {
        let text = doc.to_string().replace("#/definitions/", "#/components/schemas/");
        doc = serde_json::from_str(&text).unwrap_or(doc);
        let mut out = Map::new();
        out.insert("openapi".into(), json!("3.0.0"));
        out.insert("info".into(), doc.get("info").cloned().unwrap_or(json!({})));
        if let Some(host) = doc.get("host").and_then(Value::as_str) {
            let scheme = doc
                .get("schemes")
                .and_then(Value::as_array)
                .and_then(|s| s.first())
                .and_then(Value::as_str)
                .unwrap_or("https");
            let base = doc.get("basePath").and_then(Value::as_str).unwrap_or("");
            out.insert("servers".into(), json!([{ "url": format!("{scheme}://{host}{base}") }]));
        }
        let mut components = Map::new();
        components.insert("schemas".into(), doc.get("definitions").cloned().unwrap_or(json!({})));
        if let Some(sec) = doc.get("securityDefinitions").and_then(Value::as_object) {
            let schemes: Map<String, Value> = sec
                .iter()
                .map(|(k, v)| {
                    let converted = match v.get("type").and_then(Value::as_str) {
                        Some("basic") => json!({"type": "http", "scheme": "basic"}),
                        Some("apiKey") => v.clone(),
                        _ => v.clone(),
                    };
                    (k.clone(), converted)
                })
                .collect();
            components.insert("securitySchemes".into(), Value::Object(schemes));
        }
        let consumes = doc.get("consumes").cloned();
        let mut paths = Map::new();
        for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let Some(item) = item.as_object() else { continue };
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut new_item = Map::new();
            for (method, op) in item {
                let Some(op) = op.as_object() else { continue };
                if method == "parameters" {
                    continue;
                }
                new_item.insert(method.clone(), operation(op, &shared, consumes.as_ref()));
            }
            paths.insert(path.clone(), Value::Object(new_item));
        }
        out.insert("paths".into(), Value::Object(paths));
        out.insert("components".into(), Value::Object(components));
        if let Some(s) = doc.get("security") {
            out.insert("security".into(), s.clone());
        }
        Value::Object(out)
    }

    fn operation(op: &Map<String, Value>, shared: &[Value], consumes: Option<&Value>) -> Value {
        let mut out = op.clone();
        let mut params = Vec::new();
        let mut body = None;
        let mut form = Map::new();
        let mut form_required = false;
        for p in shared
            .iter()
            .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
        {
            match p.get("in").and_then(Value::as_str) {
                Some("body") => body = p.get("schema").cloned(),
                Some("formData") => {
                    form_required |= p.get("required").and_then(Value::as_bool).unwrap_or(false);
                    if let Some(name) = p.get("name").and_then(Value::as_str) {
                        form.insert(name.to_string(), schema_of(p));
                    }
                }
                _ => {
                    let mut q = p.as_object().cloned().unwrap_or_default();
                    let schema = schema_of(p);
                    for k in ["type", "format", "items", "enum", "default", "collectionFormat"] {
                        q.remove(k);
                    }
                    if p.get("collectionFormat").and_then(Value::as_str) == Some("csv") {
                        q.insert("style".into(), json!("form"));
                        q.insert("explode".into(), json!(false));
                    }
                    q.insert("schema".into(), schema);
                    params.push(Value::Object(q));
                }
            }
        }
        out.insert("parameters".into(), Value::Array(params));
        let consumes = op.get("consumes").or(consumes);
        let json_body = consumes
            .and_then(Value::as_array)
            .is_none_or(|c| c.iter().any(|c| c.as_str().is_some_and(|c| c.contains("json"))));
        if let Some(schema) = body {
            let media = if json_body {
                "application/json"
            } else {
                "application/xml"
            };
            out.insert(
                "requestBody".into(),
                json!({"required": true, "content": {media: {"schema": schema}}}),
            );
        } else if !form.is_empty() {
            let multipart = consumes
                .and_then(Value::as_array)
                .is_some_and(|c| c.iter().any(|c| c.as_str().is_some_and(|c| c.contains("multipart"))));
            let media = if multipart {
                "multipart/form-data"
            } else {
                "application/x-www-form-urlencoded"
            };
            out.insert(
                "requestBody".into(),
                json!({"required": form_required, "content": {media: {"schema": {"type": "object", "properties": form}}}}),
            );
        }
        if let Some(responses) = op.get("responses").and_then(Value::as_object) {
            let converted: Map<String, Value> = responses
                .iter()
                .map(|(code, r)| {
                    let mut r = r.as_object().cloned().unwrap_or_default();
                    if let Some(schema) = r.remove("schema") {
                        r.insert("content".into(), json!({"application/json": {"schema": schema}}));
                    }
                    (code.clone(), Value::Object(r))
                })
                .collect();
            out.insert("responses".into(), Value::Object(converted));
        }
        out.remove("consumes");
        out.remove("produces");
        Value::Object(out)
    }

    fn schema_of(p: &Value) -> Value {
        let mut s = Map::new();
        for k in ["type", "format", "items", "enum", "default"] {
            if let Some(v) = p.get(k) {
                s.insert(k.into(), v.clone());
            }
        }
        Value::Object(s)
    }
}
