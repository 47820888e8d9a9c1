//! Relations guessed between the generated types, so the facade nests and has no N+1:
//!
//! - A property naming another resource's id (`customer_id`, `fromAccountId`, `genre_ids`) next
//!   to `GET /customers/{id}` becomes a nested field (`customer`, `fromAccount`, `genres`),
//!   bound as a batch when the resource has a list endpoint taking many ids (an array query
//!   parameter, repeated or comma-separated), else as a fan-out (one call per distinct key).
//! - A list endpoint filtering by many ids of a resource (`GET /accounts?customer_ids=...`)
//!   whose items carry that id (`customer_id`) becomes a list field of the resource
//!   (`Customer.accounts`), batched.
//!
//! Only unambiguous matches are taken (one resource type per name); each is marked in the SDL.

use super::model::{gql_string, ObjectField, Registry};
use super::names;
use super::operations::{Endpoint, ListStyle, Operations};

/// How a relation's field calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Batch,
    FanOut,
    /// One call per parent (a link whose values cannot be a fan-out key).
    PerParent,
}

/// One relation found, for the summary.
pub struct Relation {
    pub owner: String,
    pub field: String,
    pub target: String,
    pub how: How,
}

/// A single-object `GET /things/{id}` endpoint: the resource `thing`.
struct Resource<'a> {
    name: String,
    ep: &'a Endpoint,
}

fn resources(ops: &Operations) -> Vec<Resource<'_>> {
    let mut out = Vec::new();
    for ep in &ops.endpoints {
        if ep.list || ep.path_params.len() != 1 {
            continue;
        }
        let segs: Vec<&str> = ep.path.split('/').filter(|s| !s.is_empty()).collect();
        let [.., collection, last] = segs.as_slice() else {
            continue;
        };
        if *last != format!("{{{}}}", ep.path_params[0]) || collection.starts_with('{') {
            continue;
        }
        out.push(Resource {
            name: names::loose(&names::singular(collection)),
            ep,
        });
    }
    out.sort_by(|a, b| a.ep.path.cmp(&b.ep.path));
    out
}

/// The key each item of `ty` is found by: its `id`, else a `<name>_id`.
fn item_key(reg: &Registry, ty: &str, resource: &str) -> Option<String> {
    let fields = reg.object(ty)?;
    fields
        .iter()
        .find(|f| f.wire == "id")
        .or_else(|| fields.iter().find(|f| names::loose(&f.wire) == format!("{resource}id")))
        .map(|f| f.wire.clone())
}

/// A list endpoint of `ty` taking many ids (`?id=1&id=2`, `?ids=1,2`): (endpoint, param, style).
fn batch_endpoint<'a>(ops: &'a Operations, ty: &str, resource: &str) -> Option<(&'a Endpoint, String, ListStyle)> {
    let wanted = [
        "id".to_string(),
        "ids".to_string(),
        format!("{resource}id"),
        format!("{resource}ids"),
    ];
    let mut eps: Vec<&Endpoint> = ops
        .endpoints
        .iter()
        .filter(|e| e.list && e.returns == ty && e.path_params.is_empty())
        .collect();
    eps.sort_by(|a, b| a.path.cmp(&b.path));
    eps.into_iter().find_map(|ep| {
        if ep.params.iter().any(|p| p.required && p.list.is_none()) {
            return None;
        }
        ep.params
            .iter()
            .find(|p| p.list.is_some() && wanted.contains(&names::loose(&p.wire)))
            .map(|p| (ep, p.wire.clone(), p.list.unwrap_or(ListStyle::Repeat)))
    })
}

fn style(s: ListStyle) -> &'static str {
    match s {
        ListStyle::Repeat => "",
        ListStyle::Comma => ", style: COMMA",
    }
}

fn select(ep: &Endpoint) -> String {
    ep.select
        .as_ref()
        .map(|s| format!(", select: {}", gql_string(s)))
        .unwrap_or_default()
}

/// `customer_id` → (`customer`, one key); `genre_ids` → (`genres`, many keys).
fn relation_name(wire: &str, list: bool) -> Option<(String, String)> {
    let lower = wire.to_ascii_lowercase();
    let stem_len = if list {
        ["_ids", "-ids", "ids"]
            .iter()
            .find(|s| lower.ends_with(*s))
            .map(|s| wire.len() - s.len())?
    } else {
        ["_id", "-id", "id"]
            .iter()
            .find(|s| lower.ends_with(*s))
            .map(|s| wire.len() - s.len())?
    };
    let stem = &wire[..stem_len];
    let loose = names::loose(stem);
    if loose.is_empty() {
        return None;
    }
    let field = names::field(&if list { format!("{stem}s") } else { stem.to_string() })?;
    Some((loose, field))
}

