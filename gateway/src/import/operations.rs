//! Operations of a document turned into root fields: `GET` → `Query`, the rest → `Mutation`,
//! each bound with `@http`; parameters → arguments, the JSON request body → an `input`
//! argument, the 2xx JSON answer → the field's type (envelopes unwrapped with `select`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::names::{self, Scope};
use super::types::{gql_string, jq_key, text_of, Builder, Def, Mode, Shape, Ty};
use super::Skipped;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Root {
    Query,
    Mutation,
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: String,
    pub ty: String,
    pub default: Option<String>,
    pub description: Option<String>,
}

/// A generated field of `Query` or `Mutation`.
#[derive(Clone, Debug)]
pub struct RootField {
    pub root: Root,
    pub name: String,
    pub description: Option<String>,
    pub args: Vec<Arg>,
    pub ty: String,
    pub http: String,
    pub notes: Vec<String>,
    pub deprecated: Option<String>,
    pub backend: String,
}

/// How a query parameter carries a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStyle {
    /// `?id=1&id=2`
    Repeat,
    /// `?ids=1,2`
    Comma,
}

/// A query parameter, as relations need it.
#[derive(Clone, Debug)]
pub struct Param {
    pub wire: String,
    pub list: Option<ListStyle>,
    pub required: bool,
}

/// A `GET` operation returning objects, as relations need it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub backend: String,
    pub path: String,
    pub path_params: Vec<String>,
    pub params: Vec<Param>,
    /// The object type of the answer (or of its items).
    pub returns: String,
    pub list: bool,
    pub select: Option<String>,
}

/// Root fields, endpoints and what was skipped, for all documents.
#[derive(Default)]
pub struct Operations {
    pub fields: Vec<RootField>,
    pub endpoints: Vec<Endpoint>,
    pub query_names: Scope,
    pub mutation_names: Scope,
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// Paths that are the service's plumbing, not its API.
fn operational(path: &str) -> bool {
    let p = path.trim_end_matches('/').to_ascii_lowercase();
    p.starts_with("/_")
        || matches!(
            p.rsplit('/').next().unwrap_or(""),
            "health" | "healthz" | "livez" | "readyz" | "ready" | "alive" | "ping" | "metrics"
        ) && p.matches('/').count() == 1
}

/// A media type of `content` that is JSON, the plain one first.
fn json_media(content: &Map<String, Value>) -> Option<&Value> {
    let key = content
        .keys()
        .find(|k| k.split(';').next() == Some("application/json"))
        .or_else(|| content.keys().find(|k| k.contains("json")))
        .or_else(|| content.keys().find(|k| k.starts_with("*/*")))?;
    content.get(key)
}

/// Headers the gateway or the backend's config owns, never arguments.
fn owned_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "authorization"
            | "accept"
            | "content-type"
            | "content-length"
            | "user-agent"
            | "host"
            | "cookie"
            | "connection"
    )
}

/// Verbs that make a `POST` a read (RPC-style APIs: `DescribeInstances`, `searchOrders`,
/// `records:queryRecord`), or a computation without effects (`comments:analyze`).
const READ_VERBS: &[&str] = &[
    "get",
    "list",
    "describe",
    "search",
    "find",
    "query",
    "fetch",
    "lookup",
    "retrieve",
    "read",
    "count",
    "compute",
    "calculate",
    "analyze",
    "check",
    "validate",
    "verify",
    "estimate",
    "detect",
    "predict",
    "classify",
    "translate",
    "convert",
];

/// Whether a `POST` reads, by its name: the last part of its operationId (`a.b.queryRecord`)
/// or of its path (`/v1/records:queryRecord`, `/search`) starts with a read verb.
fn post_reads(op: &Value, path: &str) -> bool {
    let from_id = op
        .get("operationId")
        .and_then(Value::as_str)
        .map(|id| id.rsplit(['.', ':', '/']).next().unwrap_or(id));
    let from_path = path
        .rsplit('/')
        .find(|s| !s.is_empty() && !s.starts_with('{'))
        .map(|s| s.rsplit(':').next().unwrap_or(s));
    [from_id, from_path]
        .into_iter()
        .flatten()
        .filter_map(names::field)
        .any(|name| {
            READ_VERBS.iter().any(|v| {
                name.strip_prefix(v)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()))
            })
        })
}

