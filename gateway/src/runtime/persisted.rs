//! Persisted operations: Automatic Persisted Queries (the Apollo protocol, so Apollo Client's
//! persisted-queries link works: hash first, `PersistedQueryNotFound`, then hash and query) and
//! trusted documents (only the operations of a manifest run, for production).

use std::collections::HashMap;

use serde_json::{Map, Value};

pub use crate::plan::documents::sha256_hex;

/// Why a request's document could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersistedError {
    #[error("PersistedQueryNotFound")]
    NotFound,
    #[error("PersistedQueryNotSupported")]
    NotSupported,
    #[error("provided sha does not match query")]
    HashMismatch,
    #[error("unsupported persisted query version")]
    Version,
    #[error("this gateway runs trusted documents only; the operation is not among them")]
    Untrusted,
}

impl PersistedError {
    pub fn code(&self) -> &'static str {
        match self {
            PersistedError::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            PersistedError::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            PersistedError::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            PersistedError::Version => "PERSISTED_QUERY_VERSION",
            PersistedError::Untrusted => "UNTRUSTED_DOCUMENT",
        }
    }
}

pub struct PersistedQueries {
    apq: Option<moka::sync::Cache<String, std::sync::Arc<str>>>,
    trusted: Option<HashMap<String, std::sync::Arc<str>>>,
}

impl PersistedQueries {
    pub fn new(apq: bool, apq_size: u64, trusted: Option<HashMap<String, std::sync::Arc<str>>>) -> Self {
        Self {
            apq: apq.then(|| moka::sync::Cache::new(apq_size.max(1))),
            trusted,
        }
    }

    /// Every document of the trusted-documents manifest (none outside that mode): compiled at
    /// warm-up, as they are the only operations clients can run.
    pub fn trusted_documents(&self) -> Vec<std::sync::Arc<str>> {
        self.trusted.iter().flat_map(|t| t.values().cloned()).collect()
    }

    /// The document a request runs: its query, or the one its hash names.
    pub fn resolve(
        &self,
        query: &str,
        extensions: &Map<String, Value>,
    ) -> Result<Option<std::sync::Arc<str>>, PersistedError> {
        let persisted = extensions.get("persistedQuery").and_then(Value::as_object);
        let hash = persisted
            .and_then(|p| p.get("sha256Hash"))
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        if let Some(p) = persisted {
            if p.get("version").and_then(Value::as_i64) != Some(1) {
                return Err(PersistedError::Version);
            }
        }
        if let Some(trusted) = &self.trusted {
            let id = match &hash {
                Some(h) => h.clone(),
                None if !query.is_empty() => sha256_hex(query),
                None => return Err(PersistedError::Untrusted),
            };
            return match trusted.get(&id) {
                Some(doc) if query.is_empty() || **doc == *query => Ok(Some(doc.clone())),
                _ => Err(PersistedError::Untrusted),
            };
        }
        let Some(hash) = hash else {
            return Ok(None);
        };
        let Some(apq) = &self.apq else {
            return Err(PersistedError::NotSupported);
        };
        if query.is_empty() {
            return apq.get(&hash).map(Some).ok_or(PersistedError::NotFound);
        }
        if sha256_hex(query) != hash {
            return Err(PersistedError::HashMismatch);
        }
        apq.insert(hash, std::sync::Arc::from(query));
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ext(hash: &str) -> Map<String, Value> {
        json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    #[test]
    fn apq_registers_a_query_by_hash_then_serves_it() {
        let p = PersistedQueries::new(true, 10, None);
        let q = "{ a }";
        let h = sha256_hex(q);
        assert_eq!(p.resolve("", &ext(&h)), Err(PersistedError::NotFound));
        assert_eq!(p.resolve(q, &ext(&h)), Ok(None));
        assert_eq!(
            p.resolve("", &ext(&h)).map(|d| d.map(|d| d.to_string())),
            Ok(Some(q.to_string()))
        );
        assert_eq!(p.resolve("{ b }", &ext(&h)), Err(PersistedError::HashMismatch));
    }

    #[test]
    fn trusted_documents_refuse_anything_else() {
        let q = "{ a }";
        let mut m = HashMap::new();
        m.insert(sha256_hex(q), std::sync::Arc::from(q));
        let p = PersistedQueries::new(true, 10, Some(m));
        assert!(p.resolve(q, &Map::new()).is_ok(), "the document itself, sent as text");
        assert!(p.resolve("", &ext(&sha256_hex(q))).is_ok(), "by hash");
        assert_eq!(p.resolve("{ b }", &Map::new()), Err(PersistedError::Untrusted));
    }
}
