//! OpenAPI `links` as nested fields: a link on an operation's answer names another `GET`
//! operation (`operationId`, or `operationRef` within the document) and where its parameters
//! come from. Values read from the answer's body (`$response.body#/customer_id`) become keys of
//! the parent: with one such value for one path parameter the field is a fan-out (one call per
//! distinct key per level, no N+1); otherwise each parent makes its call with
//! `{{parent.KEY}}` templates. Constants are written in. Values taken from the request
//! (`$request.path.id`) cannot be read from the parent: such links are skipped, with a note.

use serde_json::{Map, Value};

use super::model::{gql_string, ObjectField, Registry};
use super::names;
use super::relations::{How, Relation};

/// A link found on an operation's answer, resolved once every operation is known.
pub struct Pending {
    pub backend: String,
    /// The object type of the answer the link is on.
    pub owner: String,
    pub name: String,
    pub link: Value,
    /// The operation it is on, for notes.
    pub from: String,
}

/// A `GET` operation a link may name.
pub struct Target {
    pub backend: String,
    pub operation_id: Option<String>,
    /// `#/paths/<escaped path>/get`, how `operationRef` names it.
    pub reference: String,
    pub path: String,
    /// (name, place) of its parameters; required ones flagged.
    pub params: Vec<(String, String, bool)>,
    /// Its field's type and `select`.
    pub ty: String,
    pub select: Option<String>,
}

/// `#/customer/id` → `customer.id` (a path of the parent's backend JSON).
fn pointer_to_path(pointer: &str) -> Option<String> {
    let steps: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let plain = steps
        .iter()
        .all(|s| !s.is_empty() && (names::legal(s) || s.chars().all(|c| c.is_ascii_digit())));
    (plain && !steps.is_empty()).then(|| steps.join("."))
}

/// Adds the links to their owners' types; what could not be followed goes to `notes`.
pub fn follow(reg: &mut Registry, pending: &[Pending], targets: &[Target], notes: &mut Vec<String>) -> Vec<Relation> {
    let mut found = Vec::new();
    for p in pending {
        let by_id = p.link.get("operationId").and_then(Value::as_str);
        let by_ref = p.link.get("operationRef").and_then(Value::as_str);
        let target = targets.iter().find(|t| {
            t.backend == p.backend
                && (by_id.is_some() && t.operation_id.as_deref() == by_id
                    || by_ref.is_some_and(|r| r.ends_with(&t.reference)))
        });
        let Some(target) = target else {
            notes.push(format!(
                "{}: link `{}` of {}: its operation is not a bound GET",
                p.backend, p.name, p.from
            ));
            continue;
        };
        let given = p
            .link
            .get("parameters")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        match directive(target, &given) {
            Ok((directive, how)) => {
                let Some(fields) = reg.object_mut(&p.owner) else {
                    continue;
                };
                let Some(field) = names::field(&p.name).filter(|n| !fields.iter().any(|f| &f.name == n)) else {
                    notes.push(format!(
                        "{}: link `{}` of {}: its name is taken in {}",
                        p.backend, p.name, p.from, p.owner
                    ));
                    continue;
                };
                fields.push(ObjectField {
                    name: field.clone(),
                    wire: String::new(),
                    ty: target.ty.trim_end_matches('!').to_string() + if target.ty.starts_with('[') { "!" } else { "" },
                    description: p.link.get("description").and_then(Value::as_str).map(str::to_string),
                    directive: Some(directive),
                    note: Some(format!("OpenAPI link `{}` to GET {}", p.name, target.path)),
                });
                found.push(Relation {
                    owner: p.owner.clone(),
                    field,
                    target: super::emit::named(&target.ty).to_string(),
                    how,
                });
            }
            Err(why) => notes.push(format!("{}: link `{}` of {}: {why}", p.backend, p.name, p.from)),
        }
    }
    found
}

/// The `@http` of a link's field.
fn directive(target: &Target, given: &Map<String, Value>) -> Result<(String, How), String> {
    // Each parameter: a key of the parent (from the answer's body) or a constant.
    enum Source {
        Parent(String),
        Constant(String),
    }
    let mut sources = Vec::new();
    for (name, place, required) in &target.params {
        let value = given.get(name).or_else(|| given.get(&format!("{place}.{name}")));
        let Some(value) = value else {
            if *required {
                return Err(format!("it gives no value for the required parameter `{name}`"));
            }
            continue;
        };
        let source = match value {
            Value::String(s) if s.starts_with("$response.body#") => {
                let pointer = s.trim_start_matches("$response.body#");
                Source::Parent(pointer_to_path(pointer).ok_or(format!("`{s}` is not a plain path"))?)
            }
            Value::String(s) if s.starts_with('$') => {
                return Err(format!(
                    "`{s}` is not in the answer (only `$response.body#/...` can be read from the parent)"
                ))
            }
            Value::String(s) => Source::Constant(s.clone()),
            other => Source::Constant(other.to_string()),
        };
        sources.push((name.clone(), place.clone(), source));
    }
    let from_parent: Vec<&(String, String, Source)> = sources
        .iter()
        .filter(|(_, _, s)| matches!(s, Source::Parent(_)))
        .collect();
    let fanout = match from_parent.as_slice() {
        [(name, place, Source::Parent(key))] if place == "path" => Some((name.clone(), key.clone())),
        _ => None,
    };
    let mut path = target.path.clone();
    let mut query = Vec::new();
    for (name, place, source) in &sources {
        let value = match (source, &fanout) {
            (Source::Parent(_), Some(_)) => "{{key}}".to_string(),
            (Source::Parent(key), None) => format!("{{{{parent.{key}}}}}"),
            (Source::Constant(c), _) => c.clone(),
        };
        match place.as_str() {
            "path" => path = path.replace(&format!("{{{name}}}"), &value),
            "query" => query.push(format!("{{name: {}, value: {}}}", gql_string(name), gql_string(&value))),
            _ => {
                return Err(format!(
                    "parameter `{name}` is in the {place} (only path and query are followed)"
                ))
            }
        }
    }
    let mut out = format!(
        "@http(backend: {}, path: {}",
        gql_string(&target.backend),
        gql_string(&path)
    );
    if !query.is_empty() {
        out.push_str(&format!(", query: [{}]", query.join(", ")));
    }
    if let Some(select) = &target.select {
        out.push_str(&format!(", select: {}", gql_string(select)));
    }
    let how = match &fanout {
        Some((_, key)) => {
            out.push_str(&format!(", fanout: {{from: {}}}", gql_string(key)));
            How::FanOut
        }
        None => How::PerParent,
    };
    out.push(')');
    Ok((out, how))
}

#[cfg(test)]
mod tests {
    use super::pointer_to_path;

    #[test]
    fn body_pointers_are_parent_paths() {
        assert_eq!(pointer_to_path("/customer_id").as_deref(), Some("customer_id"));
        assert_eq!(pointer_to_path("/owner/id").as_deref(), Some("owner.id"));
        assert_eq!(pointer_to_path("/items/0/id").as_deref(), Some("items.0.id"));
        assert_eq!(pointer_to_path("/odd key"), None);
        assert_eq!(pointer_to_path(""), None);
    }
}
