//! `@http` and `@stream` arguments: the call, and its `batch`, `fanout` and `errors` objects.

use async_graphql_parser::Pos;
use async_graphql_value::ConstValue;
use serde_json::Value;

use super::super::binding::BatchStyle;
use super::*;
use crate::config::diagnostic::available;
use crate::config::Diagnostics;

pub(super) fn http_args(args: &mut Args<'_>, pos: Pos, diags: &mut Diagnostics) -> HttpArgs {
    let backend = args.string("backend", true, diags);
    let endpoint = args.string("endpoint", false, diags);
    let method = match args.take("method") {
        None => ("GET".to_string(), pos),
        Some((ConstValue::Enum(n), p)) => (n.to_string(), p),
        Some((ConstValue::String(s), p)) => (s.to_ascii_uppercase(), p),
        Some((_, p)) => {
            args.wrong_type("method", p, "an HTTP method such as GET or POST", diags);
            ("GET".to_string(), p)
        }
    };
    let path = args.string("path", true, diags);
    let query = args.pairs("query", diags);
    let headers = args.pairs("headers", diags);
    let body = args.take("body").map(|(v, p)| match v {
        // A string body is a JSON document written as a string.
        ConstValue::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(v) => (v, p),
            Err(_) => (Value::String(s), p),
        },
        other => (other.into_json().unwrap_or(Value::Null), p),
    });
    let select = args.string("select", false, diags);
    let value = args.string("value", false, diags);
    let batch = args.take("batch").and_then(|(v, p)| batch_args(v, p, args.site, diags));
    let fanout = args
        .take("fanout")
        .and_then(|(v, p)| fanout_args(v, p, args.site, diags));
    let errors = args
        .take("errors")
        .map(|(v, p)| error_rules(v, p, args.site, diags))
        .unwrap_or_default();
    let singleflight = args.bool("singleflight", diags);
    let retry = args.bool("retry", diags);
    let timeout = args.string("timeout", false, diags);
    HttpArgs {
        pos,
        backend,
        endpoint,
        method,
        path,
        query,
        headers,
        body,
        select,
        value,
        batch,
        fanout,
        errors,
        singleflight,
        retry,
        timeout,
    }
}

const FANOUT_FIELDS: &[&str] = &["from", "concurrency"];

pub(super) fn fanout_args(value: ConstValue, pos: Pos, site: &Site, diags: &mut Diagnostics) -> Option<FanoutArgs> {
    let ConstValue::Object(map) = value else {
        diags.error_with_hint(
            Some(site.loc(pos)),
            "`fanout` of @http must be an object",
            "write fanout: {from: \"genre_ids\"} and use {{key}} in the path",
        );
        return None;
    };
    let mut out = FanoutArgs {
        pos,
        from: None,
        concurrency: 16,
    };
    for (k, v) in map {
        match (k.as_str(), &v) {
            ("from", ConstValue::String(s)) => out.from = Some(s.clone()),
            ("concurrency", ConstValue::Number(n)) => match n.as_u64() {
                Some(n) if (1..=1024).contains(&n) => out.concurrency = n as usize,
                _ => diags.error(
                    Some(site.loc(pos)),
                    "fanout concurrency must be an integer from 1 to 1024",
                ),
            },
            (name, _) if FANOUT_FIELDS.contains(&name) => {
                diags.error(Some(site.loc(pos)), format!("fanout field `{name}` has the wrong type"))
            }
            (name, _) => diags.error_with_hint(
                Some(site.loc(pos)),
                format!("unknown fanout field `{name}`"),
                available("fanout fields", FANOUT_FIELDS),
            ),
        }
    }
    Some(out)
}

const ERROR_RULE_FIELDS: &[&str] = &["status", "message", "code"];

