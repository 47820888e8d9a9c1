//! JSON Schema, as OpenAPI documents write it, turned into GraphQL types.
//!
//! - `$ref` (local or into relative files): a named type, generated once per target and mode;
//!   recursive schemas are fine (the name is taken before the fields are read).
//! - `allOf`: the parts' properties merged. `oneOf`/`anyOf`: one non-null variant is that
//!   variant; a list or an envelope of the same items is the list (with a `select` that unwraps
//!   either); object variants with a `discriminator` are a union; anything else is `JSON`.
//! - `enum`: a GraphQL enum when every value is a legal name, else the base scalar (the values in
//!   the description). `nullable` and 3.1 type lists (`["string", "null"]`) make a field nullable.
//! - Maps (`additionalProperties` only), objects without properties and untyped values: `JSON`.
//! - Formats: `int64` (or bounds past 32 bits) → `BigInt`, `date-time` → `DateTime`, `date` →
//!   `Date`, `uuid` → `UUID`; custom scalars that pass the backend's value through unchanged.
//! - Output types leave out `writeOnly` properties and take GraphQL-style names (`customer_id` →
//!   `customerId` with `@from(path: "customer_id")`); input types leave out `readOnly` ones and
//!   keep the backend's names, so a body goes to the backend as the client wrote it.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use super::model::{
    from_directive, literal, text_of, Def, InputField, Mode, ObjectField, Registry, Shape, Ty, TypeDef, SCALARS,
};
use super::names::{self, Scope};
use super::source::{Document, Target};

/// Deepest nesting of schemas read (a runaway chain of aliases ends as `JSON`).
const MAX_DEPTH: u32 = 48;

/// Reads the schemas of one document into the registry.
pub struct Builder<'a> {
    pub doc: &'a mut Document,
    pub doc_index: usize,
    pub backend: &'a str,
    pub reg: &'a mut Registry,
    /// The document's object schemas by their text, to name an inline copy of one (generators
    /// write `Page<Account>`'s items out in full) after it rather than after where it is.
    components: Option<HashMap<String, String>>,
}

pub(super) fn description(s: &Value) -> Option<String> {
    text_of(s, &["description", "title"])
}

/// The `type` of a schema, and whether a 3.1 type list or `nullable` allows null.
pub(super) fn type_of(s: &Value) -> (Option<&str>, bool) {
    let nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);
    match s.get("type") {
        Some(Value::String(t)) => (Some(t.as_str()).filter(|t| *t != "null"), nullable || t == "null"),
        Some(Value::Array(ts)) => {
            let null = ts.iter().any(|t| t == "null");
            let rest: Vec<&str> = ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            (if rest.len() == 1 { Some(rest[0]) } else { None }, nullable || null)
        }
        _ => (None, nullable),
    }
}

pub(super) fn is_object_schema(s: &Value) -> bool {
    s.get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty())
        || s.get("allOf").is_some()
}

impl<'a> Builder<'a> {
    pub fn new(doc: &'a mut Document, doc_index: usize, backend: &'a str, reg: &'a mut Registry) -> Self {
        Builder {
            doc,
            doc_index,
            backend,
            reg,
            components: None,
        }
    }

    /// The `$ref` of the component schema `s` is a copy of, if any.
    fn component_copy(&mut self, s: &Value) -> Option<String> {
        let index = self.components.get_or_insert_with(|| {
            let mut index = HashMap::new();
            let schemas = self.doc.root.pointer("/components/schemas").and_then(Value::as_object);
            for (name, schema) in schemas.into_iter().flatten() {
                if is_object_schema(schema) {
                    let escaped = name.replace('~', "~0").replace('/', "~1");
                    index
                        .entry(schema.to_string())
                        .or_insert(format!("#/components/schemas/{escaped}"));
                }
            }
            index
        });
        index.get(&s.to_string()).cloned()
    }

    pub(super) fn json(&mut self, note: impl Into<String>) -> Shape {
        self.reg.scalars.insert("JSON");
        Shape {
            note: Some(note.into()),
            ..Shape::named("JSON")
        }
    }

    fn scalar(&mut self, name: &'static str) -> Shape {
        if SCALARS.iter().any(|(n, _)| *n == name) {
            self.reg.scalars.insert(name);
        }
        Shape::named(name)
    }

