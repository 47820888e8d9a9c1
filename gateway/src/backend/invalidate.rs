//! After a successful call that changes data (a mutation), evict the cached answers it makes
//! stale — before the response is sent, so a client that writes then reads sees its write.

use serde_json::{Map, Value};

use super::BackendClients;
use crate::plan::template::{push_scalar_text, Part, RenderContext};
use crate::plan::Binding;

/// Applies the binding's `@invalidates` targets, their paths rendered from the arguments.
pub async fn after_success(clients: &BackendClients, binding: &Binding, args: &Map<String, Value>) {
    if binding.invalidates.is_empty() {
        return;
    }
    let headers = http::HeaderMap::new();
    let ctx = RenderContext {
        args,
        parent: None,
        headers: &headers,
        claims: None,
        key: None,
    };
    for (backend, template) in &binding.invalidates {
        let mut path = String::new();
        for part in &template.parts {
            match part {
                Part::Lit(s) => path.push_str(s),
                Part::Expr(e) => {
                    if let Some(v) = e.eval(&ctx) {
                        push_scalar_text(&mut path, &v);
                    }
                }
            }
        }
        clients.invalidate(*backend, &path).await;
    }
}