pub(super) fn error_rules(value: ConstValue, pos: Pos, site: &Site, diags: &mut Diagnostics) -> Vec<ErrorRuleArgs> {
    let items = match value {
        ConstValue::List(items) => items,
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let ConstValue::Object(map) = item else {
            diags.error_with_hint(
                Some(site.loc(pos)),
                "each entry of `errors` must be an object",
                "write errors: [{status: 422, message: \"error.reason\", code: \"BAD_USER_INPUT\"}]",
            );
            continue;
        };
        let mut rule = ErrorRuleArgs {
            pos,
            statuses: Vec::new(),
            message: None,
            code: None,
        };
        for (k, v) in map {
            let status = |v: &ConstValue| match v {
                ConstValue::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                _ => None,
            };
            match (k.as_str(), &v) {
                ("status", ConstValue::List(list)) => {
                    for s in list {
                        match status(s) {
                            Some(n) => rule.statuses.push(n),
                            None => diags.error(Some(site.loc(pos)), "`status` must be HTTP status numbers"),
                        }
                    }
                }
                ("status", ConstValue::String(s)) if s.eq_ignore_ascii_case("4xx") => {}
                ("status", other) => match status(other) {
                    Some(n) => rule.statuses.push(n),
                    None => diags.error(
                        Some(site.loc(pos)),
                        "`status` must be a status, a list of them, or \"4xx\"",
                    ),
                },
                ("message", ConstValue::String(s)) => rule.message = Some(s.clone()),
                ("code", ConstValue::String(s)) => rule.code = Some(s.clone()),
                (name, _) if ERROR_RULE_FIELDS.contains(&name) => {
                    diags.error(Some(site.loc(pos)), format!("errors field `{name}` has the wrong type"))
                }
                (name, _) => diags.error_with_hint(
                    Some(site.loc(pos)),
                    format!("unknown errors field `{name}`"),
                    available("fields of an errors entry", ERROR_RULE_FIELDS),
                ),
            }
        }
        out.push(rule);
    }
    out
}

const BATCH_FIELDS: &[&str] = &["key", "from", "param", "style", "maxSize", "many"];

pub(super) fn batch_args(value: ConstValue, pos: Pos, site: &Site, diags: &mut Diagnostics) -> Option<BatchArgs> {
    let ConstValue::Object(map) = value else {
        diags.error_with_hint(
            Some(site.loc(pos)),
            "`batch` of @http must be an object",
            "write batch: {key: \"id\", param: \"id\", style: REPEAT}",
        );
        return None;
    };
    let mut out = BatchArgs {
        pos,
        key: None,
        from: None,
        param: None,
        style: BatchStyle::Repeat,
        max_size: 100,
        many: None,
    };
    for (k, v) in map {
        let text = match &v {
            ConstValue::String(s) => Some(s.clone()),
            ConstValue::Enum(e) => Some(e.to_string()),
            _ => None,
        };
        match (k.as_str(), text, &v) {
            ("key", Some(s), _) => out.key = Some(s),
            ("from", Some(s), _) => out.from = Some(s),
            ("param", Some(s), _) => out.param = Some(s),
            ("style", Some(s), _) => match s.to_ascii_uppercase().as_str() {
                "REPEAT" => out.style = BatchStyle::Repeat,
                "COMMA" => out.style = BatchStyle::Comma,
                "JSON" | "BODY" | "JSON_BODY" => out.style = BatchStyle::JsonBody,
                _ => diags.error_with_hint(
                    Some(site.loc(pos)),
                    format!("unknown batch style {s:?}"),
                    "style is REPEAT (?id=1&id=2), COMMA (?ids=1,2) or JSON (body {\"ids\":[1,2]})",
                ),
            },
            ("maxSize", _, ConstValue::Number(n)) => match n.as_u64() {
                Some(n) if n >= 1 => out.max_size = n as usize,
                _ => diags.error(Some(site.loc(pos)), "batch maxSize must be a positive integer"),
            },
            ("many", _, ConstValue::Boolean(b)) => out.many = Some(*b),
            (name, _, _) if BATCH_FIELDS.contains(&name) => {
                diags.error(Some(site.loc(pos)), format!("batch field `{name}` has the wrong type"))
            }
            (name, _, _) => diags.error_with_hint(
                Some(site.loc(pos)),
                format!("unknown batch field `{name}`"),
                available("batch fields", BATCH_FIELDS),
            ),
        }
    }
    Some(out)
}