/// The name of an operation's field.
fn field_base(op: &Value, method: &str, path: &str) -> Option<String> {
    if let Some(id) = op.get("operationId").and_then(Value::as_str).and_then(names::field) {
        if method == "get" || (method == "post" && post_reads(op, path)) {
            for verb in ["get", "list", "fetch", "find", "read", "retrieve"] {
                if let Some(rest) = id.strip_prefix(verb) {
                    if rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                        return names::field(rest);
                    }
                }
            }
        }
        return Some(id);
    }
    let mut words = Vec::new();
    if method != "get" {
        words.push(method.to_string());
    }
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => words.push(format!("by {param}")),
            None => words.push(seg.to_string()),
        }
    }
    if words.is_empty() {
        words.push("root".into());
    }
    names::field(&words.join(" "))
}

/// A path's `{name}` parameters.
fn path_params(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let Some(end) = rest[start..].find('}') else { break };
        out.push(rest[start + 1..start + end].to_string());
        rest = &rest[start + end + 1..];
    }
    out
}

fn is_id_name(wire: &str) -> bool {
    let l = names::loose(wire);
    l == "id" || wire.ends_with("_id") || wire.ends_with("Id") || wire.ends_with("-id")
}

/// A `{...}` or `[...]` of template entries, the object form when every key is a GraphQL name.
fn entries(pairs: &[(String, String)]) -> String {
    if pairs.iter().all(|(k, _)| names::legal(k)) {
        let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {}", gql_string(v))).collect();
        format!("{{{}}}", inner.join(", "))
    } else {
        let inner: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{{name: {}, value: {}}}", gql_string(k), gql_string(v)))
            .collect();
        format!("[{}]", inner.join(", "))
    }
}

/// The message of an error body: the first string property with a usual name.
fn message_path(b: &mut Builder, schema: &Value, file: Option<PathBuf>) -> Option<String> {
    let (s, file, _) = b.deref(schema, file);
    let props = s.get("properties").and_then(Value::as_object)?;
    for key in [
        "message",
        "detail",
        "error_description",
        "error",
        "title",
        "msg",
        "description",
    ] {
        let Some(p) = props.get(key) else { continue };
        let (p, pfile, _) = b.deref(p, file.clone());
        if p.get("type").and_then(Value::as_str) == Some("string") {
            return Some(key.to_string());
        }
        if let Some(inner) = p
            .get("properties")
            .is_some()
            .then(|| message_path(b, &p, pfile))
            .flatten()
        {
            return Some(format!("{key}.{inner}"));
        }
    }
    None
}

impl Operations {
    /// Reads every operation of the builder's document.
    pub fn read(&mut self, b: &mut Builder, skipped: &mut Vec<Skipped>) {
        let paths = b.doc.section("paths");
        let mut sorted: Vec<(&String, &Value)> = paths.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (path, item) in sorted {
            let (item, ifile, _) = b.deref(item, None);
            let Some(item_map) = item.as_object() else { continue };
            let shared: Vec<Value> = item_map
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for method in METHODS {
                let Some(op) = item_map.get(*method) else { continue };
                let what = format!("{} {path}", method.to_ascii_uppercase());
                if operational(path) {
                    skipped.push(Skipped::new(
                        b.backend,
                        &what,
                        "an operational endpoint (health, admin)",
                    ));
                    continue;
                }
                if let Err(why) = self.operation(b, path, method, op, &shared, ifile.clone()) {
                    skipped.push(Skipped::new(b.backend, &what, &why));
                }
            }
            for other in ["head", "options", "trace"] {
                if item_map.contains_key(other) {
                    skipped.push(Skipped::new(
                        b.backend,
                        &format!("{} {path}", other.to_ascii_uppercase()),
                        "not a GraphQL operation",
                    ));
                }
            }
        }
    }