/// Adds the relations to the registry's object types.
pub fn guess(reg: &mut Registry, ops: &Operations) -> Vec<Relation> {
    let res = resources(ops);
    let mut found = Vec::new();
    let owners: Vec<String> = reg.types.keys().cloned().collect();
    for owner in owners {
        let Some(fields) = reg.object(&owner) else { continue };
        let mut additions: Vec<ObjectField> = Vec::new();
        let mut taken: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        for f in fields.clone() {
            let list = f.ty.starts_with('[');
            let named = f.ty.trim_matches(|c| c == '[' || c == ']' || c == '!');
            if !matches!(named, "ID" | "String" | "Int" | "BigInt" | "UUID") || f.wire == "id" {
                continue;
            }
            let Some((stem, field)) = relation_name(&f.wire, list) else {
                continue;
            };
            // The longest resource name the stem ends with (`fromaccount` → `account`).
            let best = res
                .iter()
                .filter(|r| stem.ends_with(&r.name))
                .map(|r| r.name.len())
                .max();
            let Some(best) = best else { continue };
            let matches: Vec<&Resource> = res
                .iter()
                .filter(|r| r.name.len() == best && stem.ends_with(&r.name))
                .collect();
            let mut types: Vec<&str> = matches.iter().map(|r| r.ep.returns.as_str()).collect();
            types.dedup();
            if types.len() != 1 || taken.contains(&field) {
                continue;
            }
            let r = matches[0];
            let target = r.ep.returns.clone();
            let ty = if list { format!("[{target}!]!") } else { target.clone() };
            let batch =
                item_key(reg, &target, &r.name).and_then(|key| batch_endpoint(ops, &target, &r.name).map(|b| (key, b)));
            let (directive, how) = match batch {
                Some((key, (ep, param, st))) => (
                    format!(
                        "@http(backend: {}, path: {}{}, batch: {{key: {}, from: {}, param: {}{}}})",
                        gql_string(&ep.backend),
                        gql_string(&ep.path),
                        select(ep),
                        gql_string(&key),
                        gql_string(&f.wire),
                        gql_string(&param),
                        style(st)
                    ),
                    format!("batched with GET {}?{param}=", ep.path),
                ),
                None => {
                    let p = &r.ep.path_params[0];
                    let path = r.ep.path.replace(&format!("{{{p}}}"), "{{key}}");
                    (
                        format!(
                            "@http(backend: {}, path: {}{}, fanout: {{from: {}}})",
                            gql_string(&r.ep.backend),
                            gql_string(&path),
                            select(r.ep),
                            gql_string(&f.wire)
                        ),
                        "one call per distinct key (no list endpoint takes many ids)".to_string(),
                    )
                }
            };
            taken.push(field.clone());
            found.push(Relation {
                owner: owner.clone(),
                field: field.clone(),
                target: target.clone(),
                how: if how.starts_with("one call") {
                    How::FanOut
                } else {
                    How::Batch
                },
            });
            additions.push(ObjectField {
                name: field,
                wire: String::new(),
                ty,
                description: None,
                directive: Some(directive),
                note: Some(format!(
                    "guessed: `{}` names a {target} (GET {}); {how}",
                    f.wire, r.ep.path
                )),
            });
        }
        // Reverse: list endpoints filtering by many ids of this resource.
        for r in res.iter().filter(|r| r.ep.returns == owner) {
            let Some(own_key) = item_key(reg, &owner, &r.name) else {
                continue;
            };
            let mut eps: Vec<&Endpoint> = ops
                .endpoints
                .iter()
                .filter(|e| e.list && e.path_params.is_empty() && e.returns != owner)
                .collect();
            eps.sort_by(|a, b| a.path.cmp(&b.path));
            for ep in eps {
                if ep.params.iter().any(|p| p.required) {
                    continue;
                }
                let wanted = [format!("{}id", r.name), format!("{}ids", r.name)];
                let Some(param) = ep
                    .params
                    .iter()
                    .find(|p| p.list.is_some() && wanted.contains(&names::loose(&p.wire)))
                else {
                    continue;
                };
                let Some(item_fields) = reg.object(&ep.returns) else {
                    continue;
                };
                let Some(item_key) = item_fields.iter().find(|f| names::loose(&f.wire) == wanted[0]) else {
                    continue;
                };
                let segs: Vec<&str> = ep
                    .path
                    .split('/')
                    .filter(|s| !s.is_empty() && !s.starts_with('{'))
                    .collect();
                let Some(field) = segs.last().and_then(|s| names::field(s)) else {
                    continue;
                };
                if taken.contains(&field) {
                    continue;
                }
                taken.push(field.clone());
                let directive = format!(
                    "@http(backend: {}, path: {}{}, batch: {{key: {}, from: {}, param: {}{}, many: true}})",
                    gql_string(&ep.backend),
                    gql_string(&ep.path),
                    select(ep),
                    gql_string(&item_key.wire),
                    gql_string(&own_key),
                    gql_string(&param.wire),
                    style(param.list.unwrap_or(ListStyle::Repeat))
                );
                found.push(Relation {
                    owner: owner.clone(),
                    field: field.clone(),
                    target: ep.returns.clone(),
                    how: How::Batch,
                });
                additions.push(ObjectField {
                    name: field,
                    wire: String::new(),
                    ty: format!("[{}!]!", ep.returns),
                    description: None,
                    directive: Some(directive),
                    note: Some(format!(
                        "guessed: GET {}?{}= lists the {} of many {owner}s; batched",
                        ep.path, param.wire, ep.returns
                    )),
                });
            }
        }
        if let Some(fields) = reg.object_mut(&owner) {
            fields.extend(additions);
        }
    }
    found
}
