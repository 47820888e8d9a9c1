//! Who is asking: the verified JWT's claims of the request being served (set at the HTTP boundary
//! by `server::auth`), read by templates (`{{claims.sub}}`), `@auth` checks and private caching.

use std::sync::Arc;

use serde_json::Value;

/// A request's verified identity.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The token's claims; `None` for an anonymous request. Shared with the verifier's cache of
    /// verified tokens: the same token gives the same `Arc` (not a copy per request).
    pub claims: Option<Arc<Value>>,
}

impl Identity {
    pub fn subject(&self) -> Option<&str> {
        self.claims.as_ref()?.get("sub")?.as_str()
    }

    /// Scopes from `scope` (space-separated) or `scp`/`scopes` (a list or a string).
    pub fn has_scope(&self, scope: &str) -> bool {
        let Some(claims) = &self.claims else { return false };
        ["scope", "scp", "scopes"].iter().any(|k| match claims.get(*k) {
            Some(Value::String(s)) => s.split_whitespace().any(|x| x == scope),
            Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(scope)),
            _ => false,
        })
    }
}

tokio::task_local! {
    static CURRENT: Arc<Identity>;
}

/// The identity of every anonymous request: one shared value, not an allocation per request.
pub fn anonymous() -> Arc<Identity> {
    static ANONYMOUS: std::sync::LazyLock<Arc<Identity>> = std::sync::LazyLock::new(Arc::default);
    ANONYMOUS.clone()
}

/// Runs `f` as the request of `identity`.
pub async fn scope<F: std::future::Future>(identity: Arc<Identity>, f: F) -> F::Output {
    CURRENT.scope(identity, f).await
}

/// The identity of the request being served by this task (anonymous outside a request).
pub fn current() -> Arc<Identity> {
    CURRENT.try_with(Arc::clone).unwrap_or_default()
}

/// Why a field may not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Unauthenticated,
    MissingScope(String),
}

impl Denied {
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Unauthenticated => "UNAUTHENTICATED",
            Denied::MissingScope(_) => "FORBIDDEN",
        }
    }

    pub fn message(&self, type_name: &str, field: &str) -> String {
        match self {
            Denied::Unauthenticated => format!("{type_name}.{field} requires authentication"),
            Denied::MissingScope(s) => format!("{type_name}.{field} requires the scope \"{s}\""),
        }
    }
}

/// Checks an `@auth` rule (the scopes it requires; empty: only authentication).
pub fn check(rule: &super::AuthRule, identity: &Identity) -> Result<(), Denied> {
    if identity.claims.is_none() {
        return Err(Denied::Unauthenticated);
    }
    match rule.scopes.iter().find(|s| !identity.has_scope(s)) {
        Some(s) => Err(Denied::MissingScope(s.clone())),
        None => Ok(()),
    }
}