    fn operation(
        &mut self,
        b: &mut Builder,
        path: &str,
        method: &str,
        op: &Value,
        shared: &[Value],
        file: Option<PathBuf>,
    ) -> Result<(), String> {
        let base = field_base(op, method, path).ok_or("no usable name (operationId or path)")?;
        let reading_post = method == "post" && post_reads(op, path);
        let root = if method == "get" || reading_post {
            Root::Query
        } else {
            Root::Mutation
        };
        let type_hint = names::type_name(&base).unwrap_or_else(|| "Answer".into());
        let mut notes = Vec::new();
        if reading_post {
            notes.push("a POST that reads (its name says so): a Query field".into());
        }
        // A `#fragment` never reaches a server (some RPC-style documents put the action there).
        let path = match path.split_once('#') {
            Some((before, _)) => {
                notes.push(format!(
                    "`#{}` of the path left out (never sent)",
                    path.split_once('#').map(|x| x.1).unwrap_or("")
                ));
                before
            }
            None => path,
        };

        // Parameters: the operation's own win over the path item's (same name and place).
        let mut params: Vec<(Value, Option<PathBuf>)> = Vec::new();
        for p in shared
            .iter()
            .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
        {
            let (p, pfile, _) = b.deref(p, file.clone());
            let key = (p.get("name").cloned(), p.get("in").cloned());
            params.retain(|(q, _)| (q.get("name").cloned(), q.get("in").cloned()) != key);
            params.push((p, pfile));
        }
        let mut arg_names = Scope::default();
        let mut args = Vec::new();
        let mut path_t = path.to_string();
        let mut query = Vec::new();
        let mut headers = Vec::new();
        let mut endpoint_params = Vec::new();
        let declared_path: Vec<String> = path_params(path);
        let mut seen_path = BTreeSet::new();
        for (p, pfile) in &params {
            let Some(wire) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            let place = p.get("in").and_then(Value::as_str).unwrap_or("query");
            let required = place == "path" || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            if place == "header" && owned_header(wire) {
                continue;
            }
            if place == "cookie" {
                if required {
                    return Err(format!("needs cookie parameter `{wire}`"));
                }
                notes.push(format!("cookie parameter `{wire}` left out"));
                continue;
            }
            let schema = p
                .get("schema")
                .cloned()
                .or_else(|| {
                    p.get("content")
                        .and_then(Value::as_object)
                        .and_then(json_media)
                        .and_then(|m| m.get("schema"))
                        .cloned()
                })
                .unwrap_or(Value::Null);
            let hint = format!("{type_hint}{}", names::type_name(wire).unwrap_or_default());
            let shape = b.shape(&schema, &hint, Mode::Input, pfile.clone(), 0);
            let (resolved, ..) = b.deref(&schema, pfile.clone());
            let style =
                p.get("style")
                    .and_then(Value::as_str)
                    .unwrap_or(if place == "query" { "form" } else { "simple" });
            let explode = p.get("explode").and_then(Value::as_bool).unwrap_or(style == "form");
            let is_list = matches!(shape.ty, Ty::List(..));
            let is_object = b
                .reg
                .types
                .get(shape.ty.named())
                .is_some_and(|t| matches!(t.def, Def::Input(_)))
                || shape.ty.named() == "JSON";
            if is_object || (is_list && !matches!(style, "form" | "simple")) {
                if required {
                    return Err(format!(
                        "parameter `{wire}` is an object or a `{style}` list (not supported)"
                    ));
                }
                notes.push(format!("parameter `{wire}` left out: an object or a `{style}` list"));
                continue;
            }
            let Some(base) = names::field(wire) else {
                if required {
                    return Err(format!("parameter `{wire}` has no usable name"));
                }
                continue;
            };
            let name = arg_names.claim(&base);
            let mut ty = shape.ty.clone();
            if place == "path"
                && is_id_name(wire)
                && matches!(&ty, Ty::Named(n) if n == "String" || n == "Int" || n == "UUID")
            {
                ty = Ty::Named("ID".into());
            }
            let default = resolved
                .get("default")
                .or_else(|| p.get("default"))
                .and_then(|d| b.default(d, &ty));
            let non_null = required && default.is_none() && !shape.nullable;
            let csv = is_list && (!explode || style == "simple");
            let template = if csv {
                format!("{{{{args.{name} | csv}}}}")
            } else {
                format!("{{{{args.{name}}}}}")
            };
            match place {
                "path" => {
                    let needle = format!("{{{wire}}}");
                    if !path_t.contains(&needle) {
                        notes.push(format!("path parameter `{wire}` is not in the path"));
                    }
                    path_t = path_t.replace(&needle, &template);
                    seen_path.insert(wire.to_string());
                }
                "header" => headers.push((wire.to_string(), template)),
                _ => {
                    query.push((wire.to_string(), template));
                    endpoint_params.push(Param {
                        wire: wire.to_string(),
                        list: is_list.then_some(if csv { ListStyle::Comma } else { ListStyle::Repeat }),
                        required,
                    });
                }
            }
            args.push(Arg {
                name,
                ty: ty.render(non_null),
                default,
                description: text_of(p, &["description"]),
            });
        }
        // Path parameters the document forgot to declare.
        for wire in declared_path.iter().filter(|w| !seen_path.contains(*w)) {
            let name =
                arg_names.claim(&names::field(wire).ok_or(format!("path parameter `{wire}` has no usable name"))?);
            path_t = path_t.replace(&format!("{{{wire}}}"), &format!("{{{{args.{name}}}}}"));
            args.push(Arg {
                name,
                ty: "String!".into(),
                default: None,
                description: None,
            });
            notes.push(format!("path parameter `{wire}` is not declared: a String"));
        }

        // The request body.
        let mut body = None;
        if method != "get" {
            if let Some(rb) = op.get("requestBody") {
                let (rb, rbfile, _) = b.deref(rb, file.clone());
                let required = rb.get("required").and_then(Value::as_bool).unwrap_or(false);
                let content = rb
                    .get("content")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                match json_media(&content) {
                    Some(media) => {
                        let schema = media.get("schema").cloned().unwrap_or(Value::Null);
                        let shape = b.shape(&schema, &type_hint, Mode::Input, rbfile, 0);
                        let name = arg_names.claim("input");
                        if let Some(n) = shape.note {
                            notes.push(format!("{name}: {n}"));
                        }
                        args.push(Arg {
                            name: name.clone(),
                            ty: shape.ty.render(required && !shape.nullable),
                            default: None,
                            description: text_of(&rb, &["description"]),
                        });
                        body = Some(format!("{{{{args.{name}}}}}"));
                    }
                    None if content.is_empty() => {}
                    None => {
                        let kinds: Vec<&String> = content.keys().collect();
                        let kinds = kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ");
                        if required {
                            return Err(format!("its body is {kinds}, not JSON (not supported)"));
                        }
                        notes.push(format!("optional {kinds} body left out"));
                    }
                }
            }
        }

        // The answer.
        let responses = op
            .get("responses")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut codes: Vec<&String> = responses.keys().collect();
        codes.sort();
        let ok = codes.iter().find(|c| c.starts_with('2')).copied();
        let (shape, select) = match ok {
            None => {
                notes.push("no 2xx answer described: JSON".into());
                (Shape::json_named(b), None)
            }
            Some(code) => {
                let (resp, rfile, _) = b.deref(&responses[code.as_str()], file.clone());
                let content = resp
                    .get("content")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                match json_media(&content) {
                    Some(media) => {
                        let schema = media.get("schema").cloned().unwrap_or(Value::Null);
                        let mut shape = b.shape(&schema, &type_hint, Mode::Output, rfile, 0);
                        if let Some(n) = shape.note.take() {
                            notes.push(n);
                        }
                        let select = shape.select.take();
                        match select {
                            Some(s) => (shape, Some(s)),
                            None => match unwrap_envelope(b, &shape.ty) {
                                Some((ty, key, left_out)) => {
                                    notes.push(if left_out.is_empty() {
                                        format!("the answer's \"{key}\", unwrapped")
                                    } else {
                                        format!("the answer's \"{key}\", unwrapped ({} left out)", left_out.join(", "))
                                    });
                                    (Shape { ty, ..shape }, Some(key))
                                }
                                None => (shape, None),
                            },
                        }
                    }
                    None if content.is_empty() => (Shape::boolean(), Some(". | true".to_string())),
                    None => {
                        let kinds = content.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
                        if content.keys().any(|k| k.starts_with("text/event-stream")) {
                            return Err(
                                "a Server-Sent Events stream: bind it with @stream on a Subscription field".into(),
                            );
                        }
                        return Err(format!("answers {kinds}, not JSON"));
                    }
                }
            }
        };
        let list = matches!(shape.ty, Ty::List(..));
        let ty = shape.ty.render(list);

        // Declared client errors of writes: their messages are the client's business.
        let mut errors = None;
        if root == Root::Mutation {
            let mut statuses = Vec::new();
            let mut message = None;
            for code in &codes {
                let Ok(n) = code.parse::<u16>() else { continue };
                if (400..500).contains(&n) && n != 404 && n != 401 && n != 403 && n != 429 {
                    statuses.push(n);
                    if message.is_none() {
                        let (resp, rfile, _) = b.deref(&responses[code.as_str()], file.clone());
                        if let Some(media) = resp.get("content").and_then(Value::as_object).and_then(json_media) {
                            let schema = media.get("schema").cloned().unwrap_or(Value::Null);
                            message = message_path(b, &schema, rfile);
                        }
                    }
                }
            }
            if !statuses.is_empty() {
                let list: Vec<String> = statuses.iter().map(u16::to_string).collect();
                errors = Some(match message {
                    Some(m) => format!("[{{status: [{}], message: {}}}]", list.join(", "), gql_string(&m)),
                    None => format!("[{{status: [{}]}}]", list.join(", ")),
                });
            }
        }

        let mut http = format!("@http(backend: {}", gql_string(b.backend));
        if method != "get" {
            http.push_str(&format!(", method: {}", method.to_ascii_uppercase()));
        }
        http.push_str(&format!(", path: {}", gql_string(&path_t)));
        if !query.is_empty() {
            http.push_str(&format!(", query: {}", entries(&query)));
        }
        if !headers.is_empty() {
            http.push_str(&format!(", headers: {}", entries(&headers)));
        }
        if let Some(body) = &body {
            http.push_str(&format!(", body: {}", gql_string(body)));
        }
        if let Some(select) = &select {
            http.push_str(&format!(", select: {}", gql_string(select)));
        }
        if let Some(errors) = &errors {
            http.push_str(&format!(", errors: {errors}"));
        }
        http.push(')');

        let scope = match root {
            Root::Query => &mut self.query_names,
            Root::Mutation => &mut self.mutation_names,
        };
        let name = scope.claim(&base);
        let description = text_of(op, &["summary", "description"])
            .map(|d| format!("{d}\n\n`{} {path}`", method.to_ascii_uppercase()))
            .or_else(|| Some(format!("`{} {path}`", method.to_ascii_uppercase())));
        let deprecated = op
            .get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .then(|| "deprecated by the API".to_string());
        if method == "get" && b.reg.object(shape.ty.named()).is_some() {
            self.endpoints.push(Endpoint {
                backend: b.backend.to_string(),
                path: path.to_string(),
                path_params: declared_path,
                params: endpoint_params,
                returns: shape.ty.named().to_string(),
                list,
                select: select.clone(),
            });
        }
        self.fields.push(RootField {
            root,
            name,
            description,
            args,
            ty,
            http,
            notes,
            deprecated,
            backend: b.backend.to_string(),
        });
        Ok(())
    }
}