    /// Follows `$ref`s to a schema: the schema, the file it is in, and the last target.
    pub fn deref(&mut self, s: &Value, file: Option<PathBuf>) -> (Value, Option<PathBuf>, Option<Target>) {
        let mut current = s.clone();
        let mut file = file;
        let mut last = None;
        for _ in 0..16 {
            let Some(r) = current.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let target = self.doc.target(r, file.as_deref());
            match self.doc.resolve(&target) {
                Some(v) => {
                    file = target.file.clone();
                    last = Some(target);
                    current = v;
                }
                None => return (Value::Null, file, Some(target)),
            }
        }
        (current, file, last)
    }

    /// The GraphQL type for schema `s` (read in `file`); `hint` names an inline object or enum.
    pub fn shape(&mut self, s: &Value, hint: &str, mode: Mode, file: Option<PathBuf>, depth: u32) -> Shape {
        if depth > MAX_DEPTH {
            return self.json("nested too deeply: JSON");
        }
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            let outer_nullable = type_of(s).1;
            let mut shape = self.reference(r, hint, mode, file, depth);
            shape.nullable |= outer_nullable;
            return shape;
        }
        let (ty, nullable) = type_of(s);
        let mut shape = self.shape_of(s, ty, hint, mode, file, depth);
        shape.nullable |= nullable;
        shape
    }

    fn reference(&mut self, r: &str, hint: &str, mode: Mode, file: Option<PathBuf>, depth: u32) -> Shape {
        let target = self.doc.target(r, file.as_deref());
        // Already generated: no need to read (and copy) the schema again.
        for key_mode in [mode, Mode::Output] {
            if let Some((name, nullable)) = self.reg.seen.get(&(self.doc_index, target.clone(), key_mode)) {
                let enum_or_same_mode = key_mode == mode || self.reg.is_enum(name);
                if enum_or_same_mode {
                    let mut shape = Shape::named(name);
                    shape.nullable = *nullable;
                    if name == "JSON" {
                        shape.note = Some(format!("{} cannot be a GraphQL type: JSON", target.name()));
                    }
                    return shape;
                }
            }
        }
        let Some(resolved) = self.doc.resolve(&target) else {
            return self.json(format!("unresolved $ref {r}: JSON"));
        };
        let tfile = target.file.clone();
        let own_hint = names::type_name(target.name()).unwrap_or_else(|| hint.to_string());
        let is_enum = resolved.get("enum").is_some();
        if !(is_object_schema(&resolved) || is_enum) {
            // An alias (`Id: {type: string}`), a list, a map or a composite: read in place.
            return self.shape(&resolved, &own_hint, mode, tfile, depth + 1);
        }
        let nullable = type_of(&resolved).1;
        if is_enum {
            let shape = self.enumeration(&resolved, &own_hint);
            if let Ty::Named(n) = &shape.ty {
                if self.reg.is_enum(n) {
                    self.reg
                        .seen
                        .insert((self.doc_index, target, Mode::Output), (n.clone(), shape.nullable));
                }
            }
            return shape;
        }
        let base = match mode {
            Mode::Output => own_hint,
            Mode::Input => format!("{own_hint}Input"),
        };
        let name = self.reg.names.claim(&base);
        let key = (self.doc_index, target, mode);
        self.reg.seen.insert(key.clone(), (name.clone(), nullable));
        if !self.object(&resolved, &name, mode, tfile, depth + 1) {
            self.reg.seen.insert(key, ("JSON".into(), true));
            return self.json("an object without usable properties: JSON");
        }
        let mut shape = Shape::named(&name);
        shape.nullable = nullable;
        shape
    }

    fn shape_of(
        &mut self,
        s: &Value,
        ty: Option<&str>,
        hint: &str,
        mode: Mode,
        file: Option<PathBuf>,
        depth: u32,
    ) -> Shape {
        if s.get("enum").is_some() {
            return self.enumeration(s, hint);
        }
        if let Some(variants) = s.get("oneOf").or_else(|| s.get("anyOf")).and_then(Value::as_array) {
            if !is_object_schema(s) {
                return self.composite(s, variants, hint, mode, file, depth);
            }
        }
        if let Some(parts) = s.get("allOf").and_then(Value::as_array) {
            if parts.len() == 1 && s.get("properties").is_none() {
                return self.shape(&parts[0], hint, mode, file, depth + 1);
            }
        }
        if is_object_schema(s) {
            if file.is_none() {
                if let Some(r) = self.component_copy(s) {
                    return self.reference(&r, hint, mode, file, depth + 1);
                }
            }
            let base = match mode {
                Mode::Output => hint.to_string(),
                Mode::Input => format!("{hint}Input"),
            };
            let name = self.reg.names.claim(&base);
            if !self.object(s, &name, mode, file, depth + 1) {
                return self.json("an object without usable properties: JSON");
            }
            return Shape::named(&name);
        }
        let format = s.get("format").and_then(Value::as_str).unwrap_or("");
        let ty = ty.or_else(|| {
            if s.get("items").is_some() {
                Some("array")
            } else if s.get("additionalProperties").is_some() {
                Some("object")
            } else {
                None
            }
        });
        match ty {
            Some("string") => match format {
                "date-time" => self.scalar("DateTime"),
                "date" => self.scalar("Date"),
                "uuid" => self.scalar("UUID"),
                _ => Shape::named("String"),
            },
            Some("integer") => {
                let past_32_bits = |k: &str, limit: f64| {
                    s.get(k)
                        .and_then(Value::as_f64)
                        .is_some_and(|v| if limit > 0.0 { v > limit } else { v < limit })
                };
                if matches!(format, "int64" | "uint64" | "uint32")
                    || past_32_bits("maximum", i32::MAX as f64)
                    || past_32_bits("minimum", i32::MIN as f64)
                {
                    self.scalar("BigInt")
                } else {
                    Shape::named("Int")
                }
            }
            Some("number") => Shape::named("Float"),
            Some("boolean") => Shape::named("Boolean"),
            Some("array") => {
                let items = s.get("items").cloned().unwrap_or(Value::Null);
                let item_hint = format!("{hint}Item");
                let item = self.shape(&items, &item_hint, mode, file, depth + 1);
                Shape {
                    ty: Ty::List(Box::new(item.ty), !item.nullable),
                    nullable: false,
                    note: item.note,
                    select: None,
                }
            }
            Some("object") => {
                if s.get("additionalProperties").is_some_and(|a| a != &Value::Bool(false)) {
                    self.json("a map (additionalProperties): JSON")
                } else {
                    self.json("an object without properties: JSON")
                }
            }
            _ => self.json("no type given: JSON"),
        }
    }

    /// An enum schema: a GraphQL enum when GraphQL can carry every value unchanged.
    fn enumeration(&mut self, s: &Value, hint: &str) -> Shape {
        let values: Vec<&Value> = s
            .get("enum")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| !v.is_null())
            .collect();
        let nullable = type_of(s).1
            || s.get("enum")
                .and_then(Value::as_array)
                .is_some_and(|e| e.iter().any(Value::is_null));
        let strings: Option<Vec<&str>> = values.iter().map(|v| v.as_str()).collect();
        let legal: Option<Vec<String>> = strings
            .as_ref()
            .and_then(|vs| vs.iter().map(|v| names::enum_value(v).map(str::to_string)).collect());
        match legal {
            Some(mut values) if !values.is_empty() => {
                values.dedup();
                let key = (hint.to_string(), values.clone());
                let name = match self.reg.inline_enums.get(&key) {
                    Some(n) => n.clone(),
                    None => {
                        let name = self.reg.names.claim(hint);
                        self.reg.inline_enums.insert(key, name.clone());
                        self.reg.types.insert(
                            name.clone(),
                            TypeDef {
                                name: name.clone(),
                                description: description(s),
                                def: Def::Enum(values),
                                backend: self.backend.to_string(),
                            },
                        );
                        name
                    }
                };
                Shape {
                    nullable,
                    ..Shape::named(&name)
                }
            }
            _ => {
                let (base, _) = type_of(s);
                let mut shape = match base {
                    Some("integer") => Shape::named("Int"),
                    Some("number") => Shape::named("Float"),
                    Some("boolean") => Shape::named("Boolean"),
                    _ if strings.is_some() => Shape::named("String"),
                    _ => self.json("an enum of mixed values: JSON"),
                };
                if strings.is_some() {
                    let list: Vec<String> = values.iter().take(20).map(|v| v.to_string()).collect();
                    shape.note = Some(format!("one of {} (not all are GraphQL names)", list.join(", ")));
                }
                shape.nullable = nullable;
                shape
            }
        }
    }

    /// The properties of an object schema, its `allOf` parts merged, each with the file it is in.
    fn properties(
        &mut self,
        s: &Value,
        file: Option<PathBuf>,
        depth: u32,
        out: &mut Vec<(String, Value, Option<PathBuf>)>,
        required: &mut BTreeSet<String>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        for part in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            let (part, pfile, _) = self.deref(part, file.clone());
            self.properties(&part, pfile, depth + 1, out, required);
        }
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            required.insert(r.to_string());
        }
        for (k, v) in s.get("properties").and_then(Value::as_object).into_iter().flatten() {
            match out.iter_mut().find(|(name, ..)| name == k) {
                Some(slot) => *slot = (k.clone(), v.clone(), file.clone()),
                None => out.push((k.clone(), v.clone(), file.clone())),
            }
        }
    }

    /// Defines object or input type `name` from schema `s`; `false` when it has no field
    /// GraphQL can carry (then it is not defined: the caller uses `JSON`).
    fn object(&mut self, s: &Value, name: &str, mode: Mode, file: Option<PathBuf>, depth: u32) -> bool {
        let mut props = Vec::new();
        let mut required = BTreeSet::new();
        self.properties(s, file, depth, &mut props, &mut required);
        let mut scope = Scope::default();
        let def = match mode {
            Mode::Output => {
                let mut fields = Vec::new();
                for (wire, schema, pfile) in props {
                    let (resolved, ..) = self.deref(&schema, pfile.clone());
                    if resolved.get("writeOnly").and_then(Value::as_bool) == Some(true) {
                        continue;
                    }
                    let Some(base) = names::field(&wire) else { continue };
                    let field = scope.claim(&base);
                    let hint = format!("{name}{}", names::type_name(&wire).unwrap_or_default());
                    let mut shape = self.shape(&schema, &hint, mode, pfile, depth + 1);
                    if wire == "id"
                        && matches!(&shape.ty, Ty::Named(n) if n == "String" || n == "Int" || n == "BigInt" || n == "UUID")
                    {
                        shape.ty = Ty::Named("ID".into());
                    }
                    let non_null = required.contains(&wire) && !shape.nullable;
                    let directive = (field != wire).then(|| from_directive(&wire));
                    fields.push(ObjectField {
                        name: field,
                        wire,
                        ty: shape.ty.render(non_null),
                        description: description(&schema).or_else(|| description(&resolved)),
                        directive,
                        note: shape.note,
                    });
                }
                Def::Object(fields)
            }
            Mode::Input => {
                let mut fields = Vec::new();
                for (wire, schema, pfile) in props {
                    let (resolved, ..) = self.deref(&schema, pfile.clone());
                    if resolved.get("readOnly").and_then(Value::as_bool) == Some(true) || !names::legal(&wire) {
                        continue;
                    }
                    scope.claim(&wire);
                    let hint = format!(
                        "{}{}",
                        name.trim_end_matches("Input"),
                        names::type_name(&wire).unwrap_or_default()
                    );
                    let shape = self.shape(&schema, &hint, mode, pfile, depth + 1);
                    let non_null = required.contains(&wire) && !shape.nullable && resolved.get("default").is_none();
                    let default = resolved.get("default").and_then(|d| self.default(d, &shape.ty));
                    fields.push(InputField {
                        name: wire,
                        ty: shape.ty.render(non_null),
                        description: description(&schema).or_else(|| description(&resolved)),
                        default,
                        note: shape.note,
                    });
                }
                Def::Input(fields)
            }
        };
        let empty = match &def {
            Def::Object(f) => f.is_empty(),
            Def::Input(f) => f.is_empty(),
            _ => false,
        };
        if empty {
            // GraphQL has no empty object types.
            return false;
        }
        self.reg.types.insert(
            name.to_string(),
            TypeDef {
                name: name.to_string(),
                description: description(s),
                def,
                backend: self.backend.to_string(),
            },
        );
        true
    }
}

