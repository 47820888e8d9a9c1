//! Getting a parsed, validated document out of async-graphql without running it.
//!
//! async-graphql keeps its validator private; its extension hooks are public. On the first sight of
//! a document the runtime executes it in "validate only" mode: this extension keeps the parsed
//! document and, once validation has passed, answers without calling any resolver.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::{Pos, Positioned};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Value, Variables};

/// Request data asking for validation only; the parsed document is left here.
#[derive(Default)]
pub struct ValidateOnly {
    pub document: Mutex<Option<ExecutableDocument>>,
    /// Whether the document's cost depends on its variables (re-checked per request).
    pub variable_cost: std::sync::atomic::AtomicBool,
}

/// Also enforces the query limits ([`limits`](super::limits)) on every document it parses.
pub struct CaptureFactory {
    pub plan: Arc<crate::plan::Plan>,
}

impl ExtensionFactory for CaptureFactory {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Capture {
            plan: self.plan.clone(),
            variable_args: Mutex::default(),
        })
    }
}

struct Capture {
    plan: Arc<crate::plan::Plan>,
    /// Where the parsed document passes a variable as an argument: an invalid value there is the
    /// variables' fault (`BAD_USER_INPUT`), not the document's.
    variable_args: Mutex<Vec<Pos>>,
}

/// The codes Apollo's clients switch on, for errors before execution.
pub mod codes {
    pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const OPERATION_RESOLUTION_FAILURE: &str = "OPERATION_RESOLUTION_FAILURE";
}

/// Gives `err` the code `code` unless it has one.
pub fn ensure_code(err: &mut ServerError, code: &str) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
}

/// A value missing from the request's variables (async-graphql's words; the document's own
/// undeclared variables read `Variable "$x" is not defined`).
fn missing_variable_value(message: &str) -> bool {
    message.starts_with("Variable ") && message.ends_with(" is not defined.") && !message.contains("\"$")
}

/// Gives every error of `resp` a code: the ones the hooks above could not see (choosing the
/// operation, values refused while executing) get the code Apollo's clients expect.
pub fn ensure_codes(resp: &mut Response) {
    for e in &mut resp.errors {
        let code =
            if e.message.starts_with("Unknown operation named") || e.message.starts_with("Operation name required") {
                codes::OPERATION_RESOLUTION_FAILURE
            } else if e.message.starts_with("Invalid value for argument") || missing_variable_value(&e.message) {
                codes::BAD_USER_INPUT
            } else if e.path.is_empty() {
                codes::VALIDATION_FAILED
            } else {
                "INTERNAL_SERVER_ERROR"
            };
        ensure_code(e, code);
    }
}

/// The positions of the argument names whose values use a variable.
fn variable_arguments(doc: &ExecutableDocument) -> Vec<Pos> {
    fn walk(set: &SelectionSet, out: &mut Vec<Pos>) {
        for item in &set.items {
            for d in item.node.directives() {
                args(&d.node.arguments, out);
            }
            match &item.node {
                Selection::Field(f) => {
                    args(&f.node.arguments, out);
                    walk(&f.node.selection_set.node, out);
                }
                Selection::InlineFragment(f) => walk(&f.node.selection_set.node, out),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    fn args(list: &[(Positioned<async_graphql::Name>, Positioned<async_graphql_value::Value>)], out: &mut Vec<Pos>) {
        for (name, value) in list {
            if has_variable(&value.node) {
                out.push(name.pos);
            }
        }
    }
    fn has_variable(v: &async_graphql_value::Value) -> bool {
        use async_graphql_value::Value as V;
        match v {
            V::Variable(_) => true,
            V::List(items) => items.iter().any(has_variable),
            V::Object(fields) => fields.values().any(has_variable),
            _ => false,
        }
    }
    let mut out = Vec::new();
    for (_, op) in doc.operations.iter() {
        for d in &op.node.directives {
            args(&d.node.arguments, &mut out);
        }
        walk(&op.node.selection_set.node, &mut out);
    }
    for fragment in doc.fragments.values() {
        walk(&fragment.node.selection_set.node, &mut out);
    }
    out
}

/// A request error for a broken limit.
pub fn limit_error(e: &super::limits::LimitError) -> async_graphql::ServerError {
    let mut err = async_graphql::ServerError::new(e.to_string(), None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", e.code());
    err.extensions = Some(ext);
    err
}

#[async_trait::async_trait]
impl Extension for Capture {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let limits = &self.plan.limits;
        super::limits::check_text(query, limits).map_err(|e| limit_error(&e))?;
        // Measured on our own parse before async-graphql's, whose recursion check expands
        // fragments without memoisation (exponential on a fragment bomb).
        let vars = match variables.clone().into_value().into_json() {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let mut variable_cost = false;
        if let Ok(pre) = async_graphql::parser::parse_query(query) {
            for (name, _) in pre.operations.iter() {
                let m = super::limits::check_document(&self.plan, &pre, name.map(|n| n.as_str()), &vars, limits)
                    .map_err(|e| limit_error(&e))?;
                variable_cost |= m.variable_cost;
            }
        }
        let doc = next.run(ctx, query, variables).await.map_err(|mut e| {
            ensure_code(&mut e, codes::PARSE_FAILED);
            e
        })?;
        if let Ok(mut positions) = self.variable_args.lock() {
            *positions = variable_arguments(&doc);
        }
        if let Some(slot) = ctx.data_opt::<Arc<ValidateOnly>>() {
            slot.variable_cost
                .store(variable_cost, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut d) = slot.document.lock() {
                *d = Some(doc.clone());
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            let positions = self.variable_args.lock().map(|p| p.clone()).unwrap_or_default();
            for e in &mut errors {
                let from_variables = (e.message.starts_with("Invalid value for argument")
                    && e.locations.iter().any(|l| positions.contains(l)))
                    || missing_variable_value(&e.message);
                let code = if from_variables {
                    codes::BAD_USER_INPUT
                } else {
                    codes::VALIDATION_FAILED
                };
                ensure_code(e, code);
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if ctx.data_opt::<Arc<ValidateOnly>>().is_some() {
            return Response::new(Value::Null);
        }
        next.run(ctx, operation_name).await
    }
}
