//! An operation's answer: the field's type from the 2xx JSON schema (envelopes unwrapped with
//! `select`), and the documented 4xx answers of writes declared as client errors.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::model::{gql_string, jq_key, Mode, ObjectField, Shape, Ty};
use super::names;
use super::operations::{json_media, Root};
use super::types::Builder;

/// The field's type and `select`, or `Err(why)` when the answer is not JSON.
pub fn answer(
    b: &mut Builder,
    op: &Value,
    file: Option<PathBuf>,
    type_hint: &str,
    notes: &mut Vec<String>,
    asks_json: &mut bool,
) -> Result<(Shape, Option<String>), String> {
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut codes: Vec<&String> = responses.keys().collect();
    codes.sort();
    let ok = codes
        .iter()
        .find(|c| c.starts_with('2'))
        .or_else(|| codes.iter().find(|c| c.as_str() == "default"))
        .copied();
    let answer = match ok {
        // Only redirects or errors: nothing a field could show.
        None if !codes.is_empty() => {
            let list: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
            return Err(format!("no success answer described (only {})", list.join(", ")));
        }
        None => {
            notes.push("no answer described: JSON".into());
            (Shape::json_named(b), None)
        }
        Some(code) => {
            let (resp, rfile, _) = b.deref(&responses[code.as_str()], file);
            let content = resp
                .get("content")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            // Several types, JSON among them: the backend is asked for JSON (the gateway's default
            // `accept` prefers it, but mock servers and some APIs ignore preferences).
            if content.len() > 1 && content.keys().any(|k| k.split(';').next() == Some("application/json")) {
                *asks_json = true;
            }
            match json_media(&content) {
                Some(media) => {
                    let schema = media.get("schema").cloned().unwrap_or(Value::Null);
                    let mut shape = b.shape(&schema, type_hint, Mode::Output, rfile, 0);
                    if let Some(n) = shape.note.take() {
                        notes.push(n);
                    }
                    match shape.select.take() {
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
                        return Err("a Server-Sent Events stream: bind it with @stream on a Subscription field".into());
                    }
                    return Err(format!("answers {kinds}, not JSON"));
                }
            }
        }
    };
    Ok(answer)
}

/// The `errors:` of a write: its documented 4xx answers (but 401, 403, 404, 429) are the
/// client's business, with the message read where the error schema has one.
pub fn declared_errors(b: &mut Builder, op: &Value, root: Root, file: Option<PathBuf>) -> Option<String> {
    if root != Root::Mutation {
        return None;
    }
    let responses: Map<String, Value> = op
        .get("responses")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut codes: Vec<&String> = responses.keys().collect();
    codes.sort();
    let mut statuses = Vec::new();
    let mut message = None;
    for code in &codes {
        let Ok(n) = code.parse::<u16>() else { continue };
        if (400..500).contains(&n) && !matches!(n, 401 | 403 | 404 | 429) {
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
    if statuses.is_empty() {
        return None;
    }
    let list: Vec<String> = statuses.iter().map(u16::to_string).collect();
    Some(match message {
        Some(m) => format!("[{{status: [{}], message: {}}}]", list.join(", "), gql_string(&m)),
        None => format!("[{{status: [{}]}}]", list.join(", ")),
    })
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
    let key = |f: &ObjectField| {
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