impl Builder<'_> {
    /// A default value as a GraphQL literal, when it fits the type (documents' defaults are
    /// often of another type than their schema: `"10"` for an integer).
    pub fn default(&self, v: &Value, ty: &Ty) -> Option<String> {
        let fits = match (ty, v) {
            (Ty::List(item, _), Value::Array(items)) => {
                return items
                    .iter()
                    .all(|i| self.default(i, item).is_some())
                    .then(|| literal(v, self.reg.is_enum(ty.named())))
                    .flatten()
            }
            (Ty::List(..), _) => false,
            (Ty::Named(n), v) => match (n.as_str(), v) {
                ("Int", Value::Number(x)) => x.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                ("Float", Value::Number(_)) => true,
                ("Boolean", Value::Bool(_)) => true,
                ("String" | "ID" | "Date" | "DateTime" | "UUID", Value::String(_)) => true,
                ("BigInt", Value::Number(x)) => x.is_i64() || x.is_u64(),
                ("JSON", _) => false,
                (n, Value::String(s)) => match self.reg.types.get(n).map(|t| &t.def) {
                    Some(Def::Enum(values)) => values.iter().any(|x| x == s),
                    _ => false,
                },
                _ => false,
            },
        };
        fits.then(|| literal(v, self.reg.is_enum(ty.named()))).flatten()
    }
}
