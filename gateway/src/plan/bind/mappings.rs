//! Mapping expressions checked against the GraphQL types they must produce: `select`, `value`,
//! `@from(expr:)`; and computed values kept away from fields bound below them.
use std::sync::Arc;

use indexmap::IndexMap;

use super::super::binding::Binding;
use super::super::build::sites::FieldSites;
use super::super::directives::{FromArgs, HttpArgs, Site};
use super::super::{named_type, FieldDef, FieldSource, TypeDef};
use crate::config::Diagnostics;
use crate::plan::mapping::{Mapping, Shape};

/// The shapes of `select` and `value` expressions against the field's type.
pub(super) fn check_shapes(
    types: &IndexMap<String, TypeDef>,
    tname: &str,
    field: &FieldDef,
    binding: &Binding,
    http: &HttpArgs,
    site: &Site,
    diags: &mut Diagnostics,
) {
    let owner = format!("{tname}.{}", field.name);
    let per_item = binding.batch.is_some() || binding.fanout.is_some();
    // What one parent's value is built from: an item (batch, fan-out) or the answer.
    let item_ty = match (&field.ty.base, per_item) {
        (async_graphql_parser::types::BaseType::List(inner), true) => (**inner).clone(),
        _ => field.ty.clone(),
    };
    let selected = binding.select.shape(&Shape::Any);
    if binding.batch.is_some() && !matches!(selected, Shape::Any | Shape::Array(_)) {
        if let Some((_, pos)) = &http.select {
            diags.error_with_hint(
                Some(site.loc(*pos)),
                format!(
                    "select of batched `{owner}` gives {}; a batch answer's select must give the list of items",
                    selected.describe()
                ),
                "select the list, e.g. select: \"items\" or select: \".data | map(.record)\"",
            );
        }
    }
    let (shape, pos, what) = match (&binding.value, &http.value) {
        (Some(v), Some((_, pos))) => (v.shape(&Shape::Any), *pos, "value"),
        _ if !per_item => match &http.select {
            Some((_, pos)) => (selected, *pos, "select"),
            None => return,
        },
        _ => return,
    };
    if let Err(why) = crate::plan::mapping::fits(&shape, &item_ty, types) {
        diags.error_with_hint(
            Some(site.loc(pos)),
            format!("{what} of `{owner}` cannot be of type {item_ty}: {why}"),
            "change the expression or the field's type (docs/mapping.md)",
        );
    }
    let computed = binding.value.as_ref().is_some_and(|v| v.as_path().is_none());
    if computed && has_calls_below(types, named_type(&field.ty)) {
        diags.error_with_hint(
            Some(site.loc(pos)),
            format!("the value of `{owner}` is computed by an expression, and fields below it are bound with @http"),
            "compute it in `select` (kept with the answer) or read it with a path",
        );
    }
}

/// The source `@from` gives a field: a path, or a computed expression.
pub(super) fn from_source(from: &FromArgs) -> Result<FieldSource, (String, String)> {
    if from.text.trim().is_empty() {
        return Err((
            "@from(path: \"\") reads nothing".into(),
            "name the backend key (\"customer_id\", \"owner.name\"), or \".\" for the parent object itself".into(),
        ));
    }
    let parsed = if from.expr {
        Mapping::expression(&from.text)
    } else {
        Mapping::parse(&from.text)
    };
    let mapping = parsed.map_err(|e| {
        (
            format!("in @from {:?}: {e}", from.text),
            "see docs/mapping.md for paths and expressions".to_string(),
        )
    })?;
    match mapping.as_path() {
        Some(path) => Ok(FieldSource::Parent(path.clone())),
        None if from.expr => Ok(FieldSource::Computed(Arc::new(mapping))),
        None => Err((
            format!("@from(path: {:?}) is an expression, not a path", from.text),
            format!("write @from(expr: {:?}) to compute the value", from.text),
        )),
    }
}

/// Computed fields: their expression's shape must fit their type, and a computed object has no
/// bound fields below it (a computed value exists while the response is written, not while the
/// calls below it would be gathered).
pub(super) fn check_computed_fields(
    types: &IndexMap<String, TypeDef>,
    sites: &FieldSites<'_>,
    diags: &mut Diagnostics,
) {
    for (tname, def) in types {
        let TypeDef::Object(o) = def else { continue };
        for (fname, f) in &o.fields {
            let FieldSource::Computed(m) = &f.source else { continue };
            let Some(fs) = sites.get(&(tname.clone(), fname.clone())) else {
                continue;
            };
            let loc = fs.site.loc(fs.pos);
            if let Err(why) = crate::plan::mapping::fits(&m.shape(&Shape::Any), &f.ty, types) {
                diags.error_with_hint(
                    Some(loc.clone()),
                    format!(
                        "@from(expr: {:?}) of `{tname}.{fname}` cannot be of type {}: {why}",
                        m.text(),
                        f.ty
                    ),
                    "change the expression or the field's type (docs/mapping.md)",
                );
            }
            if has_calls_below(types, named_type(&f.ty)) {
                diags.error_with_hint(
                    Some(loc),
                    format!("`{tname}.{fname}` is computed by @from(expr:), and fields below it are bound with @http"),
                    "compute the value in the parent call's `select` instead, or read it with @from(path:)",
                );
            }
        }
    }
}

/// Whether any field at or below `type_name` makes a backend call or runs a resolver.
pub(super) fn has_calls_below(types: &IndexMap<String, TypeDef>, type_name: &str) -> bool {
    fn walk<'t>(types: &'t IndexMap<String, TypeDef>, name: &'t str, seen: &mut Vec<&'t str>) -> bool {
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        let fields = match types.get(name) {
            Some(TypeDef::Object(o)) => &o.fields,
            Some(TypeDef::Interface(i)) => &i.fields,
            Some(TypeDef::Union(u)) => {
                return u.members.iter().any(|m| walk(types, m, seen));
            }
            _ => return false,
        };
        let possible: Vec<&'t str> = match types.get(name) {
            Some(TypeDef::Interface(i)) => i.possible_types.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        fields.values().any(|f| {
            matches!(
                f.source,
                FieldSource::Call(_) | FieldSource::Resolver(_) | FieldSource::Stream(_)
            ) || walk(types, named_type(&f.ty), seen)
        }) || possible.into_iter().any(|p| walk(types, p, seen))
    }
    walk(types, type_name, &mut Vec::new())
}
