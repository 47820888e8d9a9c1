//! Plan → async-graphql dynamic schema: the public types (what introspection and `mosaic schema`
//! show, with no directive or backend detail) and a resolver per field for the async-graphql path.

use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, InputObject, InputValue, Interface, InterfaceField, Object, Scalar, Schema, SchemaBuilder,
    SchemaError, Subscription, SubscriptionField, TypeRef, Union,
};
use async_graphql_parser::types::{BaseType, Type};

use super::resolve::{field_resolver, FieldInfo};
use super::subscription::stream_resolver;
use crate::plan::{Plan, TypeDef};

/// Builds the schema. `data` is added as schema data (the engine handles resolvers need).
pub fn build_schema(
    plan: &Arc<Plan>,
    configure: impl FnOnce(SchemaBuilder) -> SchemaBuilder,
) -> Result<Schema, SchemaError> {
    let mut builder = Schema::build(
        plan.query_type.as_str(),
        plan.mutation_type.as_deref(),
        plan.subscription_type.as_deref(),
    );
    let fed = plan.federation.as_ref();
    for def in plan.types.values() {
        if fed.is_some() && super::federation::registered_by_federation(def.name()) {
            continue;
        }
        builder = match def {
            TypeDef::Scalar(s) => {
                if matches!(s.name.as_str(), "Int" | "Float" | "String" | "Boolean" | "ID") {
                    builder
                } else {
                    let mut sc = Scalar::new(s.name.as_str());
                    if let Some(d) = &s.description {
                        sc = sc.description(d);
                    }
                    if let Some(fed) = fed {
                        sc = super::federation::scalar(fed, &s.name, sc);
                    }
                    builder.register(sc)
                }
            }
            TypeDef::Enum(e) => {
                let mut en = Enum::new(e.name.as_str());
                for v in &e.values {
                    let mut item = EnumItem::new(v.name.as_str());
                    if let Some(d) = &v.description {
                        item = item.description(d);
                    }
                    if let Some(r) = &v.deprecation {
                        item = item.deprecation(Some(r.as_str()));
                    }
                    if let Some(fed) = fed {
                        item = super::federation::enum_item(fed, &e.name, &v.name, item);
                    }
                    en = en.item(item);
                }
                if let Some(d) = &e.description {
                    en = en.description(d);
                }
                if let Some(fed) = fed {
                    en = super::federation::enumeration(fed, &e.name, en);
                }
                builder.register(en)
            }
            TypeDef::InputObject(io) => {
                let mut obj = InputObject::new(io.name.as_str());
                for f in io.fields.values() {
                    let mut iv = input_value(f);
                    if let Some(fed) = fed {
                        iv = super::federation::member_input(fed, &io.name, &f.name, iv);
                    }
                    obj = obj.field(iv);
                }
                if let Some(d) = &io.description {
                    obj = obj.description(d);
                }
                if let Some(fed) = fed {
                    obj = super::federation::input_object(fed, &io.name, obj);
                }
                builder.register(obj)
            }
            TypeDef::Object(o) if plan.subscription_type.as_deref() == Some(o.name.as_str()) => {
                let mut sub = Subscription::new(o.name.as_str());
                for f in o.fields.values() {
                    let info = Arc::new(FieldInfo::new(plan.clone(), &o.name, f));
                    let mut field = SubscriptionField::new(f.name.as_str(), type_ref(&f.ty), stream_resolver(info));
                    for a in f.args.values() {
                        field = field.argument(input_value(a));
                    }
                    if let Some(d) = &f.description {
                        field = field.description(d);
                    }
                    sub = sub.field(field);
                }
                if let Some(d) = &o.description {
                    sub = sub.description(d);
                }
                builder.register(sub)
            }
            TypeDef::Object(o) => {
                let mut obj = Object::new(o.name.as_str());
                for i in &o.implements {
                    obj = obj.implement(i.as_str());
                }
                for f in o.fields.values() {
                    let info = Arc::new(FieldInfo::new(plan.clone(), &o.name, f));
                    let mut field = Field::new(f.name.as_str(), type_ref(&f.ty), field_resolver(info));
                    for a in f.args.values() {
                        let mut arg = input_value(a);
                        if let Some(fed) = fed {
                            arg = super::federation::argument(fed, &o.name, &f.name, arg, &a.name);
                        }
                        field = field.argument(arg);
                    }
                    if let Some(d) = &f.description {
                        field = field.description(d);
                    }
                    if let Some(r) = &f.deprecation {
                        field = field.deprecation(Some(r.as_str()));
                    }
                    if let Some(fed) = fed {
                        field = super::federation::field(fed, &o.name, &f.name, field);
                    }
                    obj = obj.field(field);
                }
                if let Some(d) = &o.description {
                    obj = obj.description(d);
                }
                if let Some(fed) = fed {
                    obj = super::federation::object(fed, &o.name, obj);
                }
                builder.register(obj)
            }
            TypeDef::Interface(i) => {
                let mut it = Interface::new(i.name.as_str());
                for f in i.fields.values() {
                    let mut field = InterfaceField::new(f.name.as_str(), type_ref(&f.ty));
                    for a in f.args.values() {
                        let mut arg = input_value(a);
                        if let Some(fed) = fed {
                            arg = super::federation::argument(fed, &i.name, &f.name, arg, &a.name);
                        }
                        field = field.argument(arg);
                    }
                    if let Some(d) = &f.description {
                        field = field.description(d);
                    }
                    if let Some(fed) = fed {
                        field = super::federation::interface_field(fed, &i.name, &f.name, field);
                    }
                    it = it.field(field);
                }
                if let Some(d) = &i.description {
                    it = it.description(d);
                }
                if let Some(fed) = fed {
                    it = super::federation::interface(fed, &i.name, it);
                }
                builder.register(it)
            }
            TypeDef::Union(u) => {
                let mut un = Union::new(u.name.as_str());
                for m in &u.members {
                    un = un.possible_type(m.as_str());
                }
                if let Some(d) = &u.description {
                    un = un.description(d);
                }
                if let Some(fed) = fed {
                    un = super::federation::union(fed, &u.name, un);
                }
                builder.register(un)
            }
        };
    }
    if fed.is_some() {
        builder = super::federation::enable(builder);
    }
    configure(builder).finish()
}

fn input_value(def: &crate::plan::InputValueDef) -> InputValue {
    let mut iv = InputValue::new(def.name.as_str(), type_ref(&def.ty));
    if let Some(d) = &def.default {
        iv = iv.default_value(d.clone());
    }
    if let Some(d) = &def.description {
        iv = iv.description(d);
    }
    iv
}

/// The dynamic schema's form of a type.
pub fn type_ref(ty: &Type) -> TypeRef {
    let base = match &ty.base {
        BaseType::Named(n) => TypeRef::Named(n.to_string().into()),
        BaseType::List(inner) => TypeRef::List(Box::new(type_ref(inner))),
    };
    if ty.nullable {
        base
    } else {
        TypeRef::NonNull(Box::new(base))
    }
}
