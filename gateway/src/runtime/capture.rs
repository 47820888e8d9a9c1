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
}

pub struct CaptureFactory;

impl ExtensionFactory for CaptureFactory {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Capture)
    }
}

struct Capture;

#[async_trait::async_trait]
impl Extension for Capture {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(slot) = ctx.data_opt::<Arc<ValidateOnly>>() {
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
