//! Operations run as a stream of responses (subscriptions over graphql-transport-ws or SSE, and
//! the single response of a query or mutation sent that way), with the checks the HTTP path makes.

use std::sync::Arc;

use async_graphql::parser::types::OperationType;

use super::super::Runtime;
use super::errors::{coded_error, mutations_disabled, to_async_graphql};
use super::GraphQLRequest;
use crate::exec;

impl Runtime {
    /// Runs an operation as a stream of responses: a subscription's events, or the single response
    /// of a query or mutation (graphql-transport-ws and SSE clients send those too). Runs on
    /// async-graphql's executor; each response gets its nulls and errors applied.
    ///
    /// As over HTTP, the document may be named by its persisted-query hash (and must be trusted in
    /// trusted-documents mode), and a read-only gateway refuses mutations.
    pub fn subscribe(
        self: &Arc<Self>,
        req: &GraphQLRequest,
        headers: &http::HeaderMap,
    ) -> futures::stream::BoxStream<'static, async_graphql::Response> {
        use futures::StreamExt;
        let mut req = req.clone();
        let kind = match self.admit_stream(&mut req) {
            Ok(kind) => kind,
            Err(refused) => {
                return futures::stream::once(async move { async_graphql::Response::from_errors(vec![refused]) })
                    .boxed()
            }
        };
        if kind != Some(OperationType::Subscription) {
            // A query or mutation: one response (also on schemas without a Subscription type).
            let runtime = self.clone();
            let headers = headers.clone();
            return futures::stream::once(
                async move { runtime.execute_dynamic(to_async_graphql(&req), headers).await },
            )
            .boxed();
        }
        let (request, state) = self.dynamic_request(to_async_graphql(&req), headers.clone());
        self.schema
            .execute_stream(request)
            .map(move |mut resp| {
                state.finish(&mut resp);
                resp
            })
            .boxed()
    }

    /// The checks a streamed operation passes before it runs (the HTTP path makes the same ones in
    /// `execute_inner`, where they share the plan cache). Gives the operation's type when the
    /// document parses (else the executor reports the syntax error).
    fn admit_stream(&self, req: &mut GraphQLRequest) -> Result<Option<OperationType>, async_graphql::ServerError> {
        match self.persisted.resolve(&req.query, &req.extensions) {
            Ok(Some(document)) => req.query = document.to_string(),
            Ok(None) => {}
            Err(e) => return Err(coded_error(e.to_string(), e.code())),
        }
        let kind = async_graphql::parser::parse_query(&req.query)
            .ok()
            .and_then(|doc| exec::operation_kind(&doc, req.operation_name.as_deref()));
        if kind == Some(OperationType::Mutation) && !self.engine.plan.security.allow_mutations {
            return Err(mutations_disabled());
        }
        Ok(kind)
    }
}
