//! One call of a binding, as both executors make it: rendered from the request's values, made
//! through the request's memo (identical reads once), read through the binding (its [`Answer`]),
//! the cached answers a successful write makes stale evicted, and a failure logged once — with
//! the stale answer that may stand in for it. Batches (`batch`) go through [`super::batch`],
//! which shares the rest.
//!
//! This is the one place a fix to the call step lands: the compiled executor (`exec`) and
//! async-graphql's resolvers (`runtime`) both call [`call`].

use std::sync::Arc;

use serde_json::Value;

use super::payload::Answer;
use super::request::{render, RenderError};
use super::{BackendClients, CallError, CallFailure, CallMemo};
use crate::plan::template::RenderContext;
use crate::plan::{Binding, Plan};

/// A failed call as a binding reads it: the error, and the stale answer served in its place.
#[derive(Debug, Clone)]
pub struct Failed {
    pub error: CallError,
    pub stale: Option<Answer>,
}

impl Failed {
    pub fn new(f: CallFailure, binding: &Binding) -> Self {
        Self {
            error: f.error,
            stale: f.stale.map(|p| Answer::new(p, binding)),
        }
    }
}

impl From<CallError> for Failed {
    fn from(error: CallError) -> Self {
        Self { error, stale: None }
    }
}

/// A call's outcome as a binding reads it: `Ok(None)` when no call was made (a key was missing).
pub type Reply = Result<Option<Answer>, Failed>;

/// Reads a call's outcome through `binding`.
pub fn reply(r: Result<Arc<super::Payload>, CallFailure>, binding: &Binding) -> Result<Answer, Failed> {
    r.map(|p| Answer::new(p, binding)).map_err(|f| Failed::new(f, binding))
}

/// What a batch needs from the request that makes it.
pub struct RequestScope<'a> {
    pub plan: &'a Plan,
    pub clients: &'a BackendClients,
    pub memo: &'a CallMemo,
    pub headers: &'a http::HeaderMap,
    pub claims: Option<&'a Value>,
}

/// Makes `binding`'s call for `ctx` (its arguments, parent, headers, claims and fan-out key).
pub async fn call(scope: &RequestScope<'_>, binding: &Binding, ctx: &RenderContext<'_>) -> Reply {
    let rendered = render(binding, scope.plan.backend(binding.backend), ctx, None);
    call_rendered(scope, binding, ctx.args, rendered).await
}

/// [`call`] for a request the caller rendered (to group parents by the call they need first).
pub async fn call_rendered(
    scope: &RequestScope<'_>,
    binding: &Binding,
    args: &serde_json::Map<String, Value>,
    rendered: Result<super::BackendRequest, RenderError>,
) -> Reply {
    let r = match rendered {
        Ok(req) => reply(scope.memo.call(scope.clients, req).await, binding).map(Some),
        // A path value is missing (a null argument, a parent without the key): no call, null.
        Err(RenderError::MissingPathValue(_)) => return Ok(None),
        Err(e) => Err(Failed::from(CallError::from(e))),
    };
    match &r {
        Ok(_) => super::invalidate::after_success(scope.clients, binding, args).await,
        Err(f) => log_failure(scope.plan, binding, f),
    }
    r
}

/// One warning per failed backend call (not per parent), in the request's span.
pub fn log_failure(plan: &Plan, binding: &Binding, f: &Failed) {
    let operation = crate::telemetry::trace_context::operation();
    tracing::warn!(
        operation = operation.as_ref().and_then(|o| o.name.as_deref()),
        document = operation.as_ref().map(|o| &*o.document),
        backend = %plan.backend(binding.backend).name,
        field = %binding.owner,
        error = %f.error,
        stale = f.stale.is_some(),
        "backend call failed"
    );
}
