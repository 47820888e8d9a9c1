//! The federation marks of the plan put on the async-graphql schema, so `_service { sdl }` (which
//! async-graphql serves) prints the subgraph SDL: federation directives, none of Mosaic's.
//! `_entities` itself runs on the compiled executor; async-graphql's entity resolver only
//! answers an operation that mixes `_entities` with what the compiled executor cannot run.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, InputObject, InputValue, Interface, InterfaceField, Object, Scalar,
    SchemaBuilder, Union,
};

use crate::plan::federation::{Federation, Mark, Target};

/// Applies `$marks` that every kind of schema element takes (`@inaccessible`, `@tag`).
macro_rules! common {
    ($item:expr, $marks:expr) => {{
        let mut item = $item;
        let mut tags = Vec::new();
        for m in $marks {
            match m {
                Mark::Inaccessible => item = item.inaccessible(),
                Mark::Tag(t) => tags.push(t.clone()),
                _ => {}
            }
        }
        if !tags.is_empty() {
            item = item.tags(tags);
        }
        item
    }};
}

fn type_marks<'f>(fed: &'f Federation, name: &str) -> &'f [Mark] {
    fed.marks(&Target::Type(name.to_string()))
}

pub fn object(fed: &Federation, name: &str, mut obj: Object) -> Object {
    let marks = type_marks(fed, name);
    for m in marks {
        obj = match m {
            Mark::Key {
                fields,
                resolvable: true,
            } => obj.key(fields.as_str()),
            Mark::Key {
                fields,
                resolvable: false,
            } => obj.unresolvable(fields.as_str()),
            Mark::Shareable => obj.shareable(),
            Mark::InterfaceObject => obj.interface_object(),
            Mark::Extends => obj.extends(),
            _ => obj,
        };
    }
    common!(obj, marks)
}

/// Applies the marks a field takes (`Field` and `InterfaceField` have the same methods).
macro_rules! field_marks {
    ($field:expr, $marks:expr) => {{
        let mut field = $field;
        for m in $marks {
            field = match m {
                Mark::External => field.external(),
                Mark::Requires(f) => field.requires(f.as_str()),
                Mark::Provides(f) => field.provides(f.as_str()),
                Mark::Shareable => field.shareable(),
                Mark::Override(from) => field.override_from(from.as_str()),
                _ => field,
            };
        }
        common!(field, $marks)
    }};
}

pub fn field(fed: &Federation, tname: &str, fname: &str, field: Field) -> Field {
    field_marks!(field, fed.marks(&Target::Field(tname.to_string(), fname.to_string())))
}

pub fn interface_field(fed: &Federation, tname: &str, fname: &str, field: InterfaceField) -> InterfaceField {
    field_marks!(field, fed.marks(&Target::Field(tname.to_string(), fname.to_string())))
}

pub fn argument(fed: &Federation, tname: &str, fname: &str, arg: InputValue, aname: &str) -> InputValue {
    common!(
        arg,
        fed.marks(&Target::Arg(tname.to_string(), fname.to_string(), aname.to_string()))
    )
}

pub fn member_input(fed: &Federation, tname: &str, name: &str, iv: InputValue) -> InputValue {
    common!(iv, fed.marks(&Target::Member(tname.to_string(), name.to_string())))
}

pub fn enum_item(fed: &Federation, tname: &str, name: &str, item: EnumItem) -> EnumItem {
    common!(item, fed.marks(&Target::Member(tname.to_string(), name.to_string())))
}

pub fn interface(fed: &Federation, name: &str, it: Interface) -> Interface {
    let marks = type_marks(fed, name);
    let it = if marks.contains(&Mark::Extends) {
        it.extends()
    } else {
        it
    };
    common!(it, marks)
}

pub fn union(fed: &Federation, name: &str, u: Union) -> Union {
    common!(u, type_marks(fed, name))
}

pub fn scalar(fed: &Federation, name: &str, s: Scalar) -> Scalar {
    common!(s, type_marks(fed, name))
}

pub fn enumeration(fed: &Federation, name: &str, e: Enum) -> Enum {
    common!(e, type_marks(fed, name))
}

pub fn input_object(fed: &Federation, name: &str, io: InputObject) -> InputObject {
    common!(io, type_marks(fed, name))
}

/// Types the federation support of async-graphql registers itself.
pub fn registered_by_federation(name: &str) -> bool {
    matches!(name, "_Any" | "_Entity" | "_Service")
}

/// Federation on: `_service` and `_entities` on the query type. An operation with `_entities`
/// runs on the compiled executor; this resolver answers only one that also needs async-graphql's
/// executor (introspection beside `_entities`), with an error saying to split it.
pub fn enable(builder: SchemaBuilder) -> SchemaBuilder {
    builder.enable_federation().entity_resolver(|_| {
        FieldFuture::new(async {
            Err::<Option<async_graphql::dynamic::FieldValue<'_>>, _>(async_graphql::Error::new(
                "`_entities` cannot be combined with introspection in one operation: send them separately",
            ))
        })
    })
}
