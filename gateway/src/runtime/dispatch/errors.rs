//! What is written when an operation fails before execution: `{"errors": [...]}` with codes,
//! and the helpers that move a request between our shape and async-graphql's.

use serde_json::Value;

use super::{Executed, GraphQLRequest};

/// The `extensions.code` of each error of `response` (`REQUEST_ERROR` when it has none).
pub(super) fn error_codes(response: &async_graphql::Response) -> Vec<String> {
    response
        .errors
        .iter()
        .map(|e| {
            e.extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .map(|c| c.to_string().trim_matches('"').to_string())
                .unwrap_or_else(|| "REQUEST_ERROR".to_string())
        })
        .collect()
}

/// A request error with `extensions.code`.
pub(super) fn coded_error(message: impl Into<String>, code: &str) -> async_graphql::ServerError {
    let mut err = async_graphql::ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    err.extensions = Some(ext);
    err
}

pub(super) fn mutations_disabled() -> async_graphql::ServerError {
    coded_error("mutations are disabled on this gateway", "FORBIDDEN")
}

/// Whether a response failed before execution (parse, validation, variables): no `data`.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

pub(super) fn to_async_graphql(req: &GraphQLRequest) -> async_graphql::Request {
    let mut r = async_graphql::Request::new(req.query.clone()).variables(async_graphql::Variables::from_json(
        Value::Object(req.variables.clone()),
    ));
    if let Some(op) = &req.operation_name {
        r = r.operation_name(op.clone());
    }
    r
}

/// A response that never reached execution: `{"errors": [...]}`, no `data`.
pub(super) fn request_error(response: &async_graphql::Response) -> Executed {
    #[derive(serde::Serialize)]
    struct Errors<'a> {
        errors: &'a [async_graphql::ServerError],
    }
    Executed {
        body: serde_json::to_vec(&Errors {
            errors: &response.errors,
        })
        .unwrap_or_default()
        .into(),
        request_error: true,
        not_allowed: false,
    }
}
