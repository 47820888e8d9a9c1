//! Operation → [`OpPlan`]: the spec's field collection done once per (document, operation,
//! `@skip`/`@include` values), so execution never looks at the document again.
//!
//! Fields with the same response key are merged, fragments are applied per concrete type, and each
//! field is resolved to its definition, its data source, its leaf coercion and its arguments.

use std::sync::Arc;

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, FragmentDefinition, OperationDefinition, OperationType,
    Selection, SelectionSet,
};
use async_graphql::{Name, Positioned};
use async_graphql_parser::types::{BaseType, Type};
use async_graphql_value::Value as GqlValue;
use indexmap::IndexMap;
use serde_json::Value;

use super::args::ArgsPlan;
use crate::plan::coerce::LeafKind;
use crate::plan::{FieldSource, JsonPath, Plan, TypeDef};

/// A compiled operation.
#[derive(Debug)]
pub struct OpPlan {
    pub kind: OperationType,
    pub root_type: Arc<str>,
    pub variables: Vec<VarDef>,
    pub root: SelectionPlan,
    /// Number of bound fields (each has a slot for its fetched data).
    pub slots: usize,
    /// The size of the last response, so the next one's buffer is allocated once.
    pub size_hint: std::sync::atomic::AtomicUsize,
    /// A query without `@auth` fields: its response depends on the backends' answers alone.
    pub memoizable: bool,
    /// Its last response (see [`super::memo`]).
    pub memo: super::memo::WriteMemo,
}

#[derive(Debug)]
pub struct VarDef {
    pub name: String,
    pub ty: Type,
    pub default: Option<Value>,
}

/// The fields to write for an object, by its concrete type.
#[derive(Debug)]
pub struct SelectionPlan {
    /// The (object, interface or union) type this selection is on.
    pub type_name: Arc<str>,
    /// `type_name` is an object type: every value is of that type (no discriminator to read).
    pub is_object: bool,
    pub by_type: Vec<(Arc<str>, Vec<FieldPlan>)>,
    /// Whether any field at or below this selection makes a backend call.
    pub has_calls: bool,
}

impl SelectionPlan {
    pub fn fields_for(&self, concrete: &str) -> &[FieldPlan] {
        if self.by_type.len() == 1 {
            return &self.by_type[0].1;
        }
        self.by_type
            .iter()
            .find(|(t, _)| &**t == concrete)
            .map(|(_, f)| f.as_slice())
            .unwrap_or(&[])
    }
}

/// One field to write.
#[derive(Debug)]
pub struct FieldPlan {
    /// `"key":` pre-escaped.
    pub key_json: Box<[u8]>,
    pub key: Arc<str>,
    pub parent_type: Arc<str>,
    pub field_name: Arc<str>,
    pub pos: (usize, usize),
    pub ty: Type,
    pub source: Src,
    pub output: Output,
    /// `@fallback` value served when the field's call fails.
    pub fallback: Option<Value>,
    /// `@auth`: who may read the field.
    pub auth: Option<crate::plan::AuthRule>,
}

#[derive(Debug)]
pub enum Src {
    Typename,
    Parent(JsonPath),
    /// `@from(expr:)`: computed from the parent's backend JSON when written.
    Computed(Arc<crate::plan::mapping::Mapping>),
    /// A backend call; `slot` indexes the request's fetched data.
    Call {
        binding: crate::plan::BindingId,
        slot: usize,
        args: ArgsPlan,
    },
    /// `Query._entities` of a federated subgraph: the representations are kept in `slot`, each
    /// entity resolver's answers in its own slot.
    Entities {
        args: ArgsPlan,
        slot: usize,
        resolvers: Vec<(crate::plan::BindingId, usize)>,
    },
}

#[derive(Debug)]
pub enum Output {
    Leaf(LeafKind),
    /// An object, interface or union type (named), and what to write of it.
    Composite(Arc<str>, SelectionPlan),
}

