//! Subscription fields: each one streams a backend's Server-Sent Events, every event shaped by the
//! field's type like any backend value (nested fields resolve as usual).
//!
//! Runs on async-graphql's executor. A dropped backend stream that comes back is reported to the
//! client as an error (`STREAM_RECONNECTED`: updates may have been missed) before the next value.

use std::sync::Arc;

use async_graphql::dynamic::{FieldValue, ResolverContext, SubscriptionFieldFuture};
use async_graphql::{ErrorExtensions, QueryPathSegment};
use futures::StreamExt;

use super::request_state::RequestState;
use super::resolve::{coerced_args, FieldInfo, JsonRef, Shape};
use super::Engine;
use crate::backend::request::render;
use crate::backend::stream::{open, StreamItem};
use crate::backend::Payload;
use crate::plan::template::RenderContext;
use crate::plan::FieldSource;
use crate::response::PathSegment;
use serde_json::Value;

fn error(message: String, code: &'static str, backend: &str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| {
        e.set("code", code);
        e.set("backend", backend);
    })
}

/// The resolver of a subscription field bound with `@stream`.
pub fn stream_resolver(
    info: Arc<FieldInfo>,
) -> impl for<'a> Fn(ResolverContext<'a>) -> SubscriptionFieldFuture<'a> + Send + Sync {
    move |ctx| {
        let info = info.clone();
        SubscriptionFieldFuture::new(async move {
            let engine = ctx.data::<Arc<Engine>>()?.clone();
            let state = ctx.data::<Arc<RequestState>>()?.clone();
            let FieldSource::Stream(bid) = info.field.source else {
                return Err(async_graphql::Error::new("not a stream field"));
            };
            // `@auth` is checked before the backend stream is opened.
            if let Some(rule) = &info.field.auth {
                if let Err(denied) = crate::auth::identity::check(rule, &state.identity) {
                    let code = denied.code();
                    return Err(
                        async_graphql::Error::new(denied.message(&info.type_name, &info.field.name))
                            .extend_with(|_, e| e.set("code", code)),
                    );
                }
            }
            let plan = info.plan.clone();
            let binding = plan.binding(bid);
            let backend = plan.backend(binding.backend).name.clone();
            let args = coerced_args(&ctx, &plan, &info.field);
            let rctx = RenderContext {
                args: &args,
                parent: None,
                headers: &state.headers,
                claims: state.identity.claims.as_deref(),
                key: None,
            };
            let mut req = render(binding, plan.backend(binding.backend), &rctx, None).map_err(|e| {
                error(
                    format!("the stream could not be opened: {e}"),
                    "BACKEND_ERROR",
                    &backend,
                )
            })?;
            let pos = (ctx.ctx.item.pos.line, ctx.ctx.item.pos.column);
            let key: Arc<str> = match ctx.path_node.map(|n| n.segment) {
                Some(QueryPathSegment::Name(n)) => Arc::from(n),
                _ => Arc::from(info.field.name.as_str()),
            };
            let select = binding.select.clone();
            // The stream continues the subscribing request's trace (`traceparent`).
            req.trace = crate::telemetry::trace_context::current().map(|t| t.call_trace());
            let events = open(&engine.clients, req);
            let stream = events.map(move |item| match item {
                StreamItem::Value(v) => {
                    // Nested fields of this event make their calls afresh.
                    state.renew();
                    let shape = Shape {
                        plan: &plan,
                        state: &state,
                        pos,
                        owner: (&info.type_name, &info.field.name),
                        fallback: None,
                        selection: None,
                        backend: Some(Arc::from(backend.as_str())),
                    };
                    let json = match select.as_path() {
                        Some(path) => JsonRef::new(Arc::new(Payload::new(v)), path.segments()),
                        None => {
                            let mapped = select.eval(&v, None).ok().flatten().map(|c| c.into_owned());
                            JsonRef::new(Arc::new(Payload::new(mapped.unwrap_or(Value::Null))), &[])
                        }
                    };
                    let path = vec![PathSegment::Key(key.clone())];
                    Ok(shape
                        .complete(&info.field.ty, Some(json), &path, None, true)
                        .unwrap_or(FieldValue::NULL))
                }
                StreamItem::Reconnected => Err(error(
                    format!("the stream from backend \"{backend}\" was re-established; updates may have been missed"),
                    "STREAM_RECONNECTED",
                    &backend,
                )),
                StreamItem::Failed(e) => Err(error(e.public_message(&backend), e.public_code(), &backend)),
            });
            Ok(stream)
        })
    }
}
