//! Where each field is defined (file, position, directives as written), for the binder and the
//! checks that report at a field.

use std::collections::HashMap;

use async_graphql_parser::types::{FieldDefinition, TypeKind};
use async_graphql_parser::Pos;
use indexmap::IndexMap;

use super::super::directives::Site;
use super::*;

/// A field definition as written: where it is and its directives, for the binder.
pub(in crate::plan) struct FieldSite<'a> {
    pub def: &'a FieldDefinition,
    pub pos: Pos,
    pub site: Site,
}

/// (type name, field name) → where the field was written.
pub(in crate::plan) type FieldSites<'a> = HashMap<(String, String), FieldSite<'a>>;

pub(super) fn collect_field_sites<'a>(defs: &IndexMap<String, RawType<'a>>, exts: &[RawType<'a>]) -> FieldSites<'a> {
    let mut out = HashMap::new();
    for raw in defs.values().chain(exts.iter()) {
        let fields = match &raw.def.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            _ => continue,
        };
        for f in fields {
            out.entry((raw.def.name.node.to_string(), f.node.name.node.to_string()))
                .or_insert(FieldSite {
                    def: &f.node,
                    pos: f.pos,
                    site: raw.site.clone(),
                });
        }
    }
    out
}