/// Why an operation runs on async-graphql's executor instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCompilable {
    NoSuchOperation,
    Subscription,
    Introspection,
    RustResolver,
    Unsupported,
}

pub enum Compiled {
    Plan(OpPlan),
    NotCompilable(NotCompilable),
}

pub fn find_operation<'d>(
    doc: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(n)) => ops.get(n),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    }
}

struct Compiler<'a> {
    plan: &'a Plan,
    fragments: &'a std::collections::HashMap<Name, Positioned<FragmentDefinition>>,
    conditions: &'a [(String, bool)],
    slots: usize,
    error: Option<NotCompilable>,
}

/// Compiles one operation; `conditions` are the values of the variables used by `@skip`/`@include`.
pub fn compile(plan: &Plan, doc: &ExecutableDocument, name: Option<&str>, conditions: &[(String, bool)]) -> Compiled {
    let Some(op) = find_operation(doc, name) else {
        return Compiled::NotCompilable(NotCompilable::NoSuchOperation);
    };
    let root_type: Arc<str> = match op.node.ty {
        OperationType::Query => Arc::from(plan.query_type.as_str()),
        OperationType::Mutation => match &plan.mutation_type {
            Some(m) => Arc::from(m.as_str()),
            None => return Compiled::NotCompilable(NotCompilable::NoSuchOperation),
        },
        OperationType::Subscription => return Compiled::NotCompilable(NotCompilable::Subscription),
    };
    let mut c = Compiler {
        plan,
        fragments: &doc.fragments,
        conditions,
        slots: 0,
        error: None,
    };
    let variables = op
        .node
        .variable_definitions
        .iter()
        .map(|v| VarDef {
            name: v.node.name.node.to_string(),
            ty: v.node.var_type.node.clone(),
            default: v
                .node
                .default_value
                .as_ref()
                .and_then(|d| d.node.clone().into_json().ok()),
        })
        .collect();
    let sets = [&op.node.selection_set.node];
    let root = c.selection(&root_type, &sets);
    if let Some(e) = c.error {
        return Compiled::NotCompilable(e);
    }
    let memoizable = op.node.ty == OperationType::Query && !any_auth(&root);
    Compiled::Plan(OpPlan {
        memoizable,
        memo: super::memo::WriteMemo::default(),
        kind: op.node.ty,
        root_type,
        variables,
        root,
        slots: c.slots,
        size_hint: std::sync::atomic::AtomicUsize::new(1024),
    })
}

/// Whether any field at or below `sel` has an `@auth` rule (checked against the caller).
fn any_auth(sel: &SelectionPlan) -> bool {
    sel.by_type
        .iter()
        .flat_map(|(_, fields)| fields)
        .any(|f| f.auth.is_some() || matches!(&f.output, Output::Composite(_, sub) if any_auth(sub)))
}

