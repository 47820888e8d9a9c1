//! Getting a parsed, validated document out of async-graphql without running it.
//!
//! async-graphql keeps its validator private; its extension hooks are public. On the first sight of
//! a document the runtime executes it in "validate only" mode: this extension keeps the parsed
//! document and, once validation has passed, answers without calling any resolver.

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerResult, Value, Variables};

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
        })
    }
}

struct Capture {
    plan: Arc<crate::plan::Plan>,
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
        let doc = next.run(ctx, query, variables).await?;
        if let Some(slot) = ctx.data_opt::<Arc<ValidateOnly>>() {
            slot.variable_cost
                .store(variable_cost, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut d) = slot.document.lock() {
                *d = Some(doc.clone());
            }
        }
        Ok(doc)
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
