//! The type system checked as a whole: every reference names a type of the right kind, defaults
//! fit their types, interfaces and unions are linked to their objects and can tell them apart.

use std::collections::{BTreeMap, HashSet};

use async_graphql_parser::types::Type;
use indexmap::IndexMap;

use super::super::{FieldDef, FieldSource, InputValueDef, TypeDef};
use super::*;
use crate::config::diagnostic::suggest;
use crate::config::{Diagnostics, Location};

pub(super) fn check_type_ref(
    types: &IndexMap<String, TypeDef>,
    ty: &Type,
    want_input: bool,
    what: &str,
    loc: Option<Location>,
    diags: &mut Diagnostics,
) {
    let name = crate::plan::named_type(ty);
    match types.get(name) {
        None => {
            let hint = match suggest(name, types.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("define `{name}` in a schema file"),
            };
            diags.error_with_hint(loc, format!("{what} has unknown type `{name}`"), hint);
        }
        Some(def) if want_input && !def.is_input() => diags.error_with_hint(
            loc,
            format!("{what} has type `{name}`, which is not an input type"),
            "arguments and input fields take scalars, enums or input types",
        ),
        Some(TypeDef::InputObject(_)) if !want_input => diags.error_with_hint(
            loc,
            format!("{what} has input type `{name}`, which cannot be returned"),
            "return an object type; input types are for arguments",
        ),
        _ => {}
    }
}

pub(super) fn check_references(types: &IndexMap<String, TypeDef>, sites: &FieldSites<'_>, diags: &mut Diagnostics) {
    for (tname, def) in types {
        match def {
            TypeDef::Object(_) | TypeDef::Interface(_) => {
                let fields = match def {
                    TypeDef::Object(o) => &o.fields,
                    TypeDef::Interface(i) => &i.fields,
                    _ => continue,
                };
                if fields.is_empty() {
                    diags.error(None, format!("type `{tname}` has no fields"));
                }
                for (fname, f) in fields {
                    let loc = sites.get(&(tname.clone(), fname.clone())).map(|s| s.site.loc(s.pos));
                    check_type_ref(
                        types,
                        &f.ty,
                        false,
                        &format!("field `{tname}.{fname}`"),
                        loc.clone(),
                        diags,
                    );
                    for (aname, a) in &f.args {
                        check_type_ref(
                            types,
                            &a.ty,
                            true,
                            &format!("argument `{aname}` of `{tname}.{fname}`"),
                            loc.clone(),
                            diags,
                        );
                        check_default(
                            types,
                            a,
                            &format!("argument `{aname}` of `{tname}.{fname}`"),
                            loc.clone(),
                            diags,
                        );
                    }
                }
            }
            TypeDef::InputObject(io) => {
                for (fname, f) in &io.fields {
                    check_type_ref(
                        types,
                        &f.ty,
                        true,
                        &format!("input field `{tname}.{fname}`"),
                        None,
                        diags,
                    );
                }
            }
            _ => {}
        }
    }
}

pub(super) fn check_default(
    types: &IndexMap<String, TypeDef>,
    arg: &InputValueDef,
    what: &str,
    loc: Option<Location>,
    diags: &mut Diagnostics,
) {
    let Some(default) = &arg.default else { return };
    if types.get(crate::plan::named_type(&arg.ty)).is_none() {
        return;
    }
    let json = default.clone().into_json().unwrap_or(serde_json::Value::Null);
    if let Err(e) = crate::plan::coerce::coerce_input(types, &arg.ty, &json) {
        diags.error_with_hint(
            loc,
            format!("default value of {what} does not fit its type {}: {e}", arg.ty),
            "change the default or the type",
        );
    }
}

pub(super) fn link_abstract_types(
    types: &mut IndexMap<String, TypeDef>,
    defs: &IndexMap<String, RawType<'_>>,
    diags: &mut Diagnostics,
) {
    let mut implementors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let snapshot: Vec<(String, Vec<String>, IndexMap<String, FieldDef>)> = types
        .values()
        .filter_map(|t| match t {
            TypeDef::Object(o) => Some((o.name.clone(), o.implements.clone(), o.fields.clone())),
            _ => None,
        })
        .collect();
    for (oname, implements, ofields) in &snapshot {
        let loc = defs.get(oname).map(|r| r.site.loc(r.pos));
        for iname in implements {
            match types.get(iname) {
                Some(TypeDef::Interface(i)) => {
                    for (fname, f) in &i.fields {
                        match ofields.get(fname) {
                            None => diags.error_with_hint(
                                loc.clone(),
                                format!("`{oname}` implements `{iname}` but lacks its field `{fname}`"),
                                format!("add `{fname}: {}` to `{oname}`", f.ty),
                            ),
                            Some(of) if of.ty.to_string() != f.ty.to_string() => diags.error(
                                loc.clone(),
                                format!(
                                    "`{oname}.{fname}` has type {} but interface `{iname}` declares {}",
                                    of.ty, f.ty
                                ),
                            ),
                            _ => {}
                        }
                    }
                    implementors.entry(iname.clone()).or_default().push(oname.clone());
                }
                _ => diags.error(
                    loc.clone(),
                    format!("`{oname}` implements `{iname}`, which is not an interface"),
                ),
            }
        }
    }
    for (iname, objs) in implementors {
        if let Some(TypeDef::Interface(i)) = types.get_mut(&iname) {
            i.possible_types = objs;
        }
    }
    let names: Vec<(String, Vec<String>)> = types
        .values()
        .filter_map(|t| match t {
            TypeDef::Union(u) => Some((u.name.clone(), u.members.clone())),
            _ => None,
        })
        .collect();
    for (uname, members) in names {
        let loc = defs.get(&uname).map(|r| r.site.loc(r.pos));
        for m in members {
            if !matches!(types.get(&m), Some(TypeDef::Object(_))) {
                diags.error(
                    loc.clone(),
                    format!("union `{uname}` member `{m}` is not an object type"),
                );
            }
        }
    }
}

/// An interface or union returned by a field needs a way to tell its concrete type.
pub(super) fn check_abstract_outputs(
    types: &IndexMap<String, TypeDef>,
    sites: &FieldSites<'_>,
    diags: &mut Diagnostics,
) {
    let mut reported = HashSet::new();
    for ((tname, fname), s) in sites {
        let Some(fields) = (match types.get(tname) {
            Some(TypeDef::Object(o)) => Some(&o.fields),
            _ => None,
        }) else {
            continue;
        };
        let Some(f) = fields.get(fname) else { continue };
        if matches!(f.source, FieldSource::Resolver(_)) {
            continue;
        }
        let target = crate::plan::named_type(&f.ty);
        let (possible, has_disc) = match types.get(target) {
            Some(TypeDef::Interface(i)) => (i.possible_types.len(), i.discriminator.is_some()),
            Some(TypeDef::Union(u)) => (u.members.len(), u.discriminator.is_some()),
            _ => continue,
        };
        if possible > 1 && !has_disc && reported.insert(target.to_string()) {
            diags.error_with_hint(
                Some(s.site.loc(s.pos)),
                format!("`{tname}.{fname}` returns `{target}`, which has {possible} possible types but no @discriminator"),
                format!("add @discriminator(field: \"type\") to `{target}`: the backend JSON field naming each object's type"),
            );
        }
    }
}
