//! `oneOf` / `anyOf` outside an object: a single variant, a list or its page (unwrapped), a
//! discriminated union, scalars of one type — or `JSON`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use super::model::{jq_key, Def, Mode, Shape, Ty, TypeDef};
use super::names;
use super::source::Target;
use super::types::{description, is_object_schema, type_of, Builder};

impl Builder<'_> {
    pub(super) fn composite(
        &mut self,
        s: &Value,
        variants: &[Value],
        hint: &str,
        mode: Mode,
        file: Option<PathBuf>,
        depth: u32,
    ) -> Shape {
        let mut resolved = Vec::new();
        let mut nullable = false;
        for v in variants {
            let (value, vfile, target) = self.deref(v, file.clone());
            if type_of(&value) == (None, true) || value.get("type") == Some(&Value::String("null".into())) {
                nullable = true;
                continue;
            }
            resolved.push((v.clone(), value, vfile, target));
        }
        if resolved.len() == 1 {
            let (v, ..) = &resolved[0];
            let mut shape = self.shape(v, hint, mode, file, depth + 1);
            shape.nullable |= nullable;
            return shape;
        }
        if resolved.is_empty() {
            return self.json("oneOf of nothing but null: JSON");
        }
        // A list, or an envelope holding the same list (a page): the list, unwrapped.
        if let Some(shape) = self.list_or_envelope(&resolved, hint, mode, depth) {
            return Shape { nullable, ..shape };
        }
        // Scalars of one GraphQL type; an argument of several (`integer` or `string`) is text.
        let scalar_types: BTreeSet<Option<&str>> = resolved.iter().map(|(_, v, ..)| type_of(v).0).collect();
        let all_scalars = !resolved.iter().any(|(_, v, ..)| {
            is_object_schema(v) || v.get("items").is_some() || matches!(type_of(v).0, None | Some("object" | "array"))
        });
        if all_scalars && scalar_types.len() == 1 {
            let (v, ..) = &resolved[0];
            let mut shape = self.shape(v, hint, mode, file, depth + 1);
            shape.nullable |= nullable;
            return shape;
        }
        if all_scalars && mode == Mode::Input {
            return Shape {
                nullable,
                note: Some("one of several scalar types: sent as text".into()),
                ..Shape::named("String")
            };
        }
        if mode == Mode::Output {
            if let Some(shape) = self.union(s, &resolved, hint, file, depth) {
                return Shape { nullable, ..shape };
            }
        }
        let mut shape = self.json("oneOf/anyOf without a discriminator: JSON");
        shape.nullable = nullable;
        shape
    }

    fn list_or_envelope(
        &mut self,
        variants: &[(Value, Value, Option<PathBuf>, Option<Target>)],
        hint: &str,
        mode: Mode,
        depth: u32,
    ) -> Option<Shape> {
        let (list_at, (_, list, lfile, _)) = variants
            .iter()
            .enumerate()
            .find(|(_, (_, v, ..))| type_of(v).0 == Some("array"))?;
        let items = list.get("items")?.clone();
        let (item_value, ..) = self.deref(&items, lfile.clone());
        if !is_object_schema(&item_value) {
            return None;
        }
        let mut envelope_key: Option<String> = None;
        for (i, (_, v, vfile, _)) in variants.iter().enumerate() {
            if i == list_at {
                continue;
            }
            let props = v.get("properties").and_then(Value::as_object)?.clone();
            let mut lists = Vec::new();
            for (k, p) in &props {
                let (p, pfile, _) = self.deref(p, vfile.clone());
                let Some(its) = p.get("items") else { continue };
                // The same items: the same `$ref`, or the same schema written out (generators
                // inline generic pages).
                if self.deref(its, pfile).0 == item_value {
                    lists.push(k.clone());
                }
            }
            match (lists.as_slice(), &envelope_key) {
                ([k], None) => envelope_key = Some(k.clone()),
                ([k], Some(prev)) if prev == k => {}
                _ => return None,
            }
        }
        let key = envelope_key?;
        let item = self.shape(&items, &format!("{hint}Item"), mode, lfile.clone(), depth + 1);
        Some(Shape {
            ty: Ty::List(Box::new(item.ty), !item.nullable),
            nullable: false,
            note: Some(format!(
                "a list, or a page with the list under \"{key}\": the list either way"
            )),
            select: Some(format!("if type == \"array\" then . else .{} end", jq_key(&key))),
        })
    }

    fn union(
        &mut self,
        s: &Value,
        variants: &[(Value, Value, Option<PathBuf>, Option<Target>)],
        hint: &str,
        file: Option<PathBuf>,
        depth: u32,
    ) -> Option<Shape> {
        let disc = s.get("discriminator")?;
        let field = disc.get("propertyName").and_then(Value::as_str)?.to_string();
        let mut members = Vec::new();
        let mut by_target = Vec::new();
        for (v, value, _, target) in variants {
            let target = target.clone()?;
            if !is_object_schema(value) {
                return None;
            }
            let shape = self.shape(v, hint, Mode::Output, file.clone(), depth + 1);
            let name = shape.ty.named().to_string();
            if self.reg.object(&name).is_none() || matches!(shape.ty, Ty::List(..)) {
                return None;
            }
            by_target.push((target, name.clone()));
            members.push(name);
        }
        let mut map = Vec::new();
        let mapping = disc.get("mapping").and_then(Value::as_object);
        for (target, name) in &by_target {
            let value = mapping
                .and_then(|m| {
                    m.iter().find(|(_, r)| {
                        r.as_str().is_some_and(|r| {
                            let t = if r.contains('#') || r.contains('/') {
                                self.doc.target(r, target.file.as_deref())
                            } else {
                                Target {
                                    file: target.file.clone(),
                                    pointer: format!("/components/schemas/{r}"),
                                }
                            };
                            &t == target
                        })
                    })
                })
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| target.name().to_string());
            if !names::legal(&value) {
                return None;
            }
            map.push((value, name.clone()));
        }
        let name = self.reg.names.claim(hint);
        self.reg.types.insert(
            name.clone(),
            TypeDef {
                name: name.clone(),
                description: description(s),
                def: Def::Union(members, field, map),
                backend: self.backend.to_string(),
            },
        );
        Some(Shape::named(&name))
    }
}