impl Shape {
    fn json_named(b: &mut Builder) -> Shape {
        b.reg.scalars.insert("JSON");
        Shape {
            ty: Ty::Named("JSON".into()),
            nullable: true,
            note: None,
            select: None,
        }
    }

    fn boolean() -> Shape {
        Shape {
            ty: Ty::Named("Boolean".into()),
            nullable: true,
            note: None,
            select: None,
        }
    }
}

/// An envelope: an object whose one list of objects is the point (the other keys scalars: a
/// count, a cursor), or an object with a single object in it (`{"data": {...}}`). Gives the
/// unwrapped type, the key, and the keys left out.
fn unwrap_envelope(b: &Builder, ty: &Ty) -> Option<(Ty, String, Vec<String>)> {
    let Ty::Named(name) = ty else { return None };
    let fields = b.reg.object(name)?;
    let object_like = |t: &str| {
        let named = t.trim_matches(|c| c == '[' || c == ']' || c == '!');
        b.reg.object(named).is_some()
    };
    let lists: Vec<_> = fields
        .iter()
        .filter(|f| f.ty.starts_with('[') && object_like(&f.ty))
        .collect();
    let objects: Vec<_> = fields
        .iter()
        .filter(|f| !f.ty.starts_with('[') && object_like(&f.ty))
        .collect();
    let to_ty = |t: &str| -> Ty {
        let named = t.trim_matches(|c| c == '[' || c == ']' || c == '!').to_string();
        if t.starts_with('[') {
            Ty::List(Box::new(Ty::Named(named)), t.trim_end_matches('!').ends_with("!]"))
        } else {
            Ty::Named(named)
        }
    };
    let key = |f: &super::types::ObjectField| {
        if names::legal(&f.wire) {
            f.wire.clone()
        } else {
            format!(".{}", jq_key(&f.wire))
        }
    };
    if lists.len() == 1 && objects.is_empty() {
        let f = lists[0];
        let left_out = fields
            .iter()
            .filter(|o| o.wire != f.wire)
            .map(|o| o.wire.clone())
            .collect();
        return Some((to_ty(&f.ty), key(f), left_out));
    }
    if fields.len() == 1 && objects.len() == 1 {
        let f = objects[0];
        return Some((to_ty(&f.ty), key(f), Vec::new()));
    }
    None
}
