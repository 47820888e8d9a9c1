//! The expressions of a binding's templates checked against what they name: arguments (and
//! their conversions), parent keys, headers, claims and the fan-out key.

use indexmap::IndexMap;

use super::super::binding::Binding;
use super::super::directives::{HttpArgs, Site};
use super::super::template::{Conversion, Expr};
use super::super::{named_type, FieldDef, TypeDef};
use super::*;
use crate::config::diagnostic::{available, suggest};
use crate::config::{Diagnostics, Location};

impl Binder<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_exprs(
        &self,
        types: &IndexMap<String, TypeDef>,
        tname: &str,
        field: &FieldDef,
        binding: &mut Binding,
        http: &HttpArgs,
        site: &Site,
        is_root: bool,
        diags: &mut Diagnostics,
    ) {
        let loc = site.loc(http.pos);
        let owner = format!("{tname}.{}", field.name);
        let batched = binding.batch.is_some();
        let mut exprs: Vec<&mut Expr> = binding.path.exprs_mut().collect();
        for (_, t) in binding.query.iter_mut() {
            exprs.extend(t.exprs_mut());
        }
        for (_, t) in binding.headers.iter_mut() {
            exprs.extend(t.exprs_mut());
        }
        if let Some(b) = binding.body.as_mut() {
            exprs.extend(b.exprs_mut());
        }
        let fanout = binding.fanout.is_some();
        for e in exprs {
            let conversion = match e {
                Expr::Convert(_, c) => Some(*c),
                _ => None,
            };
            match e.base_mut() {
                Expr::Arg { name, path } => {
                    let Some(arg) = field.args.get(name.as_str()) else {
                        let names: Vec<&str> = field.args.keys().map(String::as_str).collect();
                        let hint = match suggest(name, names.iter().copied()) {
                            Some(s) => format!("did you mean args.{s}?"),
                            None => available("arguments", &names),
                        };
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("template refers to args.{name}, but `{owner}` has no argument `{name}`"),
                            hint,
                        );
                        continue;
                    };
                    check_input_path(types, &arg.ty, name, path, &owner, &loc, diags);
                    if let (Some(c), true) = (conversion, path.is_empty()) {
                        check_conversion(types, &arg.ty, c, &format!("args.{name}"), &loc, diags);
                    }
                }
                Expr::Parent { field: pfield, path } => {
                    if is_root {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("root field `{owner}` has no parent, so parent.{pfield} means nothing"),
                            "use args.NAME in root fields",
                        );
                        continue;
                    }
                    if batched || fanout {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!(
                                "{} field `{owner}` cannot use parent.{pfield} in its templates",
                                if batched { "batched" } else { "fan-out" }
                            ),
                            if batched {
                                "one request serves many parents; their keys go in `batch.from`"
                            } else {
                                "one call serves every parent with the same key: use {{key}}, from `fanout.from`"
                            },
                        );
                        continue;
                    }
                    match backend_mapping(types, &self.bound, Some(tname), pfield) {
                        Ok(m) => match m.as_path() {
                            Some(p) => *path = p.clone(),
                            None => diags.error_with_hint(
                                Some(loc.clone()),
                                format!("parent.{pfield} is computed by an expression; templates read paths"),
                                "read the backend keys the expression reads, e.g. {{parent.first_name}}",
                            ),
                        },
                        Err((m, h)) => diags.error_with_hint(Some(loc.clone()), format!("parent.{pfield}: {m}"), h),
                    }
                }
                Expr::Key => {
                    if !fanout {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("`{owner}` uses {{{{key}}}}, which only a fan-out has"),
                            "add fanout: {from: \"<backend key of the parent>\"} to the @http",
                        );
                    }
                }
                Expr::Header(h) => {
                    if !self.ctx.request_headers.iter().any(|x| x == h) {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            format!("template reads header `{h}`, which is not allowlisted"),
                            format!("add it to mosaic.toml: [request] headers = [\"{h}\"]"),
                        );
                    }
                }
                Expr::Claim(_) => {
                    if !self.ctx.auth_configured {
                        diags.error_with_hint(
                            Some(loc.clone()),
                            "template reads a JWT claim, but [auth] is not configured",
                            "configure token verification in mosaic.toml: [auth] hs256_secret, jwks_file or jwks_url",
                        );
                    }
                }
                Expr::Convert(..) => {}
            }
        }
        if fanout && !binding.path.uses_key() && !binding.query.iter().any(|(_, t)| t.uses_key()) {
            diags.error_with_hint(
                Some(loc),
                format!("fan-out `{owner}` never uses {{{{key}}}}"),
                "put the key in the path (\"/genres/{{key}}\") or the query, so each call asks for its key",
            );
        }
    }
}

/// A conversion the argument's type can never make (`Boolean | int`).
pub(super) fn check_conversion(
    types: &IndexMap<String, TypeDef>,
    ty: &async_graphql_parser::types::Type,
    c: Conversion,
    what: &str,
    loc: &Location,
    diags: &mut Diagnostics,
) {
    let kind = match types.get(named_type(ty)) {
        Some(TypeDef::Scalar(s)) => Some(s.kind),
        Some(TypeDef::InputObject(_)) => {
            diags.error_with_hint(
                Some(loc.clone()),
                format!("{what} is an input object; `| {}` converts scalars", c.name()),
                "convert one of its fields: {{args.input.count | int}}",
            );
            return;
        }
        _ => None,
    };
    use crate::plan::ScalarKind as K;
    let impossible = matches!(
        (kind, c),
        (Some(K::Boolean), Conversion::Int | Conversion::Float) | (Some(K::Float), Conversion::Bool)
    );
    if impossible {
        diags.error_with_hint(
            Some(loc.clone()),
            format!("{what} (type {ty}) can never be converted with `| {}`", c.name()),
            "send it as it is, or convert it with `| string`",
        );
    }
}

pub(super) fn check_input_path(
    types: &IndexMap<String, TypeDef>,
    ty: &async_graphql_parser::types::Type,
    arg: &str,
    path: &[String],
    owner: &str,
    loc: &Location,
    diags: &mut Diagnostics,
) {
    let mut cur = named_type(ty).to_string();
    for seg in path {
        match types.get(&cur) {
            Some(TypeDef::InputObject(io)) => match io.fields.get(seg) {
                Some(f) => cur = named_type(&f.ty).to_string(),
                None => {
                    let names: Vec<&str> = io.fields.keys().map(String::as_str).collect();
                    diags.error_with_hint(
                        Some(loc.clone()),
                        format!(
                            "args.{arg}.{}: input type `{cur}` has no field `{seg}` (in `{owner}`)",
                            path.join(".")
                        ),
                        available("fields", &names),
                    );
                    return;
                }
            },
            _ => {
                diags.error(
                    Some(loc.clone()),
                    format!(
                        "args.{arg}.{}: `{cur}` is not an input object (in `{owner}`)",
                        path.join(".")
                    ),
                );
                return;
            }
        }
    }
}
