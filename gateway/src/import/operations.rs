//! Operations of a document turned into root fields: `GET` → `Query`, the rest → `Mutation`,
//! each bound with `@http`; parameters → arguments, the JSON request body → an `input`
//! argument, the 2xx JSON answer → the field's type (envelopes unwrapped with `select`).

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::answers::{answer, declared_errors};
use super::model::{gql_string, text_of, Ty};
use super::names::{self, Scope};
use super::params::{request, Operation};
use super::types::Builder;
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
    /// Links on answers, followed once every operation is known.
    pub links: Vec<super::links::Pending>,
    /// The `GET` operations links may name.
    pub targets: Vec<super::links::Target>,
    /// Backends with operations that answer JSON among other types.
    pub negotiating: std::collections::BTreeSet<String>,
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
pub fn json_media(content: &Map<String, Value>) -> Option<&Value> {
    let key = content
        .keys()
        .find(|k| k.split(';').next() == Some("application/json"))
        .or_else(|| content.keys().find(|k| k.contains("json")))
        .or_else(|| content.keys().find(|k| k.starts_with("*/*")))?;
    content.get(key)
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

/// The `links` of an operation's 2xx answer, each followed through `$ref`.
fn links_of(b: &mut Builder, op: &Value, file: Option<PathBuf>) -> Option<Vec<(String, Value)>> {
    let responses = op.get("responses")?.as_object()?;
    let mut codes: Vec<&String> = responses.keys().filter(|c| c.starts_with('2')).collect();
    codes.sort();
    let (resp, rfile, _) = b.deref(responses.get(codes.first()?.as_str())?, file);
    let links = resp.get("links")?.as_object()?.clone();
    let out: Vec<(String, Value)> = links
        .iter()
        .map(|(name, l)| (name.clone(), b.deref(l, rfile.clone()).0))
        .collect();
    (!out.is_empty()).then_some(out)
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

        let at = Operation {
            path,
            method,
            op,
            shared,
            file: file.clone(),
        };
        let req = request(b, &at, &type_hint, &mut notes)?;

        let mut asks_json = false;
        let (shape, select) = answer(b, op, file.clone(), &type_hint, &mut notes, &mut asks_json)?;
        if asks_json {
            self.negotiating.insert(b.backend.to_string());
        }
        let list = matches!(shape.ty, Ty::List(..));
        let ty = shape.ty.render(list);
        let file_for_links = file.clone();
        let errors = declared_errors(b, op, root, file);

        let mut http = format!("@http(backend: {}", gql_string(b.backend));
        if method != "get" {
            http.push_str(&format!(", method: {}", method.to_ascii_uppercase()));
        }
        http.push_str(&format!(", path: {}", gql_string(&req.path)));
        if !req.query.is_empty() {
            http.push_str(&format!(", query: {}", entries(&req.query)));
        }
        if !req.headers.is_empty() {
            http.push_str(&format!(", headers: {}", entries(&req.headers)));
        }
        if let Some(body) = &req.body {
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
        if method == "get" {
            self.targets.push(super::links::Target {
                backend: b.backend.to_string(),
                operation_id: op.get("operationId").and_then(Value::as_str).map(str::to_string),
                reference: format!("#/paths/{}/get", path.replace('~', "~0").replace('/', "~1")),
                path: req.path_template.clone(),
                params: req.declared.clone(),
                ty: ty.clone(),
                select: select.clone(),
            });
        }
        // Links on the answer, when it is one object.
        if let (Some(owner), Some(links)) = (
            (!list && b.reg.object(shape.ty.named()).is_some()).then(|| shape.ty.named().to_string()),
            links_of(b, op, file_for_links.clone()),
        ) {
            for (name, link) in links {
                self.links.push(super::links::Pending {
                    backend: b.backend.to_string(),
                    owner: owner.clone(),
                    name,
                    link,
                    from: format!("{} {path}", method.to_ascii_uppercase()),
                });
            }
        }
        if method == "get" && b.reg.object(shape.ty.named()).is_some() {
            self.endpoints.push(Endpoint {
                backend: b.backend.to_string(),
                path: path.to_string(),
                path_params: req.path_params,
                params: req.params,
                returns: shape.ty.named().to_string(),
                list,
                select: select.clone(),
            });
        }
        self.fields.push(RootField {
            root,
            name,
            description,
            args: req.args,
            ty,
            http,
            notes,
            deprecated,
            backend: b.backend.to_string(),
        });
        Ok(())
    }
}
