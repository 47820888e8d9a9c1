//! The escape hatch: fields resolved by Rust code registered under a name (`@resolver(name:)`).
//!
//! A resolver gets the field's arguments, the parent object's backend JSON and the client's
//! allowlisted headers, and returns JSON that is then shaped by the field's type like any backend
//! value. Fields with a resolver run on async-graphql's executor.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

/// What a resolver is given (owned, so resolvers may be `async move`).
#[derive(Debug, Clone)]
pub struct ResolverInput {
    pub args: Map<String, Value>,
    pub parent: Option<Value>,
    pub headers: http::HeaderMap,
}

/// A resolver's failure; the message is shown to clients as is, so keep internals out of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ResolverError(pub String);

pub type ResolverFn = Arc<dyn Fn(ResolverInput) -> BoxFuture<'static, Result<Value, ResolverError>> + Send + Sync>;

/// Named Rust resolvers.
#[derive(Clone, Default)]
pub struct ResolverRegistry {
    resolvers: BTreeMap<String, ResolverFn>,
}

impl ResolverRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` under `name`.
    pub fn register<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(ResolverInput) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Value, ResolverError>> + Send + 'static,
    {
        let f = Arc::new(f);
        self.resolvers.insert(
            name.to_string(),
            Arc::new(move |input| {
                let f = f.clone();
                Box::pin(async move { f(input).await })
            }),
        );
        self
    }

    pub fn get(&self, name: &str) -> Option<&ResolverFn> {
        self.resolvers.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.resolvers.keys().map(String::as_str).collect()
    }
}