impl<'a> Compiler<'a> {
    /// The selection for a value of (named) type `type_name`, from merged selection sets.
    fn selection(&mut self, type_name: &str, sets: &[&'a SelectionSet]) -> SelectionPlan {
        let concrete: Vec<String> = self
            .plan
            .possible_types(type_name)
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut by_type = Vec::with_capacity(concrete.len());
        let mut has_calls = false;
        for obj in concrete {
            let mut groups: IndexMap<&'a str, Vec<&'a Positioned<Field>>> = IndexMap::new();
            for set in sets {
                self.collect(&obj, set, &mut groups);
            }
            let fields: Vec<FieldPlan> = groups
                .into_iter()
                .filter_map(|(key, nodes)| self.field(&obj, key, &nodes))
                .collect();
            has_calls |= fields.iter().any(|f| {
                matches!(f.source, Src::Call { .. } | Src::Entities { .. })
                    || matches!(&f.output, Output::Composite(_, s) if s.has_calls)
            });
            by_type.push((Arc::from(obj.as_str()), fields));
        }
        SelectionPlan {
            is_object: matches!(self.plan.types.get(type_name), Some(TypeDef::Object(_))),
            type_name: Arc::from(type_name),
            by_type,
            has_calls,
        }
    }

    /// The spec's CollectFields for object type `obj`.
    fn collect(
        &mut self,
        obj: &str,
        set: &'a SelectionSet,
        groups: &mut IndexMap<&'a str, Vec<&'a Positioned<Field>>>,
    ) {
        for sel in &set.items {
            match &sel.node {
                Selection::Field(f) => {
                    if self.skipped(&f.node.directives) {
                        continue;
                    }
                    groups.entry(f.node.response_key().node.as_str()).or_default().push(f);
                }
                Selection::FragmentSpread(s) => {
                    if self.skipped(&s.node.directives) {
                        continue;
                    }
                    let Some(frag) = self.fragments.get(&s.node.fragment_name.node) else {
                        self.error = Some(NotCompilable::Unsupported);
                        continue;
                    };
                    if self.applies(obj, frag.node.type_condition.node.on.node.as_str()) {
                        self.collect(obj, &frag.node.selection_set.node, groups);
                    }
                }
                Selection::InlineFragment(i) => {
                    if self.skipped(&i.node.directives) {
                        continue;
                    }
                    let applies = match &i.node.type_condition {
                        Some(tc) => self.applies(obj, tc.node.on.node.as_str()),
                        None => true,
                    };
                    if applies {
                        self.collect(obj, &i.node.selection_set.node, groups);
                    }
                }
            }
        }
    }

    fn applies(&self, obj: &str, condition: &str) -> bool {
        obj == condition || self.plan.possible_types(condition).contains(&obj)
    }

    fn skipped(&self, directives: &[Positioned<Directive>]) -> bool {
        for d in directives {
            let name = d.node.name.node.as_str();
            if name != "skip" && name != "include" {
                continue;
            }
            let value = match d.node.get_argument("if").map(|v| &v.node) {
                Some(GqlValue::Boolean(b)) => *b,
                Some(GqlValue::Variable(v)) => self
                    .conditions
                    .iter()
                    .find(|(n, _)| n == v.as_str())
                    .map(|(_, b)| *b)
                    .unwrap_or(false),
                _ => false,
            };
            if (name == "skip" && value) || (name == "include" && !value) {
                return true;
            }
        }
        false
    }

    fn field(&mut self, obj: &str, key: &str, nodes: &[&'a Positioned<Field>]) -> Option<FieldPlan> {
        let first = nodes.first()?;
        let name = first.node.name.node.as_str();
        let pos = (first.pos.line, first.pos.column);
        let key_json = key_json(key);
        let base = |ty: Type, source: Src, output: Output| FieldPlan {
            key_json: key_json.clone(),
            key: Arc::from(key),
            parent_type: Arc::from(obj),
            field_name: Arc::from(name),
            pos,
            ty,
            source,
            output,
            fallback: None,
            auth: None,
        };
        if name == "__typename" {
            let ty = Type::new("String!").unwrap_or(Type {
                base: BaseType::Named(Name::new("String")),
                nullable: false,
            });
            let kind = LeafKind::of(self.plan.types.get("String")?)?;
            return Some(base(ty, Src::Typename, Output::Leaf(kind)));
        }
        if name == "__schema" || name == "__type" {
            self.error = Some(NotCompilable::Introspection);
            return None;
        }
        if let (Some(fed), "_entities", true) = (&self.plan.federation, name, obj == self.plan.query_type) {
            let slot = self.slots;
            self.slots += 1;
            let mut resolvers = Vec::new();
            for r in fed.entities.values().flat_map(|e| &e.resolvers) {
                resolvers.push((r.binding, self.slots));
                self.slots += 1;
            }
            let source = Src::Entities {
                args: ArgsPlan::compile(self.plan, &fed.entities_field, &first.node.arguments),
                slot,
                resolvers,
            };
            let sets: Vec<&'a SelectionSet> = nodes.iter().map(|n| &n.node.selection_set.node).collect();
            let output = Output::Composite(Arc::from("_Entity"), self.selection("_Entity", &sets));
            return Some(base(fed.entities_field.ty.clone(), source, output));
        }
        let Some(def) = self.plan.fields_of(obj).and_then(|f| f.get(name)) else {
            self.error = Some(NotCompilable::Unsupported);
            return None;
        };
        let source = match &def.source {
            FieldSource::Parent(p) => Src::Parent(p.clone()),
            FieldSource::Computed(m) => Src::Computed(m.clone()),
            FieldSource::Call(b) => {
                let slot = self.slots;
                self.slots += 1;
                Src::Call {
                    binding: *b,
                    slot,
                    args: ArgsPlan::compile(self.plan, def, &first.node.arguments),
                }
            }
            FieldSource::Resolver(_) => {
                self.error = Some(NotCompilable::RustResolver);
                return None;
            }
            FieldSource::Stream(_) => {
                self.error = Some(NotCompilable::Subscription);
                return None;
            }
        };
        let named = crate::plan::named_type(&def.ty);
        let output = match self.plan.types.get(named)? {
            leaf @ (TypeDef::Scalar(_) | TypeDef::Enum(_)) => Output::Leaf(LeafKind::of(leaf)?),
            TypeDef::Object(_) | TypeDef::Interface(_) | TypeDef::Union(_) => {
                let sets: Vec<&'a SelectionSet> = nodes.iter().map(|n| &n.node.selection_set.node).collect();
                Output::Composite(Arc::from(named), self.selection(named, &sets))
            }
            TypeDef::InputObject(_) => return None,
        };
        let mut plan = base(def.ty.clone(), source, output);
        plan.fallback = def.fallback.clone();
        plan.auth = def.auth.clone();
        Some(plan)
    }
}

fn key_json(key: &str) -> Box<[u8]> {
    let mut out = Vec::with_capacity(key.len() + 3);
    crate::response::write_json_str(&mut out, key);
    out.push(b':');
    out.into_boxed_slice()
}

/// The variables `@skip`/`@include` depend on, or `None` when the operation does not exist.
pub fn condition_variables(doc: &ExecutableDocument, name: Option<&str>) -> Option<Vec<String>> {
    let op = find_operation(doc, name)?;
    let mut out = Vec::new();
    let mut seen_frags = Vec::new();
    walk_conditions(doc, &op.node.selection_set.node, &mut out, &mut seen_frags);
    Some(out)
}

fn walk_conditions<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    out: &mut Vec<String>,
    seen: &mut Vec<&'d str>,
) {
    for sel in &set.items {
        match &sel.node {
            Selection::Field(f) => {
                note_conditions(out, &f.node.directives);
                walk_conditions(doc, &f.node.selection_set.node, out, seen);
            }
            Selection::InlineFragment(i) => {
                note_conditions(out, &i.node.directives);
                walk_conditions(doc, &i.node.selection_set.node, out, seen);
            }
            Selection::FragmentSpread(s) => {
                note_conditions(out, &s.node.directives);
                let name = s.node.fragment_name.node.as_str();
                if seen.contains(&name) {
                    continue;
                }
                seen.push(name);
                if let Some(frag) = doc.fragments.get(&s.node.fragment_name.node) {
                    note_conditions(out, &frag.node.directives);
                    walk_conditions(doc, &frag.node.selection_set.node, out, seen);
                }
            }
        }
    }
}

fn note_conditions(out: &mut Vec<String>, dirs: &[Positioned<Directive>]) {
    for d in dirs {
        if matches!(d.node.name.node.as_str(), "skip" | "include") {
            if let Some(GqlValue::Variable(v)) = d.node.get_argument("if").map(|v| &v.node) {
                if !out.iter().any(|o| o == v.as_str()) {
                    out.push(v.to_string());
                }
            }
        }
    }
}
