//! Where keys are read: `batch: {key:, from:}` and `fanout: {from:}`, and any backend path or
//! expression of a parent or item — a public field reads where its `@from` says.

use indexmap::IndexMap;

use super::super::binding::{BatchRule, BatchStyle, FanoutRule};
use super::super::directives::{BatchArgs, FanoutArgs, Site};
use super::super::json_path::Segment;
use super::super::{is_list, named_type, FieldDef, FieldSource, JsonPath, TypeDef};
use super::*;
use crate::config::Diagnostics;
use crate::plan::mapping::Mapping;

impl Binder<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn batch_rule(
        &self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        field: &FieldDef,
        b: &BatchArgs,
        site: &Site,
        is_root: bool,
        diags: &mut Diagnostics,
    ) -> Option<BatchRule> {
        let loc = site.loc(b.pos);
        let owner = format!("{tname}.{}", field.name);
        if is_root {
            diags.error_with_hint(
                Some(loc),
                format!("root field `{owner}` cannot be batched"),
                "batching gathers calls for many parent objects; root fields have no parent",
            );
            return None;
        }
        let Some(key) = &b.key else {
            diags.error_with_hint(
                Some(loc),
                format!("batch of `{owner}` needs `key`"),
                "key is the field of each returned item that matches it to its parent, e.g. key: \"customerId\"",
            );
            return None;
        };
        let from = b.from.clone().unwrap_or_else(|| key.clone());
        let item_type = named_type(&field.ty);
        let item_key = backend_mapping(types, &self.bound, Some(item_type), key)
            .map_err(|(m, h)| diags.error_with_hint(Some(loc.clone()), format!("batch key: {m}"), h))
            .ok();
        let parent_key = backend_mapping(types, &self.bound, Some(tname), &from)
            .map_err(|(m, h)| diags.error_with_hint(Some(loc.clone()), format!("batch from: {m}"), h))
            .ok();
        let many = b.many.unwrap_or_else(|| is_list(&field.ty));
        if many != is_list(&field.ty) {
            let (what, fix) = if many {
                (
                    "many: true gives each parent a list of items",
                    "make the field a list, e.g. [Item!]!, or set many: false",
                )
            } else {
                (
                    "many: false gives each parent one item",
                    "make the field a single object, or set many: true",
                )
            };
            diags.error_with_hint(
                Some(loc.clone()),
                format!("batch of `{owner}`: {what} but the field's type is {}", field.ty),
                fix,
            );
        }
        let param = match (&b.param, b.style) {
            (Some(p), _) => p.clone(),
            (None, BatchStyle::JsonBody) => String::new(),
            (None, _) => {
                diags.error_with_hint(
                    Some(loc.clone()),
                    format!("batch of `{owner}` needs `param`"),
                    "param is the query parameter carrying the keys, e.g. param: \"id\" for ?id=1&id=2",
                );
                return None;
            }
        };
        Some(BatchRule {
            parent_key: parent_key?,
            from_field: from,
            item_key: item_key?,
            key_field: key.clone(),
            param,
            style: b.style,
            max_size: b.max_size,
            many,
        })
    }
}

/// `fanout: {from:, concurrency:}`.
#[allow(clippy::too_many_arguments)]
pub(super) fn fanout_rule(
    types: &IndexMap<String, TypeDef>,
    bound: &Bound,
    tname: &str,
    field: &FieldDef,
    f: &FanoutArgs,
    batched: bool,
    site: &Site,
    is_root: bool,
    diags: &mut Diagnostics,
) -> Option<FanoutRule> {
    let loc = site.loc(f.pos);
    let owner = format!("{tname}.{}", field.name);
    if is_root {
        diags.error_with_hint(
            Some(loc),
            format!("root field `{owner}` cannot fan out"),
            "a fan-out makes one call per key of the parents of a level; root fields have no parent",
        );
        return None;
    }
    if batched {
        diags.error_with_hint(
            Some(loc),
            format!("`{owner}` has both batch and fanout"),
            "batch sends every key in one request; fanout makes one call per key: pick one",
        );
        return None;
    }
    let Some(from) = &f.from else {
        diags.error_with_hint(
            Some(loc),
            format!("fanout of `{owner}` needs `from`"),
            "from is the parent's backend key (or list of keys), e.g. from: \"genre_ids\"",
        );
        return None;
    };
    match backend_mapping(types, bound, Some(tname), from) {
        Ok(m) => Some(FanoutRule {
            from: m,
            concurrency: f.concurrency,
            many: is_list(&field.ty),
        }),
        Err((m, h)) => {
            diags.error_with_hint(Some(loc), format!("fanout from: {m}"), h);
            None
        }
    }
}

/// A key or value read from the backend JSON of objects of `type_name`: a path whose first step
/// names a public field reads where that field reads (its `@from`); any other path or expression
/// reads the backend JSON as it is — public or not.
pub(super) fn backend_mapping(
    types: &IndexMap<String, TypeDef>,
    bound: &Bound,
    type_name: Option<&str>,
    text: &str,
) -> Result<Mapping, (String, String)> {
    let m = Mapping::parse(text).map_err(|e| {
        (
            format!("{text:?}: {e}"),
            "a backend path (\"publisher_ref\", \"meta.isbn\") or an expression (docs/mapping.md)".to_string(),
        )
    })?;
    let Some(path) = m.as_path() else { return Ok(m) };
    let Some(fields) = type_name.and_then(|t| match types.get(t) {
        Some(TypeDef::Object(o)) => Some(&o.fields),
        _ => None,
    }) else {
        return Ok(m);
    };
    let Some((Segment::Key(first), rest)) = path.segments().split_first() else {
        return Ok(m);
    };
    let Some(f) = fields.get(&**first) else {
        return Ok(m);
    };
    let is_bound = type_name.is_some_and(|t| bound.contains(&(t.to_string(), first.to_string())));
    match &f.source {
        _ if is_bound => Err((
            format!(
                "`{}.{first}` is bound to a call, so {text:?} cannot be read from the backend's JSON",
                type_name.unwrap_or_default()
            ),
            "name the backend key the value is read from instead (any key of the JSON, public or not)".into(),
        )),
        FieldSource::Parent(p) => {
            let mut segments = p.segments().to_vec();
            segments.extend_from_slice(rest);
            Ok(Mapping::from_path(JsonPath::from_segments(segments)))
        }
        FieldSource::Computed(c) if rest.is_empty() => Ok((**c).clone()),
        _ => Err((
            format!(
                "`{}.{first}` is bound to a call, so {text:?} cannot be read from the backend's JSON",
                type_name.unwrap_or_default()
            ),
            "name the backend key the value is read from instead (any key of the JSON, public or not)".into(),
        )),
    }
}
