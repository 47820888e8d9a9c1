//! An operation's request: path, query and header parameters as arguments and templates, the
//! JSON body as one `input` argument.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::model::{text_of, Def, Mode, Ty};
use super::names::{self, Scope};
use super::operations::{json_media, Arg, ListStyle, Param};
use super::types::Builder;

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

/// A path's `{name}` parameters.
pub fn path_params(path: &str) -> Vec<String> {
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

/// One operation of a document, where it is.
pub struct Operation<'a> {
    pub path: &'a str,
    pub method: &'a str,
    pub op: &'a Value,
    /// The path item's parameters, shared by its operations.
    pub shared: &'a [Value],
    /// The file it is in (for relative references).
    pub file: Option<PathBuf>,
}

/// What an operation's request became.
pub struct Request {
    pub args: Vec<Arg>,
    /// The path template (`/accounts/{{args.id}}`).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// The query parameters, for relations.
    pub params: Vec<Param>,
    /// The path's parameters as the document writes them.
    pub path_params: Vec<String>,
    /// The path as the document writes it, with only the `#fragment` cut (links fill it).
    pub path_template: String,
    /// Every parameter: (name, place, required), for links.
    pub declared: Vec<(String, String, bool)>,
}

/// The arguments and templates of an operation; `Err(why)` when it cannot be called (a required
/// parameter or body GraphQL cannot carry).
pub fn request(
    b: &mut Builder,
    at: &Operation<'_>,
    type_hint: &str,
    notes: &mut Vec<String>,
) -> Result<Request, String> {
    let Operation {
        path,
        method,
        op,
        shared,
        file,
    } = at;
    let (path, method, op, shared, file) = (*path, *method, *op, *shared, file.clone());
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
        let style = p
            .get("style")
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
        let name = arg_names.claim(&names::field(wire).ok_or(format!("path parameter `{wire}` has no usable name"))?);
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
                    let shape = b.shape(&schema, type_hint, Mode::Input, rbfile, 0);
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
    let declared = params
        .iter()
        .filter_map(|(p, _)| {
            let name = p.get("name").and_then(Value::as_str)?;
            let place = p.get("in").and_then(Value::as_str).unwrap_or("query");
            let required = place == "path" || p.get("required").and_then(Value::as_bool).unwrap_or(false);
            Some((name.to_string(), place.to_string(), required))
        })
        .collect();
    Ok(Request {
        args,
        path_template: path.to_string(),
        declared,
        path: path_t,
        query,
        headers,
        body,
        params: endpoint_params,
        path_params: declared_path,
    })
}
